"""The simulator's account: its messaging profiles and phone numbers, as Telnyx's API shows them under /v2, from an
inventory a test or the sandbox launcher sets (PUT /sim/inventory).

The inventory is written in a few plain fields (control.py checks them); `profile_record` and `number_record`
turn them into Telnyx's MessagingProfile and PhoneNumberWithMessagingSettings.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import phonenumbers
from flask import Blueprint, jsonify, request

from otpservice.sandbox import payloads
from otpservice.sandbox.simulator import CODE_INVALID_VALUE, CODE_NOT_FOUND, current_sim, telnyx_error
from otpservice.sending.base import Route
from otpservice.sandbox.v2 import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_param, record_and_authenticate

bp = Blueprint("telnyx_v2_account", __name__, url_prefix="/v2")
bp.before_request(record_and_authenticate)

CREATED_AT = "2026-01-05T09:00:00.000+00:00"  # a fixed date: the inventory's records do not change between reads
NUMBER_TYPES = ("longcode", "tollfree", "shortcode")


def default_inventory(*, profile_id: str, from_number: str, webhook_url: str | None) -> dict[str, list[dict]]:
    """The account a fresh simulator has: its profile, and its number on it, enabled for messaging."""
    return {
        "messaging_profiles": [{"id": profile_id, "name": "Sandbox", "enabled": True, "webhook_url": webhook_url,
                                "alpha_sender": None, "whitelisted_destinations": ["US", "CA"],
                                "number_pool": True}],
        "phone_numbers": [{"phone_number": from_number, "messaging_profile_id": profile_id,
                           "messaging_enabled": True, "type": "tollfree"}],
    }


def inventory_for(countries: list[tuple[str, Route]], *, profile_id: str, from_number: str,
                  webhook_url: str | None) -> dict[str, list[dict]]:
    """The account a configuration needs, set up right: each profile of its routes (or `profile_id`) enabled, with
    the webhook, the routes' alphanumeric senders and countries; each sender number on its route's profile; the
    simulator's own number on `profile_id`, for the pool. `countries`: (country, route) of the routing table."""
    profiles: dict[str, dict[str, Any]] = {}
    numbers: dict[str, dict[str, Any]] = {}

    def profile(pid: str) -> dict[str, Any]:
        return profiles.setdefault(pid, {"id": pid, "name": f"Sandbox {len(profiles) + 1}", "enabled": True,
                                         "webhook_url": webhook_url, "alpha_sender": None,
                                         "whitelisted_destinations": ["US", "CA"], "number_pool": True})

    profile(profile_id)
    numbers[from_number] = {"phone_number": from_number, "messaging_profile_id": profile_id,
                            "messaging_enabled": True, "type": "tollfree"}
    for country, route in countries:
        on = profile(route.messaging_profile_id or profile_id)
        if country.isupper() and country not in on["whitelisted_destinations"]:
            on["whitelisted_destinations"].append(country)
        sender = route.sender or ""
        if sender.startswith("+") or sender.isdigit():
            numbers.setdefault(sender, {"phone_number": sender, "messaging_profile_id": on["id"],
                                        "messaging_enabled": True,
                                        "type": "shortcode" if sender.isdigit() else "longcode"})
        elif sender:
            on["alpha_sender"] = sender
    return {"messaging_profiles": list(profiles.values()), "phone_numbers": list(numbers.values())}


def number_id(phone_number: str) -> str:
    """A stable numeric id for a number, as Telnyx gives each of its numbers."""
    return str(int(hashlib.sha256(phone_number.encode()).hexdigest()[:15], 16))


def profile_record(profile: dict[str, Any]) -> dict[str, Any]:
    """A MessagingProfile."""
    return {
        "id": profile["id"],
        "record_type": "messaging_profile",
        "name": profile.get("name") or "Profile",
        "enabled": profile.get("enabled", True),
        "webhook_url": profile.get("webhook_url"),
        "webhook_failover_url": None,
        "webhook_api_version": "2",
        "alpha_sender": profile.get("alpha_sender"),
        "whitelisted_destinations": list(profile.get("whitelisted_destinations") or []),
        "number_pool_settings": {"geomatch": False, "long_code_weight": 1, "skip_unhealthy": True,
                                 "sticky_sender": False, "toll_free_weight": 10}
        if profile.get("number_pool") else None,
        "url_shortener_settings": None,
        "daily_spend_limit": "100.00",
        "daily_spend_limit_enabled": False,
        "mms_fall_back_to_sms": False,
        "mms_transcoding": False,
        "mobile_only": False,
        "organization_id": payloads.ORGANIZATION_ID,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
    }


def number_record(number: dict[str, Any]) -> dict[str, Any]:
    """A PhoneNumberWithMessagingSettings: `features.sms` is null for a number not enabled for messaging."""
    phone = number["phone_number"]
    try:
        country = phonenumbers.region_code_for_number(phonenumbers.parse(phone)) or "US"
    except phonenumbers.NumberParseException:
        country = "US"  # a short code has no country of its own in E.164
    sms = {"domestic_two_way": True, "international_inbound": True, "international_outbound": True}
    return {
        "id": number_id(phone),
        "record_type": "messaging_settings",
        "phone_number": phone,
        "messaging_profile_id": number.get("messaging_profile_id"),
        "country_code": country,
        "type": number.get("type") or "longcode",
        "features": {"sms": sms if number.get("messaging_enabled", True) else None, "mms": None},
        "eligible_messaging_products": ["A2P"],
        "messaging_product": "A2P",
        "traffic_type": "A2P",
        "health": {"inbound_outbound_ratio": 0.0, "message_count": 0, "spam_ratio": 0.0, "success_ratio": 1.0},
        "organization_id": payloads.ORGANIZATION_ID,
        "tags": [],
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
    }


def not_found(what: str) -> Any:
    return telnyx_error(404, CODE_NOT_FOUND, "Resource not found", f"No {what} with that id on this account.")


@bp.get("/phone_numbers/messaging")
def list_numbers() -> Any:
    """The account's numbers with their messaging settings, filtered and paged as Telnyx does."""
    sim = current_sim()
    try:
        page = page_param("page[number]", 1, None)
        size = page_param("page[size]", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    except ValueError as exc:
        return telnyx_error(400, CODE_INVALID_VALUE, "Invalid value", f"{exc} must be an integer in range.",
                            parameter=str(exc))
    exact = request.args.get("filter[phone_number]")
    wanted = {n.strip() for n in exact.split(",")} if exact else None
    profile = request.args.get("filter[messaging_profile_id]")
    numbers = [number_record(n) for n in sim.state.inventory_of("phone_numbers")
               if (wanted is None or n["phone_number"] in wanted)
               and (profile is None or n.get("messaging_profile_id") == profile)]
    return jsonify({"data": numbers[(page - 1) * size: page * size],
                    "meta": {"page_number": page, "page_size": size,
                             "total_pages": max(1, math.ceil(len(numbers) / size)), "total_results": len(numbers)}})


@bp.get("/phone_numbers/<path:number>/messaging")
def number_settings(number: str) -> Any:
    """One number's messaging settings, by its id or by the number itself."""
    for item in current_sim().state.inventory_of("phone_numbers"):
        if number in (item["phone_number"], number_id(item["phone_number"])):
            return jsonify({"data": number_record(item)})
    return not_found("phone number")


@bp.get("/messaging_profiles/<profile_id>")
def messaging_profile(profile_id: str) -> Any:
    """One messaging profile."""
    for profile in current_sim().state.inventory_of("messaging_profiles"):
        if profile["id"] == profile_id:
            return jsonify({"data": profile_record(profile)})
    return not_found("messaging profile")

"""`otpservice doctor`: asks Telnyx whether the account is set up as the configuration needs.

For every route: its sender exists on the account, is enabled for messaging and is on the route's profile (an
alphanumeric sender is its profile's, a pool has numbers); every profile exists, is enabled, sends to the route's
country and has a webhook URL; the key reads the opt-out list. Each check is one line saying what was found or
what to fix. A wrong setup would otherwise show up only as failed sends.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from requests.utils import quote

from otpservice.config import Settings
from otpservice.sending.base import Misconfigured, ProviderUnavailable, Route, SendError
from otpservice.sending.routes_file import ALPHANUMERIC_RE, DEFAULT_COUNTRY, E164_RE, SHORT_CODE_RE
from otpservice.sending.routing import Router
from otpservice.sending.telnyx.client import MAX_PAGE_SIZE, TelnyxClient

CREDENTIAL_CODES = ("10009", "10010")


@dataclass(frozen=True)
class Check:
    """One finding: what it is about, whether it holds, and what was found or what to fix."""

    subject: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.subject}: {self.message}"


class Account:
    """The account's numbers and profiles as Telnyx shows them, each read once."""

    def __init__(self, client: TelnyxClient) -> None:
        self.client = client
        self._profiles: dict[str, dict[str, Any] | None] = {}
        self._numbers: dict[str, dict[str, Any] | None] = {}

    def profile(self, profile_id: str) -> dict[str, Any] | None:
        if profile_id not in self._profiles:
            body = self.client.get(f"/messaging_profiles/{quote(profile_id, safe='')}",
                                   operation="get_messaging_profile")
            self._profiles[profile_id] = body.get("data") if body else None
        return self._profiles[profile_id]

    def number(self, sender: str) -> dict[str, Any] | None:
        """A number's messaging settings: found in the list by the number, then read by its id."""
        if sender not in self._numbers:
            listed = self.client.get("/phone_numbers/messaging", operation="list_messaging_numbers",
                                     params={"filter[phone_number]": sender, "page[size]": 1}) or {}
            found = next((n for n in listed.get("data") or [] if n.get("phone_number") == sender), None)
            body = found and self.client.get(f"/phone_numbers/{quote(str(found.get('id')), safe='')}/messaging",
                                             operation="get_number_messaging")
            self._numbers[sender] = body.get("data") if body else None
        return self._numbers[sender]

    def numbers_on(self, profile_id: str) -> list[dict[str, Any]]:
        """The first page of the profile's numbers (enough to tell an empty pool)."""
        body = self.client.get("/phone_numbers/messaging", operation="list_messaging_numbers",
                               params={"filter[messaging_profile_id]": profile_id, "page[size]": MAX_PAGE_SIZE})
        return list((body or {}).get("data") or [])


def sms_enabled(number: dict[str, Any]) -> bool:
    return isinstance((number.get("features") or {}).get("sms"), dict)


def _sender_checks(account: Account, route: Route) -> list[Check]:
    subject, sender = f"route {route.name}", route.sender or ""
    if ALPHANUMERIC_RE.match(sender) and not (E164_RE.match(sender) or SHORT_CODE_RE.match(sender)):
        profile = account.profile(route.messaging_profile_id or "") or {}
        if profile.get("alpha_sender") != sender:
            return [Check(subject, False, f"alphanumeric sender {sender} is not the alpha sender of profile "
                                          f"{route.messaging_profile_id} (it has {profile.get('alpha_sender')}): "
                                          "set it on the profile, or Telnyx refuses the route's sends (40306)")]
        return [Check(subject, True, f"alphanumeric sender {sender} is profile {route.messaging_profile_id}'s")]
    number = account.number(sender)
    if number is None:
        return [Check(subject, False, f"sender {sender} is not a number of this account: fix the route's `from` "
                                      "(or OTP_TELNYX_FROM), or buy or port the number")]
    if not sms_enabled(number):
        return [Check(subject, False, f"sender {sender} is not enabled for messaging: enable messaging on it")]
    on = number.get("messaging_profile_id")
    if not on:
        return [Check(subject, False, f"sender {sender} is on no messaging profile: assign it to one")]
    if route.messaging_profile_id and on != route.messaging_profile_id:
        return [Check(subject, False, f"sender {sender} is on profile {on}, not on its route's profile "
                                      f"{route.messaging_profile_id}: assign it to that profile, or fix the route")]
    return [Check(subject, True, f"sender {sender} is on profile {on} and enabled for messaging")]


def _pool_checks(account: Account, route: Route) -> list[Check]:
    subject, profile_id = f"route {route.name}", route.messaging_profile_id or ""
    profile = account.profile(profile_id)
    if profile is None:
        return []  # the profile's own check says so
    if profile.get("number_pool_settings") is None:
        return [Check(subject, False, f"profile {profile_id} has no number pool: turn the number pool on")]
    usable = [n for n in account.numbers_on(profile_id) if sms_enabled(n)]
    if not usable:
        return [Check(subject, False, f"the pool of profile {profile_id} has no number enabled for messaging: add "
                                      "numbers to the profile, or Telnyx refuses the route's sends (40321)")]
    return [Check(subject, True, f"the pool of profile {profile_id} has {len(usable)} number(s) for messaging")]


def _profile_checks(account: Account, profile_id: str, users: list[str], settings: Settings) -> list[Check]:
    subject = f"profile {profile_id}"
    profile = account.profile(profile_id)
    if profile is None:
        return [Check(subject, False, f"no such messaging profile on this account (used by {', '.join(users)}): "
                                      "fix the id")]
    checks = [Check(subject, bool(profile.get("enabled")), "enabled" if profile.get("enabled") else
                    "disabled: enable it, or Telnyx refuses its sends (40312)")]
    if profile.get("webhook_url"):
        checks.append(Check(subject, True, f"webhook URL {profile['webhook_url']}"))
    else:
        target = settings.webhook_url or "this service's /webhooks/telnyx"
        lost = "inbound STOP texts" + ("" if settings.webhook_url else " and delivery receipts")
        checks.append(Check(subject, False, f"no webhook URL, so {lost} reach nobody: set it to {target}"))
    return checks


def _destination_checks(account: Account, router: Router) -> list[Check]:
    checks = []
    for country, route in router.countries():
        if country == DEFAULT_COUNTRY:
            continue
        profile_id = route.messaging_profile_id or (account.number(route.sender or "") or {}).get(
            "messaging_profile_id")
        allowed = (account.profile(profile_id) or {}).get("whitelisted_destinations") if profile_id else None
        if allowed and country not in allowed and "*" not in allowed:
            checks.append(Check(f"route {route.name}", False, f"profile {profile_id} does not send to {country} "
                                f"(its destinations: {', '.join(allowed)}): add {country}"))
    return checks


def diagnose(client: TelnyxClient, router: Router, settings: Settings) -> list[Check]:
    """Every check of the configuration against the account, in the order they are printed."""
    account = Account(client)
    profile_id = settings.telnyx_messaging_profile_id
    try:
        body = client.get("/messaging_optouts", operation="list_opt_outs",
                          params={"page[size]": 1, **({"filter[messaging_profile_id]": profile_id}
                                                      if profile_id else {})}) or {}
    except ProviderUnavailable:
        return [Check("telnyx", False, f"no answer from {client.base_url}: check OTP_TELNYX_BASE_URL")]
    except Misconfigured as exc:
        if exc.code in CREDENTIAL_CODES:
            return [Check("credentials", False, f"Telnyx refused OTP_TELNYX_API_KEY ({exc.code} {exc.title}): set "
                                                "an API v2 key of the account")]
        raise
    total = (body.get("meta") or {}).get("total_results", 0)
    checks = [Check("opt-out list", True, f"readable ({total} opt-outs)")]
    checks.append(Check("OTP_WEBHOOK_URL", True, f"every message names {settings.webhook_url}")
                  if settings.webhook_url else
                  Check("OTP_WEBHOOK_URL", False, "unset: delivery receipts go only where the profiles' webhook "
                                                  "URLs point; set it to this service's /webhooks/telnyx"))
    users: dict[str, list[str]] = {}
    if profile_id:
        users.setdefault(profile_id, []).append("OTP_TELNYX_MESSAGING_PROFILE_ID")
    for route in router.all_routes():
        if route.messaging_profile_id:
            users.setdefault(route.messaging_profile_id, []).append(f"route {route.name}")
    for profile, used_by in users.items():
        checks += _profile_checks(account, profile, used_by, settings)
    for route in router.all_routes():
        if route.endpoint == "number_pool":
            checks += _pool_checks(account, route)
        elif route.sender:
            checks += _sender_checks(account, route)
        else:
            checks.append(Check(f"route {route.name}", False, "no sender: set OTP_TELNYX_FROM or the route's `from`"))
    return checks + _destination_checks(account, router)


def run_checks(client: TelnyxClient, router: Router, settings: Settings) -> list[Check]:
    """diagnose, with an unexpected answer of Telnyx's as a failed check rather than a traceback."""
    try:
        return diagnose(client, router, settings)
    except SendError as exc:
        return [Check("telnyx", False, f"unexpected answer: {exc}")]

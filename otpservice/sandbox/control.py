"""The simulator's own control routes under /sim: outbox, faults, opt-outs, inbound messages, logs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from otpservice.sandbox import payloads
from otpservice.sandbox.simulator import (
    CODE_INVALID_VALUE,
    CODE_MISSING,
    CODE_NOT_FOUND,
    E164_RE,
    current_sim,
    telnyx_error,
)
from otpservice.sandbox.state import FAULT_MODES, Fault
from otpservice.sending.telnyx.signatures import public_key_b64

bp = Blueprint("telnyx_sim_control", __name__, url_prefix="/sim")


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object ({} when absent or not an object)."""
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _bad(field: str, detail: str, *, missing: bool = False) -> Any:
    """A 422 in Telnyx's shape pointing at `field`."""
    code, title = (
        (CODE_MISSING, "Missing required parameter") if missing else (CODE_INVALID_VALUE, "Invalid value")
    )
    return telnyx_error(422, code, title, detail, pointer=f"/{field}")


@bp.get("/messages")
def messages() -> Any:
    """The outbox, newest first, optionally for one `to`."""
    return jsonify({"data": current_sim().state.messages(request.args.get("to"))})


@bp.delete("/messages")
def clear_messages() -> Any:
    """Empty the outbox."""
    current_sim().state.clear_messages()
    return "", 204


@bp.get("/faults")
def faults() -> Any:
    """The armed faults."""
    state = current_sim().state
    with state.lock:
        return jsonify({"data": [f.as_dict() for f in state.faults]})


@bp.post("/faults")
def add_fault() -> Any:
    """Arm a fault for the next `count` valid sends (to `to`, or any; from `from`, or any); `sleep` overrides
    timeout_sleep."""
    body = _json_object()
    mode, count, to, sleep = body.get("mode"), body.get("count", 1), body.get("to"), body.get("sleep")
    from_ = body.get("from")
    if mode not in FAULT_MODES:
        return _bad("mode", f"mode must be one of {sorted(FAULT_MODES)}.", missing=mode is None)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return _bad("count", "count must be a positive integer.")
    if to is not None and (not isinstance(to, str) or not E164_RE.fullmatch(to)):
        return _bad("to", "to must be a +E.164 number.")
    if sleep is not None and (isinstance(sleep, bool) or not isinstance(sleep, (int, float)) or sleep < 0):
        return _bad("sleep", "sleep must be a non-negative number of seconds.")
    if from_ is not None and (not isinstance(from_, str) or not from_):
        return _bad("from", "from must be the sender (a number, short code or alphanumeric ID) to aim at.")
    fault = Fault(mode=mode, remaining=count, to=to, sleep=sleep, from_=from_)
    current_sim().state.add_fault(fault)
    return jsonify({"data": fault.as_dict()}), 201


@bp.delete("/faults")
def clear_faults() -> Any:
    """Disarm every fault."""
    current_sim().state.clear_faults()
    return "", 204


@bp.get("/latency")
def latency() -> Any:
    """How long every send takes to answer."""
    return jsonify({"data": {"seconds": current_sim().state.latency}})


@bp.put("/latency")
def set_latency() -> Any:
    """Make every send answer `seconds` late (0: at once), as a provider under load would."""
    seconds = _json_object().get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 60:
        return _bad("seconds", "seconds must be a number 0-60.", missing=seconds is None)
    current_sim().state.latency = float(seconds)
    return jsonify({"data": {"seconds": float(seconds)}})


@bp.get("/inventory")
def inventory() -> Any:
    """The account's messaging profiles and phone numbers, as set."""
    state = current_sim().state
    return jsonify({"data": {kind: state.inventory_of(kind) for kind in ("messaging_profiles", "phone_numbers")}})


PROFILE_FIELDS = {"id": str, "name": str, "enabled": bool, "webhook_url": (str, type(None)),
                  "alpha_sender": (str, type(None)), "whitelisted_destinations": list, "number_pool": bool}
NUMBER_FIELDS = {"phone_number": str, "messaging_profile_id": (str, type(None)), "messaging_enabled": bool,
                 "type": str}


def _inventory_problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(field, what is wrong) with an inventory body, or None."""
    for kind, fields, required in (("messaging_profiles", PROFILE_FIELDS, "id"),
                                   ("phone_numbers", NUMBER_FIELDS, "phone_number")):
        items = body.get(kind, [])
        if not isinstance(items, list):
            return kind, f"{kind} must be a list."
        for index, item in enumerate(items):
            where = f"{kind}/{index}"
            if not isinstance(item, dict) or not isinstance(item.get(required), str):
                return where, f"each of {kind} is an object with {required}."
            for name, value in item.items():
                if name not in fields or not isinstance(value, fields[name]):
                    return f"{where}/{name}", f"{name} is not one of {sorted(fields)} or has the wrong type."
            if kind == "phone_numbers" and item.get("type", "longcode") not in ("longcode", "tollfree", "shortcode"):
                return f"{where}/type", "type must be longcode, tollfree or shortcode."
    return None


@bp.put("/inventory")
def set_inventory() -> Any:
    """Replace the account's messaging profiles and phone numbers (what GET /v2/messaging_profiles/{id} and
    /v2/phone_numbers/messaging show): `{"messaging_profiles": [{"id", "name", "enabled", "webhook_url",
    "alpha_sender", "whitelisted_destinations", "number_pool"}], "phone_numbers": [{"phone_number",
    "messaging_profile_id", "messaging_enabled", "type"}]}`."""
    body = _json_object()
    if (problem := _inventory_problem(body)) is not None:
        return _bad(*problem)
    inventory = {kind: body.get(kind, []) for kind in ("messaging_profiles", "phone_numbers")}
    current_sim().state.set_inventory(inventory)
    return jsonify({"data": inventory})


@bp.get("/public-key")
def public_key() -> Any:
    """The key the simulator's webhooks verify with (OTP_TELNYX_PUBLIC_KEY)."""
    return jsonify({"public_key": public_key_b64(current_sim().signing_key)})


def _optout_record(to: str, profile_id: str, from_: str, keyword: str | None) -> dict[str, Any]:
    """An opt-out as GET /v2/messaging_optouts lists it (`_ts` is internal, for order and filters)."""
    now = current_sim().clock()
    return {
        "to": to,
        "from": from_,
        "messaging_profile_id": profile_id,
        "keyword": keyword,
        "created_at": payloads.spaced(now),
        "_ts": now,
    }


@bp.post("/optouts")
def add_optout() -> Any:
    """Put a number on the opt-out list, as if it had texted STOP."""
    sim, body = current_sim(), _json_object()
    to = body.get("to")
    if not isinstance(to, str) or not E164_RE.fullmatch(to):
        return _bad("to", "to must be a +E.164 number.", missing=to is None)
    profile = body.get("messaging_profile_id") or sim.messaging_profile_id
    record = _optout_record(
        to, str(profile), str(body.get("from") or sim.from_number), body.get("keyword") or "STOP"
    )
    sim.state.add_optout(record)
    return jsonify({"data": {k: v for k, v in record.items() if not k.startswith("_")}}), 201


@bp.delete("/optouts/<to>")
def remove_optout(to: str) -> Any:
    """Take a number off the opt-out list (every profile, or `?messaging_profile_id=`)."""
    removed = current_sim().state.remove_optout(to, request.args.get("messaging_profile_id"))
    if not removed:
        return telnyx_error(404, CODE_NOT_FOUND, "Resource not found", "That number has no opt-out.")
    return jsonify({"data": {"removed": removed}})


@bp.post("/inbound")
def inbound() -> Any:
    """A subscriber texts us: apply STOP/START to the opt-out list, then deliver a signed message.received."""
    sim, body = current_sim(), _json_object()
    subscriber, text = body.get("from"), body.get("text")
    if not isinstance(subscriber, str) or not E164_RE.fullmatch(subscriber):
        return _bad("from", "from must be a +E.164 number.", missing=subscriber is None)
    if not isinstance(text, str) or not text:
        return _bad("text", "text is required.", missing=text is None)
    with sim.state.lock:
        url = body.get("webhook_url") or sim.state.last_webhook_url or sim.default_webhook_url
    if not url:
        return _bad("webhook_url", "No webhook_url given and none seen yet.", missing=True)
    our_number = str(body.get("to") or sim.from_number)
    profile = str(body.get("messaging_profile_id") or sim.messaging_profile_id)
    keyword = payloads.keyword_of(text)
    # Telnyx applies the keyword to the profile's block list on receipt, before telling the webhook.
    if keyword == "STOP":
        sim.state.add_optout(_optout_record(subscriber, profile, our_number, " ".join(text.upper().split())))
    elif keyword == "START":
        sim.state.remove_optout(subscriber, profile)
    now = sim.clock()
    payload = payloads.inbound_payload(
        subscriber=subscriber, to=our_number, text=text, profile_id=profile, webhook_url=url, now=now
    )
    sim.state.keep_payload(payload)  # readable through GET /v2/messages/{id}, as Telnyx keeps inbound messages
    data = payloads.event("message.received", payload, now=now)
    outcome = sim.dispatcher.deliver(data, [url])
    return jsonify({"data": {"event": data, "delivery": outcome, "keyword": keyword}})


@bp.get("/<any(requests, webhooks):log_name>")
def show_log(log_name: str) -> Any:
    """The raw API requests or the webhook deliveries, oldest first."""
    return jsonify({"data": current_sim().state.snapshot(log_name)})


@bp.delete("/<any(requests, webhooks):log_name>")
def clear_log(log_name: str) -> Any:
    """Empty one log."""
    current_sim().state.clear_log(log_name)
    return "", 204


@bp.post("/reset")
def reset() -> Any:
    """Forget outbox, faults, opt-outs and logs (between tests)."""
    current_sim().state.reset()
    return "", 204

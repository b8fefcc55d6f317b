"""The simulator's Telnyx API routes under /v2: the send endpoints (SMS, number pool, WhatsApp), a message's
state and the opt-out list."""

from __future__ import annotations

import hmac
import json
import math
import time
import uuid
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, make_response, request
from jsonschema.exceptions import best_match

from otpservice.core import segments
from otpservice.sandbox import idempotency, payloads
from otpservice.sandbox.simulator import (
    CODE_AUTH,
    CODE_BAD_REQUEST,
    CODE_INVALID_VALUE,
    CODE_MISSING,
    CODE_NOT_FOUND,
    CODE_UNEXPECTED,
    E164_RE,
    Simulator,
    current_sim,
    telnyx_error,
)
from otpservice.sandbox.spec import validator

bp = Blueprint("telnyx_v2", __name__, url_prefix="/v2")

REQUEST_SCHEMAS = {"messages": "CreateMessageRequest", "number_pool": "CreateNumberPoolMessageRequest",
                   "whatsapp": "WhatsappMessage"}
# Telnyx's refusals of a route's sender or profile (the fault modes of the same names): code, title, detail.
ROUTE_REFUSALS = {
    "invalid_from": ("40305", "Invalid 'from' address",
                     "The 'from' address is not a messaging-enabled number or sender ID of this account."),
    "alpha_sender_not_configured": ("40306", "Alpha sender not configured",
                                    "The messaging profile has no alphanumeric sender ID for this destination."),
    "profile_disabled": ("40312", "Messaging profile disabled", "The messaging profile is disabled."),
    "pool_empty": ("40321", "No usable numbers in number pool",
                   "The messaging profile's number pool has no number that can send to this destination."),
}
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 250
RATE_LIMIT = 50  # Telnyx's default account limit, messages per second
RATE_LIMIT_RESET_SECONDS = 2
CODE_ALPHA_SENDER = "40306"  # alphanumeric sender not configured (the service reads it as its own misconfiguration)


@bp.before_request
def record_and_authenticate() -> Any:
    """Keep the raw request for contract tests (never its Authorization header), then check the key."""
    sim = current_sim()
    sim.state.log_request(
        {
            "method": request.method,
            "path": request.path,
            "query_string": request.query_string.decode("utf-8", "replace"),
            "body": request.get_data(cache=True).decode("utf-8", "replace"),
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "received_at": payloads.iso(sim.clock()),
        }
    )
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), sim.api_key.encode()):
        return auth_failed()
    return None


def auth_failed() -> Any:
    """Telnyx's 401."""
    return telnyx_error(
        401, CODE_AUTH, "Authentication failed", "The API key provided is missing, malformed or not valid."
    )


def opted_out(from_: str, to: str) -> Any:
    """Telnyx's answer to a send to a number that texted STOP."""
    return telnyx_error(
        409,
        "40300",
        "Blocked due to STOP message",
        f"Messages cannot be sent from '{from_}' to '{to}' due to an existing block rule.",
        pointer="/to",
    )


def invalid_to() -> Any:
    """Telnyx's answer to a destination that is not +E.164."""
    return telnyx_error(
        400,
        "40310",
        "Invalid 'to' address",
        "The 'to' address should be a valid phone number in +E.164 format.",
        pointer="/to",
    )


def route_refused(mode: str, pointer: str = "/from") -> Any:
    """Telnyx's 400 refusing the route's sender or profile."""
    code, title, detail = ROUTE_REFUSALS[mode]
    return telnyx_error(400, code, title, detail, pointer=pointer)


def _schema_error(body: dict[str, Any], endpoint: str) -> Any | None:
    """A 422 naming the first field that breaks the spec's request schema, or None."""
    error = best_match(validator(REQUEST_SCHEMAS[endpoint]).iter_errors(body))
    if error is None:
        return None
    path = "/" + "/".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        pointer = path.rstrip("/") + "/" + missing
        return telnyx_error(
            422,
            CODE_MISSING,
            "Missing required parameter",
            f"The '{missing}' parameter is required.",
            pointer=pointer,
        )
    return telnyx_error(422, CODE_INVALID_VALUE, "Invalid value", error.message, pointer=path)


def _refused_as_telnyx_does(body: dict[str, Any], endpoint: str, text: str) -> Any | None:
    """Telnyx's refusal of a well-formed send it will not carry out, or None.

    `encoding: gsm7` promises GSM-7: a character outside it is refused, not sent as UCS-2 (which `auto` would do).
    An alphanumeric sender ID is a property of a messaging profile: without one it is refused.
    """
    if body.get("encoding") == "gsm7" and (outside := segments.outside_gsm7(text)):
        return telnyx_error(
            400,
            CODE_INVALID_VALUE,
            "Invalid value",
            f"encoding gsm7 cannot carry {''.join(outside)!r}: send it with encoding auto or ucs2.",
            pointer="/text",
        )
    sender = body.get("from") if endpoint == "messages" else None
    if isinstance(sender, str) and payloads.is_alphanumeric_sender(sender) and not body.get("messaging_profile_id"):
        return telnyx_error(
            400,
            CODE_ALPHA_SENDER,
            "Alphanumeric sender ID not configured",
            f"The alphanumeric sender '{sender}' needs a messaging_profile_id with an alphanumeric sender ID.",
            pointer="/messaging_profile_id",
        )
    return None


def _fault_response(sim: Simulator, mode: str, from_: str, to: str) -> Any | None:
    """The answer an armed fault replaces success with, or None for faults that act after the send."""
    if mode == "http_500":
        return telnyx_error(
            500, CODE_UNEXPECTED, "Unexpected error", "An unexpected error occurred (simulated)."
        )
    if mode == "rate_limit":
        reset = int(sim.clock()) + RATE_LIMIT_RESET_SECONDS  # an epoch second, as the x-ratelimit-* family
        return telnyx_error(
            429,
            "10011",
            "Too many requests",
            "Too many requests, please slow down.",
            headers={
                "x-ratelimit-limit": str(RATE_LIMIT),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(reset),
            },
        )
    if mode == "opt_out":
        return opted_out(from_, to)
    if mode == "invalid_to":
        return invalid_to()
    if mode == "auth_failed":
        return auth_failed()
    if mode in ROUTE_REFUSALS:
        return route_refused(mode, "/messaging_profile_id" if mode in ("profile_disabled", "pool_empty") else "/from")
    return None


@bp.post("/messages", defaults={"endpoint": "messages"})
@bp.post("/messages/number_pool", defaults={"endpoint": "number_pool"})
@bp.post("/messages/whatsapp", defaults={"endpoint": "whatsapp"})
def send(endpoint: str) -> Any:
    """A send, under Telnyx's Idempotency-Key rules when the request carries one (sandbox/idempotency.py)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return send_once(endpoint)
    if not idempotency.KEY_RE.fullmatch(key):
        return telnyx_error(422, CODE_INVALID_VALUE, "Invalid value",
                            "Idempotency-Key must be 1-255 letters, digits, '-', '_' or ':'.",
                            parameter="Idempotency-Key")
    sim = current_sim()
    fingerprint = idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
    replay = sim.state.idempotency.begin(key, fingerprint, now=sim.clock())
    if replay is idempotency.MISMATCH:
        return telnyx_error(422, CODE_INVALID_VALUE, "Invalid value",
                            "This Idempotency-Key was used with another request body.",
                            parameter="Idempotency-Key")
    if replay is not None:
        status, payload = replay
        return jsonify(payload), status
    answer = send_once(endpoint)
    response = answer if isinstance(answer, Response) else make_response(answer)
    sim.state.idempotency.finish(key, fingerprint, response.status_code, response.get_json(silent=True),
                                 now=sim.clock())
    return response


def send_once(endpoint: str) -> Any:
    """Send one message: validate as Telnyx does, apply an armed fault, queue it and schedule its webhooks."""
    sim = current_sim()
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return telnyx_error(400, CODE_BAD_REQUEST, "Bad Request", "The request body must be a JSON object.")
    if (schema_error := _schema_error(body, endpoint)) is not None:
        return schema_error
    to = body["to"]
    if not E164_RE.fullmatch(to):
        return invalid_to()
    checked = _whatsapp_message(body) if endpoint == "whatsapp" else _sms(sim, body, endpoint)
    if not isinstance(checked, dict):
        return checked  # Telnyx's refusal of the body
    profile_id = body.get("messaging_profile_id") or sim.messaging_profile_id
    from_ = body["from"] if endpoint != "number_pool" else sim.from_number  # the pool picks the sender

    fault = sim.state.take_fault(to, body.get("from"))
    mode = fault.mode if fault else None
    if mode and (answer := _fault_response(sim, mode, from_, to)) is not None:
        return answer
    if mode == "timeout":
        # Real Telnyx may accept a request whose answer never reaches us: sleep past the client's read
        # timeout, then send anyway, so a test sees what a blind retry would cost.
        time.sleep(fault.sleep if fault.sleep is not None else sim.timeout_sleep)
    elif sim.state.latency:
        time.sleep(sim.state.latency)  # every send answers this late (POST /sim/latency), faults or not
    if sim.state.is_opted_out(to, profile_id):
        return opted_out(from_, to)

    now = sim.clock()
    webhook_url = body.get("webhook_url") or None
    failover_url = body.get("webhook_failover_url") or None
    payload = payloads.outbound_payload(
        message_id=str(uuid.uuid4()),
        to=to,
        from_=from_,
        text=checked["text"],
        profile_id=profile_id,
        encoding=checked["encoding"],
        parts=checked["parts"],
        webhook_url=webhook_url,
        failover_url=failover_url,
        now=now,
    )
    record = {
        "id": payload["id"],
        "to": to,
        "from": from_,
        "messaging_profile_id": profile_id,
        "endpoint": endpoint,
        "text": checked["text"],
        "status": "queued",
        "created_at": payloads.iso(now),
    }
    if endpoint == "whatsapp":
        record["whatsapp_message"] = body["whatsapp_message"]
        payload = payloads.whatsapp_receipt_payload(payload)
    sim.state.record_message(record)
    urls = [u for u in (webhook_url, failover_url) if u]
    # With use_profile_webhooks (the default) the profile's URL is tried after the message's own ones.
    if body.get("use_profile_webhooks", True) and sim.default_webhook_url not in (None, *urls):
        urls.append(sim.default_webhook_url)
    if webhook_url:
        with sim.state.lock:
            sim.state.last_webhook_url = webhook_url
    final = "delivery_failed" if mode == "delivery_failed" else "delivered"
    sim.dispatcher.delivery_reports(payload, [] if mode == "no_webhook" else urls, final)
    if endpoint == "whatsapp":
        return jsonify(payloads.whatsapp_response(payload, body["whatsapp_message"], now=now))
    return jsonify({"data": payload})


def _sms(sim: Simulator, body: dict[str, Any], endpoint: str) -> Any:
    """The text of an SMS send with its encoding and parts, or Telnyx's refusal."""
    if endpoint == "messages" and not body.get("from"):
        return telnyx_error(
            422,
            CODE_MISSING,
            "Missing required parameter",
            "The 'from' parameter is required.",
            pointer="/from",
        )
    text = body.get("text") or ""
    if not text and not body.get("media_urls"):
        return telnyx_error(
            422,
            CODE_MISSING,
            "Missing required parameter",
            "The 'text' parameter is required for SMS.",
            pointer="/text",
        )
    if (refusal := _refused_as_telnyx_does(body, endpoint, text)) is not None:
        return refusal
    encoding, parts = payloads.encoding_and_parts(text, body.get("encoding", "auto"))
    if parts > payloads.MAX_PARTS:
        return telnyx_error(
            422,
            CODE_INVALID_VALUE,
            "Invalid value",
            f"The text needs {parts} parts; at most {payloads.MAX_PARTS} are allowed.",
            pointer="/text",
        )
    return {"text": text, "encoding": encoding, "parts": parts}


@bp.get("/messages/<message_id>")
def retrieve(message_id: str) -> Any:
    """One message as it stands now (queued, sent, then delivered or failed), outbound or inbound."""
    payload = current_sim().state.payload(message_id)
    if payload is None:
        return telnyx_error(
            404, CODE_NOT_FOUND, "Resource not found", f"No message with id '{message_id}'.", parameter="id"
        )
    return jsonify({"data": payload})


def _whatsapp_message(body: dict[str, Any]) -> Any:
    """What the recipient reads of a WhatsApp send (an authentication template: its preset text with the code),
    or Telnyx's refusal."""
    if not E164_RE.fullmatch(body["from"]):
        return route_refused("invalid_from", "/from")
    text = payloads.whatsapp_text(body["whatsapp_message"])
    if text is None:
        return telnyx_error(
            422,
            CODE_MISSING,
            "Missing required parameter",
            "A template needs its name (or template_id) and the code as its body's text parameter.",
            pointer="/whatsapp_message/template",
        )
    return {"text": text, "encoding": "utf-8", "parts": 1}


def page_param(name: str, default: int, upper: int | None) -> int:
    """One page[...] query parameter as an int in range; ValueError otherwise."""
    raw = request.args.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = 0
    if value < 1 or (upper is not None and value > upper):
        raise ValueError(name)
    return value


def _timestamp_param(name: str) -> float | None:
    """A created_at[...] filter as epoch seconds; ValueError when it is not ISO-8601."""
    raw = request.args.get(name)
    return None if raw is None else datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


@bp.get("/messaging_optouts")
def list_optouts() -> Any:
    """The opt-out list, filtered and paged as Telnyx does."""
    sim = current_sim()
    try:
        number = page_param("page[number]", 1, None)
        size = page_param("page[size]", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    except ValueError as exc:
        name = str(exc)
        return telnyx_error(
            400,
            CODE_INVALID_VALUE,
            "Invalid value",
            f"{name} must be an integer (page[size]: 1-{MAX_PAGE_SIZE}).",
            parameter=name,
        )
    try:
        gte, lte = _timestamp_param("created_at[gte]"), _timestamp_param("created_at[lte]")
    except ValueError:
        return telnyx_error(
            400,
            CODE_INVALID_VALUE,
            "Invalid value",
            "created_at filters must be ISO-8601.",
            parameter="created_at",
        )
    profile, sender = request.args.get("filter[messaging_profile_id]"), request.args.get("filter[from]")
    items = [
        r
        for r in sim.state.optout_list()
        if (profile is None or r["messaging_profile_id"] == profile)
        and (sender is None or r["from"] == sender)
        and (gte is None or r["_ts"] >= gte)
        and (lte is None or r["_ts"] <= lte)
    ]
    page = items[(number - 1) * size : number * size]
    return jsonify(
        {
            "data": [{k: v for k, v in r.items() if not k.startswith("_")} for r in page],
            "meta": {
                "page_number": number,
                "page_size": size,
                "total_pages": max(1, math.ceil(len(items) / size)),
                "total_results": len(items),
            },
        }
    )

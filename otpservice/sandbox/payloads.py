"""Message and webhook bodies shaped as Telnyx's OutboundMessagePayload, InboundMessagePayload and events."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from otpservice.core import segments

ORGANIZATION_ID = "5f2b7f3e-6a8c-4d0e-9b1a-2c3d4e5f6a7b"
COST_PER_PART = "0.0040"
CURRENCY = "USD"
MAX_PARTS = 10
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})
DELIVERY_FAILED_ERROR = {
    "code": "40008",
    "title": "Undeliverable",
    "detail": "The message could not be delivered to the handset (simulated).",
}


def iso(ts: float) -> str:
    """An RFC 3339 UTC timestamp with milliseconds, as Telnyx writes occurred_at."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def spaced(ts: float) -> str:
    """Telnyx's space-separated timestamp style of opt-out records: 2025-04-28 12:00:38.631252+00:00."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(sep=" ", timespec="microseconds")


def keyword_of(text: str) -> str | None:
    """STOP, START or HELP when `text` is one of their keywords (case and spacing ignored), else None."""
    word = " ".join(text.upper().split())
    if word in STOP_KEYWORDS:
        return "STOP"
    if word in START_KEYWORDS:
        return "START"
    if word in HELP_KEYWORDS:
        return "HELP"
    return None


def is_alphanumeric_sender(sender: str) -> bool:
    """An alphanumeric sender ID ("Acme"), as opposed to a +E.164 number or a short code (digits only)."""
    return any(ch.isalpha() for ch in sender)


def encoding_and_parts(text: str, requested: str = "auto") -> tuple[str, int]:
    """The encoding Telnyx would pick and the number of SMS parts the text needs (parts of 153 septets or 67
    units once it is longer than one segment)."""
    cost = segments.cost(text, requested)
    return cost.encoding, cost.parts


def outbound_payload(
    *,
    message_id: str,
    to: str,
    from_: str,
    text: str,
    profile_id: str,
    encoding: str,
    parts: int,
    webhook_url: str | None,
    failover_url: str | None,
    now: float,
) -> dict[str, Any]:
    """A fresh outbound message as the send endpoints return it (status queued)."""
    return {
        "cc": [],
        "completed_at": None,
        "cost": {"amount": str(round(float(COST_PER_PART) * parts, 4)), "currency": CURRENCY},
        "cost_breakdown": None,
        "direction": "outbound",
        "encoding": encoding,
        "errors": [],
        "from": {"carrier": "Telnyx", "line_type": "VoIP", "phone_number": from_},
        "id": message_id,
        "media": [],
        "messaging_profile_id": profile_id,
        "num_chars": len(text),
        "organization_id": ORGANIZATION_ID,
        "parts": parts,
        "received_at": iso(now),
        "record_type": "message",
        "sent_at": None,
        "smart_encoding_applied": False,
        "subject": None,
        "tags": [],
        "tcr_campaign_billable": False,
        "tcr_campaign_id": None,
        "tcr_campaign_registered": None,
        "text": text,
        "to": [
            {"carrier": "SIMULATED MOBILE", "line_type": "Wireless", "phone_number": to, "status": "queued"}
        ],
        "type": "SMS",
        "valid_until": iso(now + 4 * 3600),  # Telnyx keeps a queued message up to 4 h
        "wait_seconds": 0.0,
        "webhook_failover_url": failover_url,
        "webhook_url": webhook_url,
    }


def advance(payload: dict[str, Any], status: str, *, now: float) -> dict[str, Any]:
    """A copy of an outbound payload moved to `status` (sent, delivered or delivery_failed)."""
    updated = {**payload, "to": [{**payload["to"][0], "status": status}]}
    updated["sent_at"] = payload["sent_at"] or iso(now)
    if status != "sent":
        updated["completed_at"] = iso(now)
    if status == "delivery_failed":
        updated["errors"] = [dict(DELIVERY_FAILED_ERROR)]
    return updated


def inbound_payload(
    *, subscriber: str, to: str, text: str, profile_id: str, webhook_url: str | None, now: float
) -> dict[str, Any]:
    """A message.received payload from `subscriber` to our number `to`."""
    encoding, parts = encoding_and_parts(text)
    payload: dict[str, Any] = {
        "cc": [],
        "completed_at": None,
        "cost": None,
        "cost_breakdown": None,
        "direction": "inbound",
        "encoding": encoding,
        "errors": [],
        "from": {"carrier": "SIMULATED MOBILE", "line_type": "Wireless", "phone_number": subscriber},
        "id": str(uuid.uuid4()),
        "media": [],
        "messaging_profile_id": profile_id,
        "num_chars": len(text),
        "organization_id": ORGANIZATION_ID,
        "parts": min(parts, MAX_PARTS),
        "received_at": iso(now),
        "record_type": "message",
        "sent_at": None,
        "subject": None,
        "tags": [],
        "tcr_campaign_billable": False,
        "tcr_campaign_id": None,
        "tcr_campaign_registered": None,
        "text": text,
        "to": [{"carrier": "Telnyx", "line_type": "VoIP", "phone_number": to, "status": "webhook_delivered"}],
        "type": "SMS",
        "valid_until": None,
        "webhook_failover_url": None,
        "webhook_url": webhook_url,
    }
    keyword = keyword_of(text)
    if keyword:
        # Not in the OpenAPI subset, but Telnyx documents it on inbound keyword messages.
        payload["autoresponse_type"] = keyword
    return payload


def event(event_type: str, payload: dict[str, Any], *, now: float) -> dict[str, Any]:
    """The `data` part of a webhook envelope; `meta` is added per delivery attempt."""
    return {
        "event_type": event_type,
        "id": str(uuid.uuid4()),
        "occurred_at": iso(now),
        "payload": payload,
        "record_type": "event",
    }


# -- WhatsApp -----------------------------------------------------------------------------------------------
# The preset text of Meta's authentication templates (English), which the recipient reads with the code.
AUTHENTICATION_TEXT = "{code} is your verification code."


def whatsapp_text(content: dict[str, Any]) -> str | None:
    """What the recipient reads of a WhatsApp message: a template's preset text with its body's first text
    parameter (the code of an authentication template), a text message's body; None for a template without its
    name or code."""
    kind = content.get("type") or ("template" if "template" in content else "text")
    if kind == "text":
        return str((content.get("text") or {}).get("body") or "") or None
    if kind != "template":
        return f"[{kind} message]"
    template = content.get("template") or {}
    if not (template.get("name") or template.get("template_id")):
        return None
    body = next((c for c in template.get("components") or [] if c.get("type") == "body"), {})
    code = next((p.get("text") for p in body.get("parameters") or [] if p.get("type") == "text"), None)
    return AUTHENTICATION_TEXT.format(code=code) if code else None


def whatsapp_receipt_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The outbound payload a WhatsApp message's delivery receipts carry: the SMS one without the SMS-only facts
    (type, parts, encoding) or the text, which is the template's and holds the code."""
    dropped = {"type", "parts", "encoding", "text", "num_chars", "smart_encoding_applied", "tcr_campaign_billable",
               "tcr_campaign_id", "tcr_campaign_registered"}
    return {key: value for key, value in payload.items() if key not in dropped}


def whatsapp_response(payload: dict[str, Any], content: dict[str, Any], *, now: float) -> dict[str, Any]:
    """POST /messages/whatsapp's answer (WhatsappResponse) for the message of `payload`."""
    return {
        "data": {
            "id": payload["id"],
            "record_type": "message",
            "direction": "outbound",
            "type": "WHATSAPP",
            "encoding": "utf-8",
            "from": {"phone_number": payload["from"]["phone_number"], "carrier": "Telnyx", "line_type": "VoIP"},
            "to": [dict(recipient) for recipient in payload["to"]],
            "body": content,
            "messaging_profile_id": payload["messaging_profile_id"],
            "organization_id": payload["organization_id"],
            "received_at": iso(now),
            "wait_seconds": 0.0,
        }
    }

"""Telnyx's webhooks to provider-neutral events: verify the Ed25519 signature over the raw bytes, then read
the envelope (deliveryUpdate: message.sent / message.finalized; inboundMessage: message.received)."""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from otpservice.errors import InvalidPayload
from otpservice.sending.base import DeliveryReceipt, InboundMessage, OtherEvent, Webhook
from otpservice.sending.telnyx.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, \
    load_verify_key, verify_webhook

log = logging.getLogger(__name__)

DELIVERY_EVENTS = frozenset({"message.sent", "message.finalized"})
INBOUND_EVENT = "message.received"
EVENT_ID_MAX = 128
ERROR_FIELD_MAX = 256


def cost_of(data: object) -> tuple[str, str] | None:
    """A message's `cost` ({amount, currency}; null until Telnyx rates it) as (amount, currency), or None."""
    cost = data.get("cost") if isinstance(data, dict) else None
    if isinstance(cost, dict) and isinstance(cost.get("amount"), (str, int, float)) \
            and isinstance(cost.get("currency"), str):
        return str(cost["amount"]), cost["currency"]
    return None


def carrier_errors(raw: object) -> list[dict[str, str]]:
    """The `code` and `title` of each error Telnyx reported (bounded: it is stored on the record)."""
    if not isinstance(raw, list):
        return []
    return [{"code": str(e.get("code", ""))[:ERROR_FIELD_MAX], "title": str(e.get("title", ""))[:ERROR_FIELD_MAX]}
            for e in raw[:10] if isinstance(e, dict)]


def parse_envelope(body: bytes) -> tuple[str, str | None, dict[str, Any]]:
    """(event type, event id, payload) of a verified body; InvalidPayload unless it is a JSON object with
    `data.event_type`."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload("The webhook body is not valid JSON.") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("event_type"), str) or not data["event_type"]:
        raise InvalidPayload("The webhook body has no data.event_type.")
    event_id = data.get("id")
    valid_id = isinstance(event_id, str) and 0 < len(event_id) <= EVENT_ID_MAX
    payload = data.get("payload")
    return data["event_type"], event_id if valid_id else None, payload if isinstance(payload, dict) else {}


class TelnyxWebhooks:
    """The WebhookDecoder of Telnyx (sending/base.py)."""

    header_names = (SIGNATURE_HEADER, TIMESTAMP_HEADER)

    def __init__(self, public_key: str) -> None:
        # Without a usable key every webhook is refused (401), counted as no_key (unset) or bad_key (not a
        # base64 32-byte Ed25519 key); production refuses to start without one.
        self.verify_key, self.key_problem = None, "no_key" if not public_key.strip() else "bad_key"
        try:
            self.verify_key = load_verify_key(public_key)
        except ValueError:
            log.warning("OTP_TELNYX_PUBLIC_KEY is %s: every webhook will be refused",
                        "unset" if self.key_problem == "no_key" else "not a base64 Ed25519 public key")

    def decode(self, headers: Mapping[str, str], body: bytes, *, now: float) -> Webhook:
        """Verify the raw body's signature before parsing anything, then read the event."""
        if self.verify_key is None:
            raise SignatureError(self.key_problem)
        verify_webhook(self.verify_key, headers, body, now=now)
        event_type, event_id, payload = parse_envelope(body)
        if event_type in DELIVERY_EVENTS:
            recipients = payload.get("to")
            first = recipients[0] if isinstance(recipients, list) and recipients else {}
            first = first if isinstance(first, dict) else {}
            return Webhook(event_type, DeliveryReceipt(
                event_id=event_id, message_id=payload.get("id"), recipient=first.get("phone_number"),
                status=first.get("status"), errors=carrier_errors(payload.get("errors")), cost=cost_of(payload)))
        if event_type == INBOUND_EVENT:
            sender = payload.get("from")
            return Webhook(event_type, InboundMessage(
                event_id=event_id, sender=sender.get("phone_number") if isinstance(sender, dict) else None,
                text=payload.get("text"), provider_keyword=payload.get("autoresponse_type"),
                messaging_profile_id=payload.get("messaging_profile_id")))
        return Webhook(event_type, OtherEvent(event_id=event_id))

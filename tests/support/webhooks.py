"""Helpers for webhook tests: Telnyx-shaped events, signed with a real Ed25519 key, posted to the app."""
from __future__ import annotations

import json
import uuid

from otpservice.sandbox import payloads
from otpservice.sending.telnyx.signatures import sign_webhook

PATH = "/webhooks/telnyx"
STATUS_EVENT = {"sent": "message.sent", "sending": "message.sent", "queued": "message.sent"}


def encode(document: dict) -> bytes:
    """Compact JSON bytes, as Telnyx sends them."""
    return json.dumps(document, separators=(",", ":")).encode()


def envelope(event_type: str, payload: dict, *, event_id: str | None = None, now: float = 0.0) -> dict:
    """A webhook body around `payload` (the simulator's own event builder)."""
    data = payloads.event(event_type, payload, now=now)
    if event_id:
        data["id"] = event_id
    return {"data": data, "meta": {"attempt": 1, "delivered_to": "http://localhost" + PATH}}


def delivery_event(message_id: str, status: str, *, to: str, errors: list | None = None, event_id: str | None = None,
                   now: float = 0.0) -> dict:
    """message.sent / message.finalized for one of our messages to `to` (the recipient), moved to `status`."""
    payload = {"id": message_id, "record_type": "message", "direction": "outbound", "type": "SMS",
               "to": [{"phone_number": to, "status": status, "carrier": "T-MOBILE USA, INC."}],
               "errors": errors or []}
    return envelope(STATUS_EVENT.get(status, "message.finalized"), payload, event_id=event_id, now=now)


def inbound_event(sender: str, text: str, *, autoresponse_type: str | None = None,
                  event_id: str | None = None) -> dict:
    """message.received from `sender` (the simulator's own payload builder)."""
    payload = payloads.inbound_payload(subscriber=sender, to="+13125550100", text=text,
                                       profile_id="4001767e-ce0f-4cae-9d5f-0d5e636e7809", webhook_url=None, now=0)
    payload.pop("autoresponse_type", None)
    if autoresponse_type:
        payload["autoresponse_type"] = autoresponse_type
    return envelope("message.received", payload, event_id=event_id or str(uuid.uuid4()))


def post_signed(client, body: dict | bytes, key, *, timestamp: float, headers: dict | None = None):
    """POST `body` signed at `timestamp` with `key`, exactly as the signed bytes."""
    raw = body if isinstance(body, bytes) else encode(body)
    signed = sign_webhook(key, raw, timestamp=int(timestamp))
    return client.post(PATH, data=raw, headers={**signed, "Content-Type": "application/json", **(headers or {})})

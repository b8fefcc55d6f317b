"""POST /webhooks/telnyx: Telnyx's delivery updates and inbound messages, authenticated by Ed25519 alone."""
from __future__ import annotations

from flask import Blueprint

from otpservice.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER
from otpservice.web import context, json_response, raw_body

bp = Blueprint("webhooks", __name__)
# The WSGI environ names of the two signature headers. A header sent twice reaches the environ as one
# comma-joined value, which is no valid timestamp or base64 signature, so it is refused like a bad one.
ENVIRON_NAMES = {name: "HTTP_" + name.upper().replace("-", "_") for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER)}


@bp.post("/webhooks/telnyx")
def telnyx_webhook():
    """Hand the raw bytes and the signature headers to the delivery service (it verifies before parsing)."""
    environ, extensions = context()  # one context-local lookup (see web.context)
    # Only the two headers the signature needs: scanning every header per webhook costs more than the lookup.
    headers = {name: environ[key] for name, key in ENVIRON_NAMES.items() if key in environ}
    return json_response(extensions["otp.delivery"].receive(headers, raw_body(environ)))


# -- the contract of this route, assembled into /openapi.json --------------------------------------------
from otpservice.openapi import error_responses, json_content, ref

SIGNATURE_HEADERS = [
    {"name": "telnyx-signature-ed25519", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Base64 of the 64-byte Ed25519 signature of `telnyx-timestamp|raw body`."},
    {"name": "telnyx-timestamp", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Unix seconds; more than 300 s from the service's clock is refused."},
]

OPENAPI_SCHEMAS = {
    "TelnyxEvent": {
        "type": "object", "required": ["data"],
        "description": "Telnyx's webhook envelope (deliveryUpdate: message.sent / message.finalized; "
                       "inboundMessage: message.received). Other event types are acknowledged and ignored.",
        "properties": {
            "data": {"type": "object", "required": ["event_type"], "properties": {
                "event_type": {"type": "string"}, "id": {"type": "string"},
                "occurred_at": {"type": "string"}, "payload": {"type": "object"},
                "record_type": {"type": "string"}}},
            "meta": {"type": "object"},
        },
    },
    "WebhookResult": {
        "type": "object", "required": ["result", "event_type"],
        "properties": {
            "result": {"type": "string", "enum": ["updated", "unchanged", "duplicate", "unknown_message", "ignored",
                                                   "opted_out", "opted_in"],
                       "description": "What the event did: `updated` a send's status; `unchanged` (it would "
                                      "have moved a status backwards); `duplicate` event id; "
                                      "`unknown_message`: no retained send to the recipient "
                                      "(`to[0].phone_number`) carried this message id; `ignored` event "
                                      "type, status or text; an inbound keyword `opted_out` or `opted_in` the sender."},
            "event_type": {"type": "string"},
        },
    },
}

OPENAPI_PATHS = {
    "/webhooks/telnyx": {"post": {
        "summary": "Telnyx webhooks: delivery updates and inbound STOP/START",
        "operationId": "telnyxWebhook",
        "security": [],
        "description": "Authenticated by the Ed25519 signature alone, checked over the raw body before it is "
                       "parsed. Statuses only move forward (queued < sending < sent < terminal; a terminal "
                       "status is final); a duplicate event id, an unknown message id or an unknown event "
                       "type answers 200 and changes nothing.",
        "parameters": SIGNATURE_HEADERS,
        "requestBody": {"required": True, "content": json_content(ref("TelnyxEvent"))},
        "responses": {
            "200": {"description": "Handled or acknowledged.", "content": json_content(ref("WebhookResult"))},
            "400": {"description": "`invalid_payload`: signed, but not a Telnyx event (bad JSON, no "
                                   "`data.event_type`).", "content": json_content(ref("Error"))},
            "401": {"description": "`invalid_signature`: missing or malformed header, wrong key, tampered "
                                   "body, or a timestamp more than 300 s away. Nothing changed.",
                    "content": json_content(ref("Error"))},
            "503": {"description": "`store_unavailable`: Redis cannot answer, so Telnyx retries.",
                    "content": json_content(ref("Error"))},
            **error_responses(413, 500),
        },
    }},
}

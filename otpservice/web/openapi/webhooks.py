from otpservice import vocabulary
from otpservice.sending.telnyx.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE_SECONDS
from otpservice.web.openapi.common import enum, error_responses, json_content, ref

SIGNATURE_HEADERS = [
    {"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
     "description": "Base64 of the 64-byte Ed25519 signature of `telnyx-timestamp|raw body`."},
    {"name": TIMESTAMP_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
     "description": f"Unix seconds; more than {TOLERANCE_SECONDS} s from the service's clock is refused."},
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
            "result": {**enum(vocabulary.WEBHOOK_RESULTS),
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

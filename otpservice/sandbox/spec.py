"""What the simulator accepts on Telnyx's send endpoints, as JSON Schema, and Telnyx's error body shape.

Written here from the facts of Telnyx's request bodies (field names, types, which are required); the
contract tests check the simulator and the client against Telnyx's own published spec in ../shared.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

ENCODINGS = ["auto", "gsm7", "ucs2"]
_COMMON: dict[str, Any] = {
    "to": {"type": "string"},
    "text": {"type": "string"},
    "messaging_profile_id": {"type": "string"},
    "webhook_url": {"type": "string"},
    "webhook_failover_url": {"type": "string"},
    "use_profile_webhooks": {"type": "boolean"},
    "encoding": {"enum": ENCODINGS},
    "type": {"enum": ["SMS", "MMS"]},
    "subject": {"type": "string"},
    "media_urls": {"type": "array", "items": {"type": "string"}},
    "auto_detect": {"type": "boolean"},
}
_WHATSAPP_PARAMETER = {"type": "object", "properties": {"type": {"type": "string"}, "text": {"type": "string"}}}
_WHATSAPP_TEMPLATE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "template_id": {"type": "string"},
        "language": {"type": "object", "required": ["code"],
                     "properties": {"code": {"type": "string"}, "policy": {"type": "string"}}},
        "components": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"enum": ["header", "body", "button"]}, "sub_type": {"enum": ["quick_reply", "url"]},
            "index": {"type": "integer"}, "parameters": {"type": "array", "items": _WHATSAPP_PARAMETER}}}},
    },
}
WHATSAPP_TYPES = ["audio", "document", "image", "sticker", "video", "interactive", "location", "template",
                  "reaction", "contacts", "text"]
SCHEMAS: dict[str, dict[str, Any]] = {
    "CreateMessageRequest": {
        "type": "object", "required": ["to"],
        "properties": {**_COMMON, "from": {"type": "string"}, "send_at": {"type": ["string", "null"]}},
    },
    "CreateNumberPoolMessageRequest": {
        "type": "object", "required": ["to", "messaging_profile_id"], "properties": dict(_COMMON),
    },
    "WhatsappMessage": {
        "type": "object", "required": ["from", "to", "whatsapp_message"],
        "properties": {
            "from": {"type": "string"}, "to": {"type": "string"}, "type": {"enum": ["WHATSAPP"]},
            "messaging_profile_id": {"type": "string"}, "webhook_url": {"type": "string"},
            "whatsapp_message": {"type": "object", "properties": {
                "type": {"enum": WHATSAPP_TYPES}, "template": _WHATSAPP_TEMPLATE,
                "text": {"type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}},
                "biz_opaque_callback_data": {"type": "string"}}},
        },
    },
}


@lru_cache(maxsize=None)
def validator(schema_name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for one of the request bodies above."""
    return Draft202012Validator(SCHEMAS[schema_name])


def error_body(code: str, title: str, detail: str = "", *, pointer: str | None = None,
               parameter: str | None = None) -> dict[str, Any]:
    """Telnyx's `{"errors": [...]}` body with one error."""
    error: dict[str, Any] = {"code": code, "title": title}
    if detail:
        error["detail"] = detail
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    elif parameter is not None:
        error["source"] = {"parameter": parameter}
    error["meta"] = {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"}
    return {"errors": [error]}

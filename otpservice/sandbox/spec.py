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
SCHEMAS: dict[str, dict[str, Any]] = {
    "CreateMessageRequest": {
        "type": "object", "required": ["to"],
        "properties": {**_COMMON, "from": {"type": "string"}, "send_at": {"type": ["string", "null"]}},
    },
    "CreateNumberPoolMessageRequest": {
        "type": "object", "required": ["to", "messaging_profile_id"], "properties": dict(_COMMON),
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

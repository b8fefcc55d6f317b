"""What every part of the OpenAPI document shares: the error schema, common responses, and small builders."""
from __future__ import annotations

from typing import Any

from otpservice import errors, vocabulary


def ref(name: str) -> dict[str, str]:
    """A `$ref` to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def enum(values) -> dict[str, Any]:
    """A string schema of a closed set from otpservice.vocabulary."""
    return {"type": "string", "enum": list(values)}


BASE_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": enum(errors.ERROR_CODES),
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The request field at fault, when there is one."},
                "retry_after": {"type": "integer", "minimum": 1, "description": "Seconds to wait (429)."},
                "limit": {**enum(vocabulary.LIMIT_POLICIES),
                          "description": "The policy that tripped (429 rate_limited)."},
                "reason": {"description": "What refused the send (403 verification_blocked: a fraud-guard block "
                                          "record; 403 spend_limit_reached: the cap).",
                           "oneOf": [ref("FraudBlock"), ref("SpendCap")]},
            }}},
    },
    "FraudBlock": {
        "type": "object", "required": ["scope", "rule", "mode", "figures", "since", "until"],
        "properties": {
            "scope": {"type": "string", "description": "`<kind>:<value>`, kind one of "
                      + ", ".join(vocabulary.FRAUD_SCOPES) + " (prefix:+3712000, country:LV, route:primary, "
                      "device:<digest>, user:<digest>)."},
            "rule": enum(vocabulary.FRAUD_RULES),
            "mode": {**enum(vocabulary.FRAUD_MODES[:2]), "description": "The mode the block was recorded in."},
            "figures": {"type": "object", "description": "What the rule saw: for a conversion rule sent, "
                        "approved, failed, conversion, threshold, min_sends, window_seconds (and for a country, "
                        "the request's prefix and whether it is proven); for a velocity rule the signal and its "
                        "limit."},
            "since": ref("Timestamp"), "until": ref("Timestamp")}},
    "SpendCap": {
        "type": "object", "required": ["scope", "limit", "spent", "currency", "resets_at"],
        "properties": {"scope": {"type": "string", "description": "spend:total or spend:<region>."},
                       "limit": {"type": "number"}, "spent": {"type": "number"},
                       "currency": {"type": "string"}, "resets_at": ref("Timestamp")}},
    "PhoneNumber": {"type": "string", "maxLength": 64,
                    "description": "E.164 (+13125550123), or national format of OTP_DEFAULT_REGION when set.",
                    "examples": ["+13125550123"]},
    "Purpose": {"type": "string", "pattern": "^[a-z0-9_-]{1,32}$", "default": "login"},
    "Timestamp": {"type": "string", "format": "date-time", "examples": ["2026-11-23T12:00:00Z"]},
}

COMMON_RESPONSES: dict[str, Any] = {
    name: {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for name, text in {
        "BadRequest": "Malformed JSON, a missing or mistyped field (`invalid_request`). Nothing changed.",
        "Unauthorized": "Missing or wrong bearer key (`unauthorized`). Nothing happened.",
        "Forbidden": "The key may not use this route (`forbidden`).",
        "NotFound": "Unknown route or resource.",
        "MethodNotAllowed": "This method is not allowed on this route (`method_not_allowed`).",
        "PayloadTooLarge": "The body is over 64 KiB (`payload_too_large`).",
        "UnsupportedMediaType": "The body is not `application/json` (`unsupported_media_type`). Nothing changed.",
        "Unprocessable": "A well-formed request the service cannot act on (see the error code).",
        "TooManyRequests": "A limit tripped; `Retry-After` says when to try again.",
        "Unavailable": "A dependency cannot answer (`store_unavailable`, `provider_unavailable`); retry later.",
        "InternalError": "An unexpected error (`internal_error`); never a traceback.",
    }.items()
}

def error_responses(*codes: int) -> dict[str, Any]:
    """The shared error responses for the given status codes."""
    names = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
             413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "Unprocessable", 429: "TooManyRequests",
             500: "InternalError", 503: "Unavailable"}
    return {str(code): {"$ref": f"#/components/responses/{names[code]}"} for code in codes}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}

"""The OpenAPI 3.1 document served at /openapi.json, assembled from the routes' own descriptions.

Each blueprint module declares `OPENAPI_PATHS` (and optionally `OPENAPI_SCHEMAS`) beside its views, so the
document and the code change together; tests validate real responses against the assembled document.
"""
from __future__ import annotations

import copy
import importlib
from typing import Any

from flask import Blueprint, current_app

from otpservice.web import json_response

bp = Blueprint("openapi", __name__)

ERROR_CODES = [
    "invalid_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "payload_too_large",
    "unsupported_media_type", "invalid_phone_number", "country_not_allowed", "unsupported_number_type",
    "opted_out", "idempotency_key_reused", "idempotency_in_progress", "verification_not_found",
    "max_attempts_reached", "rate_limited", "provider_error", "provider_unavailable", "store_unavailable",
    "invalid_signature", "invalid_payload", "internal_error", "totp_not_found", "totp_exists",
]

BASE_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": ERROR_CODES},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "The request field at fault, when there is one."},
                "retry_after": {"type": "integer", "minimum": 1, "description": "Seconds to wait (429)."},
                "limit": {"type": "string", "description": "The policy that tripped (429 rate_limited)."},
            }}},
    },
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
        "Unprocessable": "A well-formed request the service cannot act on (see the error code).",
        "TooManyRequests": "A limit tripped; `Retry-After` says when to try again.",
        "Unavailable": "A dependency cannot answer (`store_unavailable`, `provider_unavailable`); retry later.",
        "InternalError": "An unexpected error (`internal_error`); never a traceback.",
    }.items()
}

ROUTE_MODULES = ("otpservice.api", "otpservice.health", "otpservice.webhooks", "otpservice.admin",
                 "otpservice.totp_api", "otpservice.metrics")


def build_document(version: str) -> dict[str, Any]:
    """Assemble the document from every route module present."""
    paths: dict[str, Any] = {}
    schemas = copy.deepcopy(BASE_SCHEMAS)
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        paths.update(copy.deepcopy(getattr(module, "OPENAPI_PATHS", {})))
        schemas.update(copy.deepcopy(getattr(module, "OPENAPI_SCHEMAS", {})))
    paths["/openapi.json"] = {"get": {"summary": "This document", "operationId": "openapi",
                                      "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1 JSON",
                                                            "content": {"application/json": {"schema": {
                                                                "type": "object"}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "otpservice", "version": version,
                 "description": "Self-hosted phone verification: one-time codes texted through Telnyx, "
                                "verified against Redis, with every code's delivery visible."},
        "servers": [{"url": "/"}],
        "security": [{"clientKey": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "clientKey": {"type": "http", "scheme": "bearer", "description": "A key from OTP_API_KEYS."},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "OTP_ADMIN_TOKEN."},
            },
            "schemas": schemas,
            "responses": copy.deepcopy(COMMON_RESPONSES),
        },
    }


def ref(name: str) -> dict[str, str]:
    """A `$ref` to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def error_responses(*codes: int) -> dict[str, Any]:
    """The shared error responses for the given status codes."""
    names = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
             413: "PayloadTooLarge", 422: "Unprocessable", 429: "TooManyRequests", 500: "InternalError",
             503: "Unavailable"}
    return {str(code): {"$ref": f"#/components/responses/{names[code]}"} for code in codes}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


@bp.get("/openapi.json")
def openapi_json():
    from otpservice import __version__
    cache = current_app.extensions.setdefault("otp.openapi", build_document(__version__))
    return json_response(cache)

"""Liveness and readiness: /healthz says the process runs, /readyz that it can serve."""
from __future__ import annotations

from flask import Blueprint, current_app

from otpservice.errors import StoreUnavailable
from otpservice.web import json_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 when Redis answers and the configuration is complete; 503 naming the failing check."""
    settings = current_app.extensions["otp.settings"]
    checks = {}
    try:
        current_app.extensions["otp.store"].ping()
        checks["redis"] = "ok"
    except StoreUnavailable:
        checks["redis"] = "unavailable"
    missing = settings.missing_secrets() if settings.production else []
    checks["config"] = "ok" if not missing else "missing: " + ", ".join(missing)
    ok = all(value == "ok" for value in checks.values())
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)


from otpservice.openapi import json_content  # noqa: E402

OPENAPI_PATHS = {
    "/healthz": {"get": {"summary": "The process runs", "operationId": "healthz", "security": [],
                         "responses": {"200": {"description": "ok", "content": json_content({
                             "type": "object", "required": ["status"],
                             "properties": {"status": {"const": "ok"}}})}}}},
    "/readyz": {"get": {"summary": "Redis answers and the configuration is complete", "operationId": "readyz",
                        "security": [],
                        "responses": {code: {"description": text, "content": json_content({
                            "type": "object", "required": ["status", "checks"],
                            "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                                           "checks": {"type": "object",
                                                      "additionalProperties": {"type": "string"}}}})}
                            for code, text in (("200", "ready"), ("503", "a check failed: see `checks`"))}}},
}

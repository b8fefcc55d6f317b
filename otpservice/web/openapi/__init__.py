"""The OpenAPI 3.1 document served at /openapi.json, assembled from one module per view module.

Each module here declares `OPENAPI_PATHS` (and optionally `OPENAPI_SCHEMAS`) for the routes of its namesake in
web/, with enums read from otpservice.vocabulary and the error codes from otpservice.errors, so the document
and the code change together; tests validate real responses against the assembled document.
"""
from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, current_app

from otpservice.web.http import json_response
from otpservice.web.openapi import admin, api, docs, health, metrics, totp, webhooks
from otpservice.web.openapi.common import BASE_SCHEMAS, COMMON_RESPONSES

bp = Blueprint("openapi", __name__)
PARTS = (api, health, webhooks, admin, totp, metrics, docs)


def build_document(version: str, *, totp_enabled: bool = True) -> dict[str, Any]:
    """Assemble the document from every part (the TOTP routes only when they are served)."""
    paths: dict[str, Any] = {}
    schemas = copy.deepcopy(BASE_SCHEMAS)
    for part in PARTS:
        if part is totp and not totp_enabled:
            continue
        paths.update(copy.deepcopy(getattr(part, "OPENAPI_PATHS", {})))
        schemas.update(copy.deepcopy(getattr(part, "OPENAPI_SCHEMAS", {})))
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


@bp.get("/openapi.json")
def openapi_json():
    from otpservice import __version__
    extensions = current_app.extensions
    if "otpservice.openapi" not in extensions:
        extensions["otpservice.openapi"] = build_document(
            __version__, totp_enabled=extensions["otpservice"].totp is not None)
    return json_response(extensions["otpservice.openapi"])

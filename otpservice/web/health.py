"""Liveness and readiness: /healthz says the process runs, /readyz that it can serve."""
from __future__ import annotations

from flask import Blueprint

from otpservice.web.http import json_response, services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """200 when Redis answers and the configuration is complete; 503 naming the failing check."""
    ok, checks = services().readiness.check()
    return json_response({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

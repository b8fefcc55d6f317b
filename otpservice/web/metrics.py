"""GET /metrics: the Prometheus text exposition of every worker (no key: keep it off the public internet)."""
from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST

from otpservice.web.http import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics_view():
    return Response(services().metrics.render(current_app.config["OTP_METRICS_DIR"]),
                    content_type=CONTENT_TYPE_LATEST)

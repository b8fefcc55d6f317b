"""otpservice: self-hosted phone verification. `create_app()` builds the WSGI application."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask

__version__ = "0.1.0"


def create_app(settings=None, *, redis_client=None, sender=None, clock: Callable[[], float] = time.time,
               **overrides: Any) -> Flask:
    """Build the app: settings (environment, then overrides), the services (wiring.py), the blueprints.

    `redis_client`, `sender` and `clock` let tests hand in real collaborators they started themselves.
    """
    from otpservice import wiring
    from otpservice.config import Settings
    from otpservice.observability import metrics
    from otpservice.web import admin, api, docs, health, http, openapi, totp, webhooks
    from otpservice.web import metrics as metrics_view

    settings = settings or Settings.from_env(**overrides)
    process_metrics = metrics.process_metrics()
    services = wiring.build(settings, redis_client=redis_client, sender=sender, clock=clock,
                            metrics=process_metrics)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_body_bytes
    app.config["OTP_METRICS_DIR"] = metrics_dir(services.settings.metrics_dir)
    app.json.sort_keys = False
    app.extensions[http.EXTENSION] = services
    for blueprint in (api.bp, health.bp, admin.bp, openapi.bp, webhooks.bp, metrics_view.bp, docs.bp):
        app.register_blueprint(blueprint)
    if services.totp is not None:
        app.register_blueprint(totp.bp)
    http.register_error_handlers(app)
    for job in services.background():
        app.wsgi_app = job.middleware(app.wsgi_app)
    app.wsgi_app = http.RequestEnvelope(app.wsgi_app, services)
    return app


def metrics_dir(configured: str) -> str:
    """The multiprocess metrics directory /metrics reads, or "" for this process's own values."""
    import logging

    from otpservice.observability.metrics import multiprocess_active

    if configured and not multiprocess_active():
        logging.getLogger(__name__).warning(
            "OTP_METRICS_DIR is set but PROMETHEUS_MULTIPROC_DIR was not at start: /metrics shows this process "
            "only (start through `otpservice serve`, whose gunicorn config sets it)")
        return ""
    return configured


def start_background(app: Flask) -> None:
    """Start the app's background work (the opt-out sync, the reconciler) in this process, once: call it where
    requests are served."""
    for job in app.extensions["otpservice"].background():
        job.start()

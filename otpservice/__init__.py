"""otpservice: self-hosted phone verification. `create_app()` builds the WSGI application."""
from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from typing import Any, Callable

from flask import Flask

__version__ = "0.1.0"
log = logging.getLogger(__name__)


def create_app(settings=None, *, redis_client=None, telnyx=None, clock: Callable[[], float] = time.time,
               **overrides: Any) -> Flask:
    """Build the app: settings (environment, then overrides), shared resources in app.extensions, blueprints.

    `redis_client`, `telnyx` and `clock` let tests hand in real collaborators they started themselves.
    """
    from otpservice import admin, api, health, logs, metrics, openapi, web
    from otpservice import store as store_module
    from otpservice import webhooks
    from otpservice.config import Settings
    from otpservice.delivery import DeliveryService
    from otpservice.delivery_store import DeliveryStore
    from otpservice.optout_sync import OptOutSync, SyncScheduler
    from otpservice.optouts import OptOutRegistry
    from otpservice.redisconn import connect
    from otpservice.store import Store
    from otpservice.telnyx import TelnyxClient
    from otpservice.verification import VerificationService

    settings = settings or Settings.from_env(**overrides)
    if not settings.code_secret:
        # Sandbox only (production refuses to start without it). Workers forked from a preloading master share
        # the app, and so the secret; separately started processes do not, and a restart forgets it.
        log.warning("OTP_CODE_SECRET is unset: using a random secret until this service stops; codes issued "
                    "by another process or before a restart will not verify (sandbox only)")
        settings = dataclasses.replace(settings, code_secret=secrets.token_urlsafe(32))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    events = metrics.init_app(app, metrics.process_metrics(), metrics_dir=settings.metrics_dir)
    store_module.on_redis_error(metrics.process_metrics().redis_error)
    client = redis_client if redis_client is not None else connect(settings.redis_url,
                                                                   timeout=settings.redis_timeout)
    store = Store(client, secret=settings.code_secret.encode())
    optouts = OptOutRegistry(client)
    telnyx = telnyx or TelnyxClient(api_key=settings.telnyx_api_key, base_url=settings.telnyx_base_url,
                                    timeout=(3.05, settings.telnyx_timeout))
    if getattr(telnyx, "events", None) is None:
        telnyx.events = events  # a client handed in (tests) is timed like our own
    app.extensions.update({
        "otp.settings": settings, "otp.redis": client, "otp.store": store, "otp.optouts": optouts,
        "otp.telnyx": telnyx, "otp.clock": clock,
        "otp.verifications": VerificationService(settings=settings, store=store, telnyx=telnyx,
                                                 optouts=optouts, clock=clock, events=events),
        "otp.delivery": DeliveryService(store=DeliveryStore(client), optouts=optouts,
                                        public_key=settings.telnyx_public_key,
                                        event_ttl=settings.webhook_event_ttl, clock=clock, events=events),
    })
    if settings.totp_enabled:
        from otpservice import totp, totp_api
        app.extensions["otp.totp"] = totp.build_service(settings, client, clock=clock, events=events)
        app.register_blueprint(totp_api.bp)
    optout_sync = OptOutSync(registry=optouts, telnyx=telnyx, clock=clock,
                             messaging_profile_id=settings.telnyx_messaging_profile_id)
    app.extensions["otp.optout_sync"] = optout_sync
    if settings.optout_sync_interval > 0:
        # Not started here: this may be a gunicorn master that preloads the app and forks (no thread survives).
        scheduler = SyncScheduler(optout_sync, client, settings.optout_sync_interval)
        app.extensions["otp.sync_scheduler"] = scheduler
        app.wsgi_app = scheduler.middleware(app.wsgi_app)
    logs.init_app(app, count=metrics.process_metrics().count_request)
    web.register_error_handlers(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(webhooks.bp)
    return app


def start_background(app: Flask) -> None:
    """Start the app's background work (the opt-out sync) in this process, once: call it where requests are served."""
    scheduler = app.extensions.get("otp.sync_scheduler")
    if scheduler is not None:
        scheduler.start()

"""The local Telnyx simulator: a Flask app that speaks the Messaging API v2 and signs its webhooks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nacl.signing
from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from otpservice.sandbox.spec import error_body
from otpservice.sandbox.state import SimState
from otpservice.sandbox.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)

EXTENSION = "telnyx_sim"
DEFAULT_PROFILE_ID = "4001767e-ce0f-4cae-9d5f-0d5e636e7809"
DEFAULT_FROM_NUMBER = "+18445550001"
DEFAULT_TIMEOUT_SLEEP = 15.0
E164_RE = re.compile(r"\+[1-9][0-9]{1,14}")
# Codes the README names are used as it says; the general ones below are Telnyx's 100xx family.
CODE_AUTH = "10009"
CODE_INVALID_VALUE = "10003"
CODE_MISSING = "10004"
CODE_NOT_FOUND = "10005"
CODE_UNEXPECTED = "10007"
CODE_BAD_REQUEST = "10015"


@dataclass
class Simulator:
    """Everything the simulator's views share, kept in `app.extensions["telnyx_sim"]`."""

    api_key: str
    signing_key: nacl.signing.SigningKey
    clock: Callable[[], float]
    state: SimState
    dispatcher: WebhookDispatcher
    timeout_sleep: float
    default_webhook_url: str | None
    messaging_profile_id: str
    from_number: str


def current_sim() -> Simulator:
    """The Simulator of the app handling this request."""
    return current_app.extensions[EXTENSION]


def telnyx_error(
    status: int,
    code: str,
    title: str,
    detail: str = "",
    *,
    pointer: str | None = None,
    parameter: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """A Flask response carrying Telnyx's error body."""
    response = jsonify(error_body(code, title, detail, pointer=pointer, parameter=parameter))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def create_sim_app(
    *,
    api_key: str,
    signing_key: nacl.signing.SigningKey,
    clock: Callable[[], float] = time.time,
    webhook_delay: float = 0.05,
    max_webhook_attempts: int = 3,
    timeout_sleep: float = DEFAULT_TIMEOUT_SLEEP,
    default_webhook_url: str | None = None,
    messaging_profile_id: str = DEFAULT_PROFILE_ID,
    from_number: str = DEFAULT_FROM_NUMBER,
    webhook_backoff: float = 0.05,
) -> Flask:
    """Build the simulator app; `default_webhook_url` plays the messaging profile's webhook URL."""
    if not api_key:
        raise ValueError("api_key is required")
    from otpservice.sandbox import account, control, v2  # blueprints import this module: import them late

    app = Flask(__name__)
    state = SimState()
    state.set_inventory(account.default_inventory(profile_id=messaging_profile_id, from_number=from_number,
                                                  webhook_url=default_webhook_url), default=True)
    dispatcher = WebhookDispatcher(
        state=state,
        signing_key=signing_key,
        clock=clock,
        delay=webhook_delay,
        max_attempts=max_webhook_attempts,
        backoff=webhook_backoff,
    )
    app.extensions[EXTENSION] = Simulator(
        api_key=api_key,
        signing_key=signing_key,
        clock=clock,
        state=state,
        dispatcher=dispatcher,
        timeout_sleep=timeout_sleep,
        default_webhook_url=default_webhook_url,
        messaging_profile_id=messaging_profile_id,
        from_number=from_number,
    )
    app.register_blueprint(v2.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(control.bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        """Routing errors (404, 405, bad JSON) in Telnyx's shape too."""
        code = CODE_NOT_FOUND if exc.code == 404 else CODE_BAD_REQUEST
        return telnyx_error(exc.code or 400, code, exc.name, exc.description or "")

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        """A simulator bug still answers like Telnyx, and is logged."""
        log.exception("simulator error")
        return telnyx_error(500, CODE_UNEXPECTED, "Unexpected error", "The simulator failed (see its log).")

    return app

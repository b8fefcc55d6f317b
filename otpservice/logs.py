"""Structured logs: one JSON object per line, with the request id; secrets never reach a record.

Callers pass masked numbers themselves; as a second line of defence the formatter masks anything that
looks like an E.164 number and drops fields whose names say they hold secrets.
"""
from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, has_request_context, request

from otpservice.web import EXTENSIONS_KEY

E164_RE = re.compile(r"\+\d{7,15}")
SECRET_FIELDS = frozenset({"code", "api_key", "token", "secret", "password", "authorization", "text"})
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_KEY = "otpservice.request_id"  # where RequestEnvelope keeps the id in the WSGI environ


def scrub(value: str) -> str:
    """Mask every E.164-looking number in free text."""
    return E164_RE.sub(lambda m: m.group(0)[:5] + "*" * (len(m.group(0)) - 7) + m.group(0)[-2:], value)


class JsonFormatter(logging.Formatter):
    """Render a LogRecord as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) +
                 f".{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name,
                 "msg": scrub(record.getMessage())}
        if has_request_context() and REQUEST_ID_KEY in request.environ:
            entry["request_id"] = request.environ[REQUEST_ID_KEY]
        for key, value in vars(record).items():
            if key in STANDARD or key.startswith("_") or key.lower() in SECRET_FIELDS:
                continue
            entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):
    """A stream handler bound to whatever sys.stderr is when a record is written, not when it was made.

    Background threads (the opt-out sync, the simulator's webhooks) can outlive a replaced stderr, as under
    a test runner's capture; writing to the current one never hits a closed file.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


class RequestEnvelope:
    """WSGI middleware around the Flask app: a request id, one access line and one count per request.

    A sane X-Request-ID is kept, anything else replaced by 16 random bytes in hex; it is echoed on the
    response and stamped on every log line written during the request. The access line and the
    `count(route, method, status)` call name the matched route's pattern (`/totp/<user_id>`), so no user id
    or number in a path reaches logs or metrics. Every request pays for this, so it works on the WSGI
    environ instead of Flask's request hooks and context proxies, and builds the access line only when
    INFO is enabled (issue 6 measures the request path against a bare Flask app).
    """

    def __init__(self, wsgi_app: Callable, count: Callable[[str, str, int], None] | None = None,
                 extensions: dict[str, Any] | None = None) -> None:
        self.wsgi_app = wsgi_app
        self.count = count
        self.extensions = extensions
        self.access = logging.getLogger("otpservice.access")

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        given = environ.get("HTTP_X_REQUEST_ID")
        request_id = given if given and REQUEST_ID_RE.match(given) else os.urandom(16).hex()
        environ[REQUEST_ID_KEY] = request_id
        environ[EXTENSIONS_KEY] = self.extensions  # for web.context(): the app's services without current_app
        started = time.perf_counter()

        def start(status: str, headers: list, exc_info=None):
            # Flask calls this before it pops the request context: the matched rule is still on the request.
            req = environ.get("werkzeug.request")
            rule = req.url_rule if req is not None else None
            route = rule.rule if rule is not None else None
            code = int(status[:3])
            if self.count is not None:
                self.count(route or "unmatched", environ.get("REQUEST_METHOD", ""), code)
            if self.access.isEnabledFor(logging.INFO):
                elapsed = (time.perf_counter() - started) * 1000
                path = route or scrub(environ.get("PATH_INFO", "")[:200])
                self.access.info("request", extra={"method": environ.get("REQUEST_METHOD", ""), "path": path,
                                                   "status": code, "duration_ms": round(elapsed, 2)})
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def init_app(app: Flask, count: Callable[[str, str, int], None] | None = None) -> None:
    """Wrap the app's WSGI callable in a RequestEnvelope (request id, access line, `count` per request)."""
    app.wsgi_app = RequestEnvelope(app.wsgi_app, count, app.extensions)

"""Structured logs: one JSON object per line, with the request id; secrets never reach a record.

Callers pass masked numbers themselves; as a second line of defence the formatter masks anything that
looks like an E.164 number and drops fields whose names say they hold secrets.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, g, has_request_context, request

E164_RE = re.compile(r"\+\d{7,15}")
SECRET_FIELDS = frozenset({"code", "api_key", "token", "secret", "password", "authorization", "text"})
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def scrub(value: str) -> str:
    """Mask every E.164-looking number in free text."""
    return E164_RE.sub(lambda m: m.group(0)[:5] + "*" * (len(m.group(0)) - 7) + m.group(0)[-2:], value)


class JsonFormatter(logging.Formatter):
    """Render a LogRecord as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) +
                 f".{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name,
                 "msg": scrub(record.getMessage())}
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        for key, value in vars(record).items():
            if key in STANDARD or key.startswith("_") or key.lower() in SECRET_FIELDS:
                continue
            entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def route_of(req) -> str:
    """The matched route's pattern (`/totp/<user_id>`), so no user id or number in a path reaches the logs."""
    if req.url_rule is not None:
        return req.url_rule.rule
    return scrub(req.path[:200])


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


def init_app(app: Flask) -> None:
    """Give each request an id (a sane X-Request-ID, or a new one), echo it, and log one access line."""
    access = logging.getLogger("otpservice.access")

    @app.before_request
    def assign_request_id():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def log_access(response):
        response.headers["X-Request-ID"] = g.get("request_id", "")
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access.info("request", extra={"method": request.method, "path": route_of(request),
                                      "status": response.status_code, "duration_ms": round(elapsed, 2)})
        return response

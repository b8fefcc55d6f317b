"""Structured logs: one JSON object per line, with the request id; secrets never reach a record.

Callers pass masked numbers themselves (`mask_number`); as a second line of defence the formatter masks
anything that looks like an E.164 number and drops fields whose names say they hold secrets.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

E164_RE = re.compile(r"\+\d{7,15}")
SECRET_FIELDS = frozenset({"code", "api_key", "token", "secret", "password", "authorization", "text"})
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# The id of the request being served in this thread or greenlet (set by the web layer's request envelope).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("otpservice_request_id", default=None)


def mask_number(number: str) -> str:
    """`+13125550123` -> `+1312*****23`: enough to tell numbers apart in logs, not to dial one."""
    if not number or len(number) < 8:
        return "*" * len(number or "")
    return number[:5] + "*" * (len(number) - 7) + number[-2:]


def scrub(value: str) -> str:
    """Mask every E.164-looking number in free text."""
    return E164_RE.sub(lambda m: mask_number(m.group(0)), value)


class JsonFormatter(logging.Formatter):
    """Render a LogRecord as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) +
                 f".{int(record.msecs):03d}Z", "level": record.levelname, "logger": record.name,
                 "msg": scrub(record.getMessage())}
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
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

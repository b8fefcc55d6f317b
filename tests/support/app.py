"""What the tests share about the app under test: its keys, a settable clock, a live server, the outbox."""
from __future__ import annotations

import re
import threading
import time

import requests
from werkzeug.serving import make_server

CLIENT_KEY = "test-client-key"
ADMIN_TOKEN = "test-admin-token"
SIM_API_KEY = "KEYtest"
CODE_SECRET = "test-code-secret-0123456789abcdef0123456789"
PROFILE_ID = "4001767e-ce0f-4cae-9d5f-0d5e636e7809"


class Clock:
    """A settable clock handed to the app as `clock=`: tests move time instead of sleeping."""

    def __init__(self, start: float | None = None) -> None:
        self.now = start if start is not None else time.time()
        self.frozen = start is not None

    def __call__(self) -> float:
        return self.now if self.frozen else time.time()

    def freeze(self) -> "Clock":
        self.now, self.frozen = time.time(), True
        return self

    def advance(self, seconds: float) -> None:
        self.freeze() if not self.frozen else None
        self.now += seconds


class LiveServer:
    """A WSGI app served on a free loopback port in a thread (werkzeug, a thread per request)."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def outbox(sim, to: str | None = None) -> list[dict]:
    """Messages the simulator accepted, newest first."""
    params = {"to": to} if to else {}
    return requests.get(f"{sim.url}/sim/messages", params=params, timeout=5).json()["data"]


def code_from(message: dict) -> str:
    """The code in a message text (the first run of 6-10 digits; in Chinese or Korean no space sets it apart)."""
    return re.search(r"(?<!\d)(\d{6,10})(?!\d)", message["text"]).group(1)


def store_client(url: str):
    """A client for any URL the service accepts (a cluster's too): scan_iter then sees every node's keys."""
    from otpservice.storage.connect import connect
    return connect(url, timeout=5.0)


def services(app):
    """The services an app was built with (wiring.Services)."""
    return app.extensions["otpservice"]


class RecordingMetrics:
    """Stands in for the metrics of one service and records each call (name, args, kwargs): every method of
    observability.metrics.Metrics, and nothing else."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        from otpservice.observability.metrics import Metrics
        if name.startswith("_") or not callable(getattr(Metrics, name, None)):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

"""A tiny webhook receiver for tests and demos: records raw bodies and headers, answers scripted statuses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from otpservice.sandbox.server import QuietRequestHandler

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass(frozen=True)
class Delivery:
    """One webhook POST exactly as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed (after the raw bytes have been kept for signature checks)."""
        return json.loads(self.body)


class WebhookRecorder:
    """Listens on a free loopback port; answers each POST with the next scripted status, then 200."""

    def __init__(self, statuses: Iterable[int] = (), host: str = "127.0.0.1") -> None:
        self._statuses = list(statuses)
        self._lock = threading.Condition()
        self.deliveries: list[Delivery] = []
        self._server = make_server(host, 0, self._app, threaded=True, request_handler=QuietRequestHandler)
        self.url = f"http://{host}:{self._server.server_port}/webhooks/telnyx"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _app(self, environ: dict, start_response: Callable) -> Any:
        """Record and answer."""
        request = Request(environ)
        delivery = Delivery(request.path, dict(request.headers.items()), request.get_data())
        with self._lock:
            self.deliveries.append(delivery)
            status = self._statuses.pop(0) if self._statuses else 200
            self._lock.notify_all()
        return Response("{}", status=status, content_type="application/json")(environ, start_response)

    def start(self) -> WebhookRecorder:
        """Serve in a daemon thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[list[Delivery]], bool], timeout: float = 5.0) -> list[Delivery]:
        """Block until `predicate(deliveries)` holds; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.deliveries):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"webhooks not received in {timeout}s: got {len(self.deliveries)}")
                self._lock.wait(remaining)
            return list(self.deliveries)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Parsed bodies received so far, optionally of one event type."""
        with self._lock:
            bodies = [d.json() for d in self.deliveries]
        return [b for b in bodies if event_type is None or b["data"]["event_type"] == event_type]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

"""Serving the simulator: `SimulatorServer` runs it in a thread (a free port for tests, a given one for the CLI)."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any

import nacl.signing
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from otpservice.sandbox.simulator import create_sim_app
from otpservice.sending.telnyx.signatures import public_key_b64
from otpservice.observability.logs import mask_number

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

DEFAULT_TEST_API_KEY = "KEYSIMULATOR_test_only"
_NUMBER_RE = re.compile(r"(?:%2B|\+)?[0-9]{7,15}")


class QuietRequestHandler(WSGIRequestHandler):
    """Access log without query strings and with phone numbers masked (they sit in /sim paths and queries)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One line per request: method, masked path, status."""
        path = getattr(self, "path", "?").split("?", 1)[0]
        path = _NUMBER_RE.sub(lambda m: mask_number(m.group(0).replace("%2B", "+")), path)
        self.log("info", '"%s %s" %s %s', getattr(self, "command", "-"), path, code, size)


def _serve(host: str, port: int, app: Any) -> BaseWSGIServer:
    """A threaded werkzeug server (port 0 picks a free one)."""
    return make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)


class SimulatorServer:
    """The simulator in a background thread on a free loopback port: `SimulatorServer(...).start()`."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_TEST_API_KEY,
        signing_key: nacl.signing.SigningKey | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **app_options: Any,
    ) -> None:
        self.api_key = api_key
        self.signing_key = signing_key or nacl.signing.SigningKey.generate()
        self.app = create_sim_app(api_key=api_key, signing_key=self.signing_key, **app_options)
        self._server = _serve(host, port, self.app)  # bound now, so the port is ours before start()
        self.host, self.port = host, self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The simulator root, e.g. http://127.0.0.1:PORT (control routes live under /sim)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The Telnyx API base URL to give the client (OTP_TELNYX_BASE_URL)."""
        return self.url + "/v2"

    @property
    def public_key_b64(self) -> str:
        """The webhook verification key (OTP_TELNYX_PUBLIC_KEY)."""
        return public_key_b64(self.signing_key)

    def start(self) -> SimulatorServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"telnyx-sim-{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

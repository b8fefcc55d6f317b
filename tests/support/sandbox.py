"""`otpservice run` as a newcomer starts it (config/sandbox.env): the service and the simulator on free ports."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
OTPSERVICE = Path(sys.executable).with_name("otpservice")
SANDBOX_CLIENT_KEY, SANDBOX_ADMIN_TOKEN = "sandbox-client-key", "sandbox-admin-token"  # config/sandbox.env


class Sandbox:
    """`otpservice run` on free ports, with the given extra settings; a context manager."""

    def __init__(self, **env: str) -> None:
        self.port, self.sim_port = free_port(), free_port()
        self.url, self.sim_url = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.sim_port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
        self.env = {**base, "OTP_PORT": str(self.port), "OTP_SIM_PORT": str(self.sim_port), "OTP_HOST": "127.0.0.1",
                    "OTP_LOG_LEVEL": "WARNING", **env}
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Sandbox:
        self.proc = subprocess.Popen([str(OTPSERVICE), "run"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()[-2000:]
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("otpservice run did not become ready")

    def __exit__(self, *exc_info: object) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(10)

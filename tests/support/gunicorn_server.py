"""Run `otpservice serve` (gunicorn with config/gunicorn.conf.py) as a child process for a test, then stop it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.support.redis_server import free_port

OTPSERVICE = Path(sys.executable).with_name("otpservice")


class GunicornServer:
    """The service under gunicorn on a free port; its stderr (the JSON logs) goes to a file read after stop."""

    def __init__(self, settings: dict[str, str], *, workers: int = 3, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Kept open until cleanup(): the child writes to it, and output() reads it by name.
        self.log = tempfile.NamedTemporaryFile(prefix="otp-gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
        # Only what the child needs: none of this shell's OTP_* or prometheus variables leak into it.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
        self.env = {**base, "OTP_HOST": "127.0.0.1", "OTP_PORT": str(self.port), "OTP_WORKERS": str(workers),
                    "OTP_THREADS": "4", **settings}
        self.args = list(args)  # gunicorn flags after `otpservice serve`
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> GunicornServer:
        """Start gunicorn and wait until /healthz answers (or fail, with its log, after `timeout`)."""
        self.proc = subprocess.Popen([str(OTPSERVICE), "serve", *self.args], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                # Not up yet, or a worker still importing on a busy machine: ask again until the deadline.
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL to the whole group if it outstays `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def cleanup(self) -> None:
        self.stop()
        self.log.close()
        os.unlink(self.log.name)


GUNICORN_CONF = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"
# Loads config/gunicorn.conf.py as gunicorn does (a plain exec of the file), then asks its default_workers for the
# worker count under each cgroup folder given.
_WORKERS_SCRIPT = """
import json, runpy, sys
conf = runpy.run_path(sys.argv[1])
print(json.dumps([conf["default_workers"](conf["settings"], root) for root in sys.argv[2:]]))
"""


def conf_workers(settings: dict[str, str], *cgroup_roots: Path) -> list[int]:
    """The worker counts config/gunicorn.conf.py chooses under `settings`, one per fake cgroup folder.

    In a child process: the file writes prometheus_client's variables into the environment as it loads.
    """
    import json

    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    done = subprocess.run([sys.executable, "-c", _WORKERS_SCRIPT, str(GUNICORN_CONF), *map(str, cgroup_roots)],
                          env={**base, **settings}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])

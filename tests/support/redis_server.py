"""Start and stop throwaway redis-server processes for the test suite: never a server the tests did not start."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import redis

REDIS_SERVER = os.environ.get("OTP_TEST_REDIS_SERVER") or shutil.which("redis-server") or "redis-server"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server child process on a free loopback port, with no persistence."""

    def __init__(self, *extra_args: str, port: int | None = None, directory: str | None = None) -> None:
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.dir = directory or tempfile.mkdtemp(prefix="otp-redis-")  # a restart reuses its node's files
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        """Start the server and wait until it answers PING."""
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no", *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")

    def stop(self) -> None:
        """Kill the server (SIGKILL: tests use this to simulate a crash too)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

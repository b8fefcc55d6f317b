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
        self.own_ports = port is None  # chosen here, so chosen again if another process takes one first
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.dir = directory or tempfile.mkdtemp(prefix="otp-redis-")  # a restart reuses its node's files
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        """Start the server and wait until it answers PING.

        A port from free_port() is free only when it is picked: on a busy machine another process can bind it
        before redis-server does. Ports picked here are then picked again (three tries); a fixed port (a
        restart) is not, and any other refusal is raised with the end of redis-server's own log.
        """
        for attempt in range(3):
            log = self._launch()
            deadline = time.monotonic() + timeout
            client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    client.ping()
                    return self
                except (redis.ConnectionError, redis.TimeoutError):  # not listening yet, or a stranger's port
                    time.sleep(0.05)
            else:
                raise RuntimeError(f"redis-server on port {self.port} did not answer within {timeout}s")
            said = self.log_tail(log)
            if not (self.own_ports and "Address already in use" in said) or attempt == 2:
                raise RuntimeError(f"redis-server on port {self.port} exited with {self.proc.returncode}: {said}")
            self.port = free_port()
            if "--cluster-port" in self.extra_args:
                self.extra_args[self.extra_args.index("--cluster-port") + 1] = str(free_port())
        raise AssertionError("unreachable")

    def _launch(self) -> str:
        log = os.path.join(self.dir, f"redis-{self.port}.log")
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--protected-mode", "no", "--logfile", log,
                *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return log

    def log_tail(self, log: str) -> str:
        """The last lines redis-server wrote: its log file, or stderr when it failed before opening the log."""
        lines = []
        if os.path.exists(log):
            with open(log, errors="replace") as handle:
                lines = handle.read().splitlines()[-5:]
        if self.proc and self.proc.stderr:
            lines += self.proc.stderr.read().decode(errors="replace").splitlines()[-5:]
        return " | ".join(line.strip() for line in lines if line.strip()) or "(nothing logged)"

    def stop(self) -> None:
        """Kill the server (SIGKILL: tests use this to simulate a crash too)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

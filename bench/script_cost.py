"""Redis instructions per script call, counted by callgrind: what each /verify and webhook makes Redis do.

Throughput on this shared machine moves by ±20% from one second to the next; instruction counts do not. This
runs a private redis-server under `valgrind --tool=callgrind`, drives the store's own scripts through
storage.verifications.VerificationStore and storage.deliveries.DeliveryStore (the same calls the routes make),
and reports, per case, the instructions Redis spent per call: the difference between a run of `--large` calls
and one of `--small` calls, divided by the difference in calls, so fixed costs (the dump, the event loop's idle
turns) cancel.

    .venv/bin/python -m bench.script_cost            # needs valgrind (Debian: apt-get install valgrind)

For reference, the same harness reports a plain GET and an EVALSHA of an empty script.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from otpservice.core import codes
from otpservice.storage.deliveries import DeliveryStore
from otpservice.storage.verifications import VerificationStore
from tests.support.redis_server import free_port

SECRET = b"bench-code-secret"
PURPOSE = "login"
TTL_MS, RETENTION_MS, WINDOW_MS = 600_000, 86_400_000, 86_400_000
TOTALS_RE = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)


def callgrind_total(dump: Path) -> int:
    """The instructions a callgrind output file counted in all."""
    return int(TOTALS_RE.search(dump.read_bytes()).group(1))


class CallgrindRedis:
    """A redis-server under callgrind with its counters zeroed and dumped around each measured block."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={workdir}/cg.out", "redis-server",
             "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
        self.client = redis.Redis(port=self.port, socket_timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("redis-server under valgrind did not start") from None
                time.sleep(0.2)

    def count(self, block: Callable[[], None]) -> int:
        """Instructions Redis ran during `block()`."""
        subprocess.run(["callgrind_control", "-z", str(self.proc.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        block()
        before = set(self.workdir.glob("cg.out*"))
        subprocess.run(["callgrind_control", "-d", str(self.proc.pid)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        (dump,) = set(self.workdir.glob("cg.out*")) - before
        return callgrind_total(dump)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


class Cases:
    """Pending verifications made through begin_send, and the calls each case measures on them."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.store = VerificationStore(client)
        self.deliveries = DeliveryStore(client)
        self.serial = 0

    def pending(self, count: int, *, sent: bool = False) -> list[str]:
        numbers = []
        for _ in range(count):
            self.serial += 1
            phone = f"+1202555{self.serial:04d}" if self.serial < 10_000 else f"+4420{self.serial:08d}"
            now = int(time.time() * 1000)
            res = self.store.begin_send(phone=phone, purpose=PURPOSE, code_hash=self.hash(phone, "123456"),
                                        now_ms=now, ttl_ms=TTL_MS, retention_ms=RETENTION_MS, cooldown_ms=0,
                                        skip_cooldown_after_failure=True,
                                        number_limits=[("phone_number", 5, 3_600_000)])
            if sent:
                self.store.record_send(res.verification_id, 1, outcome="sent", message_id=f"msg-{self.serial}",
                                       endpoint="messages", now_ms=now, delivery_status="queued")
            numbers.append(phone)
        return numbers

    @staticmethod
    def hash(phone: str, code: str) -> bytes:
        return codes.code_hash(SECRET, phone, PURPOSE, code)

    def verify(self, phone: str, code: str) -> None:
        self.store.verify(phone=phone, purpose=PURPOSE, code_hash=self.hash(phone, code),
                          now_ms=int(time.time() * 1000), max_attempts=5, failure_cap=20,
                          failure_window_ms=WINDOW_MS)

    def update(self, phone: str, status: str) -> None:
        serial = int(phone[-4:]) if phone.startswith("+1202555") else int(phone[5:])
        self.deliveries.apply_update(phone, message_id=f"msg-{serial}", event_id=f"ev-{status}-{serial}",
                                     status=status, errors=[], now_ms=int(time.time() * 1000), event_ttl_ms=600_000)


def cases(c: Cases) -> dict[str, tuple[Callable[[int], list], Callable[[object], None]]]:
    """name -> (make n inputs, the measured call on one input)."""
    def wrong_after(k: int):
        def make(n: int) -> list[str]:
            numbers = c.pending(n)
            for phone in numbers:
                for _ in range(k):
                    c.verify(phone, "000000")
            return numbers
        return make
    return {
        "GET (reference)": (lambda n: [f"k{i}" for i in range(n)], lambda key: c.client.get(key)),
        "verify, right code": (c.pending, lambda phone: c.verify(phone, "123456")),
        "verify, 1st wrong code": (wrong_after(0), lambda phone: c.verify(phone, "000000")),
        "verify, 4th wrong code": (wrong_after(3), lambda phone: c.verify(phone, "000000")),
        "webhook, sent (updated)": (lambda n: c.pending(n, sent=True), lambda phone: c.update(phone, "sent")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=400)
    args = parser.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("script_cost: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="otp-script-cost-") as tmp:
        server = CallgrindRedis(Path(tmp))
        try:
            c = Cases(server.client)
            print(f"Redis instructions per call (callgrind; ({args.large} calls - {args.small} calls) / "
                  f"{args.large - args.small}), redis-server {server.client.info('server')['redis_version']}")
            print("| case | instructions per call |")
            print("|---|---|")
            for name, (make, call) in cases(c).items():
                totals = []
                for n in (args.small, args.large):
                    inputs = make(n)
                    totals.append(server.count(lambda inputs=inputs, call=call: [call(x) for x in inputs]))
                print(f"| {name} | {(totals[1] - totals[0]) / (args.large - args.small) / 1000:.1f}k |", flush=True)
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OTP_LOG_LEVEL", "WARNING")
    sys.exit(main())

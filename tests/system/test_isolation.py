"""A hanging Telnyx never takes logins down: under `otpservice serve` (gevent workers), with every send hanging
and more /request-code in flight than the workers have send slots, /healthz, /verify and signed webhooks keep
answering, the requests past the slots get a fast 503 with Retry-After, and no worker is killed.

The latency figures (p99 under 100 ms) are the benchmark's (`make bench`, bench/RESULTS.md); here the bound is
one of kind, not of speed: an answer in under 2 s cannot have waited behind a send that hangs for 8.
"""
from __future__ import annotations

import threading
import time

import pytest
import requests

from otpservice.sending.telnyx.signatures import public_key_b64
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, CODE_SECRET, SIM_API_KEY
from tests.support.gunicorn_server import GunicornServer
from tests.support.webhooks import delivery_event, encode

HANG = 8.0
SLOTS = 10  # per worker
WORKERS = 2
FLOOD = 40  # more than WORKERS * SLOTS, and than gthread's 4 threads a worker
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.mark.slow
def test_a_hanging_telnyx_holds_nothing_but_its_own_sends(redis_url, sim, sim_signing_key):
    from otpservice.sending.telnyx.signatures import sign_webhook

    server = GunicornServer({
        "OTP_REDIS_URL": redis_url, "OTP_API_KEYS": CLIENT_KEY, "OTP_ADMIN_TOKEN": ADMIN_TOKEN,
        "OTP_CODE_SECRET": CODE_SECRET, "OTP_TELNYX_API_KEY": SIM_API_KEY, "OTP_TELNYX_BASE_URL": sim.base_url,
        "OTP_TELNYX_PUBLIC_KEY": public_key_b64(sim_signing_key), "OTP_TELNYX_FROM": "+13125550100",
        "OTP_SEND_CONCURRENCY": str(SLOTS), "OTP_LIMIT_GLOBAL": "1000/minute", "OTP_LIMIT_PREFIX": "1000/hour",
        "OTP_LOG_LEVEL": "WARNING"}, workers=WORKERS)
    requests.post(f"{sim.url}/sim/faults", json={"mode": "timeout", "count": 10**6, "sleep": HANG}, timeout=5)
    answers: list[tuple[int, float, dict]] = []
    lock = threading.Lock()

    def request_code(n: int) -> None:
        started = time.monotonic()
        answer = requests.post(f"{server.url}/request-code", json={"phone_number": f"+1312555{8000 + n:04d}"},
                               headers=AUTH, timeout=60)
        with lock:
            answers.append((answer.status_code, time.monotonic() - started, dict(answer.headers)))

    try:
        server.start()
        flood = [threading.Thread(target=request_code, args=(n,)) for n in range(FLOOD)]
        for thread in flood:
            thread.start()
        time.sleep(1.0)  # every slot is taken by now, and the rest refused
        probes = []
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            for name in ("healthz", "verify", "webhook"):
                started = time.monotonic()
                if name == "healthz":
                    answer = requests.get(f"{server.url}/healthz", timeout=30)
                elif name == "verify":
                    answer = requests.post(f"{server.url}/verify", headers=AUTH, timeout=30,
                                           json={"phone_number": "+13125550199", "code": "123456"})
                else:
                    body = encode(delivery_event("no-such-message", "delivered", to="+13125550199"))
                    headers = sign_webhook(sim_signing_key, body, timestamp=int(time.time()))
                    answer = requests.post(f"{server.url}/webhooks/telnyx", data=body, timeout=30,
                                           headers={**headers, "Content-Type": "application/json"})
                probes.append((name, answer.status_code, time.monotonic() - started))
        for thread in flood:
            thread.join()
    finally:
        requests.delete(f"{sim.url}/sim/faults", timeout=5)
        stopped = server.stop()
        output = server.output()
        server.cleanup()
    assert {(name, status) for name, status, _ in probes} == {("healthz", 200), ("verify", 404), ("webhook", 200)}
    assert max(seconds for _, _, seconds in probes) < 2.0, sorted(probes, key=lambda p: -p[2])[:3]
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {202, 503} and statuses.count(503) >= FLOOD - WORKERS * SLOTS
    refused = [(seconds, headers) for status, seconds, headers in answers if status == 503]
    assert all(seconds < 2.0 and int(headers["Retry-After"]) >= 1 for seconds, headers in refused)
    assert "WORKER TIMEOUT" not in output and stopped == 0

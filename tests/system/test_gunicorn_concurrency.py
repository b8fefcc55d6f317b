"""Concurrency through real gunicorn with several worker processes, a real Redis and the real simulator.

Atomicity must hold across processes, not just threads: every worker has its own Redis connections.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.app import CLIENT_KEY, CODE_SECRET, SIM_API_KEY, code_from, outbox
from tests.support.gunicorn_server import GunicornServer

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
def served(redis_url, sim):
    """otpservice serve with three workers, on the suite's Redis and simulator."""
    server = GunicornServer({
        "OTP_REDIS_URL": redis_url, "OTP_API_KEYS": CLIENT_KEY, "OTP_ADMIN_TOKEN": "admin",
        "OTP_CODE_SECRET": CODE_SECRET, "OTP_TELNYX_API_KEY": SIM_API_KEY, "OTP_TELNYX_BASE_URL": sim.base_url,
        "OTP_TELNYX_FROM": "+13125550100", "OTP_OPTOUT_SYNC_INTERVAL": "0", "OTP_LOG_LEVEL": "WARNING",
    }, workers=3).start()
    yield server
    server.cleanup()


def burst(url: str, bodies: list[dict]) -> list[requests.Response]:
    with ThreadPoolExecutor(25) as pool:
        return list(pool.map(lambda body: requests.post(url, json=body, headers=AUTH, timeout=30), bodies))


def test_across_worker_processes_limits_and_spending_stay_atomic(served, sim):
    number = "+13125555100"
    sends = burst(f"{served.url}/request-code", [{"phone_number": number}] * 50)
    assert sorted(r.status_code for r in sends).count(202) == 1 and len(outbox(sim, number)) == 1
    code = code_from(outbox(sim, number)[0])
    wrong = str((int(code) + 1) % 1000000).zfill(6)
    wrongs = burst(f"{served.url}/verify", [{"phone_number": number, "code": wrong}] * 50)
    answered = [r for r in wrongs if r.status_code == 200]
    assert sorted(r.json()["attempts_remaining"] for r in answered) == [0, 1, 2, 3, 4]
    assert all(r.status_code == 429 for r in wrongs if r not in answered)

    other = "+13125555101"
    assert requests.post(f"{served.url}/request-code", json={"phone_number": other}, headers=AUTH,
                         timeout=30).status_code == 202
    right = code_from(outbox(sim, other)[0])
    rights = burst(f"{served.url}/verify", [{"phone_number": other, "code": right}] * 20)
    approvals = [r for r in rights if r.status_code == 200 and r.json()["valid"] is True]
    assert len(approvals) == 1 and sorted(r.status_code for r in rights if r not in approvals) == [404] * 19

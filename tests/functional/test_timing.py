"""A wrong code, an expired code and a never-issued verification cost the same: no timing oracle.

Two parts. The structural one is exact: each of the three runs the same work (one HMAC, one Redis script
call). The statistical one compares interleaved response times with a tolerance far above what a shared
machine's noise makes, yet well below the cost of an extra Redis round trip or hash that would betray
which case was hit.
"""
from __future__ import annotations

import re

import statistics
import time

import redis

from tests.support.app import code_from, outbox

ISSUED = "+13125553100"
EXPIRED = "+13125553101"
NEVER = "+13125553102"


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


COMMAND_RE = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def count_commands(monkeypatch) -> list[str]:
    """Record the name of every command any connection sends, read off the bytes it writes (scripts and their
    WAIT go out packed together, everything else one command at a time)."""
    sent: list[str] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self, command, check_health=True):
        data = b"".join(command) if isinstance(command, (list, tuple)) else command
        sent.extend(name.decode().upper() for name in COMMAND_RE.findall(data))
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


def setup_cases(make_app, sim, clock):
    """An app with one live code (3 attempts spent to keep it open), one expired, one never issued."""
    # Sixty numbers of one prefix are issued below and none is verified: lift the prefix and global send budgets
    # for that, and the fraud guard, which blocks exactly that (tests/functional/test_fraud.py).
    app = make_app(max_attempts=5, number_failures_per_day=100, limit_prefix="1000/hour",
                   limit_global="1000/minute", fraud_guard="off")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    clock.freeze()
    client.post("/request-code", json={"phone_number": EXPIRED})
    clock.advance(601)
    client.post("/request-code", json={"phone_number": ISSUED})
    return app, client, wrong(code_from(outbox(sim, ISSUED)[0]))


def test_each_case_is_one_script_call(make_app, sim, clock, monkeypatch):
    app, client, bad = setup_cases(make_app, sim, clock)
    client.post("/verify", json={"phone_number": NEVER, "code": bad})  # the script is loaded once, then cached
    sent = count_commands(monkeypatch)
    for number, status in ((ISSUED, 200), (EXPIRED, 404), (NEVER, 404)):
        sent.clear()
        response = client.post("/verify", json={"phone_number": number, "code": bad})
        assert response.status_code == status
        assert sent == ["EVALSHA"], (number, sent)


def test_response_times_are_indistinguishable(make_app, sim, clock):
    app, client, bad = setup_cases(make_app, sim, clock)
    issued = [f"+1312555{3200 + i:04d}" for i in range(60)]
    wrong_codes = {}
    for number in issued:  # one live code per number: each wrong answer below is a first attempt
        client.post("/request-code", json={"phone_number": number})
        wrong_codes[number] = wrong(code_from(outbox(sim, number)[0]))
    for number in (EXPIRED, NEVER) * 5:  # warm both paths
        client.post("/verify", json={"phone_number": number, "code": bad})
    samples: dict[str, list[float]] = {"wrong": [], "expired": [], "never": []}
    for number in issued:
        for case, target, code in (("wrong", number, wrong_codes[number]), ("expired", EXPIRED, bad),
                                   ("never", NEVER, bad)):
            start = time.perf_counter()
            client.post("/verify", json={"phone_number": target, "code": code})
            samples[case].append(time.perf_counter() - start)
    medians = {case: statistics.median(values) for case, values in samples.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    assert slowest - fastest < max(0.002, 0.5 * fastest), medians

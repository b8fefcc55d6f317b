"""Atomicity under concurrent requests, over real HTTP to the app on a real port, with a real Redis."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.app import CLIENT_KEY, code_from, outbox

NUMBER = "+13125550160"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


def post(url: str, body: dict) -> requests.Response:
    return requests.post(url, json=body, headers=AUTH, timeout=30)


def test_twenty_concurrent_right_codes_give_exactly_one_approval(live, sim):
    assert post(f"{live.url}/request-code", {"phone_number": NUMBER}).status_code == 202
    code = code_from(outbox(sim, NUMBER)[0])
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: post(f"{live.url}/verify", {"phone_number": NUMBER, "code": code}),
                                range(20)))
    approvals = [r for r in results if r.status_code == 200 and r.json().get("valid") is True]
    assert len(approvals) == 1
    assert sorted(r.status_code for r in results if r not in approvals) == [404] * 19


def test_fifty_concurrent_requests_for_one_number_send_one_sms(live, sim):
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: post(f"{live.url}/request-code", {"phone_number": NUMBER}), range(50)))
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(202) == 1 and statuses.count(429) == 49
    assert len(outbox(sim, NUMBER)) == 1


def test_fifty_concurrent_wrong_codes_use_at_most_the_allowed_attempts(live, sim):
    post(f"{live.url}/request-code", {"phone_number": NUMBER})
    code = code_from(outbox(sim, NUMBER)[0])
    bad = str((int(code) + 1) % 1000000).zfill(6)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: post(f"{live.url}/verify", {"phone_number": NUMBER, "code": bad}),
                                range(50)))
    wrong_answers = [r for r in results if r.status_code == 200]
    assert len(wrong_answers) == 5 and all(r.json()["valid"] is False for r in wrong_answers)
    assert sorted(r.json()["attempts_remaining"] for r in wrong_answers) == [0, 1, 2, 3, 4]
    assert all(r.status_code == 429 for r in results if r not in wrong_answers)
    assert post(f"{live.url}/verify", {"phone_number": NUMBER, "code": code}).status_code == 429

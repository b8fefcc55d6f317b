"""Telnyx failures, produced by the real simulator's fault controls, become the contract's answers."""
from __future__ import annotations

import pytest
import requests

import time

from otpservice.sending.telnyx.client import SEND_ATTEMPTS
from tests.support.app import code_from, outbox, services

NUMBER = "+13125550140"


def sends_seen(sim) -> list[dict]:
    """The send requests the simulator received, oldest first."""
    return [r for r in requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"]
            if r["method"] == "POST" and r["path"].startswith("/v2/messages")]


def wait_for_outbox(sim, number: str, count: int = 1, timeout: float = 8.0) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline and len(outbox(sim, number)) < count:
        time.sleep(0.05)
    return outbox(sim, number)


def arm(sim, mode: str, count: int = 1, **extra) -> None:
    response = requests.post(f"{sim.url}/sim/faults", json={"mode": mode, "count": count, **extra}, timeout=5)
    assert response.status_code < 300, response.text


def record_of(client, vid):
    return client.get(f"/verifications/{vid}").get_json()


@pytest.mark.parametrize("mode,status,code", [
    ("http_500", 503, "provider_unavailable"),
    ("rate_limit", 503, "provider_unavailable"),
    ("auth_failed", 502, "provider_error"),
    ("invalid_to", 422, "invalid_phone_number"),
    ("opt_out", 409, "opted_out"),
])
def test_each_refusal_maps_to_the_contract(client, sim, mode, status, code):
    arm(sim, mode, count=SEND_ATTEMPTS)  # every attempt refused
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    if status == 503:
        assert int(response.headers["Retry-After"]) >= 1
    assert outbox(sim, NUMBER) == []
    # A 5xx or a 429 is retried, under one Idempotency-Key and the same bytes; a 4xx never is.
    seen = sends_seen(sim)
    assert len(seen) == (SEND_ATTEMPTS if status == 503 else 1)
    assert len({(r["idempotency_key"], r["body"]) for r in seen}) == 1 and seen[0]["idempotency_key"]


@pytest.mark.parametrize("mode", ["http_500", "rate_limit"])
def test_a_failure_then_success_is_one_text(client, sim, mode):
    """The finding: a 5xx (or a 429) was never retried. Now the retry goes under the same key: one text."""
    arm(sim, mode, count=1)
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert response.status_code == 202
    [message] = wait_for_outbox(sim, NUMBER)
    assert response.get_json()["delivery"]["message_id"] == message["id"]
    assert len(sends_seen(sim)) == 2


def test_a_definite_failure_is_recorded_and_gives_the_cooldown_back(client, sim, admin_headers=None):
    arm(sim, "http_500", count=SEND_ATTEMPTS)
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 503
    retry = client.post("/request-code", json={"phone_number": NUMBER})
    assert retry.status_code == 202 and retry.get_json()["send_count"] == 2
    sends = record_of(client, retry.get_json()["verification_id"])["sends"]
    assert [s["delivery_status"] for s in sends] == ["sending_failed", "queued"]
    assert sends[0]["message_id"] is None and sends[0]["errors"][0]["code"]


def test_opt_out_answer_is_remembered_and_the_next_request_sends_nothing(app, client, sim):
    arm(sim, "opt_out")
    first = client.post("/request-code", json={"phone_number": NUMBER})
    assert first.status_code == 409
    records = services(app).optouts.store.records(NUMBER)
    assert [r["source"] for r in records] == ["send_rejected"]
    second = client.post("/request-code", json={"phone_number": NUMBER})
    assert second.status_code == 409 and outbox(sim, NUMBER) == []
    requests_seen = requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"]
    assert len([r for r in requests_seen if "messages" in r.get("path", "")]) == 1


def test_a_timeout_then_a_retry_makes_exactly_one_text(client, sim):
    """The first attempt times out (the simulator answers after the client's 1 s, and sends anyway, as Telnyx
    may); the retry carries the same key and gets the first answer replayed: one text, its message id known."""
    arm(sim, "timeout", sleep=1.5)
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert response.status_code == 202
    [message] = wait_for_outbox(sim, NUMBER)
    time.sleep(0.5)
    assert len(outbox(sim, NUMBER)) == 1
    assert response.get_json()["delivery"] == {"status": "queued", "message_id": message["id"]}
    assert len(sends_seen(sim)) == 2


def test_no_answer_within_the_deadline_says_the_text_may_still_arrive(make_app, sim):
    """Past OTP_TELNYX_SEND_DEADLINE without a definite answer: 202 with delivery status `unknown`. The code
    stays good and the cooldown holds, so the login page can say "it may still arrive"."""
    client = make_app(telnyx_timeout=0.5, telnyx_send_deadline=1.0).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    arm(sim, "timeout", sleep=1.5)
    started = time.monotonic()
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert time.monotonic() - started < 1.5  # answered at the deadline, not when Telnyx gets round to it
    assert response.status_code == 202
    assert response.get_json()["delivery"] == {"status": "unknown", "message_id": None}
    [message] = wait_for_outbox(sim, NUMBER)  # the simulator sent it after all
    record = client.get(f"/verifications/{response.get_json()['verification_id']}").get_json()
    assert record["sends"][0]["delivery_status"] == "unknown"
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429
    assert client.post("/verify", json={"phone_number": NUMBER, "code": code_from(message)}).get_json()["valid"]


def test_telnyx_down_entirely_is_503(make_app, sim):
    from tests.support.redis_server import free_port
    from tests.support.app import CLIENT_KEY
    dead = f"http://127.0.0.1:{free_port()}/v2"
    app = make_app(telnyx_base_url=dead)
    client = app.test_client()
    response = client.post("/request-code", json={"phone_number": NUMBER},
                           headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "provider_unavailable"


def test_every_send_names_the_failover_url(make_app, sim):
    """Telnyx tries OTP_WEBHOOK_FAILOVER_URL when the webhook URL fails its retries: a receipt is not lost
    because one host of the service was down."""
    client = make_app(webhook_url="https://a.example/webhooks/telnyx",
                      webhook_failover_url="https://b.example/webhooks/telnyx").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202
    import json
    [sent] = sends_seen(sim)
    body = json.loads(sent["body"])
    assert (body["webhook_url"], body["webhook_failover_url"]) == ("https://a.example/webhooks/telnyx",
                                                                   "https://b.example/webhooks/telnyx")


def test_past_its_send_slots_a_process_refuses_at_once_and_reserves_nothing(make_app, sim):
    """With every slot held by a hanging send, the next /request-code is 503 at once with Retry-After, and
    takes no cooldown, no budget and no attempt: it is as if it never came."""
    import threading

    app = make_app(send_concurrency=1, telnyx_timeout=1.0, telnyx_send_deadline=1.5)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    arm(sim, "timeout", sleep=1.2, to="+13125550141")
    hanging = threading.Thread(target=lambda: client.post("/request-code", json={"phone_number": "+13125550141"}))
    hanging.start()
    deadline = time.time() + 5
    while time.time() < deadline and not sends_seen(sim):
        time.sleep(0.01)  # the first request holds the one slot once its send reached the simulator
    started = time.monotonic()
    refused = client.post("/request-code", json={"phone_number": NUMBER})
    assert time.monotonic() - started < 0.5
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "provider_unavailable"
    assert refused.headers["Retry-After"] == "1"
    hanging.join()
    answer = client.post("/request-code", json={"phone_number": NUMBER})  # no cooldown was taken
    assert answer.status_code == 202 and answer.get_json()["send_count"] == 1

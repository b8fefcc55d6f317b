"""Telnyx failures, produced by the real simulator's fault controls, become the contract's answers."""
from __future__ import annotations

import pytest
import requests

from tests.support.app import code_from, outbox, services

NUMBER = "+13125550140"


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
    arm(sim, mode)
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    if status == 503:
        assert int(response.headers["Retry-After"]) >= 1
    assert outbox(sim, NUMBER) == []


def test_a_definite_failure_is_recorded_and_gives_the_cooldown_back(client, sim, admin_headers=None):
    arm(sim, "http_500")
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


def test_a_timeout_is_503_and_never_sent_twice(client, sim):
    arm(sim, "timeout", sleep=1.5)
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "provider_unavailable"
    # The simulator answered late and kept the message, as Telnyx may: exactly one, never a blind re-send.
    import time
    deadline = time.time() + 5
    while time.time() < deadline and not outbox(sim, NUMBER):
        time.sleep(0.05)
    assert len(outbox(sim, NUMBER)) == 1
    # The text may still arrive, so its code stays good and the cooldown holds.
    code = code_from(outbox(sim, NUMBER)[0])
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429
    assert client.post("/verify", json={"phone_number": NUMBER, "code": code}).get_json()["valid"] is True


def test_telnyx_down_entirely_is_503(make_app, sim):
    from tests.support.redis_server import free_port
    from tests.support.app import CLIENT_KEY
    dead = f"http://127.0.0.1:{free_port()}/v2"
    app = make_app(telnyx_base_url=dead)
    client = app.test_client()
    response = client.post("/request-code", json={"phone_number": NUMBER},
                           headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "provider_unavailable"

"""The core loop through the real app, a real redis-server and the real simulator over HTTP."""
from __future__ import annotations

import json

import pytest

from tests.support.app import CLIENT_KEY, code_from, outbox, store_client

NUMBER = "+13125550123"


def request_code(client, number=NUMBER, **body):
    return client.post("/request-code", json={"phone_number": number, **body})


def sent_code(sim, number=NUMBER) -> str:
    return code_from(outbox(sim, number)[0])


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def test_request_and_verify_round_trip(client, sim):
    response = request_code(client)
    assert response.status_code == 202
    body = response.get_json()
    assert body["phone_number"] == NUMBER and body["purpose"] == "login" and body["status"] == "pending"
    assert body["channel"] == "sms" and body["send_count"] == 1 and body["expires_in"] == 600
    assert body["resend_after"] == 30 and body["delivery"]["status"] == "queued"
    messages = outbox(sim, NUMBER)
    assert len(messages) == 1 and messages[0]["id"] == body["delivery"]["message_id"]
    assert messages[0]["endpoint"] == "messages" and messages[0]["from"] == "+13125550100"
    code = code_from(messages[0])
    assert "10 minutes" in messages[0]["text"]

    approved = client.post("/verify", json={"phone_number": NUMBER, "code": code})
    assert approved.status_code == 200
    assert approved.get_json() == {"valid": True, "status": "approved", "verification_id": body["verification_id"],
                                   "phone_number": NUMBER, "purpose": "login"}
    again = client.post("/verify", json={"phone_number": NUMBER, "code": code})
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "verification_not_found"
    record = client.get(f"/verifications/{body['verification_id']}").get_json()
    assert record["status"] == "approved" and record["sends"][0]["message_id"] == messages[0]["id"]


def test_verify_by_verification_id(client, sim):
    vid = request_code(client).get_json()["verification_id"]
    code = sent_code(sim)
    result = client.post("/verify", json={"verification_id": vid, "code": code})
    assert result.status_code == 200 and result.get_json()["valid"] is True


def test_number_pool_mode_sends_through_the_pool(make_app, sim):
    client = make_app(send_endpoint="number_pool").test_client()
    response = client.post("/request-code", json={"phone_number": NUMBER},
                           headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert response.status_code == 202
    message = outbox(sim, NUMBER)[0]
    assert message["endpoint"] == "number_pool"
    assert message["messaging_profile_id"] == "4001767e-ce0f-4cae-9d5f-0d5e636e7809"
    record = client.get(f"/verifications/{response.get_json()['verification_id']}",
                        headers={"Authorization": f"Bearer {CLIENT_KEY}"}).get_json()
    assert record["sends"][0]["endpoint"] == "number_pool"


def test_five_wrong_codes_lock_the_verification(client, sim):
    request_code(client)
    code = sent_code(sim)
    for remaining in (4, 3, 2, 1):
        body = client.post("/verify", json={"phone_number": NUMBER, "code": wrong(code)}).get_json()
        assert body["valid"] is False and body["attempts_remaining"] == remaining and body["status"] == "pending"
    fifth = client.post("/verify", json={"phone_number": NUMBER, "code": wrong(code)}).get_json()
    assert fifth == {"valid": False, "status": "max_attempts_reached", "attempts_remaining": 0,
                     "verification_id": fifth["verification_id"], "phone_number": NUMBER, "purpose": "login"}
    locked = client.post("/verify", json={"phone_number": NUMBER, "code": code})
    assert locked.status_code == 429 and locked.get_json()["error"]["code"] == "max_attempts_reached"


def test_resend_inside_cooldown_is_429_and_after_it_a_new_code_keeps_id_and_attempts(client, sim, clock):
    clock.freeze()
    first = request_code(client).get_json()
    old_code = sent_code(sim)
    client.post("/verify", json={"phone_number": NUMBER, "code": wrong(old_code)})
    clock.advance(10)
    refused = request_code(client)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited" and refused.headers["Retry-After"] == "20"
    assert refused.get_json()["error"]["retry_after"] == 20 and len(outbox(sim, NUMBER)) == 1
    clock.advance(20)
    second = request_code(client).get_json()
    assert second["verification_id"] == first["verification_id"] and second["send_count"] == 2
    new_code = sent_code(sim)
    assert len(outbox(sim, NUMBER)) == 2
    if new_code != old_code:  # one chance in a million that the CSPRNG repeats itself
        stale = client.post("/verify", json={"phone_number": NUMBER, "code": old_code}).get_json()
        assert stale["valid"] is False and stale["attempts_remaining"] == 3  # attempts were not given back
    assert client.post("/verify", json={"phone_number": NUMBER, "code": new_code}).get_json()["valid"] is True


def test_code_expires_after_its_ttl(client, sim, clock):
    clock.freeze()
    request_code(client)
    code = sent_code(sim)
    clock.advance(601)
    expired = client.post("/verify", json={"phone_number": NUMBER, "code": code})
    assert expired.status_code == 404


def test_purposes_are_separate(client, sim, clock):
    request_code(client, purpose="login")
    login_code = sent_code(sim)
    clock.advance(31)
    request_code(client, purpose="reset_password")
    result = client.post("/verify", json={"phone_number": NUMBER, "code": login_code, "purpose": "reset_password"})
    assert result.get_json()["valid"] is False or login_code == sent_code(sim)
    assert client.post("/verify", json={"phone_number": NUMBER, "code": login_code}).get_json()["valid"] is True


@pytest.mark.parametrize("spelling", ["+1 (312) 555-0123", "+1.312.555.0123", "(312) 555-0123", "312-555-0123"])
def test_every_spelling_of_a_number_shares_one_verification(make_app, sim, spelling):
    client = make_app(default_region="US").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    first = request_code(client, NUMBER).get_json()
    second = request_code(client, spelling)
    assert second.status_code == 429  # the same number and purpose: inside the cooldown
    code = sent_code(sim)
    result = client.post("/verify", json={"phone_number": spelling, "code": code}).get_json()
    assert result["valid"] is True and result["verification_id"] == first["verification_id"]


@pytest.mark.parametrize("code", ["１２３４５６", "12345", "1234567", " 123456", "12345a", 123456, None, "٣٤٥٦٧٨"])
def test_malformed_codes_are_400_and_use_no_attempt(client, sim, code):
    request_code(client)
    response = client.post("/verify", json={"phone_number": NUMBER, "code": code})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_request"
    next_wrong = client.post("/verify", json={"phone_number": NUMBER, "code": wrong(sent_code(sim))}).get_json()
    assert next_wrong["attempts_remaining"] == 4


@pytest.mark.parametrize("body,code", [
    ({"phone_number": "+1312"}, "invalid_phone_number"),
    ({"phone_number": "not a number"}, "invalid_phone_number"),
    ({"phone_number": 13125550123}, "invalid_request"),
    ({}, "invalid_request"),
    ({"phone_number": NUMBER, "purpose": "Log In"}, "invalid_request"),
    ({"phone_number": NUMBER, "purpose": "x" * 33}, "invalid_request"),
    ({"phone_number": NUMBER, "locale": "not a locale!"}, "invalid_request"),
])
def test_bad_request_bodies_change_nothing(client, sim, redis_url, body, code):
    response = client.post("/request-code", json=body)
    assert response.get_json()["error"]["code"] == code
    assert response.status_code in (400, 422)
    assert outbox(sim) == [] and list(store_client(redis_url).scan_iter()) == []


def test_spanish_template_by_locale_and_by_country(client, sim, clock):
    request_code(client, locale="es-MX")
    assert "codigo de verificacion" in outbox(sim, NUMBER)[0]["text"]
    request_code(client, "+34612345678")
    assert "codigo de verificacion" in outbox(sim, "+34612345678")[0]["text"]
    request_code(client, "+447400123456")
    assert "verification code" in outbox(sim, "+447400123456")[0]["text"]


def test_get_and_cancel_a_verification(client, sim):
    vid = request_code(client).get_json()["verification_id"]
    code = sent_code(sim)
    record = client.get(f"/verifications/{vid}").get_json()
    assert record["status"] == "pending" and record["attempts"] == 0 and record["attempts_remaining"] == 5
    assert record["sends"][0]["delivery_status"] == "queued" and record["sends"][0]["errors"] == []
    assert "code" not in json.dumps(record).replace("code_", "")
    canceled = client.delete(f"/verifications/{vid}")
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    assert client.post("/verify", json={"phone_number": NUMBER, "code": code}).status_code == 404
    assert client.delete(f"/verifications/{vid}").status_code == 404
    for bad in ("nope", "*", "6f1c0000-0000-4000-8000-00000000000?", vid.upper()):
        assert client.get(f"/verifications/{bad}").status_code == 404


def test_unknown_verification_ids_are_404(client):
    response = client.get("/verifications/6f1c0000-0000-4000-8000-000000000000")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "verification_not_found"


def test_no_redis_value_or_key_contains_a_code(client, sim, redis_url):
    codes = []
    for number in (NUMBER, "+13125550124", "+13125550125"):
        request_code(client, number)
        codes.append(sent_code(sim, number))
    client.post("/verify", json={"phone_number": NUMBER, "code": wrong(codes[0])})
    client.post("/verify", json={"phone_number": "+13125550124", "code": codes[1]})
    store = store_client(redis_url)
    dump = []
    for key in store.scan_iter():
        kind = store.type(key).decode()
        readers = {"string": lambda k: [store.get(k)], "hash": lambda k: list(store.hgetall(k).items()),
                   "zset": lambda k: store.zrange(k, 0, -1)}
        value = readers[kind](key)
        dump.append(repr((key, value)))
        assert store.pttl(key) > 0, f"{key!r} has no expiry"
    text = "\n".join(dump)
    assert dump and all(code not in text for code in codes)


def test_idempotency_key_replays_the_first_answer_and_sends_once(client, sim):
    headers = {"Idempotency-Key": "order-42"}
    first = client.post("/request-code", json={"phone_number": NUMBER}, headers=headers)
    second = client.post("/request-code", json={"phone_number": NUMBER}, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json() and second.headers["Idempotent-Replayed"] == "true"
    assert len(outbox(sim, NUMBER)) == 1
    other = client.post("/request-code", json={"phone_number": "+13125550199"}, headers=headers)
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert outbox(sim, "+13125550199") == []
    too_long = client.post("/request-code", json={"phone_number": NUMBER}, headers={"Idempotency-Key": "k" * 129})
    assert too_long.status_code == 400


def test_idempotency_key_is_released_after_a_transient_failure(client, sim):
    sim.state.reset()
    import requests as http
    http.post(f"{sim.url}/sim/faults", json={"mode": "http_500", "count": 3}, timeout=5)  # every attempt fails
    headers = {"Idempotency-Key": "retry-me"}
    assert client.post("/request-code", json={"phone_number": NUMBER}, headers=headers).status_code == 503
    retried = client.post("/request-code", json={"phone_number": NUMBER}, headers=headers)
    assert retried.status_code == 202 and len(outbox(sim, NUMBER)) == 1

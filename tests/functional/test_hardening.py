"""The security bar as tests over whole cycles: webhook fuzzing, key hygiene, and the Telnyx faults left over.

Everything here goes through the real app, a real redis-server, the real simulator and real Ed25519 keys.
"""
from __future__ import annotations

import base64
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import nacl.signing
import pytest
import redis
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otpservice.storage.keys import OPTOUT_INDEX as INDEX_KEY
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, LiveServer, code_from, outbox
from tests.support.webhooks import PATH, delivery_event, encode, inbound_event, post_signed

NUMBER = "+13125554100"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def dump(redis_url: str) -> dict[bytes, tuple[str, object, int]]:
    """Every key of the suite's Redis with its type, value and PTTL."""
    store = redis.Redis.from_url(redis_url)
    out = {}
    for key in store.scan_iter(count=1000):
        kind = store.type(key).decode()
        readers = {"string": store.get, "hash": store.hgetall,
                   "zset": lambda k: store.zrange(k, 0, -1, withscores=True),
                   "set": store.smembers, "list": lambda k: store.lrange(k, 0, -1)}
        out[key] = (kind, readers[kind](key), store.pttl(key))
    return out


# -- webhook fuzz ------------------------------------------------------------------------------------------
@FUZZ
@given(body=st.binary(max_size=300), signature=st.binary(min_size=0, max_size=80),
       timestamp=st.one_of(st.integers(min_value=-10, max_value=4_000_000_000).map(str), st.text(max_size=12)))
def test_random_signatures_and_bodies_are_refused_and_change_nothing(app, clock, redis_url, body, signature,
                                                                     timestamp):
    clock.freeze()
    before = dump(redis_url)
    headers = {"telnyx-signature-ed25519": base64.b64encode(signature).decode(), "Content-Type": "application/json"}
    if timestamp.isascii() and "\n" not in timestamp and "\r" not in timestamp and "\x00" not in timestamp:
        headers["telnyx-timestamp"] = timestamp
    response = app.test_client().post(PATH, data=body, headers=headers)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "invalid_signature"
    assert dump(redis_url) == before


@FUZZ
@given(body=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                             st.sampled_from(["data", "event_type", "id", "payload", "to", "status", "from",
                                              "phone_number", "text", "errors", "x"]), inner, max_size=4),
                         max_leaves=15))
def test_signed_garbage_is_400_or_acknowledged_never_5xx(app, clock, sim_signing_key, body):
    clock.freeze()
    response = post_signed(app.test_client(), encode(body) if not isinstance(body, bytes) else body,
                           sim_signing_key, timestamp=clock())
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert response.get_json()["error"]["code"] == "invalid_payload"


# -- key hygiene over a whole cycle -------------------------------------------------------------------------
def test_a_full_cycle_leaves_only_expiring_keys_and_no_code(app, client, sim, clock, redis_url, sim_signing_key):
    """Every key written has a TTL except opt-outs (and TOTP factors); no key or value holds a code."""
    clock.freeze()
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    hook = app.test_client()
    codes = []
    first = client.post("/request-code", json={"phone_number": NUMBER, "client_ip": "203.0.113.9"},
                        headers={"Idempotency-Key": "cycle-1"}).get_json()
    codes.append(code_from(outbox(sim, NUMBER)[0]))
    message_id = first["delivery"]["message_id"]
    post_signed(hook, delivery_event(message_id, "sent", to=NUMBER), sim_signing_key, timestamp=clock())
    post_signed(hook, delivery_event(message_id, "delivered", to=NUMBER), sim_signing_key, timestamp=clock())
    client.post("/verify", json={"phone_number": NUMBER, "code": "000000" if codes[0] != "000000" else "111111"})
    clock.advance(31)
    client.post("/request-code", json={"phone_number": NUMBER})
    codes.append(code_from(outbox(sim, NUMBER)[0]))
    client.post("/verify", json={"phone_number": NUMBER, "code": codes[-1]})
    post_signed(hook, inbound_event("+13125554101", "STOP"), sim_signing_key, timestamp=clock())
    admin.put("/admin/opt-outs/+13125554102")
    admin.get(f"/admin/verifications?phone_number={NUMBER}")
    enrolled = client.post("/totp/enroll", json={"user_id": "u-hygiene", "label": "hygiene"}).get_json()

    keys = dump(redis_url)
    assert len(keys) > 10
    persistent = {key for key, (_, _, ttl) in keys.items() if ttl < 0}
    allowed = re.compile(rb"^otp:(oo:index|oo:src:[a-z_]+|\{[0-9a-f]{4}\}:oo:[0-9a-f]+"
                         rb"|\{t[0-9a-f]{4}\}:totp:f:[0-9a-f]+)$")
    assert all(allowed.match(key) for key in persistent), persistent
    text = repr(keys)
    for code in codes:
        assert code not in text
    for secret in (enrolled["secret"], ADMIN_TOKEN, CLIENT_KEY):
        assert secret not in text
    assert INDEX_KEY.encode() in keys


# -- Telnyx faults beyond the core's ------------------------------------------------------------------------
@pytest.fixture
def wired(make_app):
    """The app on a port bound first, so its webhook URL points at itself."""
    holder = {}
    server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
    holder["app"] = make_app(webhook_url=f"{server.url}/webhooks/telnyx")
    yield server, holder["app"]
    server.stop()


def arm(sim, mode: str, count: int = 1, **extra) -> None:
    requests.post(f"{sim.url}/sim/faults", json={"mode": mode, "count": count, **extra}, timeout=5).raise_for_status()


def test_rate_limited_by_telnyx_passes_its_reset_on(client, sim):
    import time
    arm(sim, "rate_limit", count=3)  # every attempt: the client waits out each x-ratelimit-reset (2 s), then gives up
    started = time.monotonic()
    response = client.post("/request-code", json={"phone_number": NUMBER})
    assert time.monotonic() - started >= 2  # it waited as told before its second attempt, not at once
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "provider_unavailable"
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert outbox(sim, NUMBER) == []
    # Telnyx took nothing, so the cooldown was given back: the retry goes out at once.
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202


def test_a_webhook_that_never_comes_leaves_the_send_queued(wired, sim):
    import time
    server, app = wired
    arm(sim, "no_webhook")
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    vid = requests.post(f"{server.url}/request-code", json={"phone_number": NUMBER}, headers=auth,
                        timeout=5).json()["verification_id"]
    time.sleep(0.5)  # the simulator would have posted by now (webhook_delay is 10 ms)
    send = requests.get(f"{server.url}/verifications/{vid}", headers=auth, timeout=5).json()["sends"][0]
    assert send["delivery_status"] == "queued"
    hooks = requests.get(f"{sim.url}/sim/webhooks", timeout=5).json()["data"]
    assert hooks == []


def test_a_delivery_report_after_the_code_expired_is_still_recorded(app, client, sim, clock, sim_signing_key):
    clock.freeze()
    answer = client.post("/request-code", json={"phone_number": NUMBER}).get_json()
    code = code_from(outbox(sim, NUMBER)[0])
    clock.advance(700)
    response = post_signed(app.test_client(), delivery_event(answer["delivery"]["message_id"], "delivered", to=NUMBER),
                           sim_signing_key, timestamp=clock())
    assert response.status_code == 200
    record = client.get(f"/verifications/{answer['verification_id']}").get_json()
    assert record["status"] == "expired" and record["sends"][0]["delivery_status"] == "delivered"
    assert client.post("/verify", json={"phone_number": NUMBER, "code": code}).status_code == 404


def test_parallel_webhooks_for_one_message_leave_the_final_status(app, client, sim, clock, sim_signing_key):
    clock.freeze()
    answer = client.post("/request-code", json={"phone_number": NUMBER}).get_json()
    message_id = answer["delivery"]["message_id"]
    events = [delivery_event(message_id, status, to=NUMBER, event_id=str(uuid.uuid4()))
              for status in ("queued", "sending", "sent", "delivered") * 6]
    server = LiveServer(app)
    try:
        def post(event):
            raw = encode(event)
            from otpservice.sending.telnyx.signatures import sign_webhook
            headers = {**sign_webhook(sim_signing_key, raw, timestamp=int(clock())),
                       "Content-Type": "application/json"}
            return requests.post(f"{server.url}{PATH}", data=raw, headers=headers, timeout=10).status_code
        with ThreadPoolExecutor(12) as pool:
            statuses = list(pool.map(post, reversed(events)))
    finally:
        server.stop()
    assert set(statuses) == {200}
    send = client.get(f"/verifications/{answer['verification_id']}").get_json()["sends"][0]
    assert send["delivery_status"] == "delivered"


def test_every_spelling_of_a_number_shares_limits_under_parallel_requests(make_app, sim, clock):
    app = make_app(default_region="US")
    spellings = ["+13125554300", "+1 312 555 4300", "(312) 555-4300", "312.555.4300", "1-312-555-4300"]
    server = LiveServer(app)
    try:
        auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
        bodies = [{"phone_number": spellings[i % len(spellings)], "purpose": f"p{i % 10}"} for i in range(50)]
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda b: requests.post(f"{server.url}/request-code", json=b, headers=auth,
                                                            timeout=30), bodies))
    finally:
        server.stop()
    accepted = [r for r in results if r.status_code == 202]
    # Ten purposes, but one number: its budget (3 per 10 minutes) holds across spellings and purposes.
    assert len(accepted) == 3 and len(outbox(sim, "+13125554300")) == 3
    assert all(r.status_code == 429 for r in results if r not in accepted)


def test_signatures_from_another_key_never_move_a_status(app, client, sim, clock):
    clock.freeze()
    answer = client.post("/request-code", json={"phone_number": NUMBER}).get_json()
    stranger = nacl.signing.SigningKey.generate()
    failed = delivery_event(answer["delivery"]["message_id"], "delivery_failed", to=NUMBER)
    response = post_signed(app.test_client(), failed, stranger, timestamp=clock())
    assert response.status_code == 401
    send = client.get(f"/verifications/{answer['verification_id']}").get_json()["sends"][0]
    assert send["delivery_status"] == "queued"
    assert json.dumps(send["errors"]) == "[]"

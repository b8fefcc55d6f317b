"""Delivery updates from signed webhooks: forward-only statuses, carrier errors, dedupe, delivery-aware resend."""
from __future__ import annotations

import uuid

import pytest
import redis

from tests.support.app import CLIENT_KEY, outbox, services
from tests.support.redis_server import RedisServer
from tests.support.webhooks import delivery_event, encode, inbound_event, post_signed

NUMBER = "+13125550140"
UNDELIVERABLE = {"code": "40008", "title": "Undeliverable", "detail": "The handset could not be reached."}


@pytest.fixture
def hook(app, clock, sim_signing_key):
    """Post a signed webhook at the app's (frozen) time; returns the response."""
    clock.freeze()
    test_client = app.test_client()

    def post(body):
        return post_signed(test_client, body, sim_signing_key, timestamp=clock())
    return post


def request_code(client, number: str = NUMBER) -> dict:
    response = client.post("/request-code", json={"phone_number": number})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def send_of(client, vid: str, index: int = 0) -> dict:
    return client.get(f"/verifications/{vid}").get_json()["sends"][index]


def record_fields(redis_url: str, vid: str) -> dict:
    client = redis.Redis.from_url(redis_url)
    try:
        return client.hgetall(f"otp:{{{vid[:4]}}}:v:{vid}")
    finally:
        client.close()


def test_sent_then_delivered(client, hook, clock):
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    assert send_of(client, vid)["delivery_status"] == "queued"
    clock.advance(2)
    assert hook(delivery_event(mid, "sent", to=NUMBER)).get_json() == {"result": "updated",
                                                                      "event_type": "message.sent"}
    assert send_of(client, vid)["delivery_status"] == "sent"
    clock.advance(3)
    assert hook(delivery_event(mid, "delivered", to=NUMBER)).get_json()["result"] == "updated"
    send = send_of(client, vid)
    assert send["delivery_status"] == "delivered" and send["errors"] == [] and send["message_id"] == mid
    assert send["delivery_updated_at"] != send["sent_at"]
    from otpservice.core.verification import iso
    assert send["delivery_updated_at"] == iso(int(clock() * 1000))


def test_finalized_before_sent_never_moves_back(client, hook):
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    assert hook(delivery_event(mid, "delivered", to=NUMBER)).get_json()["result"] == "updated"
    assert hook(delivery_event(mid, "sent", to=NUMBER)).get_json()["result"] == "unchanged"
    assert hook(delivery_event(mid, "sending", to=NUMBER)).get_json()["result"] == "unchanged"
    assert send_of(client, vid)["delivery_status"] == "delivered"


@pytest.mark.parametrize("first,second", [("delivered", "delivery_failed"), ("delivery_failed", "delivered"),
                                          ("expired", "delivered"), ("delivery_unconfirmed", "delivered")])
def test_terminal_states_are_final(first, second, client, hook):
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    assert hook(delivery_event(mid, first, to=NUMBER)).get_json()["result"] == "updated"
    assert hook(delivery_event(mid, second, to=NUMBER, errors=[UNDELIVERABLE])).get_json()["result"] == "unchanged"
    send = send_of(client, vid)
    assert send["delivery_status"] == first and send["errors"] == []


def test_carrier_errors_are_kept(client, hook):
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    blocked = {"code": "40020", "title": "2FA traffic blocked for 24 hours"}
    hook(delivery_event(mid, "sent", to=NUMBER, errors=[blocked]))
    hook(delivery_event(mid, "delivery_failed", to=NUMBER, errors=[UNDELIVERABLE]))
    hook(delivery_event(mid, "sent", to=NUMBER))  # late and empty: changes nothing, errors stay
    send = send_of(client, vid)
    assert send["delivery_status"] == "delivery_failed"
    assert send["errors"] == [blocked, {"code": "40008", "title": "Undeliverable"}]


def test_replay_and_duplicates_change_nothing(client, hook, redis_url):
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    sent = delivery_event(mid, "sent", to=NUMBER, errors=[UNDELIVERABLE])
    assert hook(sent).get_json()["result"] == "updated"
    before = record_fields(redis_url, vid)
    assert hook(sent).get_json()["result"] == "duplicate"  # the same bytes replayed inside the window
    same_id = delivery_event(mid, "delivered", to=NUMBER, event_id=sent["data"]["id"])
    assert hook(same_id).get_json()["result"] == "duplicate"  # a retry is recognised by its event id alone
    assert record_fields(redis_url, vid) == before
    assert send_of(client, vid)["delivery_status"] == "sent"


def test_event_ids_expire_with_the_record_retention(client, hook, redis_url, app):
    created = request_code(client)
    event = delivery_event(created["delivery"]["message_id"], "sent", to=NUMBER)
    hook(event)
    store = redis.Redis.from_url(redis_url)
    try:
        [key] = store.keys(f"otp:{{{created['verification_id'][:4]}}}:ev:*")
        ttl = store.pttl(key)
    finally:
        store.close()
    assert 0 < ttl <= services(app).settings.webhook_event_ttl * 1000


def test_unknown_message_ids_and_statuses_are_acknowledged(client, hook, redis_url):
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    before = record_fields(redis_url, vid)
    assert hook(delivery_event(str(uuid.uuid4()), "delivered", to=NUMBER)).get_json()["result"] == "unknown_message"
    assert hook(delivery_event(mid, "webhook_delivered", to=NUMBER)).get_json()["result"] == "ignored"
    no_id = delivery_event(mid, "delivered", to=NUMBER)
    del no_id["data"]["payload"]["id"]
    assert hook(no_id).get_json()["result"] == "ignored"
    assert record_fields(redis_url, vid) == before


def test_a_message_id_of_another_numbers_send_changes_nothing(client, hook, redis_url):
    """The send is looked up among the recipient's verifications only: another number's message id is unknown."""
    first = request_code(client, "+13125550141")
    other = request_code(client, "+13125550142")
    before = {vid: record_fields(redis_url, vid) for vid in (first["verification_id"], other["verification_id"])}
    crossed = [delivery_event(other["delivery"]["message_id"], "delivered", to="+13125550141"),
               delivery_event(first["delivery"]["message_id"], "delivery_failed", to="+13125550142")]
    for event in crossed:
        assert hook(event).get_json()["result"] == "unknown_message"
    assert {vid: record_fields(redis_url, vid) for vid in before} == before
    store = redis.Redis.from_url(redis_url)
    try:  # nothing remembered either: the event ids stay free for a correct event
        assert store.keys("otp:*:ev:*") == []
    finally:
        store.close()
    fixed = delivery_event(other["delivery"]["message_id"], "delivered", to="+13125550142",
                           event_id=crossed[0]["data"]["id"])
    assert hook(fixed).get_json()["result"] == "updated"
    assert send_of(client, other["verification_id"])["delivery_status"] == "delivered"
    assert send_of(client, first["verification_id"])["delivery_status"] == "queued"


@pytest.mark.parametrize("spelling,result", [("+1 312-555-0140", "updated"), ("+1 (312) 555 0140", "updated"),
                                             ("3125550140", "unknown_message"), ("not a number", "unknown_message"),
                                             ("", "unknown_message"), (None, "unknown_message"),
                                             ("+13125550140\n", "updated")])
def test_the_recipient_is_read_as_e164(spelling, result, client, hook, redis_url):
    """Telnyx echoes the E.164 we sent; another spelling is canonicalised, and no number means no send of ours."""
    created = request_code(client)
    vid, mid = created["verification_id"], created["delivery"]["message_id"]
    event = delivery_event(mid, "delivered", to=NUMBER)
    event["data"]["payload"]["to"][0]["phone_number"] = spelling
    before = record_fields(redis_url, vid)
    assert hook(event).get_json()["result"] == result
    if result == "updated":
        assert send_of(client, vid)["delivery_status"] == "delivered"
    else:
        assert record_fields(redis_url, vid) == before


def test_every_send_of_the_number_is_found(client, hook, clock):
    """A resend (send 2), another purpose's live verification, and an earlier verification of the number."""
    clock.freeze()
    earlier = request_code(client)
    clock.advance(601)  # its code expired: the next request starts a new verification
    latest = request_code(client)
    assert latest["verification_id"] != earlier["verification_id"]
    clock.advance(31)
    resend = request_code(client)
    assert resend["verification_id"] == latest["verification_id"] and resend["send_count"] == 2
    signup = client.post("/request-code", json={"phone_number": NUMBER, "purpose": "signup"}).get_json()
    assert signup["verification_id"] not in (earlier["verification_id"], latest["verification_id"])
    for sent, status in ((resend, "delivered"), (latest, "delivery_failed"), (earlier, "expired"),
                         (signup, "sent")):
        event = delivery_event(sent["delivery"]["message_id"], status, to=NUMBER)
        assert hook(event).get_json()["result"] == "updated", sent
    assert [s["delivery_status"] for s in client.get(f"/verifications/{latest['verification_id']}")
            .get_json()["sends"]] == ["delivery_failed", "delivered"]
    assert send_of(client, earlier["verification_id"])["delivery_status"] == "expired"
    assert send_of(client, signup["verification_id"])["delivery_status"] == "sent"


def test_a_delivery_update_costs_one_redis_round_trip(client, hook, redis_sends):
    """The benchmark's budget: the lookup and the update are one script call."""
    warm = request_code(client, "+13125550144")
    hook(delivery_event(warm["delivery"]["message_id"], "sent", to="+13125550144"))  # script loaded, pool warm
    created = request_code(client)
    redis_sends.clear()
    assert hook(delivery_event(created["delivery"]["message_id"], "delivered", to=NUMBER)).get_json()["result"] == \
        "updated"
    assert hook(delivery_event(str(uuid.uuid4()), "delivered", to=NUMBER)).get_json()["result"] == "unknown_message"
    assert len(redis_sends) == 2


# -- delivery-aware resend --------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["delivery_failed", "sending_failed", "expired"])
def test_failed_latest_send_skips_the_cooldown(status, client, hook, sim):
    created = request_code(client)
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429
    hook(delivery_event(created["delivery"]["message_id"], status, to=NUMBER, errors=[UNDELIVERABLE]))
    again = request_code(client)
    assert again["verification_id"] == created["verification_id"] and again["send_count"] == 2
    assert len(outbox(sim, NUMBER)) == 2
    # The skip is spent: the new send has not failed, so the cooldown is back.
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429


@pytest.mark.parametrize("status", ["sent", "delivered", "delivery_unconfirmed"])
def test_other_statuses_keep_the_cooldown(status, client, hook, sim):
    created = request_code(client)
    hook(delivery_event(created["delivery"]["message_id"], status, to=NUMBER))
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429
    assert len(outbox(sim, NUMBER)) == 1


def test_a_failure_of_an_older_send_keeps_the_cooldown(client, hook, clock, sim):
    first = request_code(client)
    clock.advance(31)
    second = request_code(client)
    assert second["send_count"] == 2
    hook(delivery_event(first["delivery"]["message_id"], "delivery_failed", to=NUMBER))
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429
    hook(delivery_event(second["delivery"]["message_id"], "delivery_failed", to=NUMBER))
    assert request_code(client)["send_count"] == 3


@pytest.mark.parametrize("failover,expected", [("number_pool", "number_pool"), ("", "messages")])
def test_resend_after_failed_delivery_uses_the_failover_endpoint(failover, expected, make_app, clock,
                                                                   sim_signing_key, sim):
    app = make_app(failover_endpoint=failover)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    clock.freeze()
    created = request_code(client)
    assert outbox(sim, NUMBER)[0]["endpoint"] == "messages"
    failed = delivery_event(created["delivery"]["message_id"], "delivery_failed", to=NUMBER)
    post_signed(app.test_client(), failed, sim_signing_key, timestamp=clock())
    resent = request_code(client)
    [latest, _] = outbox(sim, NUMBER)
    assert latest["endpoint"] == expected and latest["id"] == resent["delivery"]["message_id"]
    sends = client.get(f"/verifications/{created['verification_id']}").get_json()["sends"]
    assert [s["endpoint"] for s in sends] == ["messages", expected]
    assert [s["delivery_status"] for s in sends] == ["delivery_failed", "queued"]
    # The resend's report is found through the recipient the simulator's outbox recorded for it.
    delivered = delivery_event(latest["id"], "delivered", to=latest["to"])
    assert post_signed(app.test_client(), delivered, sim_signing_key,
                       timestamp=clock()).get_json()["result"] == "updated"
    sends = client.get(f"/verifications/{created['verification_id']}").get_json()["sends"]
    assert [s["delivery_status"] for s in sends] == ["delivery_failed", "delivered"]


# -- Redis down -------------------------------------------------------------------------------------------
def test_redis_down_answers_503_so_telnyx_retries(make_app, clock, sim_signing_key):
    server = RedisServer().start()
    try:
        app = make_app(redis_url=server.url, redis_timeout=0.5)
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
        clock.freeze()
        created = request_code(client)
        server.stop()
        for body in (delivery_event(created["delivery"]["message_id"], "delivered", to=NUMBER),
                     inbound_event("+13125550143", "STOP")):
            response = post_signed(app.test_client(), encode(body), sim_signing_key, timestamp=clock())
            assert response.status_code == 503
            assert response.get_json()["error"]["code"] == "store_unavailable"
    finally:
        server.cleanup()

"""record_send: one round trip, and still correct when Redis has forgotten its scripts (NOSCRIPT)."""
from __future__ import annotations

import redis

from otpservice.core import codes
from otpservice.storage import keys
from otpservice.storage.verifications import VerificationStore

SECRET = b"s" * 40


def reserve(store: VerificationStore, phone: str):
    return store.begin_send(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", "123456"),
                            now_ms=1_000, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=30_000,
                            skip_cooldown_after_failure=True)


def test_record_send_after_script_flush_still_records(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    res = reserve(store, "+13125550123")
    client.script_flush()
    store.record_send(res.verification_id, 1, outcome="sent", message_id="m-1", endpoint="messages", now_ms=2_000,
                      delivery_status="queued")
    record = store.get(res.verification_id, now_ms=3_000)
    assert record.sends[0].message_id == "m-1"
    # The message id lives on the record alone (delivery webhooks find it through the number's hash).
    assert client.keys("otp:msg:*") == [] and client.hget(keys.record(res.verification_id), "m1") == b"m-1"


def test_record_send_sends_no_script_exists(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    res = reserve(store, "+13125550124")
    client.config_resetstat()
    store.record_send(res.verification_id, 1, outcome="sent", message_id="m-2", endpoint="messages", now_ms=2_000,
                      delivery_status="queued")
    stats = client.info("commandstats")
    assert "cmdstat_script|exists" not in stats and "cmdstat_script" not in stats
    assert stats["cmdstat_evalsha"]["calls"] == 1


def test_the_route_is_kept_on_its_send_and_a_failed_ones_comes_back_with_the_resend(redis_url):
    """r<k> is written only off its default (`primary`); after a failed send, begin_send names its route."""
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    phone = "+13125550125"
    res = reserve(store, phone)
    store.record_send(res.verification_id, 1, outcome="sent", message_id="m-3", endpoint="messages", now_ms=2_000,
                      delivery_status="queued")
    assert client.hget(keys.record(res.verification_id), "r1") is None
    assert store.get(res.verification_id, now_ms=3_000).sends[0].route == "primary"
    again = store.begin_send(phone=phone, purpose="login", code_hash=b"h" * 16, now_ms=40_000, ttl_ms=600_000,
                             retention_ms=86_400_000, cooldown_ms=30_000, skip_cooldown_after_failure=True)
    assert (again.after_failed_delivery, again.failed_route) == (False, "")
    store.record_send(res.verification_id, 2, outcome="failed", message_id=None, endpoint="number_pool",
                      route="uk-pool", now_ms=41_000, delivery_status="sending_failed")
    assert client.hget(keys.record(res.verification_id), "r2") == b"uk-pool"
    assert [s.route for s in store.get(res.verification_id, now_ms=42_000).sends] == ["primary", "uk-pool"]
    third = store.begin_send(phone=phone, purpose="login", code_hash=b"i" * 16, now_ms=42_000, ttl_ms=600_000,
                             retention_ms=86_400_000, cooldown_ms=30_000, skip_cooldown_after_failure=True)
    assert (third.outcome, third.after_failed_delivery, third.failed_route) == ("resend", True, "uk-pool")

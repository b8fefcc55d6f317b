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

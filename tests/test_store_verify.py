"""Store.verify: one EVALSHA per check, and still right when Redis has forgotten its scripts (NOSCRIPT)."""
from __future__ import annotations

import redis

from otpservice import codes
from otpservice.store import Store

SECRET = b"s" * 40
LIMITS = dict(max_attempts=5, failure_cap=10, failure_window_ms=86_400_000)


def issue(store: Store, phone: str, code: str = "123456") -> str:
    res = store.begin_send(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                           now_ms=1_000, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=30_000,
                           skip_cooldown_after_failure=True)
    return res.verification_id


def check(store: Store, phone: str, code: str):
    return store.verify(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                        now_ms=2_000, **LIMITS)


def test_verify_after_script_flush_still_decides(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = Store(client, secret=SECRET)
    vid = issue(store, "+13125550141")
    client.script_flush()
    assert check(store, "+13125550141", "654321").outcome == "wrong"
    client.script_flush()
    result = check(store, "+13125550141", "123456")
    assert (result.outcome, result.verification_id) == ("approved", vid)
    assert check(store, "+13125550141", "123456").outcome == "not_found"  # spent


def test_verify_is_one_evalsha_and_nothing_else(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = Store(client, secret=SECRET)
    issue(store, "+13125550142")
    check(store, "+13125550142", "000000")  # the script is loaded now
    client.config_resetstat()
    assert check(store, "+13125550142", "111111").outcome == "wrong"
    stats = client.info("commandstats")
    # Commands run inside the script are counted too; what the client sent is the one EVALSHA.
    assert not {"cmdstat_script|exists", "cmdstat_script|load", "cmdstat_eval"} & set(stats)
    assert stats["cmdstat_evalsha"]["calls"] == 1

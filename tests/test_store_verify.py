"""Store.verify: one EVALSHA per check, still right when Redis has forgotten its scripts (NOSCRIPT), and the
number's failure log (its daily cap) kept in the number's hash."""
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


def test_a_failure_keeps_the_number_for_the_whole_failure_window(redis_url):
    """The failures live in the number's hash: a wrong code extends its life to the window, never shortens it."""
    client = redis.Redis.from_url(redis_url)
    store = Store(client, secret=SECRET)
    issue(store, "+13125550143")
    number = store.number_key("+13125550143")
    client.pexpire(number, 60_000)  # as if its retention were shorter than the failure window
    assert check(store, "+13125550143", "000000").outcome == "wrong"
    assert 86_000_000 < client.pttl(number) <= 86_400_000
    client.pexpire(number, 100 * 86_400_000)  # longer than the window: kept
    assert check(store, "+13125550143", "111111").outcome == "wrong"
    assert client.pttl(number) > 86_400_000


def test_the_failure_log_keeps_the_newest_cap_failures_and_locks_at_the_cap(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = Store(client, secret=SECRET)
    phone = "+13125550144"
    limits = dict(max_attempts=5, failure_cap=3, failure_window_ms=10_000)
    issue(store, phone)
    for now in (1_500, 2_000, 2_500):
        code_hash = codes.code_hash(SECRET, phone, "login", "000000")
        assert store.verify(phone=phone, purpose="login", code_hash=code_hash, now_ms=now, **limits).outcome == "wrong"
    assert len(client.hget(store.number_key(phone), ".f")) == 3 * 6  # 6 bytes per failure
    right = codes.code_hash(SECRET, phone, "login", "123456")
    locked = store.verify(phone=phone, purpose="login", code_hash=right, now_ms=3_000, **limits)
    assert (locked.outcome, locked.locked_for_ms) == ("number_locked", 1_500 + 10_000 - 3_000)
    # The oldest failure leaves the window at 11,500: the right code verifies again.
    assert store.verify(phone=phone, purpose="login", code_hash=right, now_ms=11_501, **limits).outcome == "approved"

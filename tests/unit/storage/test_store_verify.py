"""VerificationStore.verify: one EVALSHA per check, still right when Redis has forgotten its scripts (NOSCRIPT), and the
number's failure log (its daily cap) kept in the number's hash."""
from __future__ import annotations

import redis

from otpservice.core import codes
from otpservice.storage import keys
from otpservice.storage.scripts import load_script
from otpservice.storage.verifications import CLOCK_SLACK_MS, FAILURE_WINDOW_MS, VerificationStore

SECRET = b"s" * 40
LIMITS = dict(max_attempts=5, failure_cap=10, failure_window_ms=86_400_000)


def issue(store: VerificationStore, phone: str, code: str = "123456") -> str:
    res = store.begin_send(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                           now_ms=1_000, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=30_000,
                           skip_cooldown_after_failure=True)
    return res.verification_id


def check(store: VerificationStore, phone: str, code: str):
    return store.verify(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                        now_ms=2_000, **LIMITS)


def test_verify_after_script_flush_still_decides(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    vid = issue(store, "+13125550141")
    client.script_flush()
    assert check(store, "+13125550141", "654321").outcome == "wrong"
    client.script_flush()
    result = check(store, "+13125550141", "123456")
    assert (result.outcome, result.verification_id) == ("approved", vid)
    assert check(store, "+13125550141", "123456").outcome == "not_found"  # spent


def test_verify_is_one_evalsha_and_nothing_else(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    issue(store, "+13125550142")
    check(store, "+13125550142", "000000")  # the script is loaded now
    client.config_resetstat()
    assert check(store, "+13125550142", "111111").outcome == "wrong"
    stats = client.info("commandstats")
    # Commands run inside the script are counted too; what the client sent is the one EVALSHA.
    assert not {"cmdstat_script|exists", "cmdstat_script|load", "cmdstat_eval"} & set(stats)
    assert stats["cmdstat_evalsha"]["calls"] == 1


def test_the_number_outlives_the_failure_window_after_its_code_expires(redis_url):
    """The failures live in the number's hash and verify.lua sets no expiry: each send keeps the hash for the
    code's life plus the failure window (plus clock slack), even when records are retained for less."""
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    phone = "+13125550143"
    code_hash = codes.code_hash(SECRET, phone, "login", "123456")
    store.begin_send(phone=phone, purpose="login", code_hash=code_hash, now_ms=1_000, ttl_ms=600_000,
                     retention_ms=600_000, cooldown_ms=30_000, skip_cooldown_after_failure=True)
    number = keys.number(phone)
    least = 600_000 + FAILURE_WINDOW_MS  # a failure at the code's last moment counts for the window after it
    assert least < client.pttl(number) <= least + CLOCK_SLACK_MS
    assert check(store, phone, "000000").outcome == "wrong"
    assert least < client.pttl(number) <= least + CLOCK_SLACK_MS
    client.pexpire(number, 100 * 86_400_000)  # longer already: a send never shortens it
    store.begin_send(phone=phone, purpose="login", code_hash=code_hash, now_ms=40_000, ttl_ms=600_000,
                     retention_ms=600_000, cooldown_ms=30_000, skip_cooldown_after_failure=True)
    assert client.pttl(number) > 99 * 86_400_000


def test_the_failure_log_keeps_the_newest_cap_failures_and_locks_at_the_cap(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    phone = "+13125550144"
    limits = dict(max_attempts=5, failure_cap=3, failure_window_ms=10_000)
    issue(store, phone)
    for now in (1_500, 2_000, 2_500):
        code_hash = codes.code_hash(SECRET, phone, "login", "000000")
        assert store.verify(phone=phone, purpose="login", code_hash=code_hash, now_ms=now, **limits).outcome == "wrong"
    assert len(client.hget(keys.number(phone), ".f")) == 3 * 6  # 6 bytes per failure
    right = codes.code_hash(SECRET, phone, "login", "123456")
    locked = store.verify(phone=phone, purpose="login", code_hash=right, now_ms=3_000, **limits)
    assert (locked.outcome, locked.locked_for_ms) == ("number_locked", 1_500 + 10_000 - 3_000)
    # The oldest failure leaves the window at 11,500: the right code verifies again.
    assert store.verify(phone=phone, purpose="login", code_hash=right, now_ms=11_501, **limits).outcome == "approved"


def test_the_failure_log_stays_in_time_order_and_drops_its_oldest_past_the_cap(redis_url):
    """verify.lua appends to the log without decoding it; a lagging clock's failure still lands in order, and
    the lock reads the cap-th newest failure, also when the cap was lowered since the log was written."""
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    phone = "+13125550145"
    issue(store, phone)
    limits = dict(max_attempts=5, failure_window_ms=10_000)

    def attempt(purpose: str, code: str, now: int, cap: int = 3):
        code_hash = codes.code_hash(SECRET, phone, purpose, code)
        return store.verify(phone=phone, purpose=purpose, code_hash=code_hash, now_ms=now, failure_cap=cap, **limits)

    def logged() -> list[int]:
        raw = client.hget(keys.number(phone), ".f")
        return [int.from_bytes(raw[i:i + 6], "big") for i in range(0, len(raw), 6)]

    for now in (1_500, 1_400, 2_000):  # 1,400: another server's clock, behind
        assert attempt("login", "000000", now).outcome == "wrong"
    assert logged() == [1_400, 1_500, 2_000]
    # Three failures, but the oldest left the window at 11,400: not locked, and the log keeps the newest three.
    assert attempt("login", "000000", 12_001).outcome == "wrong"
    assert logged() == [1_500, 2_000, 12_001]
    assert attempt("login", "000000", 12_002).attempts == 5
    assert logged() == [2_000, 12_001, 12_002]
    # The log is the number's, across purposes.
    store.begin_send(phone=phone, purpose="signup", code_hash=codes.code_hash(SECRET, phone, "signup", "123456"),
                     now_ms=12_010, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=30_000,
                     skip_cooldown_after_failure=True)
    assert attempt("signup", "000000", 12_100).outcome == "wrong"
    assert logged() == [12_001, 12_002, 12_100]
    locked = attempt("signup", "123456", 12_200)
    assert (locked.outcome, locked.locked_for_ms) == ("number_locked", 12_001 + 10_000 - 12_200)
    lower = attempt("signup", "123456", 12_300, cap=2)  # the cap-th newest is 12,002 now
    assert (lower.outcome, lower.locked_for_ms) == ("number_locked", 12_002 + 10_000 - 12_300)
    # The cap-th newest, 12,001, leaves the window at 22,001: locked until then, the right code approved from then.
    assert attempt("signup", "123456", 22_000).outcome == "number_locked"
    assert attempt("signup", "123456", 22_001).outcome == "approved"


def test_verify_takes_its_settings_as_arguments(redis_url):
    """One verify script, whatever the settings: they travel as arguments, never written into the Lua."""
    assert "{{" not in load_script("verify")
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    phone = "+13125550146"
    issue(store, phone)
    wrong = codes.code_hash(SECRET, phone, "login", "000000")
    one = store.verify(phone=phone, purpose="login", code_hash=wrong, now_ms=2_000, max_attempts=2, failure_cap=10)
    assert (one.outcome, one.attempts) == ("wrong", 1)
    two = store.verify(phone=phone, purpose="login", code_hash=wrong, now_ms=2_000, max_attempts=9, failure_cap=10)
    assert (two.outcome, two.attempts) == ("wrong", 2)  # under max_attempts=2 this one would have closed it
    assert client.hget(keys.record(one.verification_id), "s") == b"pending"
    three = store.verify(phone=phone, purpose="login", code_hash=wrong, now_ms=2_000, max_attempts=3, failure_cap=10)
    assert (three.outcome, three.attempts) == ("wrong", 3)
    assert client.hget(keys.record(one.verification_id), "s") == b"max_attempts_reached"
    assert len(client.execute_command("SCRIPT", "EXISTS", store.scripts.scripts["verify"].sha)) == 1

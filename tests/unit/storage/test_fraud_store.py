"""The fraud guard's counts on a real redis-server: rolling windows, bounded memory, expiry; and block records."""
from __future__ import annotations

import redis

from otpservice.storage import keys
from otpservice.storage.fraud import HISTORY_BUCKETS, WINDOW_BUCKETS, Counts, FraudStore

MINUTE, HOUR = 60_000, 3_600_000
START = 1_800_000_000_000 // HOUR * HOUR


def store(url: str) -> FraudStore:
    return FraudStore(redis.Redis.from_url(url), window_ms=10 * MINUTE, history_ms=24 * HOUR)


def test_counts_leave_the_window_then_the_history(redis_url):
    fraud = store(redis_url)
    scope = [("prefix", "+44740012")]
    fraud.add(scope, "sent", START)
    fraud.add(scope, "approved", START + MINUTE)
    (now,) = fraud.counts(scope, START + 2 * MINUTE)
    assert (now.window, now.history) == (Counts(1, 1, 0), Counts(1, 1, 0))
    (later,) = fraud.counts(scope, START + 11 * MINUTE)  # out of the 10-minute window, still in the day
    assert (later.window, later.history) == (Counts(), Counts(1, 1, 0))
    (next_day,) = fraud.counts(scope, START + 25 * HOUR)
    assert next_day.history == Counts()


def test_a_scope_holds_at_most_its_buckets_whatever_runs_through_it(redis_url):
    """Three days of a text a minute: the hash keeps only the window's and the history's live buckets."""
    fraud = store(redis_url)
    scope = [("country", "LV")]
    for minute in range(3 * 24 * 60):
        fraud.add(scope, "sent", START + minute * MINUTE)
    client = redis.Redis.from_url(redis_url)
    key = keys.fraud_scope("country", "LV")
    assert client.hlen(key) <= (WINDOW_BUCKETS + 2) + (HISTORY_BUCKETS + 2)
    assert 0 < client.pttl(key) <= 24 * HOUR
    (counts,) = fraud.counts(scope, START + (3 * 24 * 60 - 1) * MINUTE)
    assert 9 <= counts.window.sent <= 10 and 23 * 60 <= counts.history.sent <= 24 * 60


def test_reading_writes_nothing(redis_url):
    fraud = store(redis_url)
    fraud.counts([("prefix", "+37129000"), ("country", "LV")], START)
    assert redis.Redis.from_url(redis_url).keys("otp:*") == []


def test_a_block_is_recorded_once_extended_while_live_and_exempt_once_lifted(redis_url):
    fraud = store(redis_url)
    record = {"scope": "country:LV", "rule": "country_conversion", "figures": {}, "mode": "enforce",
              "since_ms": START, "until_ms": START + HOUR}
    assert fraud.block(record, now_ms=START)[0] == "new"
    assert fraud.block({**record, "since_ms": START + 5}, now_ms=START + 5) == ("live", record)
    status, extended = fraud.block({**record, "until_ms": START + 2 * HOUR}, now_ms=START + 10, extend=True)
    assert status == "live" and extended["until_ms"] == START + 2 * HOUR
    assert [b["until_ms"] for b in fraud.blocks(START + HOUR + 1)] == [START + 2 * HOUR]
    assert fraud.lift("country:LV", exempt_until_ms=START + 3 * HOUR, now_ms=START + 20)["rule"] == \
        "country_conversion"
    assert fraud.block(record, now_ms=START + 30) == ("exempt", START + 3 * HOUR)
    assert fraud.block({**record, "until_ms": START + 4 * HOUR}, now_ms=START + 40, extend=True)[0] == "exempt"
    assert fraud.block(record, now_ms=START + 3 * HOUR + 1)[0] == "new"  # the exemption ended


def test_an_ended_block_is_not_extended(redis_url):
    fraud = store(redis_url)
    record = {"scope": "prefix:+37129000", "rule": "prefix_conversion", "figures": {}, "mode": "enforce",
              "since_ms": START, "until_ms": START + HOUR}
    fraud.block(record, now_ms=START)
    assert fraud.block({**record, "until_ms": START + 3 * HOUR}, now_ms=START + 2 * HOUR, extend=True) == \
        ("ended", None)
    assert fraud.blocks(START + 2 * HOUR) == []

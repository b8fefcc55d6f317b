"""The opt-out registry in Redis: one place every send consults, with one record per source.

A number's records live in one hash `otp:{B}:oo:<digest>` (field = source, value = JSON details), in the
number's hash tag so a send's checks can read it beside its other keys. `otp:oo:index` (a sorted set of
numbers by first opt-out time) serves the admin listing. Opt-outs are kept until removed: no expiry.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

import redis

from otpservice.store import PREFIX, Store, guarded

SOURCES = ("inbound_stop", "telnyx", "send_rejected", "admin")
INDEX_KEY = f"{PREFIX}:oo:index"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class OptOutRegistry:
    """Read and write opt-out records; a check is one Redis round trip and never a call to Telnyx."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @staticmethod
    def key(phone: str) -> str:
        base, digest = Store.number_keys(phone)
        return f"{base}:oo:{digest}"

    @guarded
    def is_opted_out(self, phone: str) -> bool:
        return bool(self.redis.exists(self.key(phone)))

    @guarded
    def add(self, phone: str, source: str, *, now_ms: int, keyword: str | None = None,
            messaging_profile_id: str | None = None) -> None:
        """Record (or refresh) the opt-out of `phone` from `source`."""
        if source not in SOURCES:
            raise ValueError(f"unknown opt-out source {source!r}")
        record = {"phone_number": phone, "source": source, "keyword": keyword,
                  "messaging_profile_id": messaging_profile_id, "created_at": iso(now_ms)}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.key(phone), source, json.dumps(record))
        pipe.zadd(INDEX_KEY, {phone: now_ms}, nx=True)
        pipe.execute()

    @guarded
    def remove(self, phone: str, sources: tuple[str, ...]) -> int:
        """Remove the records of `sources`; returns how many were removed."""
        removed = self.redis.hdel(self.key(phone), *sources)
        if not self.redis.exists(self.key(phone)):
            self.redis.zrem(INDEX_KEY, phone)
        return removed

    @guarded
    def records(self, phone: str) -> list[dict]:
        """Every record of the number, oldest source order first."""
        raw = self.redis.hgetall(self.key(phone))
        found = {k.decode(): json.loads(v) for k, v in raw.items()}
        return [found[s] for s in SOURCES if s in found]

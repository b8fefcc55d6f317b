"""The opt-out registry in Redis: one hash of records per number, and the sets that list them.

The number's hash (keys.optouts) is in its hash tag, so begin_send.lua reads it in the same atomic step as the
number's other keys. Numbers are members of sorted sets (keys.OPTOUT_INDEX, keys.optout_source), never key
names or patterns: `*`, `?` or `[` mean nothing here.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from otpservice import vocabulary
from otpservice.storage import keys
from otpservice.storage.connect import StoreBase, guarded

BATCH = 500  # pipeline size for bulk writes (a sync of a long list)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class OptOutStore(StoreBase):
    """Read and write opt-out records; a check is one Redis round trip."""

    @guarded
    def is_opted_out(self, phone: str) -> bool:
        return bool(self.redis.exists(keys.optouts(phone)))

    def add(self, phone: str, source: str, *, now_ms: int, keyword: str | None = None,
            messaging_profile_id: str | None = None) -> None:
        """Record (or refresh) the opt-out of `phone` from `source`."""
        self.add_many([dict(phone=phone, source=source, created_ms=now_ms, keyword=keyword,
                            messaging_profile_id=messaging_profile_id)])

    @guarded
    def add_many(self, entries: Iterable[dict[str, Any]]) -> int:
        """Write records (phone, source, created_ms, keyword, messaging_profile_id); returns how many are new."""
        added, batch = 0, []
        for entry in entries:
            if entry["source"] not in vocabulary.OPT_OUT_SOURCES:
                raise ValueError(f"unknown opt-out source {entry['source']!r}")
            batch.append(entry)
            if len(batch) >= BATCH:
                added += self._write(batch)
                batch = []
        return added + (self._write(batch) if batch else 0)

    def _write(self, batch: list[dict[str, Any]]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for e in batch:
            record = {"phone_number": e["phone"], "source": e["source"], "keyword": e.get("keyword"),
                      "messaging_profile_id": e.get("messaging_profile_id"), "created_at": iso(e["created_ms"])}
            pipe.hset(keys.optouts(e["phone"]), e["source"], json.dumps(record))
            pipe.zadd(keys.OPTOUT_INDEX, {e["phone"]: 0})
            pipe.zadd(keys.optout_source(e["source"]), {e["phone"]: 0})
        results = pipe.execute()
        return sum(1 for n in results[::3] if n)

    @guarded
    def remove(self, phone: str, sources: tuple[str, ...]) -> int:
        """Remove the records of `sources`; returns how many were removed."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(keys.optouts(phone), *sources)
        for source in sources:
            pipe.zrem(keys.optout_source(source), phone)
        pipe.exists(keys.optouts(phone))
        results = pipe.execute()
        if not results[-1]:
            self.redis.zrem(keys.OPTOUT_INDEX, phone)
        return results[0]

    @guarded
    def records(self, phone: str) -> list[dict]:
        """Every record of the number, in vocabulary.OPT_OUT_SOURCES order."""
        return self._decode(self.redis.hgetall(keys.optouts(phone)))

    @staticmethod
    def _decode(raw: dict[bytes, bytes]) -> list[dict]:
        found = {k.decode(): json.loads(v) for k, v in raw.items()}
        return [found[s] for s in vocabulary.OPT_OUT_SOURCES if s in found]

    @guarded
    def page(self, *, limit: int, after: str | None = None) -> tuple[list[tuple[str, list[dict]]], bool]:
        """Opted-out numbers in E.164 order after `after`, with their records, and whether more follow."""
        start = f"({after}" if after else "-"
        phones = [p.decode() for p in self.redis.zrangebylex(keys.OPTOUT_INDEX, start, "+", start=0, num=limit + 1)]
        more, phones = len(phones) > limit, phones[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for phone in phones:
            pipe.hgetall(keys.optouts(phone))
        found = [(phone, self._decode(raw)) for phone, raw in zip(phones, pipe.execute(), strict=True) if raw]
        return found, more

    @guarded
    def numbers_with(self, source: str) -> set[str]:
        """Every number holding a record of `source`."""
        return {p.decode() for p in self.redis.zrange(keys.optout_source(source), 0, -1)}

    @guarded
    def take_sync_lock(self, ttl_ms: int) -> bool:
        """Whether this process runs the sync of this interval: the lock expires with it, never released early."""
        return bool(self.redis.set(keys.OPTOUT_SYNC_LOCK, uuid.uuid4().hex, nx=True, px=ttl_ms))

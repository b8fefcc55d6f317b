"""The opt-out registry in Redis: one place every send consults, with one record per source.

Keys (opt-out records are kept until removed: the one exception to "every key has an expiry"):
  otp:{B}:oo:<digest>   hash  field = source, value = JSON details; in the number's hash tag, so begin_send.lua
                              reads it in the same atomic step as the number's other keys
  otp:oo:index          zset  every opted-out number (score 0, so ordered by E.164: the admin list's cursor)
  otp:oo:src:<source>   zset  the numbers holding a record of that source (what a Telnyx sync reconciles)
Numbers are members of sorted sets, never key names or patterns: `*`, `?` or `[` mean nothing here.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import redis

from otpservice.errors import InvalidRequest
from otpservice.store import PREFIX, Store, guarded

SOURCES = ("inbound_stop", "telnyx", "send_rejected", "admin")
INDEX_KEY = f"{PREFIX}:oo:index"
PUBLIC_FIELDS = ("source", "keyword", "messaging_profile_id", "created_at")
CURSOR_RE = re.compile(r"^\+\d{1,16}$")
BATCH = 500  # pipeline size for bulk writes (a sync of a long list)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def source_key(source: str) -> str:
    return f"{PREFIX}:oo:src:{source}"


def encode_cursor(phone: str) -> str:
    return base64.urlsafe_b64encode(phone.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The last number of the previous page, or InvalidRequest for anything this service did not issue."""
    try:
        phone = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        phone = ""
    if not CURSOR_RE.match(phone):
        raise InvalidRequest("cursor is not one this service issued.", field="cursor")
    return phone


class OptOutRegistry:
    """Read and write opt-out records; a check is one Redis round trip and never a call to Telnyx."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @staticmethod
    def key(phone: str) -> str:
        return Store.optout_key(phone)

    @guarded
    def is_opted_out(self, phone: str) -> bool:
        return bool(self.redis.exists(self.key(phone)))

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
            if entry["source"] not in SOURCES:
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
            pipe.hset(self.key(e["phone"]), e["source"], json.dumps(record))
            pipe.zadd(INDEX_KEY, {e["phone"]: 0})
            pipe.zadd(source_key(e["source"]), {e["phone"]: 0})
        results = pipe.execute()
        return sum(1 for n in results[::3] if n)

    @guarded
    def remove(self, phone: str, sources: tuple[str, ...]) -> int:
        """Remove the records of `sources`; returns how many were removed."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(self.key(phone), *sources)
        for source in sources:
            pipe.zrem(source_key(source), phone)
        pipe.exists(self.key(phone))
        results = pipe.execute()
        if not results[-1]:
            self.redis.zrem(INDEX_KEY, phone)
        return results[0]

    @guarded
    def records(self, phone: str) -> list[dict]:
        """Every record of the number, in SOURCES order."""
        return self._decode(self.redis.hgetall(self.key(phone)))

    @staticmethod
    def _decode(raw: dict[bytes, bytes]) -> list[dict]:
        found = {k.decode(): json.loads(v) for k, v in raw.items()}
        return [found[s] for s in SOURCES if s in found]

    @staticmethod
    def render(phone: str, records: list[dict]) -> dict[str, Any]:
        """A number's opt-out state as the admin API shows it."""
        return {"phone_number": phone, "opted_out": bool(records),
                "records": [{f: r.get(f) for f in PUBLIC_FIELDS} for r in records]}

    def lookup(self, phone: str) -> dict[str, Any]:
        """The admin view of one number (one round trip)."""
        return self.render(phone, self.records(phone))

    @guarded
    def page(self, *, limit: int, cursor: str | None = None) -> dict[str, Any]:
        """Opted-out numbers in E.164 order after `cursor`, with their records, and the next cursor."""
        start = f"({decode_cursor(cursor)}" if cursor else "-"
        phones = [p.decode() for p in self.redis.zrangebylex(INDEX_KEY, start, "+", start=0, num=limit + 1)]
        more, phones = len(phones) > limit, phones[:limit]
        pipe = self.redis.pipeline(transaction=False)
        for phone in phones:
            pipe.hgetall(self.key(phone))
        data = [self.render(phone, self._decode(raw)) for phone, raw in zip(phones, pipe.execute(), strict=True) if raw]
        return {"data": data, "next_cursor": encode_cursor(phones[-1]) if more and phones else None}

    @guarded
    def numbers_with(self, source: str) -> set[str]:
        """Every number holding a record of `source`."""
        return {p.decode() for p in self.redis.zrange(source_key(source), 0, -1)}

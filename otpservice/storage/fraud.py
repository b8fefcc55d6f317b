"""The fraud guard's Redis side: conversion counts per scope, block records, the allow list, daily spend.

Every scope's counts are one hash with its own hash tag, run by lua/fraud_count.lua (a cluster spreads them);
the guard's records (blocks, lifted blocks' exemptions, the allow list) share the {fr} tag, so recording a block
is one atomic script on one slot. Memory is bounded: a scope's hash holds at most its windows' buckets and
expires a history after its latest text, and a scope exists only once a text went to it (a refused request
writes no counts), so a pumping run over millions of numbers grows Redis at most by the texts it got out.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otpservice import vocabulary
from otpservice.storage import keys
from otpservice.storage.connect import StoreBase, guarded
from otpservice.storage.scripts import Scripts

WINDOW_BUCKETS = 12  # the judging window in 12 buckets: a send leaves it within a twelfth of the window
HISTORY_BUCKETS = 24
SPEND_TTL_MS = 8 * 86_400_000  # a day's spend stays readable a week after it ended


@dataclass(frozen=True)
class Counts:
    """Texts sent, codes approved and deliveries failed in one window."""

    sent: int = 0
    approved: int = 0
    failed: int = 0

    @property
    def judged(self) -> int:
        """The texts that could have been entered: a failed delivery reached nobody."""
        return max(0, self.sent - self.failed)

    @property
    def conversion(self) -> float:
        """Approved codes per judged text (1.0 before any: nothing to judge)."""
        return min(1.0, self.approved / self.judged) if self.judged else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "approved": self.approved, "failed": self.failed,
                "conversion": round(self.conversion, 4)}


@dataclass(frozen=True)
class ScopeCounts:
    window: Counts
    history: Counts


@dataclass(frozen=True)
class GuardState:
    """What the guard holds about one request's scopes: their live block records and exemptions, the allow-list
    entry that matched (or None), and today's spend (total, the number's country) in millionths."""

    blocks: dict[str, dict[str, Any]]
    exempt_until: dict[str, int]
    allowed: str | None
    spent_total: int
    spent_country: int


class FraudStore(StoreBase):
    """Counts, blocks, exemptions, the allow list and spend, each call one round trip."""

    def __init__(self, client: Any, *, window_ms: int, history_ms: int, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.scripts = Scripts(client, ("fraud_count", "fraud_block", "fraud_spend"))
        letters = keys.FRAUD_WINDOWS
        self.windows = [letters[0], max(1, window_ms // WINDOW_BUCKETS), WINDOW_BUCKETS,
                        letters[1], max(1, history_ms // HISTORY_BUCKETS), HISTORY_BUCKETS]
        self.history_ms = history_ms

    def _count_args(self, now_ms: int, event: str) -> list[Any]:
        return [now_ms, *self.windows, *vocabulary.FRAUD_EVENTS, event, self.history_ms]

    @guarded
    def counts(self, scopes: Sequence[tuple[str, str]], now_ms: int) -> list[ScopeCounts]:
        """The window's and the history's counts of each (kind, value) scope."""
        return self._run(scopes, now_ms, "")

    @guarded
    def add(self, scopes: Sequence[tuple[str, str]], event: str, now_ms: int,
            spend: tuple[str, str, int] | None = None) -> None:
        """Count one event (vocabulary.FRAUD_EVENTS) in each scope, and with `spend` (day, region, millionths)
        add to that day's spend, in one round trip."""
        if event not in vocabulary.FRAUD_EVENTS:
            raise ValueError(f"unknown fraud event {event!r}")
        self._run(scopes, now_ms, event, [self._spend_call(*spend)] if spend else [])

    def _run(self, scopes: Sequence[tuple[str, str]], now_ms: int, event: str,
             more: Sequence[tuple[str, Sequence[Any], Sequence[Any]]] = ()) -> list[ScopeCounts]:
        args = self._count_args(now_ms, event)
        replies = self.scripts.run_many([("fraud_count", [keys.fraud_scope(kind, value)], args)
                                         for kind, value in scopes] + list(more))
        return [ScopeCounts(Counts(*map(int, reply[:3])), Counts(*map(int, reply[3:6])))
                for reply in replies[:len(scopes)] if reply]

    @staticmethod
    def _spend_call(day: str, region: str, micros: int) -> tuple[str, Sequence[Any], Sequence[Any]]:
        return "fraud_spend", [keys.spend(day)], ["total", f"c:{region}", micros, SPEND_TTL_MS]

    @guarded
    def state(self, scopes: Sequence[str], allow_candidates: Sequence[str], *, day: str, region: str,
              now_ms: int) -> GuardState:
        """The block records and exemptions of `scopes`, the first allow-list entry among `allow_candidates`
        and the day's spend, in one pipelined round trip."""
        fields = [f"b:{scope}" for scope in scopes] + [f"x:{scope}" for scope in scopes]
        pipe = self.redis.pipeline(transaction=False)
        if fields:
            pipe.hmget(keys.FRAUD_GUARD, fields)
        if allow_candidates:
            pipe.hmget(keys.FRAUD_ALLOW, list(allow_candidates))
        pipe.hmget(keys.spend(day), ["total", f"c:{region}"])
        replies = pipe.execute()
        guard = replies[0] if fields else []
        allowed = replies[-2] if allow_candidates else []
        spend = replies[-1]
        blocks = {}
        for scope, raw in zip(scopes, guard[:len(scopes)], strict=True):
            if raw:
                record = json.loads(raw)
                if record.get("until_ms", 0) > now_ms:
                    blocks[scope] = record
        exempt = {scope: int(raw) for scope, raw in zip(scopes, guard[len(scopes):], strict=True)
                  if raw and int(raw) > now_ms}
        match = next((entry for entry, raw in zip(allow_candidates, allowed, strict=True) if raw), None)
        return GuardState(blocks, exempt, match, int(spend[0] or 0), int(spend[1] or 0))

    @guarded
    def block(self, record: dict[str, Any], *, now_ms: int, extend: bool = False) -> \
            tuple[str, dict[str, Any] | int | None]:
        """Record a block unless its scope has a live one or is exempt: ("new", record), ("live", the live
        record) or ("exempt", the exemption's end ms). With `extend`, `record` is the live block with a later
        end, written only while it is live: ("live", record), ("exempt", end) or ("ended", None)."""
        scope = record["scope"]
        reply = self.scripts.run("fraud_block", [keys.FRAUD_GUARD, keys.FRAUD_UNTIL],
                                 [now_ms, f"b:{scope}", f"x:{scope}", json.dumps(record, sort_keys=True),
                                  record["until_ms"], "1" if extend else "0"])
        status = int(reply[0])
        if status == 3:
            return "ended", None
        if status == 2:
            return "exempt", int(float(reply[1]))
        return ("new" if status == 1 else "live"), json.loads(reply[1])

    @guarded
    def blocks(self, now_ms: int) -> list[dict[str, Any]]:
        """Every live block record, newest first."""
        records = [json.loads(raw) for field, raw in self.redis.hgetall(keys.FRAUD_GUARD).items()
                   if field.startswith(b"b:")]
        return sorted((r for r in records if r.get("until_ms", 0) > now_ms), key=lambda r: -r["since_ms"])

    @guarded
    def lift(self, scope: str, *, exempt_until_ms: int, now_ms: int) -> dict[str, Any] | None:
        """Remove a scope's live block and exempt the scope until then (the operator decided); its record, or
        None when it had none (nothing changes then)."""
        raw = self.redis.hget(keys.FRAUD_GUARD, f"b:{scope}")
        record = json.loads(raw) if raw else None
        if record is None or record.get("until_ms", 0) <= now_ms:
            return None
        # The exemption first: the guard reads it before any block, so a lift cut short still lifts.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.FRAUD_GUARD, f"x:{scope}", exempt_until_ms)
        pipe.zadd(keys.FRAUD_UNTIL, {f"x:{scope}": exempt_until_ms})
        pipe.hdel(keys.FRAUD_GUARD, f"b:{scope}")
        pipe.zrem(keys.FRAUD_UNTIL, f"b:{scope}")
        pipe.execute()
        return record

    # -- the allow list ------------------------------------------------------------------------------------
    @guarded
    def allow(self, entry: str, *, note: str, now_ms: int) -> dict[str, Any]:
        record = {"entry": entry, "note": note, "added_at_ms": now_ms}
        self.redis.hset(keys.FRAUD_ALLOW, entry, json.dumps(record, sort_keys=True))
        return record

    @guarded
    def disallow(self, entry: str) -> bool:
        return bool(self.redis.hdel(keys.FRAUD_ALLOW, entry))

    @guarded
    def allowed(self) -> list[dict[str, Any]]:
        return sorted((json.loads(raw) for raw in self.redis.hgetall(keys.FRAUD_ALLOW).values()),
                      key=lambda r: r["entry"])

    # -- spend ---------------------------------------------------------------------------------------------
    @guarded
    def spend(self, day: str, region: str, micros: int) -> None:
        """Add to one day's spend (a correction may be negative)."""
        self.scripts.run(*self._spend_call(day, region, micros))

    @guarded
    def spent(self, day: str) -> dict[str, int]:
        """One day's spend: "total" and each country's, in millionths."""
        raw = self.redis.hgetall(keys.spend(day))
        out = {"total": int(raw.get(b"total", 0))}
        out.update({field.decode()[2:]: int(value) for field, value in raw.items() if field.startswith(b"c:")})
        return out

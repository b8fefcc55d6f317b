"""Verifications in Redis: reserve a send, record its result, check and spend a code, read, cancel, list.

Each decision is one Lua script over the number's keys (storage/keys.py), so it is atomic and one round trip:
begin_send.lua reserves a send (opt-out record, per-number budgets, cooldown, new code hash), send_result.lua
records what the provider said, verify.lua checks and spends a code, cancel.lua closes a record.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from otpservice import vocabulary
from otpservice.errors import StoreUnavailable
from otpservice.storage import keys
from otpservice.storage.connect import StoreBase, guarded
from otpservice.storage.scripts import NotReplicated, Scripts, is_cluster

# A number's failed attempts, all codes, count against its daily cap for this long after each (security bar).
FAILURE_WINDOW_MS = 86_400_000
# Added to how long a number's hash outlives a send, for clocks of app servers a little apart (begin_send.lua).
CLOCK_SLACK_MS = 60_000
RESERVATION_OUTCOMES = ("new", "resend", "cooldown", "opted_out", "locked", "limited")


def _default(table: Mapping[str, tuple[str, str | None]], name: str) -> str:
    """The value an absent field reads as (keys.py's tables: the one place defaults are written down)."""
    return table[name][1] or ""


@dataclass
class Send:
    """One text sent (or tried) for a verification."""

    number: int
    message_id: str | None
    endpoint: str
    route: str
    sent_at_ms: int
    delivery_status: str
    delivery_updated_at_ms: int
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Verification:
    """A verification record as stored, with its status derived at `now_ms`."""

    id: str
    phone: str
    purpose: str
    channel: str
    status: str
    created_at_ms: int
    expires_at_ms: int
    attempts: int
    send_count: int
    sends: list[Send]

    @classmethod
    def from_hash(cls, vid: str, raw: dict[bytes, bytes], now_ms: int) -> Verification:
        """Decode HGETALL output, each absent field read as its default (keys.RECORD_FIELDS, SEND_FIELDS); a
        pending record past its expiry reads as `expired`."""
        text = {k.decode(): v.decode() for k, v in raw.items() if k != b"h"}
        record, send = keys.RECORD_FIELDS, keys.SEND_FIELDS
        status = text.get("s", _default(record, "s"))
        expires = int(text.get("x", "0"))
        if status == "pending" and expires <= now_ms:
            status = "expired"
        created = int(text.get("c", "0"))
        sends = []
        for n in range(1, int(text.get("n", "0")) + 1):
            if f"m{n}" not in text:  # reserved, its result never recorded
                continue
            sent_at = int(text.get(f"t{n}", created))  # default: the record's c
            sends.append(Send(
                number=n, message_id=text[f"m{n}"] or None, endpoint=text.get(f"e{n}", _default(send, "e")),
                route=text.get(f"r{n}", _default(send, "r")), sent_at_ms=sent_at,
                delivery_status=text.get(f"d{n}", _default(send, "d")),
                delivery_updated_at_ms=int(text.get(f"du{n}", sent_at)),  # default: the send's t
                errors=json.loads(text.get(f"er{n}", _default(send, "er")))))
        return cls(id=vid, phone=text.get("p", ""), purpose=text.get("u", ""),
                   channel=text.get("ch", _default(record, "ch")), status=status, created_at_ms=created,
                   expires_at_ms=expires, attempts=int(text.get("a", _default(record, "a"))),
                   send_count=int(text.get("n", "0")), sends=sends)


@dataclass(frozen=True)
class Reservation:
    """What begin_send decided: a new verification, a resend of the live one, or a refusal."""

    outcome: str  # RESERVATION_OUTCOMES
    verification_id: str
    limit: str = ""  # the per-number policy that refused (`limited`): vocabulary.LIMIT_POLICIES
    send_count: int = 0
    attempts: int = 0
    created_at_ms: int = 0
    expires_at_ms: int = 0
    wait_ms: int = 0  # how long a refusal lasts
    after_failed_delivery: bool = False
    failed_route: str = ""  # the route of the latest send, when it failed (after_failed_delivery)


class VerifyResult(NamedTuple):
    """What the verify script decided."""

    outcome: str  # vocabulary.VERIFY_RESULTS
    verification_id: str | None = None
    attempts: int = 0
    locked_for_ms: int = 0
    route: str = ""  # approved: the route of the latest send (the fraud guard's conversion per route)


def send_fields(send_number: int, *, message_id: str | None, endpoint: str, now_ms: int, delivery_status: str,
                errors: Sequence[dict], route: str = "", cost_micros: int | None = None) -> list[Any]:
    """The field/value pairs recording send k: m<k> and t<k> always (m marks the result as recorded), the
    others only when they differ from their defaults (keys.SEND_FIELDS), which readers supply."""
    k = str(send_number)
    pairs: list[Any] = [f"m{k}", message_id or "", f"t{k}", now_ms]
    route = route or _default(keys.SEND_FIELDS, "r")
    for name, value in (("e", endpoint), ("r", route), ("d", delivery_status), ("er", json.dumps(list(errors)))):
        if value != _default(keys.SEND_FIELDS, name):
            pairs += [f"{name}{k}", value]
    if cost_micros is not None:
        pairs += [f"co{k}", cost_micros]
    return pairs


class VerificationStore(StoreBase):
    """Verification state in Redis, reached only through atomic scripts and single commands."""

    SCRIPTS = ("begin_send", "send_result", "verify", "cancel")

    def __init__(self, client: Any, *, replicas: int = 0, wait_timeout_ms: int = 500,
                 retention_ms: int = 86_400_000, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.retention_ms = retention_ms  # how long the reconciler's list outlives its latest entry
        # A reservation, a spend and a cancel are answered only once `replicas` replicas hold them (scripts.py).
        self.scripts = Scripts(client, self.SCRIPTS, replicas=replicas, wait_timeout_ms=wait_timeout_ms)

    @guarded
    def begin_send(self, *, phone: str, purpose: str, code_hash: bytes, now_ms: int, ttl_ms: int,
                   retention_ms: int, cooldown_ms: int, skip_cooldown_after_failure: bool,
                   channel: str = vocabulary.SMS, number_limits: Sequence[tuple[str, int, int]] = (),
                   failure_cap: int = 100, failure_window_ms: int = FAILURE_WINDOW_MS) -> Reservation:
        """Atomically reuse or create the live verification of (phone, purpose) and store a new code hash.

        In the same step: refuse an opted-out number, a number locked by its failures (`failure_cap` in
        `failure_window_ms`, as verify decides), a request inside the cooldown, and take one send from each
        per-number limit (`number_limits`: (policy, amount, window ms)), refusing when one is spent.
        """
        extra = [] if channel == _default(keys.RECORD_FIELDS, "ch") else ["ch", channel]
        limit_args: list[Any] = [len(number_limits)]
        for name, amount, window_ms in number_limits:
            limit_args += [name, amount, window_ms]
        number, records = keys.number_and_records(phone)
        args = [records, keys.new_verification_id(phone), code_hash, phone, purpose, now_ms, ttl_ms, retention_ms,
                cooldown_ms, "1" if skip_cooldown_after_failure else "0", ttl_ms + FAILURE_WINDOW_MS + CLOCK_SLACK_MS,
                failure_cap, failure_window_ms, *limit_args, len(extra) // 2, *extra]
        try:
            out = self.scripts.run("begin_send", [number, keys.optouts(phone)], args, durable=True)
        except NotReplicated as exc:
            self._release(exc.reply, now_ms)
            raise
        return self._reservation(out)

    def _release(self, out: Any, now_ms: int) -> None:
        """Give back a reservation no replica holds (the request is answered 503 and nothing is sent): its send
        is recorded as surely failed, which gives the cooldown back, as for any send that never left."""
        reservation = self._reservation(out) if isinstance(out, list) else None
        if reservation is None or reservation.outcome not in ("new", "resend"):
            return
        try:
            self.record_send(reservation.verification_id, reservation.send_count, outcome="failed", message_id=None,
                             endpoint="messages", now_ms=now_ms, delivery_status="sending_failed",
                             errors=[{"code": "not_replicated", "title": "No replica acknowledged the reservation"}])
        except StoreUnavailable:
            pass  # best effort: the cooldown then runs its course

    @staticmethod
    def _reservation(out: Any) -> Reservation:
        outcome, vid = out[0].decode(), out[1].decode()
        if outcome == "cooldown":
            return Reservation(outcome, vid, limit="resend_cooldown", wait_ms=int(out[2]))
        if outcome == "opted_out":
            return Reservation(outcome, "")
        if outcome == "locked":
            return Reservation(outcome, "", limit="phone_number_failures", wait_ms=int(out[2]))
        if outcome == "limited":
            return Reservation(outcome, "", limit=vid, wait_ms=int(out[2]))
        failed = out[6] == b"1"
        return Reservation(outcome, vid, send_count=int(out[2]), attempts=int(out[3]),
                           created_at_ms=int(out[4]), expires_at_ms=int(out[5]), after_failed_delivery=failed,
                           failed_route=(out[7].decode() or _default(keys.SEND_FIELDS, "r")) if failed else "")

    @guarded
    def record_send(self, verification_id: str, send_number: int, *, outcome: str, message_id: str | None,
                    endpoint: str, now_ms: int, delivery_status: str, errors: Sequence[dict] = (),
                    phone: str = "", route: str = "", cost_micros: int | None = None) -> None:
        """Write a send's result on its record; `outcome` (vocabulary.SEND_RECORD_OUTCOMES) says what it means
        for the verification. Receipts find the send by its message id, through the number's hash."""
        if outcome not in vocabulary.SEND_RECORD_OUTCOMES:
            raise ValueError(f"unknown send outcome {outcome!r}")
        # A send awaiting its final status is listed for the reconciler, in the same round trip.
        pending = phone and message_id and delivery_status not in vocabulary.TERMINAL_STATUSES
        then = [("ZADD", keys.RECONCILE_INDEX, now_ms, keys.pending_send(phone, message_id)),
                ("PEXPIRE", keys.RECONCILE_INDEX, self.retention_ms)] if pending else []
        self.scripts.run("send_result", [keys.record(verification_id)],
                         [outcome, *send_fields(send_number, message_id=message_id, endpoint=endpoint,
                                                now_ms=now_ms, delivery_status=delivery_status, errors=errors,
                                                route=route, cost_micros=cost_micros)],
                         then=then)

    @guarded
    def verify(self, *, phone: str, purpose: str, code_hash: bytes, now_ms: int, max_attempts: int,
               failure_cap: int, failure_window_ms: int = FAILURE_WINDOW_MS, expected_id: str = "") -> VerifyResult:
        """Run the check-and-spend script for the live verification of (phone, purpose).

        A failure counts for `failure_window_ms`; begin_send keeps the number's hash, which logs it, alive for
        FAILURE_WINDOW_MS after the code's expiry, so a longer window would outlive its log.
        """
        number, records = keys.number_and_records(phone)
        out = self.scripts.run(
            "verify", [number],
            [records, code_hash, now_ms, purpose, max_attempts, failure_cap, failure_window_ms,
             *((expected_id,) if expected_id else ())], durable=True)
        outcome = out[0].decode()
        if len(out) == 1:
            return VerifyResult(outcome)
        if outcome == "number_locked":
            return VerifyResult(outcome, out[1].decode(), locked_for_ms=max(0, out[2]))
        if outcome == "approved":
            route = out[2].decode() if len(out) > 2 and out[2] else ""
            return VerifyResult(outcome, out[1].decode(), route=route or _default(keys.SEND_FIELDS, "r"))
        return VerifyResult(outcome, out[1].decode(), attempts=int(out[2]) if len(out) > 2 else 0)

    @guarded
    def get(self, verification_id: str, *, now_ms: int) -> Verification | None:
        """The record of a verification, or None (unknown, malformed or past its retention)."""
        if not keys.valid_id(verification_id):
            return None
        raw = self.redis.hgetall(keys.record(verification_id))
        return Verification.from_hash(verification_id, raw, now_ms) if raw else None

    @guarded
    def cancel(self, verification_id: str, *, now_ms: int) -> bool:
        """Cancel a pending verification; False when there is none pending with that id."""
        if not keys.valid_id(verification_id):
            return False
        return bool(self.scripts.run("cancel", [keys.record(verification_id)], [now_ms], durable=True))

    @guarded
    def recent_for_number(self, phone: str, *, now_ms: int, retention_ms: int) -> list[Verification]:
        """The number's verifications still retained, newest first."""
        entries = self.redis.hgetall(keys.number(phone))
        ids = sorted({(value or name).decode() for name, value in entries.items()
                      if not name.decode().startswith(keys.LOG_MARK)})
        ids = [vid for vid in ids if keys.valid_id(vid)]
        pipe = self.redis.pipeline(transaction=False)
        for vid in ids:
            pipe.hgetall(keys.record(vid))
        records = [Verification.from_hash(vid, raw, now_ms) for vid, raw in zip(ids, pipe.execute(), strict=True)
                   if raw]
        recent = [r for r in records if r.created_at_ms >= now_ms - retention_ms]
        return sorted(recent, key=lambda r: (r.created_at_ms, r.id), reverse=True)

    @guarded
    def ping(self) -> bool:
        """Redis answers; on a cluster, every master (each serves a share of the numbers)."""
        if is_cluster(self.redis):
            return bool(self.redis.ping(target_nodes=self.redis.PRIMARIES))
        return bool(self.redis.ping())

    @guarded
    def server_settings(self) -> tuple[set[str], int]:
        """(every master's maxmemory-policy, the fewest replicas any master has), from INFO: CONFIG is often
        disabled on managed Redis, INFO is not."""
        if is_cluster(self.redis):
            memory = self.redis.info("memory", target_nodes=self.redis.PRIMARIES).values()
            replication = self.redis.info("replication", target_nodes=self.redis.PRIMARIES).values()
        else:
            memory, replication = [self.redis.info("memory")], [self.redis.info("replication")]
        policies = {str(info.get("maxmemory_policy", "unknown")) for info in memory}
        return policies, min(int(info.get("connected_slaves", 0)) for info in replication)

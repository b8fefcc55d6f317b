"""Authenticator factors in Redis: a factor's record and its failure counters (storage/keys.py: keys.totp),
changed only through atomic scripts (totp_enroll.lua, totp_check.lua) and single commands.

A confirmed factor is a long-lived credential and has no expiry; an unconfirmed one expires after
OTP_TOTP_ENROLL_TTL.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from otpservice.storage import keys
from otpservice.storage.connect import StoreBase, guarded
from otpservice.storage.scripts import Scripts


@dataclass(frozen=True)
class Factor:
    """A factor as stored; `sealed` is the SecretBox ciphertext of its secret."""

    status: str  # vocabulary.FACTOR_STATUSES
    sealed: bytes
    enrollment: str
    label: str
    created_at_ms: int
    expires_at_ms: int | None
    confirmed_at_ms: int | None
    last_used_at_ms: int | None
    failures: int
    locked_for_ms: int


@dataclass(frozen=True)
class CheckResult:
    """What the check script decided."""

    outcome: str  # approved, wrong, not_found or max_attempts (vocabulary.VERIFY_RESULTS)
    failures: int = 0
    locked_for_ms: int = 0


def _int_or_none(value: bytes | None) -> int | None:
    return int(value) if value else None


ENROLL_OUTCOMES = ("enrolled", "exists")  # totp_enroll.lua: enrolled, or a confirmed factor is in the way


class TotpStore(StoreBase):
    """Factor records in Redis."""

    def __init__(self, client: Any, *, replicas: int = 0, wait_timeout_ms: int = 500, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # A step accepted is answered only once `replicas` replicas hold it: each step verifies once.
        self.scripts = Scripts(client, ("totp_enroll", "totp_check"), replicas=replicas,
                               wait_timeout_ms=wait_timeout_ms)

    @guarded
    def enroll(self, user_id: str, *, sealed: bytes, enrollment: str, label: str, now_ms: int,
               ttl_ms: int) -> bool:
        """Store a new unconfirmed factor; False (nothing changed) when a confirmed one exists."""
        factor, _, _ = keys.totp(user_id)
        out = self.scripts.run("totp_enroll", [factor], [sealed, enrollment, label, now_ms, now_ms + ttl_ms, ttl_ms])
        return out[0] == b"enrolled"

    @guarded
    def get(self, user_id: str) -> Factor | None:
        """The user's factor with its failure count, or None."""
        factor, fail, _ = keys.totp(user_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(factor)
        pipe.get(fail)
        pipe.pttl(fail)
        raw, failures, fail_ttl = pipe.execute()
        if not raw or b"s" not in raw:
            return None
        return Factor(status=raw[b"s"].decode(), sealed=raw.get(b"sb", b""), enrollment=raw[b"e"].decode(),
                      label=raw.get(b"l", b"").decode(), created_at_ms=int(raw.get(b"c", b"0")),
                      expires_at_ms=_int_or_none(raw.get(b"x")), confirmed_at_ms=_int_or_none(raw.get(b"cf")),
                      last_used_at_ms=_int_or_none(raw.get(b"lu")), failures=int(failures or 0),
                      locked_for_ms=max(0, int(fail_ttl)))

    @guarded
    def check(self, user_id: str, *, want: str, enrollment: str, step: int | None, now_ms: int,
              max_attempts: int, lockout_ms: int, daily_cap: int, daily_window_ms: int) -> CheckResult:
        """Accept `step` if it is later than the factor's last accepted step, else count a failure."""
        out = self.scripts.run(
            "totp_check", keys.totp(user_id),
            [want, enrollment, "" if step is None else step, now_ms, max_attempts, lockout_ms, daily_cap,
             daily_window_ms], durable=True)
        outcome = out[0].decode()
        if outcome == "max_attempts":
            return CheckResult(outcome, locked_for_ms=max(0, int(out[1])))
        return CheckResult(outcome, failures=int(out[1]) if len(out) > 1 else 0)

    @guarded
    def delete(self, user_id: str) -> bool:
        """Remove the factor (failure counters stay until they expire); False when there was none."""
        factor, _, _ = keys.totp(user_id)
        return bool(self.redis.delete(factor))

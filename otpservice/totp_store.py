"""The TOTP half of the store: the Redis keys of authenticator factors and the scripts that change them.

Key layout ({T} is the user's hash tag, so each script's keys share one Redis Cluster slot):
  otp:{T}:totp:f:<digest>     hash   one factor: status, sealed secret, enrollment id, last step   none*
  otp:{T}:totp:fail:<digest>  string wrong codes in the current lockout window                 OTP_TOTP_LOCKOUT
  otp:{T}:totp:day:<digest>   string wrong codes in the current 24 h                           24 h
* A confirmed factor is a long-lived credential and has no expiry; an unconfirmed one expires after
  OTP_TOTP_ENROLL_TTL. <digest> is a hash of the user id: nothing a caller typed becomes a key or pattern.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

from otpservice.store import PREFIX, guarded, load_script

SCRIPTS = ("totp_enroll", "totp_check")


def user_digest(user_id: str) -> str:
    """A stable pseudonym of a user id for key names (unkeyed: factors must outlive a key rotation)."""
    return hashlib.sha256(f"totp-user\x00{user_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Factor:
    """A factor as stored; `sealed` is the SecretBox ciphertext of its secret."""

    status: str  # "unconfirmed" | "confirmed"
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

    outcome: str  # "approved" | "wrong" | "not_found" | "max_attempts"
    failures: int = 0
    locked_for_ms: int = 0


def _int_or_none(value: bytes | None) -> int | None:
    return int(value) if value else None


class TotpStore:
    """Factor records in Redis, changed only through atomic scripts and single commands."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.scripts = {name: client.register_script(load_script(name)) for name in SCRIPTS}

    @staticmethod
    def keys(user_id: str) -> tuple[str, str, str]:
        """(factor, failures, daily failures) key names of a user."""
        digest = user_digest(user_id)
        base = f"{PREFIX}:{{t{digest[:4]}}}:totp"
        return f"{base}:f:{digest}", f"{base}:fail:{digest}", f"{base}:day:{digest}"

    @guarded
    def enroll(self, user_id: str, *, sealed: bytes, enrollment: str, label: str, now_ms: int,
               ttl_ms: int) -> bool:
        """Store a new unconfirmed factor; False (nothing changed) when a confirmed one exists."""
        factor, _, _ = self.keys(user_id)
        out = self.scripts["totp_enroll"](keys=[factor],
                                          args=[sealed, enrollment, label, now_ms, now_ms + ttl_ms, ttl_ms])
        return out[0] == b"enrolled"

    @guarded
    def get(self, user_id: str) -> Factor | None:
        """The user's factor with its failure count, or None."""
        factor, fail, _ = self.keys(user_id)
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
        out = self.scripts["totp_check"](
            keys=list(self.keys(user_id)),
            args=[want, enrollment, "" if step is None else step, now_ms, max_attempts, lockout_ms, daily_cap,
                  daily_window_ms])
        outcome = out[0].decode()
        if outcome == "max_attempts":
            return CheckResult(outcome, locked_for_ms=max(0, int(out[1])))
        return CheckResult(outcome, failures=int(out[1]) if len(out) > 1 else 0)

    @guarded
    def delete(self, user_id: str) -> bool:
        """Remove the factor (failure counters stay until they expire); False when there was none."""
        factor, _, _ = self.keys(user_id)
        return bool(self.redis.delete(factor))

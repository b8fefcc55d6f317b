"""The checks before every send, in the contract's order, and the Redis send budgets they spend.

Order: input (the caller parsed it) → country allowed → number type → opt-out → rate limits. A refused
request sends nothing and leaves every budget as it found it.

Round trips on the happy path (at most 3 besides the Telnyx call):
  1. `SendGate.check` takes one send from each budget not keyed by the number (client IP, number prefix,
     country, global) in one pipeline: each budget is its own key with its own hash tag, run by
     `rate_hit.lua`, so the pipeline works on any Redis Cluster slot layout.
  2. `begin_send.lua` (store.py) checks the opt-out record, the per-number budgets (a short window and a
     day) and the resend cooldown, then reserves the send and logs it in the per-number budgets, atomically:
     all of these keys carry the number's hash tag `otp:{B}`.
  3. The send's result is recorded (verification.py).
Refusals may cost more: when begin_send refuses, the sends taken in step 1 are refunded (`Admission.release`).
When a step-1 budget refuses, the others taken are refunded and one more read asks whether the number is
opted out, so the answer keeps the contract's order (opted_out before rate_limited).

Every budget is a sliding log (a sorted set of request tokens by time; the per-number budgets share one list
of send times in the number's hash, see store.py): exact at any instant, so it trips at
exactly its amount and `Retry-After` is when the oldest send that counts leaves the window. Each take is
atomic, so parallel requests never exceed a budget. Under a burst, a request later refused may hold a send
of another budget for a moment before its refund: the error is on the safe side (a refusal), never an
extra send. Sends that Telnyx then fails to deliver keep their place in the budgets: a number that cannot
be reached is not retried faster.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from otpservice import phones
from otpservice.config import ConfigError, Settings, parse_rate
from otpservice.errors import (
    CountryNotAllowed,
    OptedOut,
    RateLimited,
    ServiceError,
    StoreUnavailable,
    UnsupportedNumberType,
)
from otpservice.optouts import OptOutRegistry
from otpservice.store import PREFIX, Reservation, ScriptPipeline, guarded, load_script

log = logging.getLogger(__name__)

ALWAYS_BLOCKED_TYPES = ("premium_rate", "shared_cost")  # security bar: SMS pumping's favourite targets
IPV6_PREFIX = 64  # one subscriber gets a /64: per-address limits would let it rotate freely


@dataclass(frozen=True)
class Rate:
    """One budget: at most `amount` sends in any `window_ms`, reported as policy `name` when it trips."""

    name: str
    amount: int
    window_ms: int

    @classmethod
    def parse(cls, name: str, text: str) -> Rate:
        amount, window = parse_rate(text)
        return cls(name, amount, window * 1000)


def ip_scope(text: object) -> str | None:
    """The budget key of a client address (an IPv6 address counts as its /64), or None when not an IP."""
    if not isinstance(text, str) or not 0 < len(text) <= 64:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address)


def number_prefix(number: phones.PhoneNumber, digits: int) -> str:
    """Country code plus the first `digits` national digits: one block of sequential numbers."""
    country = str(number.country_code)
    return "+" + country + number.e164[1 + len(country):][:digits]


class RateLimiter:
    """Sliding-log budgets not keyed by a number, taken together in one pipelined round trip."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.scripts = {"rate_hit": client.register_script(load_script("rate_hit"))}

    @staticmethod
    def key(scope: str, value: str) -> str:
        """One budget's key: its own hash tag; a digest, so no caller text becomes a key name or pattern."""
        digest = hashlib.sha256(f"{scope}\x00{value}".encode()).hexdigest()[:24]
        return f"{PREFIX}:rl:{{{scope}:{digest}}}"

    @guarded
    def take(self, hits: Sequence[tuple[Rate, str]], token: str, now_ms: int) -> list[int]:
        """Take one send from each (rate, key); per hit, 0 when taken or the wait in ms when refused."""
        if not hits:
            return []
        pipe = ScriptPipeline(self.redis, self.scripts)
        for rate, key in hits:
            pipe.script("rate_hit", [key], [now_ms, rate.window_ms, rate.amount, token])
        return [0 if int(ok) else max(1, int(wait)) for ok, wait in pipe.execute()]

    @guarded
    def refund(self, keys: Sequence[str], token: str) -> None:
        """Give back the sends this request took (its token in each log)."""
        if keys:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.zrem(key, token)
            pipe.execute()


@dataclass
class Admission:
    """What the gate let through: the per-number budgets begin_send must take, and how to give back the rest."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    number_limits: tuple[tuple[str, int, int], ...] = ()
    taken: tuple[str, ...] = ()
    limiter: RateLimiter | None = None

    def release(self) -> None:
        """Refund the sends taken before begin_send refused (best effort: a failure only over-counts)."""
        if self.taken and self.limiter is not None:
            try:
                self.limiter.refund(self.taken, self.token)
            except StoreUnavailable:
                log.warning("could not refund send budgets; they recover when their windows pass")
            self.taken = ()

    @staticmethod
    def refusal(reservation: Reservation) -> ServiceError:
        """The contract error for a reservation begin_send refused."""
        seconds = -(-reservation.cooldown_ms // 1000)
        if reservation.outcome == "opted_out":
            return OptedOut()
        if reservation.outcome == "cooldown":
            return RateLimited("resend_cooldown", seconds,
                               "A code was sent to this number moments ago: wait before asking again.")
        return RateLimited(reservation.limit, seconds, "Too many codes were sent to this number: try later.")


class SendGate:
    """Country, number type, opt-out and rate limits: the gauntlet every send passes (verification's guard)."""

    def __init__(self, *, settings: Settings, optouts: OptOutRegistry, limiter: RateLimiter,
                 events: Callable[..., None] | None = None) -> None:
        unknown = set(settings.blocked_number_types) - set(phones.TYPE_NAMES.values())
        if unknown:
            raise ConfigError(f"OTP_BLOCKED_NUMBER_TYPES: unknown types {sorted(unknown)}; known: "
                              f"{sorted(phones.TYPE_NAMES.values())}")
        self.settings = settings
        self.optouts = optouts
        self.limiter = limiter
        self.events = events or (lambda name, **labels: None)
        self.blocked_types = frozenset(ALWAYS_BLOCKED_TYPES) | frozenset(settings.blocked_number_types)
        self.number_rates = (Rate.parse("phone_number", settings.limit_number),
                             Rate.parse("phone_number_daily", settings.limit_number_daily))
        self.ip_rate = Rate.parse("client_ip", settings.limit_ip)
        self.prefix_rate = Rate.parse("number_prefix", settings.limit_prefix)
        self.country_rate = Rate.parse("country", settings.limit_country)
        self.global_rate = Rate.parse("global", settings.limit_global)

    def check(self, number: phones.PhoneNumber, *, client_ip: str | None, now: float) -> Admission:
        """Refuse (raising the contract's error) or admit a send, having taken its non-number budgets."""
        if self.settings.allowed_countries and number.region not in self.settings.allowed_countries:
            self._refused("country_not_allowed", number)
            raise CountryNotAllowed()
        if number.number_type in self.blocked_types:
            self._refused("unsupported_number_type", number)
            raise UnsupportedNumberType(f"Codes are not sent to {number.number_type.replace('_', '-')} numbers.")
        hits = self._hits(number, client_ip)
        admission = Admission(number_limits=tuple((r.name, r.amount, r.window_ms) for r in self.number_rates),
                              limiter=self.limiter)
        waits = self.limiter.take(hits, admission.token, int(now * 1000))
        admission.taken = tuple(key for (_, key), wait in zip(hits, waits, strict=True) if not wait)
        refused = [(wait, rate.name) for (rate, _), wait in zip(hits, waits, strict=True) if wait]
        if refused:
            admission.release()
            if self.optouts.is_opted_out(number.e164):
                self._refused("opted_out", number)
                raise OptedOut()
            wait, policy = max(refused)
            self.events("rate_limited", policy=policy)
            log.info("send refused", extra={"phone": number.masked, "reason": "rate_limited", "policy": policy})
            raise RateLimited(policy, -(-wait // 1000))
        return admission

    def _hits(self, number: phones.PhoneNumber, client_ip: str | None) -> list[tuple[Rate, str]]:
        hits = [(self.global_rate, RateLimiter.key("global", "all")),
                (self.country_rate, RateLimiter.key("country", number.region or str(number.country_code))),
                (self.prefix_rate, RateLimiter.key("prefix", number_prefix(number, self.settings.prefix_digits)))]
        scope = ip_scope(client_ip) if client_ip else None
        if scope:
            hits.append((self.ip_rate, RateLimiter.key("ip", scope)))
        return hits

    def _refused(self, reason: str, number: phones.PhoneNumber) -> None:
        self.events("code_refused", reason=reason)
        log.info("send refused", extra={"phone": number.masked, "reason": reason})

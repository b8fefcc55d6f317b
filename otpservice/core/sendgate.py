"""The checks before every send, in the contract's order, and the budgets they spend. No Redis here.

Order: input (the caller parsed it) -> country allowed -> number type -> opt-out -> rate limits. A refused
request sends nothing and leaves every budget as it found it; it is logged (masked number, reason) and
counted (otp_code_refusals_total{reason}, otp_rate_limited_total{policy}).

Round trips on the happy path (at most 3 besides the provider's call):
  1. `SendGate.check` takes one send from each budget not keyed by the number (client IP, number prefix,
     country, global) in one pipeline (storage/budgets.py).
  2. The verification store's begin_send checks the opt-out record, the per-number budgets and the resend
     cooldown, then reserves the send, atomically in the number's hash tag.
  3. The send's result is recorded (core/verification.py).
Refusals may cost more: when begin_send refuses, the sends taken in step 1 are refunded (`Admission.release`).
When a step-1 budget refuses, the others taken are refunded and one more read asks whether the number is
opted out, so the answer keeps the contract's order (opted_out before rate_limited).

Under a burst, a request later refused may hold a send of another budget for a moment before its refund:
the error is on the safe side (a refusal), never an extra send. Sends that the provider then fails to
deliver keep their place in the budgets: a number that cannot be reached is not retried faster.
"""
from __future__ import annotations

import ipaddress
import logging
import uuid
from dataclasses import dataclass, field

from otpservice.config import ConfigError, Settings, parse_rate
from otpservice.core import phones
from otpservice.errors import CountryNotAllowed, OptedOut, RateLimited, ServiceError, StoreUnavailable, \
    UnsupportedNumberType
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.storage.budgets import BudgetStore
from otpservice.storage.optouts import OptOutStore
from otpservice.storage.verifications import Reservation

log = logging.getLogger(__name__)

ALWAYS_BLOCKED_TYPES = ("premium_rate", "shared_cost")  # security bar: SMS pumping's favourite targets
IPV6_PREFIX = 64  # one subscriber gets a /64: per-address limits would let it rotate freely


@dataclass(frozen=True)
class Rate:
    """One budget: at most `amount` sends in any `window_ms`, reported as policy `name` when it trips."""

    name: str  # vocabulary.LIMIT_POLICIES
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


PREFIX_DROPS = 4  # a block of sequential numbers is the number without its last 4 digits, in every plan


def number_prefix(e164: str) -> str:
    """The number without its last 4 digits: a block of 10,000 sequential numbers, whatever the country's number
    length (a fixed count of national digits split an 8-digit plan's block into 100 prefixes)."""
    return e164[:-PREFIX_DROPS]


@dataclass
class Admission:
    """What the gate let through: the per-number budgets begin_send must take, and how to give back the rest."""

    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    number_limits: tuple[tuple[str, int, int], ...] = ()
    taken: tuple[str, ...] = ()
    budgets: BudgetStore | None = None

    def release(self) -> None:
        """Refund the sends taken before begin_send refused (best effort: a failure only over-counts)."""
        if self.taken and self.budgets is not None:
            try:
                self.budgets.refund(self.taken, self.token)
            except StoreUnavailable:
                log.warning("could not refund send budgets; they recover when their windows pass")
            self.taken = ()


class SendGate:
    """Country, number type, opt-out and rate limits: the gauntlet every send passes."""

    def __init__(self, *, settings: Settings, optouts: OptOutStore, budgets: BudgetStore,
                 metrics: Metrics | NullMetrics | None = None) -> None:
        unknown = set(settings.blocked_number_types) - set(phones.TYPE_NAMES.values())
        if unknown:
            raise ConfigError(f"OTP_BLOCKED_NUMBER_TYPES: unknown types {sorted(unknown)}; known: "
                              f"{sorted(phones.TYPE_NAMES.values())}")
        self.settings = settings
        self.optouts = optouts
        self.budgets = budgets
        self.metrics = metrics or NullMetrics()
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
            raise self.refused(number, CountryNotAllowed())
        if number.non_geographic and not self.settings.allow_non_geographic:
            raise self.refused(number, CountryNotAllowed(
                f"Codes are not sent to non-geographic numbers (+{number.country_code}: satellite and international "
                "networks, where SMS pumping pays best); OTP_ALLOW_NON_GEOGRAPHIC allows them."))
        if number.number_type in self.blocked_types:
            raise self.refused(number, UnsupportedNumberType(
                f"Codes are not sent to {number.number_type.replace('_', '-')} numbers."))
        hits = self._hits(number, client_ip)
        admission = Admission(number_limits=tuple((r.name, r.amount, r.window_ms) for r in self.number_rates),
                              budgets=self.budgets)
        waits = self.budgets.take([(key, rate.amount, rate.window_ms) for rate, key in hits], admission.token,
                                  int(now * 1000))
        admission.taken = tuple(key for (_, key), wait in zip(hits, waits, strict=True) if not wait)
        refused = [(wait, rate.name) for (rate, _), wait in zip(hits, waits, strict=True) if wait]
        if refused:
            admission.release()
            if self.optouts.is_opted_out(number.e164):
                raise self.refused(number, OptedOut())
            wait, policy = max(refused)
            raise self.refused(number, RateLimited(policy, -(-wait // 1000)))
        return admission

    def reservation_refused(self, number: phones.PhoneNumber, reservation: Reservation) -> ServiceError:
        """The contract error for a send begin_send refused (opted out, cooldown, a per-number budget), logged
        and counted like the gate's own refusals."""
        seconds = -(-reservation.wait_ms // 1000)
        if reservation.outcome == "opted_out":
            return self.refused(number, OptedOut())
        if reservation.outcome == "cooldown":
            return self.refused(number, RateLimited(
                reservation.limit, seconds, "A code was sent to this number moments ago: wait before asking again."))
        if reservation.outcome == "locked":
            return self.refused(number, RateLimited(
                reservation.limit, seconds, "Too many wrong codes for this number: no new code until the lock ends."))
        return self.refused(number, RateLimited(reservation.limit, seconds,
                                                "Too many codes were sent to this number: try later."))

    def refused(self, number: phones.PhoneNumber, error: ServiceError) -> ServiceError:
        """Log and count a refusal; the error, for the caller to raise."""
        policy = error.limit if isinstance(error, RateLimited) else None
        self.metrics.code_refused(error.code, policy)
        log.info("send refused", extra={"phone": number.masked, "reason": error.code, "policy": policy})
        return error

    def _hits(self, number: phones.PhoneNumber, client_ip: str | None) -> list[tuple[Rate, str]]:
        hits = [(self.global_rate, BudgetStore.key("global", "all")),
                (self.country_rate, BudgetStore.key("country", number.country)),
                (self.prefix_rate, BudgetStore.key("prefix", number_prefix(number.e164)))]
        scope = ip_scope(client_ip) if client_ip else None
        if scope:
            hits.append((self.ip_rate, BudgetStore.key("ip", scope)))
        return hits

"""The fraud guard: refuse sends that look like SMS pumping, from the service's own conversion data, and cap the
day's spend. No Redis here (storage/fraud.py).

Pumping texts numbers whose owners are paid per text received; nobody ever enters those codes, and real people
enter most of theirs. So each text counts in three scopes, its number prefix (the E.164 number without its last
4 digits), its country and its route, as do approved codes and failed deliveries, in a judging window
(OTP_FRAUD_WINDOW) and a longer history (OTP_FRAUD_HISTORY). Before every send, after the fixed limits:

1. an allow-listed number or prefix skips the guard (never the spend caps);
2. a live block on one of the request's scopes refuses it, unless an operator lifted it (an exemption);
   a country's block refuses only its *unproven* prefixes: those without an approved code in the history or
   whose history converts under the threshold, so the country's real users keep their codes while an attack
   spread over many fresh prefixes is refused;
3. the caller's `device_id` and `user_id` each have a velocity budget; past it, the device or user is blocked;
4. a prefix, a country (or a route, when OTP_FRAUD_MIN_SENDS_ROUTE is set) whose window holds enough judged
   texts (failed deliveries reached nobody, so they are left out) and converts under OTP_FRAUD_MIN_CONVERSION
   is blocked for OTP_FRAUD_BLOCK_SECONDS.

A block is a record (scope, rule, figures, when, until) an operator lists and lifts through the admin API. In
shadow mode every decision is recorded, logged and counted the same way, and the text goes anyway. Refusing
before the fixed budgets' sends are kept matters as much as refusing: a refused request gives its budget sends
back, so an attack cannot use up the country's or the global budget and refuse everybody else.

The spend caps (OTP_SPEND_LIMIT_DAILY, OTP_SPEND_LIMIT_COUNTRY) sum what Telnyx says each text cost, per UTC
day: the send answer's cost when the text leaves, corrected by message.finalized's. They are checked before
each send, so sends already in flight when a cap is reached may pass it by their own cost.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from otpservice import vocabulary
from otpservice.config import Settings
from otpservice.core import phones
from otpservice.core.sendgate import PREFIX_DROPS, Admission, Rate, number_prefix
from otpservice.errors import InvalidPhoneNumber, InvalidRequest, SpendLimitReached, VerificationBlocked
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.storage import keys
from otpservice.storage.budgets import BudgetStore
from otpservice.storage.fraud import Counts, FraudStore, ScopeCounts

log = logging.getLogger(__name__)

SIGNAL_MAX = 128  # longest device_id / user_id accepted
MICROS = Decimal(1_000_000)
ALLOW_ENTRY_MIN_DIGITS = 3  # an allow-list prefix of at least a country code and a digit or two


@dataclass(frozen=True)
class Signals:
    """What the caller tells about the end user besides the number: its device and its account, as digests."""

    device: str | None = None
    user: str | None = None


def parse_signals(body: dict[str, Any]) -> Signals:
    """The optional `device_id` and `user_id` of a /request-code body; InvalidRequest for a bad one."""
    found = {}
    for name in ("device_id", "user_id"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not 0 < len(value) <= SIGNAL_MAX or not value.isprintable():
            raise InvalidRequest(f"{name} must be a string of 1-{SIGNAL_MAX} printable characters.", field=name)
        # Only a digest is kept or shown: the caller's ids may be personal (an email as user id).
        found[name.split("_")[0]] = keys.digest(name, value, 16)
    return Signals(**found)


def micros(amount: object) -> int | None:
    """A cost amount as Telnyx writes it ("0.0051") in millionths, or None when it is none."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None
    return int(value * MICROS) if value.is_finite() and value >= 0 else None


def units(millionths: int) -> float:
    """Millionths of the currency as an amount (what the API and the metrics show)."""
    return float(Decimal(millionths) / MICROS)


def allow_entry(raw: object) -> str:
    """An allow-list entry: a full E.164 number or a prefix of one ("+371", "+3712000"); InvalidRequest else."""
    if not isinstance(raw, str) or not raw.startswith("+") or not raw[1:].isdigit() \
            or not ALLOW_ENTRY_MIN_DIGITS <= len(raw) - 1 <= 15 or raw[1] == "0":
        raise InvalidRequest("entry must be an E.164 number or prefix: + and 3-15 digits, e.g. +3712000.",
                             field="entry")
    return raw


def day_of(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A block record as the API shows it."""
    return {"scope": record["scope"], "rule": record["rule"], "mode": record["mode"], "figures": record["figures"],
            "since": iso(record["since_ms"]), "until": iso(record["until_ms"])}


class FraudGuard:
    """Judge a send before it leaves, count what became of it, and keep the operator's view of both."""

    def __init__(self, *, settings: Settings, store: FraudStore, budgets: BudgetStore,
                 refused: Callable[[phones.PhoneNumber, Any], Any],
                 metrics: Metrics | NullMetrics | None = None) -> None:
        self.settings = settings
        self.mode = settings.fraud_guard
        self.store = store
        self.budgets = budgets
        self.refused = refused  # SendGate.refused: the log line and the refusal metric of every refusal
        self.metrics = metrics or NullMetrics()
        self.threshold = settings.fraud_min_conversion
        self.block_ms = settings.fraud_block_seconds * 1000
        self.min_sends = {"prefix": settings.fraud_min_sends_prefix, "country": settings.fraud_min_sends_country,
                          "route": settings.fraud_min_sends_route}
        self.velocity = {"device": Rate.parse("device_velocity", settings.limit_device),
                         "user": Rate.parse("user_velocity", settings.limit_user)}
        self.spend_caps = {region: micros(amount) for region, amount in settings.spend_limit_country.items()}
        self.spend_total_cap = micros(settings.spend_limit_daily) or 0

    # -- before a send -------------------------------------------------------------------------------------
    def check(self, number: phones.PhoneNumber, *, route: str, signals: Signals, admission: Admission,
              now_ms: int) -> list[dict[str, Any]]:
        """Refuse the send (VerificationBlocked, SpendLimitReached) or let it go; the block records that decided
        in shadow mode (empty when nothing would have refused it). Velocity sends taken join `admission`, so a
        later refusal gives them back with the rest."""
        off = self.mode == vocabulary.OFF
        if off and not (self.spend_total_cap or self.spend_caps):
            return []  # nothing to read: no Redis round trip
        scopes = {} if off else self.scopes(number, route, signals)
        allow = [] if off else [number.e164[:n] for n in range(ALLOW_ENTRY_MIN_DIGITS + 1, len(number.e164) + 1)]
        state = self.store.state(list(scopes.values()), allow, day=day_of(now_ms), region=number.country,
                                 now_ms=now_ms)
        self._check_spend(number, state.spent_total, state.spent_country, now_ms)
        if off or state.allowed:
            return []
        judged = [kind for kind in ("prefix", "country", "route") if kind in scopes]
        values = [(kind, scopes[kind].partition(":")[2]) for kind in judged]  # as _counted names them
        counts = dict(zip(judged, self.store.counts(values, now_ms), strict=True))
        proven = self._proven(counts["prefix"])
        live = [record for kind, scope in scopes.items() if scope not in state.exempt_until
                and (record := state.blocks.get(scope)) and not (kind == "country" and proven)]
        if live:
            # A block lasts OTP_FRAUD_BLOCK_SECONDS after the latest request it refused: an attack that keeps
            # coming stays refused (its refused requests are no texts, so the window alone would soon look clean).
            # Written again only once a tenth of its length has passed: an attack costs one write a few minutes.
            record = live[0]
            if record["until_ms"] >= now_ms + self.block_ms * 0.9:
                return self._decide(number, record)
            status, value = self.store.block({**record, "until_ms": now_ms + self.block_ms}, now_ms=now_ms,
                                             extend=True)
            if status == "live":
                return self._decide(number, value)
        for kind in ("device", "user"):
            if kind in scopes and scopes[kind] not in state.exempt_until:
                rate = self.velocity[kind]
                key = BudgetStore.key(kind, scopes[kind])
                wait, = self.budgets.take([(key, rate.amount, rate.window_ms)], admission.token, now_ms)
                if not wait:
                    admission.taken += (key,)
                    continue
                figures = {"signal": f"{kind}_id", "limit": getattr(self.settings, f"limit_{kind}")}
                decided = self._block(number, scopes[kind], rate.name, figures, now_ms)
                if decided:
                    return decided
        for kind in judged:
            scope = scopes[kind]
            if not self.min_sends[kind] or scope in state.exempt_until:
                continue
            # The judging window catches a fast attack before a country's real traffic dilutes it; the history
            # catches one too slow to fill the window.
            tripped = [(seconds, c) for seconds, c in ((self.settings.fraud_window, counts[kind].window),
                                                      (self.settings.fraud_history, counts[kind].history))
                       if c.judged >= self.min_sends[kind] and c.conversion < self.threshold]
            if not tripped:
                continue
            figures = self._figures(kind, *tripped[0])
            if kind == "country":
                figures["prefix"] = {"scope": scopes["prefix"], "proven": proven,
                                     **counts["prefix"].history.to_dict()}
            record = self._record(scope, f"{kind}_conversion", figures, now_ms)
            status, value = self.store.block(record, now_ms=now_ms)
            if status == "exempt":
                continue
            if status == "new":
                self._announce(value)
            if kind == "country" and proven:
                continue  # the country is blocked; this prefix has earned its codes
            return self._decide(number, value)
        return []

    def scopes(self, number: phones.PhoneNumber, route: str, signals: Signals) -> dict[str, str]:
        """The request's scopes by kind, as "<kind>:<value>" (the block records' names)."""
        found = {"prefix": f"prefix:{number_prefix(number.e164)}", "country": f"country:{number.country}"}
        if self.min_sends["route"]:
            found["route"] = f"route:{route}"
        if signals.device:
            found["device"] = f"device:{signals.device}"
        if signals.user:
            found["user"] = f"user:{signals.user}"
        return found

    def _proven(self, prefix: ScopeCounts) -> bool:
        """A prefix real people use: an approved code in the history, and the history converts."""
        return prefix.history.approved > 0 and prefix.history.conversion >= self.threshold

    def _figures(self, kind: str, seconds: int, counts: Counts) -> dict[str, Any]:
        return {**counts.to_dict(), "threshold": self.threshold, "min_sends": self.min_sends[kind],
                "window_seconds": seconds}

    def _record(self, scope: str, rule: str, figures: dict[str, Any], now_ms: int) -> dict[str, Any]:
        return {"scope": scope, "rule": rule, "figures": figures, "mode": self.mode, "since_ms": now_ms,
                "until_ms": now_ms + self.block_ms}

    def _block(self, number: phones.PhoneNumber, scope: str, rule: str, figures: dict[str, Any],
               now_ms: int) -> list[dict[str, Any]]:
        status, value = self.store.block(self._record(scope, rule, figures, now_ms), now_ms=now_ms)
        if status == "exempt":
            return []
        if status == "new":
            self._announce(value)
        return self._decide(number, value)

    def _announce(self, record: dict[str, Any]) -> None:
        self.metrics.fraud_block(record["rule"], self.mode)
        log.warning("fraud guard: scope blocked", extra={"scope": record["scope"], "rule": record["rule"],
                                                         "mode": self.mode, "figures": record["figures"]})

    def _decide(self, number: phones.PhoneNumber, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Refuse by `record` (enforce), or note what it would have refused (shadow)."""
        self.metrics.fraud_decision(record["rule"], self.mode)
        if self.mode == vocabulary.SHADOW:
            log.info("fraud guard (shadow): would refuse this send", extra={
                "phone": number.masked, "scope": record["scope"], "rule": record["rule"]})
            return [record]
        raise self.refused(number, VerificationBlocked(
            public(record), f"The fraud guard refused to send a code: {record['scope']} is blocked "
                            f"({record['rule']}) until {iso(record['until_ms'])}."))

    def _check_spend(self, number: phones.PhoneNumber, total: int, country: int, now_ms: int) -> None:
        cap = self.spend_caps.get(number.country)
        for scope, spent, limit in (("spend:total", total, self.spend_total_cap),
                                    (f"spend:{number.country}", country, cap)):
            if limit and spent >= limit:
                tomorrow = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).date() + timedelta(days=1)
                reason = {"scope": scope, "limit": units(limit),
                          "spent": units(spent), "currency": self.settings.spend_currency,
                          "resets_at": f"{tomorrow.isoformat()}T00:00:00Z"}
                self.metrics.spend_refused(vocabulary.SPEND_SCOPES[0 if scope == "spend:total" else 1])
                raise self.refused(number, SpendLimitReached(
                    reason, f"Today's spend cap for {scope.partition(':')[2]} is reached "
                            f"({reason['spent']} of {reason['limit']} {reason['currency']}): no code is sent "
                            f"until {reason['resets_at']}."))

    # -- what became of a send -----------------------------------------------------------------------------
    def cost_micros(self, cost: tuple[str, str] | None) -> int | None:
        """A provider's (amount, currency) in millionths of OTP_SPEND_CURRENCY; None when there is none or it is
        in another currency (logged: the caps cannot sum it)."""
        if cost is None:
            return None
        amount, currency = micros(cost[0]), cost[1]
        if amount is not None and currency != self.settings.spend_currency:
            log.warning("text cost in another currency than OTP_SPEND_CURRENCY: not counted",
                        extra={"currency": str(currency)[:8]})
            return None
        return amount

    def sent(self, number: phones.PhoneNumber, route: str, cost_micros: int | None, now_ms: int) -> None:
        """Count a text the provider took (or may have), and what its answer said it cost."""
        spend = (day_of(now_ms), number.country, cost_micros) if cost_micros else None
        self.store.add(self._counted(number.e164, number.country, route), "sent", now_ms, spend=spend)
        self.metrics.fraud_event(number.country, "sent")
        if cost_micros:
            self.metrics.spend(number.country, units(cost_micros))

    def approved(self, phone: str, route: str, now_ms: int) -> None:
        self._event(phone, route, "approved", now_ms)

    def failed(self, phone: str, route: str, now_ms: int) -> None:
        self._event(phone, route, "failed", now_ms)

    def finalized(self, phone: str, cost: tuple[str, str] | None, counted: int | None, now_ms: int) -> None:
        """A final receipt's cost replaces what the send answer said (`counted`, millionths): the difference is
        added to the day it arrives."""
        amount = self.cost_micros(cost)
        country = self._country(phone)
        if amount is not None and country is not None and amount != (counted or 0):
            self._spend(country, amount - (counted or 0), now_ms)

    def _event(self, phone: str, route: str, event: str, now_ms: int) -> None:
        country = self._country(phone)
        if country is not None:
            self.store.add(self._counted(phone, country, route), event, now_ms)
            self.metrics.fraud_event(country, event)

    @staticmethod
    def _country(phone: str) -> str | None:
        try:
            return phones.country_of(phone)
        except (InvalidRequest, InvalidPhoneNumber):  # a number we texted parses; nothing to count otherwise
            return None

    def _spend(self, country: str, delta: int, now_ms: int) -> None:
        self.store.spend(day_of(now_ms), country, delta)
        self.metrics.spend(country, units(delta))

    @staticmethod
    def _counted(e164: str, country: str, route: str) -> list[tuple[str, str]]:
        """The scopes a text counts in (a route is counted even when it is never judged: the admin view)."""
        return [("prefix", number_prefix(e164)), ("country", country), ("route", route)]

    # -- the operator's view -------------------------------------------------------------------------------
    def blocks(self, now_ms: int) -> dict[str, Any]:
        return {"mode": self.mode, "data": [public(r) for r in self.store.blocks(now_ms)]}

    def lift(self, scope: str, now_ms: int) -> dict[str, Any] | None:
        record = self.store.lift(scope, exempt_until_ms=now_ms + self.block_ms, now_ms=now_ms)
        if record is not None:
            log.warning("fraud guard: block lifted by an operator", extra={"scope": scope, "rule": record["rule"]})
            return {**public(record), "exempt_until": iso(now_ms + self.block_ms)}
        return None

    def allow(self, entry: str, note: str, now_ms: int) -> dict[str, Any]:
        record = self.store.allow(entry, note=note, now_ms=now_ms)
        # A full number is never logged: an entry of a subscriber's length shows its prefix only.
        shown = entry if len(entry) <= 7 else entry[:-PREFIX_DROPS] + "*" * PREFIX_DROPS
        log.warning("fraud guard: allow-list entry added", extra={"entry": shown})
        return {"entry": entry, "note": note, "added_at": iso(record["added_at_ms"])}

    def disallow(self, entry: str) -> bool:
        return self.store.disallow(entry)

    def allowed(self) -> list[dict[str, Any]]:
        return [{"entry": r["entry"], "note": r["note"], "added_at": iso(r["added_at_ms"])}
                for r in self.store.allowed()]

    def scope_counts(self, kind: str, value: str, now_ms: int) -> dict[str, Any]:
        (counts,) = self.store.counts([(kind, value)], now_ms)
        return {"scope": f"{kind}:{value}", "window": counts.window.to_dict(), "history": counts.history.to_dict(),
                "window_seconds": self.settings.fraud_window, "history_seconds": self.settings.fraud_history}

    def spend_today(self, now_ms: int) -> dict[str, Any]:
        spent = self.store.spent(day_of(now_ms))
        total = spent.pop("total", 0)
        return {"day": day_of(now_ms), "currency": self.settings.spend_currency, "total": units(total),
                "limit": self.settings.spend_limit_daily or None,
                "countries": {region: {"spent": units(value),
                                       "limit": float(self.settings.spend_limit_country[region])
                                       if region in self.settings.spend_limit_country else None}
                              for region, value in sorted(spent.items())}}


__all__ = ["Counts", "FraudGuard", "Signals", "allow_entry", "micros", "parse_signals"]

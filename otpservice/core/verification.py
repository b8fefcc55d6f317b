"""Request a code and verify it: the service's main job, over a Sender and the stores.

Order of a request: validate and normalise, run the checks before a send (core/sendgate.py: country, number
type, opt-out, rate limits), reserve the send atomically in Redis (new code hash, cooldown), text the code on
its route, record what the provider said. A refused request sends nothing.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from otpservice import vocabulary
from otpservice.config import Settings
from otpservice.core import codes, messages, phones
from otpservice.core.fraud import FraudGuard, Signals, parse_signals
from otpservice.core.sendgate import Admission, SendGate, ip_scope
from otpservice.core.testnumbers import load_test_numbers
from otpservice.core.throttle import FailureBudget
from otpservice.errors import ChannelUnavailable, InvalidPhoneNumber, InvalidRequest, MaxAttemptsReached, OptedOut, \
    ProviderError, ProviderUnavailable, ServiceError, StoreUnavailable, VerificationNotFound
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.sending.base import InvalidRecipient, OutboundMessage, RecipientOptedOut, Route, SendError, \
    Sender, SentMessage
from otpservice.sending.base import ProviderUnavailable as SendUnavailable
from otpservice.sending.routing import RoutedSender, Router
from otpservice.sending.slots import NoSendSlot, SendSlots
from otpservice.storage.optouts import OptOutStore
from otpservice.storage.verifications import Reservation, Verification, VerificationStore

log = logging.getLogger(__name__)

PURPOSE_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
DEFAULT_PURPOSE = "login"
RECENT_MS = 86_400_000  # the admin list: a number's verifications of the last 24 h


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with a Z."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CodeRequest:
    """A validated /request-code body."""

    number: phones.PhoneNumber
    purpose: str
    locale: str | None
    client_ip: str | None
    channel: str = vocabulary.SMS
    routes: tuple[Route, ...] = ()  # the routes of the number's country and channel, in order
    signals: Signals = Signals()  # the caller's device_id and user_id, as digests (the fraud guard's velocity)


def client_ip_of(body: dict[str, Any], forwarded_ip: str | None) -> str | None:
    """The end user's address: the body's `client_ip` (a server calling on a user's behalf knows it), else the
    trusted proxy header's (`forwarded_ip`, only when one is configured); InvalidRequest for a bad one."""
    client_ip = body.get("client_ip")
    if client_ip is not None and not ip_scope(client_ip):
        raise InvalidRequest("client_ip must be an IP address string.", field="client_ip")
    if client_ip is None and ip_scope(forwarded_ip):
        client_ip = forwarded_ip
    return client_ip


def parse_purpose(value: object) -> str:
    if value is None:
        return DEFAULT_PURPOSE
    if not isinstance(value, str) or not PURPOSE_RE.match(value):
        raise InvalidRequest("purpose must be 1-32 characters of a-z, 0-9, _ and -.", field="purpose")
    return value


class VerificationService:
    """request_code / verify / get / cancel / recent over the verification store and a Sender."""

    def __init__(self, *, settings: Settings, store: VerificationStore, gate: SendGate, sender: RoutedSender,
                 test_sender: Sender, router: Router, optouts: OptOutStore, client_failures: FailureBudget,
                 slots: SendSlots, guard: FraudGuard, clock: Callable[[], float] = time.time,
                 metrics: Metrics | NullMetrics | None = None) -> None:
        self.settings = settings
        self.guard = guard
        self.store = store
        self.gate = gate
        self.sender = sender
        self.test_sender = test_sender
        self.router = router
        self.optouts = optouts
        self.client_failures = client_failures  # wrong codes per client address (OTP_LIMIT_VERIFY_FAILURES_IP)
        self.slots = slots  # sends in flight in this process (OTP_SEND_CONCURRENCY)
        self.clock = clock
        self.metrics = metrics or NullMetrics()
        self.test_numbers = load_test_numbers(settings)
        self.texts = messages.Texts.from_settings(settings)
        self.secret = settings.code_secret.encode()

    # -- parsing ---------------------------------------------------------------------------------------
    def parse_request(self, body: dict[str, Any], forwarded_ip: str | None = None) -> CodeRequest:
        """Validate a /request-code body; raises InvalidRequest/InvalidPhoneNumber and changes nothing.

        `forwarded_ip` is the trusted proxy header's address (only when one is configured); the body's
        `client_ip` wins, since a server calling on a user's behalf knows the user's address.
        """
        number = phones.normalize(body.get("phone_number"), self.settings.default_region)
        locale = body.get("locale")
        if locale is not None and not messages.valid_locale(locale):
            raise InvalidRequest("locale must be a BCP 47 language tag such as en or es-MX.", field="locale")
        channel = body.get("channel")
        if channel is not None and channel not in vocabulary.SEND_CHANNELS:
            raise InvalidRequest(f"channel must be one of {', '.join(vocabulary.SEND_CHANNELS)}.", field="channel")
        channel, routes = self.router.routes(region=number.region, channel=channel)
        if not routes:
            raise ChannelUnavailable(f"No route sends {channel} codes to this number's country.", field="channel")
        return CodeRequest(number, parse_purpose(body.get("purpose")), locale, client_ip_of(body, forwarded_ip),
                           channel, routes, parse_signals(body))

    # -- request a code --------------------------------------------------------------------------------
    def request_code(self, req: CodeRequest) -> dict[str, Any]:
        """Run the checks, reserve a send, text a fresh code; returns the 202 body or raises.

        A send slot is taken first (test numbers send nothing and take none): with every slot held by a slow
        provider the request is refused at once, having reserved and spent nothing.
        """
        if req.number.e164 in self.test_numbers:
            return self._request_code(req)
        try:
            with self.slots.hold():
                return self._request_code(req)
        except NoSendSlot as exc:
            self.metrics.send_slots_exhausted()
            log.warning("send refused: every send slot is taken (the provider is slow)",
                        extra={"phone": req.number.masked, "slots": self.slots.limit})
            raise ProviderUnavailable("Every send to the SMS provider is busy: try again in a moment.",
                                      retry_after=exc.retry_after) from None

    def _request_code(self, req: CodeRequest) -> dict[str, Any]:
        s = self.settings
        now = self.clock()
        now_ms = int(now * 1000)
        fixed_code = self.test_numbers.get(req.number.e164)
        # A test number sends nothing and costs nothing, so it skips the send budgets (never the cooldown,
        # the opt-out record, attempts or expiry, which begin_send and verify enforce).
        admission = Admission() if fixed_code else self.gate.check(req.number, client_ip=req.client_ip, now=now)
        code = fixed_code or codes.generate_code(s.code_digits)
        try:
            if not fixed_code:
                self.guard.check(req.number, route=req.routes[0].name, signals=req.signals, admission=admission,
                                 now_ms=now_ms)
            reservation = self.store.begin_send(
                phone=req.number.e164, purpose=req.purpose,
                code_hash=codes.code_hash(self.secret, req.number.e164, req.purpose, code),
                now_ms=now_ms, ttl_ms=s.code_ttl * 1000, retention_ms=s.record_retention * 1000,
                cooldown_ms=s.resend_cooldown * 1000, skip_cooldown_after_failure=True, channel=req.channel,
                number_limits=admission.number_limits, failure_cap=s.number_failures_per_day)
        except Exception:
            admission.release()
            raise
        if reservation.outcome not in ("new", "resend"):
            admission.release()
            raise self.gate.reservation_refused(req.number, reservation)
        sent = self._send(req, reservation, code, now_ms, test_number=bool(fixed_code))
        log.info("code sent", extra={"verification_id": reservation.verification_id, "phone": req.number.masked,
                                     "purpose": req.purpose, "send_count": reservation.send_count,
                                     "endpoint": sent.route.endpoint, "route": sent.route.name})
        return {
            "verification_id": reservation.verification_id, "phone_number": req.number.e164,
            "purpose": req.purpose, "channel": req.channel, "status": "pending",
            "expires_at": iso(reservation.expires_at_ms),
            "expires_in": max(0, (reservation.expires_at_ms - now_ms) // 1000),
            "resend_after": s.resend_cooldown, "send_count": reservation.send_count,
            "delivery": {"status": sent.status, "message_id": sent.message_id},
        }

    def _send(self, req: CodeRequest, reservation: Reservation, code: str, now_ms: int, *,
              test_number: bool) -> SentMessage:
        """Text the code along its routes; record the outcome and the route whatever happens, and answer a failure
        with the contract's error."""
        s = self.settings
        text = self.texts.render(code=code, locale=req.locale, region=req.number.region)
        # The send's own Idempotency-Key: a retry of this send is recognised as one; the next send (a resend) is not.
        key = f"{reservation.verification_id}-{reservation.send_count}"
        message = OutboundMessage(to=req.number.e164, text=text, route=req.routes[0], idempotency_key=key,
                                  webhook_url=s.webhook_url or None,
                                  webhook_failover_url=s.webhook_failover_url or None, code=code)
        record = dict(verification_id=reservation.verification_id, send_number=reservation.send_count, now_ms=now_ms)
        try:
            sent = self.test_sender.send(message) if test_number else \
                self.sender.send(message, req.routes, failed_route=reservation.failed_route or None)
        except SendError as exc:
            route = exc.route or message.route
            record.update(endpoint=route.endpoint, route=route.name)
            self._record_failure(exc, req, record)
            if isinstance(exc, SendUnavailable) and exc.unanswered:
                # No definite answer within the deadline: the text may still arrive, and its code is valid. The
                # caller hears so (delivery status unknown) and the cooldown holds, so no second text chases it.
                self._count_sent(req, route.name, None, now_ms)  # it may have gone: the guard counts it
                return SentMessage(message_id=None, status=vocabulary.UNKNOWN_STATUS, route=route)
            raise self._contract_error(exc) from exc
        if test_number:
            self.metrics.test_number_used()
            log.warning("test number used: fixed code, nothing sent", extra={
                "verification_id": reservation.verification_id, "phone": req.number.masked,
                "purpose": req.purpose})
        else:
            self.metrics.code_sent(sent.route.endpoint)
        record.update(endpoint=sent.route.endpoint, route=sent.route.name)
        cost = None if test_number else self.guard.cost_micros(sent.cost)
        try:
            self.store.record_send(outcome="sent", message_id=sent.message_id, delivery_status=sent.status,
                                   phone=req.number.e164, cost_micros=cost, **record)
        except StoreUnavailable:
            # The text is out and its verification (with the code hash) was stored before the send: the user
            # can still verify. Only the send's result is lost (its receipts will find no send), so answer 202.
            self.metrics.send_unrecorded()
            log.error("send recorded nowhere: redis failed after the provider accepted the message",
                      extra={"verification_id": reservation.verification_id, "phone": req.number.masked,
                             "message_id": sent.message_id})
        if not test_number:
            self._count_sent(req, sent.route.name, cost, now_ms)
        return sent

    def _count_sent(self, req: CodeRequest, route: str, cost: int | None, now_ms: int) -> None:
        """The fraud guard's counts of a text that left (or may have): a failure loses a count, not the text."""
        try:
            self.guard.sent(req.number, route, cost, now_ms)
        except StoreUnavailable:
            log.warning("fraud guard could not count a text: its conversion and spend miss it",
                        extra={"phone": req.number.masked})

    def _record_failure(self, exc: SendError, req: CodeRequest, record: dict[str, Any]) -> None:
        """Keep the failed send on the record; an opt-out answer also goes to the registry."""
        errors = [{"code": str(e.get("code", "")), "title": str(e.get("title", ""))} for e in exc.errors] or \
            [{"code": exc.code or type(exc).__name__, "title": exc.title}]
        if isinstance(exc, (RecipientOptedOut, InvalidRecipient)):
            outcome = "dead"
        elif isinstance(exc, SendUnavailable) and exc.unanswered:
            # No answer at all (read timeout): the text may still arrive, so keep its code and the cooldown.
            # A 5xx or 429 is an answer that the message was not taken: give the cooldown back.
            outcome = "uncertain"
        else:
            outcome = "failed"
        status = vocabulary.UNKNOWN_STATUS if outcome == "uncertain" else "sending_failed"
        self.store.record_send(outcome=outcome, message_id=None, delivery_status=status, errors=errors, **record)
        if isinstance(exc, RecipientOptedOut):
            profile = exc.route.messaging_profile_id if exc.route else None
            self.optouts.add(req.number.e164, "send_rejected", now_ms=record["now_ms"],
                             messaging_profile_id=profile or self.settings.telnyx_messaging_profile_id or None)
        if outcome == "uncertain":
            self.metrics.send_unanswered(record["endpoint"])
            log.warning("send unconfirmed: no answer within the deadline, the text may still arrive",
                        extra={"verification_id": record["verification_id"], "phone": req.number.masked})
            return
        self.metrics.send_failed(record["endpoint"], exc.outcome)
        log.warning("send failed", extra={"verification_id": record["verification_id"], "phone": req.number.masked,
                                          "provider_code": exc.code, "error": type(exc).__name__})

    @staticmethod
    def _contract_error(exc: SendError) -> ServiceError:
        if isinstance(exc, RecipientOptedOut):
            return OptedOut()
        if isinstance(exc, InvalidRecipient):
            return InvalidPhoneNumber("The SMS provider refused the number as invalid.")
        if isinstance(exc, SendUnavailable):
            return ProviderUnavailable(retry_after=exc.retry_after)
        return ProviderError()

    # -- verify ----------------------------------------------------------------------------------------
    def verify(self, body: dict[str, Any], forwarded_ip: str | None = None) -> dict[str, Any]:
        """Check a code by number and purpose, or by verification id; spends it when right. A client with an
        address (`client_ip`, or the trusted proxy header's) that spent its wrong codes is refused unchecked."""
        s = self.settings
        code = body.get("code")
        if not codes.is_well_formed(code, s.code_digits):
            raise InvalidRequest(f"code must be exactly {s.code_digits} digits 0-9.", field="code")
        client = ip_scope(client_ip_of(body, forwarded_ip))
        if client:
            self.client_failures.check(client)
        now_ms = int(self.clock() * 1000)
        vid = body.get("verification_id")
        if vid is not None:
            if not isinstance(vid, str):
                raise InvalidRequest("verification_id must be a string.", field="verification_id")
            record = self.store.get(vid, now_ms=now_ms)
            if record is None:
                raise VerificationNotFound()
            phone, purpose = record.phone, record.purpose
        else:
            phone = phones.to_e164(body.get("phone_number"), s.default_region)
            purpose = parse_purpose(body.get("purpose"))
        result = self.store.verify(
            phone=phone, purpose=purpose, code_hash=codes.code_hash(self.secret, phone, purpose, code),
            now_ms=now_ms, max_attempts=s.max_attempts, failure_cap=s.number_failures_per_day, expected_id=vid or "")
        # The channel the caller names (its codes are the same whatever they went over).
        self.metrics.verification(result.outcome, body.get("channel") or vocabulary.SMS)
        log.info("verify", extra={"verification_id": result.verification_id, "phone": phones.mask(phone),
                                  "result": result.outcome})
        if client and result.outcome == "wrong":
            self.client_failures.fail(client)
        if result.outcome == "not_found":
            raise VerificationNotFound()
        if result.outcome == "max_attempts":
            raise MaxAttemptsReached()
        if result.outcome == "number_locked":
            raise MaxAttemptsReached("Too many wrong codes for this number today: try again later.",
                                     headers={"Retry-After": str(max(1, result.locked_for_ms // 1000))})
        answer = {"verification_id": result.verification_id, "phone_number": phone, "purpose": purpose}
        if result.outcome == "approved":
            if phone not in self.test_numbers:
                try:
                    self.guard.approved(phone, result.route, now_ms)
                except StoreUnavailable:  # the code is spent: only the conversion count is lost
                    log.warning("fraud guard could not count an approved code", extra={"phone": phones.mask(phone)})
            return {"valid": True, "status": "approved", **answer}
        remaining = max(0, s.max_attempts - result.attempts)
        status = "pending" if remaining else "max_attempts_reached"
        return {"valid": False, "status": status, "attempts_remaining": remaining, **answer}

    # -- read, cancel, list ----------------------------------------------------------------------------
    def get(self, verification_id: str) -> dict[str, Any]:
        """The public view of a verification record, or VerificationNotFound."""
        record = self.store.get(verification_id, now_ms=int(self.clock() * 1000))
        if record is None:
            raise VerificationNotFound("No verification with this id (or it is past its retention).")
        return self.render(record)

    def cancel(self, verification_id: str) -> dict[str, Any]:
        """Cancel a pending verification and return its record."""
        if not self.store.cancel(verification_id, now_ms=int(self.clock() * 1000)):
            raise VerificationNotFound()
        return self.get(verification_id)

    def recent(self, raw_number: object) -> dict[str, Any]:
        """A number's verifications of the last 24 h, newest first (the admin list)."""
        number = phones.normalize(raw_number, self.settings.default_region)
        records = self.store.recent_for_number(number.e164, now_ms=int(self.clock() * 1000), retention_ms=RECENT_MS)
        return {"phone_number": number.e164, "data": [self.render(r) for r in records]}

    def render(self, record: Verification) -> dict[str, Any]:
        """A record as the API shows it: never the code or its hash."""
        return {
            "verification_id": record.id, "phone_number": record.phone, "purpose": record.purpose,
            "channel": record.channel, "status": record.status, "created_at": iso(record.created_at_ms),
            "expires_at": iso(record.expires_at_ms), "attempts": record.attempts,
            "attempts_remaining": max(0, self.settings.max_attempts - record.attempts),
            "send_count": record.send_count,
            "sends": [{"message_id": send.message_id, "endpoint": send.endpoint, "route": send.route,
                       "channel": vocabulary.ENDPOINT_CHANNELS.get(send.endpoint, vocabulary.SMS),
                       "sent_at": iso(send.sent_at_ms),
                       "delivery_status": send.delivery_status,
                       "delivery_updated_at": iso(send.delivery_updated_at_ms), "errors": send.errors}
                      for send in record.sends],
        }

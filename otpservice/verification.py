"""Request a code and verify it: the service's main job, with no Flask imports.

Order of a request: validate and normalise, run the checks before a send (the guard: country, number
type, opt-out, rate limits), reserve the send atomically in Redis (new code hash, cooldown), text the
code through Telnyx, record what Telnyx said. A refused request sends nothing.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from otpservice import codes, messages, phones
from otpservice.config import Settings
from otpservice.errors import (InvalidPhoneNumber, InvalidRequest, MaxAttemptsReached, OptedOut, ProviderError,
                               ProviderUnavailable, StoreUnavailable, VerificationNotFound)
from otpservice.optouts import OptOutRegistry
from otpservice.ratelimit import Admission, RateLimiter, SendGate, ip_scope
from otpservice.testnumbers import load_test_numbers
from otpservice.store import Store, Verification
from otpservice.telnyx import (TelnyxClient, TelnyxConfigError, TelnyxError, TelnyxInvalidNumber, TelnyxOptOut,
                               TelnyxUnavailable)

log = logging.getLogger(__name__)

PURPOSE_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
DEFAULT_PURPOSE = "login"
FAILED_DELIVERY = frozenset({"delivery_failed", "sending_failed", "expired"})


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with a Z."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SendGuard(Protocol):
    """The checks that run before every send (country, number type, opt-out, rate limits)."""

    def check(self, number: phones.PhoneNumber, *, client_ip: str | None, now: float) -> Admission: ...


@dataclass(frozen=True)
class CodeRequest:
    """A validated /request-code body."""

    number: phones.PhoneNumber
    purpose: str
    locale: str | None
    client_ip: str | None


def parse_purpose(value: object) -> str:
    if value is None:
        return DEFAULT_PURPOSE
    if not isinstance(value, str) or not PURPOSE_RE.match(value):
        raise InvalidRequest("purpose must be 1-32 characters of a-z, 0-9, _ and -.", field="purpose")
    return value


class VerificationService:
    """request_code / verify / get / cancel over a Store and a Telnyx client."""

    def __init__(self, *, settings: Settings, store: Store, telnyx: TelnyxClient, optouts: OptOutRegistry,
                 guard: SendGuard | None = None, clock: Callable[[], float] = time.time,
                 events: Callable[..., None] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.telnyx = telnyx
        self.optouts = optouts
        self.clock = clock
        self.events = events or (lambda name, **labels: None)
        self.guard = guard or SendGate(settings=settings, optouts=optouts, limiter=RateLimiter(store.redis),
                                       events=self.events)
        self.test_numbers = load_test_numbers(settings)
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
        client_ip = body.get("client_ip")
        if client_ip is not None and not ip_scope(client_ip):
            raise InvalidRequest("client_ip must be an IP address string.", field="client_ip")
        if client_ip is None and ip_scope(forwarded_ip):
            client_ip = forwarded_ip
        return CodeRequest(number, parse_purpose(body.get("purpose")), locale, client_ip)

    # -- request a code --------------------------------------------------------------------------------
    def request_code(self, req: CodeRequest) -> dict[str, Any]:
        """Run the checks, reserve a send, text a fresh code; returns the 202 body or raises."""
        s = self.settings
        now = self.clock()
        now_ms = int(now * 1000)
        fixed_code = self.test_numbers.get(req.number.e164)
        # A test number sends nothing and costs nothing, so it skips the send budgets (never the cooldown,
        # the opt-out record, attempts or expiry, which begin_send and verify enforce).
        admission = Admission() if fixed_code else self.guard.check(req.number, client_ip=req.client_ip, now=now)
        code = fixed_code or codes.generate_code(s.code_digits)
        try:
            reservation = self.store.begin_send(
                phone=req.number.e164, purpose=req.purpose,
                code_hash=codes.code_hash(self.secret, req.number.e164, req.purpose, code),
                now_ms=now_ms, ttl_ms=s.code_ttl * 1000, retention_ms=s.record_retention * 1000,
                cooldown_ms=s.resend_cooldown * 1000, skip_cooldown_after_failure=True,
                number_limits=admission.number_limits, token=admission.token)
        except Exception:
            admission.release()
            raise
        if reservation.outcome not in ("new", "resend"):
            admission.release()
            self.events("code_refused", reason=reservation.outcome)
            if reservation.outcome == "limited":
                self.events("rate_limited", policy=reservation.limit)
            raise admission.refusal(reservation)
        endpoint = s.send_endpoint
        if reservation.after_failed_delivery and s.failover_endpoint:
            endpoint = s.failover_endpoint
        if fixed_code:
            message_id = self._test_send(req, reservation.verification_id, reservation.send_count, endpoint,
                                         now_ms)
        else:
            message_id = self._send(req, reservation.verification_id, reservation.send_count, code, endpoint,
                                    now_ms)
            self.events("code_sent", endpoint=endpoint)
        log.info("code sent", extra={"verification_id": reservation.verification_id,
                                     "phone": req.number.masked, "purpose": req.purpose,
                                     "send_count": reservation.send_count, "endpoint": endpoint})
        return {
            "verification_id": reservation.verification_id, "phone_number": req.number.e164,
            "purpose": req.purpose, "channel": "sms", "status": "pending",
            "expires_at": iso(reservation.expires_at_ms),
            "expires_in": max(0, (reservation.expires_at_ms - now_ms) // 1000),
            "resend_after": s.resend_cooldown, "send_count": reservation.send_count,
            "delivery": {"status": "queued" if message_id else "delivered", "message_id": message_id},
        }

    def _test_send(self, req: CodeRequest, vid: str, send_number: int, endpoint: str, now_ms: int) -> None:
        """A test number's 'send': its fixed code is already stored; nothing reaches Telnyx, the use is logged."""
        self.store.record_send(vid, send_number, outcome="sent", message_id=None, endpoint=endpoint,
                               now_ms=now_ms, delivery_status="delivered")
        self.events("test_number_used")
        log.warning("test number used: fixed code, nothing sent", extra={
            "verification_id": vid, "phone": req.number.masked, "purpose": req.purpose})
        return None

    def _send(self, req: CodeRequest, vid: str, send_number: int, code: str, endpoint: str, now_ms: int) -> str:
        """Text the code; record the outcome whatever happens, and map Telnyx errors to the contract's."""
        s = self.settings
        text = messages.render(code=code, app_name=s.app_name, ttl_seconds=s.code_ttl, locale=req.locale,
                               region=req.number.region)
        record = dict(verification_id=vid, send_number=send_number, endpoint=endpoint, now_ms=now_ms)
        try:
            sent = self.telnyx.send_message(
                to=req.number.e164, text=text, endpoint=endpoint,
                from_=(s.telnyx_from or None) if endpoint == "messages" else None,
                messaging_profile_id=s.telnyx_messaging_profile_id or None, webhook_url=s.webhook_url or None)
        except TelnyxError as exc:
            self._record_failure(exc, req, record)
            raise self._contract_error(exc) from exc
        try:
            self.store.record_send(outcome="sent", message_id=sent.id, delivery_status=sent.status or "queued",
                                   **record)
        except StoreUnavailable:
            # The text is out and its verification (with the code hash) was stored before the send: the
            # user can still verify. Only the send's message id is lost (its delivery webhooks will find no
            # send: unknown_message), so answer 202.
            self.events("store_error", operation="record_send")
            log.error("send recorded nowhere: redis failed after telnyx accepted the message",
                      extra={"verification_id": vid, "phone": req.number.masked, "message_id": sent.id})
        return sent.id

    def _record_failure(self, exc: TelnyxError, req: CodeRequest, record: dict[str, Any]) -> None:
        """Keep the failed send on the record; an opt-out answer also goes to the registry."""
        errors = [{"code": str(e.get("code", "")), "title": str(e.get("title", ""))} for e in exc.errors] or \
            [{"code": exc.code or type(exc).__name__, "title": exc.title}]
        if isinstance(exc, (TelnyxOptOut, TelnyxInvalidNumber)):
            outcome = "dead"
        elif isinstance(exc, TelnyxUnavailable) and exc.may_have_sent and exc.http_status is None:
            # No answer at all (read timeout): the text may still arrive, so keep its code and the cooldown.
            # A 5xx or 429 is an answer that the message was not taken: give the cooldown back.
            outcome = "uncertain"
        else:
            outcome = "failed"
        status = "unknown" if outcome == "uncertain" else "sending_failed"
        self.store.record_send(outcome=outcome, message_id=None, delivery_status=status, errors=errors, **record)
        if isinstance(exc, TelnyxOptOut):
            self.optouts.add(req.number.e164, "send_rejected", now_ms=record["now_ms"],
                             messaging_profile_id=self.settings.telnyx_messaging_profile_id or None)
        self.events("code_send_failed", endpoint=record["endpoint"], error=type(exc).__name__)
        log.warning("send failed", extra={"verification_id": record["verification_id"],
                                          "phone": req.number.masked, "telnyx_code": exc.code,
                                          "error": type(exc).__name__})

    @staticmethod
    def _contract_error(exc: TelnyxError) -> Exception:
        if isinstance(exc, TelnyxOptOut):
            return OptedOut()
        if isinstance(exc, TelnyxInvalidNumber):
            return InvalidPhoneNumber("The SMS provider refused the number as invalid.")
        if isinstance(exc, TelnyxUnavailable):
            return ProviderUnavailable(retry_after=exc.retry_after)
        if isinstance(exc, TelnyxConfigError):
            return ProviderError()
        return ProviderError()

    # -- verify ----------------------------------------------------------------------------------------
    def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check a code by number and purpose, or by verification id; spends it when right."""
        s = self.settings
        code = body.get("code")
        if not codes.is_well_formed(code, s.code_digits):
            raise InvalidRequest(f"code must be exactly {s.code_digits} digits 0-9.", field="code")
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
        self.events("verification", result=result.outcome)
        if log.isEnabledFor(logging.INFO):  # every /verify passes here: build the line only when it is kept
            log.info("verify", extra={"verification_id": result.verification_id, "phone": phones.mask(phone),
                                      "result": result.outcome})
        if result.outcome == "not_found":
            raise VerificationNotFound()
        if result.outcome == "max_attempts":
            raise MaxAttemptsReached()
        if result.outcome == "number_locked":
            raise MaxAttemptsReached("Too many wrong codes for this number today: try again later.",
                                     headers={"Retry-After": str(max(1, result.locked_for_ms // 1000))})
        answer = {"verification_id": result.verification_id, "phone_number": phone, "purpose": purpose}
        if result.outcome == "approved":
            return {"valid": True, "status": "approved", **answer}
        remaining = max(0, s.max_attempts - result.attempts)
        status = "pending" if remaining else "max_attempts_reached"
        return {"valid": False, "status": status, "attempts_remaining": remaining, **answer}

    # -- read and cancel -------------------------------------------------------------------------------
    def get(self, verification_id: str) -> dict[str, Any]:
        """The public view of a verification record, or VerificationNotFound."""
        now_ms = int(self.clock() * 1000)
        record = self.store.get(verification_id, now_ms=now_ms)
        if record is None:
            raise VerificationNotFound("No verification with this id (or it is past its retention).")
        return self.render(record)

    def cancel(self, verification_id: str) -> dict[str, Any]:
        """Cancel a pending verification and return its record."""
        now_ms = int(self.clock() * 1000)
        if not self.store.cancel(verification_id, now_ms=now_ms):
            raise VerificationNotFound()
        return self.get(verification_id)

    def render(self, record: Verification) -> dict[str, Any]:
        """A record as the API shows it: never the code or its hash."""
        return {
            "verification_id": record.id, "phone_number": record.phone, "purpose": record.purpose,
            "channel": record.channel, "status": record.status, "created_at": iso(record.created_at_ms),
            "expires_at": iso(record.expires_at_ms), "attempts": record.attempts,
            "attempts_remaining": max(0, self.settings.max_attempts - record.attempts),
            "send_count": record.send_count,
            "sends": [{"message_id": send.message_id, "endpoint": send.endpoint, "sent_at": iso(send.sent_at_ms),
                       "delivery_status": send.delivery_status,
                       "delivery_updated_at": iso(send.delivery_updated_at_ms), "errors": send.errors}
                      for send in record.sends],
        }

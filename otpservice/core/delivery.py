"""Provider webhooks, provider-neutral: delivery receipts move a send's status forward, inbound STOP/START
keywords change the opt-out registry.

The provider's decoder (sending/base.WebhookDecoder) verifies the signature over the raw bytes before anything
is parsed. Statuses only move forward (vocabulary.DELIVERY_RANK), because providers retry, duplicate and reorder
their webhooks (message.finalized may arrive before message.sent).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from otpservice import vocabulary
from otpservice.core import phones
from otpservice.core.fraud import FraudGuard
from otpservice.errors import InvalidPhoneNumber, InvalidRequest, InvalidSignature, StoreUnavailable
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.core.periodic import Periodic
from otpservice.sending.base import DeliveryReceipt, InboundMessage, MessageLookup, SendError, WebhookDecoder, \
    WebhookSignatureError
from otpservice.storage.deliveries import MESSAGE_ID_MAX, DeliveryStore, UpdateResult
from otpservice.storage.optouts import OptOutStore

log = logging.getLogger(__name__)

RECONCILE_BATCH = 100  # sends looked up per turn, oldest first
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})


def recipient(raw: object) -> str | None:
    """The E.164 number a receipt names, or None when it is no phone number (the provider echoes the number
    we sent, which is canonical: phones.to_e164 recognises that without a full parse)."""
    try:
        return phones.to_e164(raw)
    except (InvalidPhoneNumber, InvalidRequest):
        return None


def keyword(text: object, provider_keyword: object = None) -> str | None:
    """`STOP`, `START` or None for an inbound text (case and spacing ignored), else the provider's reading."""
    word = " ".join(text.upper().split()) if isinstance(text, str) else ""
    if word in STOP_KEYWORDS:
        return "STOP"
    if word in START_KEYWORDS:
        return "START"
    auto = provider_keyword.strip().upper() if isinstance(provider_keyword, str) else ""
    return auto if auto in vocabulary.KEYWORDS else None


def stop_word(text: object) -> str:
    """The keyword to keep on an opt-out record: the text's own, or STOP when the provider read it so."""
    word = " ".join(text.upper().split()) if isinstance(text, str) else ""
    return word if word in STOP_KEYWORDS else "STOP"


class DeliveryService:
    """Receive a provider's webhook: verify it, then update a send's delivery or the opt-out registry."""

    def __init__(self, *, decoder: WebhookDecoder, store: DeliveryStore, optouts: OptOutStore, event_ttl: int,
                 lookup: MessageLookup | None = None, reconcile_after: int = 0, retention: int = 86400,
                 guard: FraudGuard | None = None, clock: Callable[[], float] = time.time,
                 metrics: Metrics | NullMetrics | None = None) -> None:
        self.decoder = decoder
        self.guard = guard  # counts failed deliveries and final costs
        self.lookup = lookup
        self.reconcile_after_ms = reconcile_after * 1000
        self.retention_ms = retention * 1000
        self.store = store
        self.optouts = optouts
        self.event_ttl_ms = event_ttl * 1000
        self.clock = clock
        self.metrics = metrics or NullMetrics()

    @property
    def header_names(self) -> tuple[str, ...]:
        """The request headers the provider's webhooks are verified with."""
        return self.decoder.header_names

    def receive(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Verify the raw body, then handle the event; 200's body, or InvalidSignature / InvalidPayload."""
        now = self.clock()
        try:
            webhook = self.decoder.decode(headers, body, now=now)
        except WebhookSignatureError as exc:
            # The caller learns only "invalid": the reason is for operators (logs, metrics).
            self.metrics.signature_failure(exc.reason)
            log.warning("webhook signature refused", extra={"reason": exc.reason})
            raise InvalidSignature() from None
        event, now_ms = webhook.event, int(now * 1000)
        if isinstance(event, DeliveryReceipt):
            kind, result = "delivery", self.delivery_update(event, now_ms=now_ms)
        elif isinstance(event, InboundMessage):
            kind, result = "inbound", self.inbound(event, now_ms=now_ms)
        else:
            kind, result = "unhandled", "ignored"
        self.metrics.webhook(kind, result)
        return {"result": result, "event_type": webhook.event_type}

    def delivery_update(self, receipt: DeliveryReceipt, *, now_ms: int) -> str:
        """Move the matching send's status forward; unknown messages and statuses are acknowledged.

        The send is looked up among the recipient's verifications (the number we texted), by the message id
        each of its sends recorded: one Redis round trip for the lookup and the update.
        """
        message_id, status = receipt.message_id, receipt.status
        if not (isinstance(message_id, str) and 0 < len(message_id) <= MESSAGE_ID_MAX) or receipt.event_id is None:
            return "ignored"
        if status not in vocabulary.DELIVERY_RANK:
            log.info("delivery update with an unknown status ignored", extra={"status": str(status)[:32]})
            return "ignored"
        phone = recipient(receipt.recipient)
        if phone is None:  # no number to look in: no send of ours can match
            return "unknown_message"
        outcome = self.store.apply_update(phone, message_id=message_id, event_id=receipt.event_id, status=status,
                                          errors=receipt.errors, now_ms=now_ms, event_ttl_ms=self.event_ttl_ms)
        if outcome.outcome == "updated":
            self.counted(phone, status, outcome, receipt.cost, now_ms)
            self.metrics.delivery_status(status)
            if status == vocabulary.DELIVERED and outcome.sent_at_ms:
                self.metrics.delivered(max(0.0, (now_ms - outcome.sent_at_ms) / 1000))
            log.info("delivery status", extra={"verification_id": outcome.verification_id,
                                               "send_number": outcome.send_number, "status": status,
                                               "previous": outcome.previous_status})
        return outcome.outcome

    def counted(self, phone: str, status: str, outcome: UpdateResult, cost: tuple[str, str] | None,
                now_ms: int) -> None:
        """Tell the fraud guard what an applied update means: a failed delivery, a final cost. Its failure loses
        a count, never the update (which is applied)."""
        if self.guard is None:
            return
        try:
            if status in vocabulary.FAILED_DELIVERY_STATUSES:
                self.guard.failed(phone, outcome.route, now_ms)
            if status in vocabulary.TERMINAL_STATUSES:
                self.guard.finalized(phone, cost, outcome.cost_micros, now_ms)
        except StoreUnavailable:
            log.warning("fraud guard could not count a delivery update", extra={"status": status})

    def inbound(self, message: InboundMessage, *, now_ms: int) -> str:
        """STOP-type keywords record an opt-out for the sender (source inbound_stop); START/UNSTOP remove it."""
        word = keyword(message.text, message.provider_keyword)
        if word is None or message.event_id is None:
            return "ignored"
        try:
            number = phones.normalize(message.sender)
        except (InvalidPhoneNumber, InvalidRequest):
            return "ignored"
        if not self.store.claim_event(message.event_id, ttl_ms=self.event_ttl_ms):
            return "duplicate"
        try:
            if word == "STOP":
                profile = message.messaging_profile_id
                self.optouts.add(number.e164, "inbound_stop", now_ms=now_ms, keyword=stop_word(message.text),
                                 messaging_profile_id=profile if isinstance(profile, str) else None)
            else:
                self.optouts.remove(number.e164, ("inbound_stop",))
        except Exception:
            self.store.release_event(message.event_id)  # not applied: let the provider's retry run for real
            raise
        self.metrics.inbound_keyword(word)
        log.info("inbound keyword", extra={"phone": number.masked, "keyword": word})
        return "opted_out" if word == "STOP" else "opted_in"

    # -- receipts that never came --------------------------------------------------------------------------
    def reconcile(self) -> dict[str, int]:
        """Ask the provider about the sends still without a final status OTP_RECONCILE_AFTER after they left,
        and apply what it says through the same forward-only update as a receipt. A send the provider no longer
        knows, or older than its record, leaves the list; one still in flight stays for the next turn."""
        now_ms = int(self.clock() * 1000)
        done = {"looked_up": 0, "updated": 0, "settled": 0}
        for phone, message_id, sent_at_ms in self.store.pending_sends(sent_before_ms=now_ms - self.reconcile_after_ms,
                                                                      limit=RECONCILE_BATCH):
            if sent_at_ms < now_ms - self.retention_ms:
                self.store.settle(phone, message_id)  # the record is gone: nothing left to update
                done["settled"] += 1
                continue
            try:
                state = self.lookup.message_state(message_id)
            except SendError as exc:
                log.warning("reconcile lookup failed", extra={"error": type(exc).__name__, "code": exc.code})
                break  # the provider is down or refusing: the next turn tries again
            done["looked_up"] += 1
            if state is None:
                self.store.settle(phone, message_id)
                done["settled"] += 1
                continue
            outcome = self.store.apply_update(phone, message_id=message_id, event_id=f"reconcile:{message_id}:"
                                              f"{state.status}", status=state.status, errors=state.errors,
                                              now_ms=now_ms, event_ttl_ms=self.event_ttl_ms)
            self.metrics.reconciled(state.status, outcome.outcome)
            if outcome.outcome == "updated":
                self.counted(phone, state.status, outcome, None, now_ms)
                done["updated"] += 1
                self.metrics.delivery_status(state.status)
                log.info("delivery status reconciled", extra={"verification_id": outcome.verification_id,
                                                              "send_number": outcome.send_number,
                                                              "status": state.status})
            if outcome.outcome == "unknown_message" and state.status not in vocabulary.TERMINAL_STATUSES:
                self.store.settle(phone, message_id)  # no retained send to update: stop asking
        return done


class ReconcileScheduler(Periodic):
    """The reconciler, every `interval` seconds in whichever serving process takes the lock."""

    def __init__(self, service: DeliveryService, interval: int) -> None:
        super().__init__("delivery reconciler", interval, service.store.take_reconcile_lock, service.reconcile)
        self.service = service

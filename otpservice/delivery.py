"""Telnyx webhooks, no Flask: check the Ed25519 signature, then apply delivery updates and inbound STOP/START.

Statuses only move forward: queued < sending < sent < terminal, and a terminal status is final, because
Telnyx retries, duplicates and reorders its webhooks (message.finalized may arrive before message.sent).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from otpservice import phones
from otpservice.delivery_store import MESSAGE_ID_MAX, DeliveryStore
from otpservice.errors import InvalidPayload, InvalidPhoneNumber, InvalidRequest, InvalidSignature
from otpservice.optouts import OptOutRegistry
from otpservice.signatures import SignatureError, load_verify_key, verify_webhook
from otpservice.verification import FAILED_DELIVERY  # the statuses that let a resend skip the cooldown

log = logging.getLogger(__name__)

TERMINAL = frozenset({"delivered", "sending_failed", "delivery_failed", "delivery_unconfirmed", "expired"})
RANK = {"queued": 0, "sending": 1, "sent": 2, **{status: 3 for status in TERMINAL}}
DELIVERY_EVENTS = frozenset({"message.sent", "message.finalized"})
INBOUND_EVENT = "message.received"
STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})
EVENT_ID_MAX = 128
ERROR_FIELD_MAX = 256


def blocked_by(status: str) -> list[str]:
    """The stored statuses that `status` may not replace: itself, anything later, and every terminal one."""
    return [known for known, rank in RANK.items() if rank >= RANK[status]]


def recipient(raw: object) -> str | None:
    """The E.164 number a deliveryUpdate's `to[0].phone_number` names, or None when it is no phone number.

    Telnyx echoes the number we sent, which is canonical: phones.to_e164 recognises that without a full parse.
    """
    try:
        return phones.to_e164(raw)
    except (InvalidPhoneNumber, InvalidRequest):
        return None


def keyword(text: object, autoresponse_type: object = None) -> str | None:
    """`STOP`, `START` or None for an inbound text (case and spacing ignored), else Telnyx's autoresponse_type."""
    word = " ".join(text.upper().split()) if isinstance(text, str) else ""
    if word in STOP_KEYWORDS:
        return "STOP"
    if word in START_KEYWORDS:
        return "START"
    auto = autoresponse_type.strip().upper() if isinstance(autoresponse_type, str) else ""
    return auto if auto in ("STOP", "START") else None


def stop_word(payload: dict[str, Any]) -> str:
    """The keyword to keep on an opt-out record: the text's own, or STOP when autoresponse_type said so."""
    text = payload.get("text")
    word = " ".join(text.upper().split()) if isinstance(text, str) else ""
    return word if word in STOP_KEYWORDS else "STOP"


def carrier_errors(raw: object) -> list[dict[str, str]]:
    """The `code` and `title` of each error Telnyx reported (bounded: it is stored on the record)."""
    if not isinstance(raw, list):
        return []
    return [{"code": str(e.get("code", ""))[:ERROR_FIELD_MAX], "title": str(e.get("title", ""))[:ERROR_FIELD_MAX]}
            for e in raw[:10] if isinstance(e, dict)]


class Event(NamedTuple):
    """The envelope of a signed Telnyx webhook."""

    type: str
    id: str | None
    payload: dict[str, Any]


def parse_event(body: bytes) -> Event:
    """The event in a verified body; InvalidPayload unless it is a JSON object with `data.event_type`."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPayload("The webhook body is not valid JSON.") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("event_type"), str) or not data["event_type"]:
        raise InvalidPayload("The webhook body has no data.event_type.")
    event_id = data.get("id")
    valid_id = isinstance(event_id, str) and 0 < len(event_id) <= EVENT_ID_MAX
    payload = data.get("payload")
    return Event(data["event_type"], event_id if valid_id else None, payload if isinstance(payload, dict) else {})


class DeliveryService:
    """Receive a Telnyx webhook: verify it, then update a send's delivery or the opt-out registry."""

    def __init__(self, *, store: DeliveryStore, optouts: OptOutRegistry, public_key: str, event_ttl: int,
                 clock: Callable[[], float] = time.time, events: Callable[..., None] | None = None) -> None:
        self.store = store
        self.optouts = optouts
        self.event_ttl_ms = event_ttl * 1000
        self.clock = clock
        self.events = events or (lambda name, **labels: None)
        try:
            self.verify_key = load_verify_key(public_key)
        except ValueError:
            # Every webhook will be refused (401) until OTP_TELNYX_PUBLIC_KEY is set; production requires it.
            self.verify_key = None
            log.warning("OTP_TELNYX_PUBLIC_KEY is unset or invalid: every webhook will be refused")

    def receive(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Verify the raw body's signature before parsing anything, then handle the event."""
        now = self.clock()
        try:
            if self.verify_key is None:
                raise SignatureError("no_key")
            verify_webhook(self.verify_key, headers, body, now=now)
        except SignatureError as exc:
            # The caller learns only "invalid": the reason is for operators (logs, metrics).
            self.events("webhook_signature_failure", reason=exc.reason)
            log.warning("webhook signature refused", extra={"reason": exc.reason})
            raise InvalidSignature() from None
        event = parse_event(body)
        if event.type in DELIVERY_EVENTS:
            result = self.delivery_update(event, now_ms=int(now * 1000))
        elif event.type == INBOUND_EVENT:
            result = self.inbound(event, now_ms=int(now * 1000))
        else:
            result = "ignored"
        self.events("webhook", event_type=event.type if event.type in DELIVERY_EVENTS | {INBOUND_EVENT}
                    else "other", result=result)
        return {"result": result, "event_type": event.type}

    def delivery_update(self, event: Event, *, now_ms: int) -> str:
        """Move the matching send's status forward; unknown messages and statuses are acknowledged.

        The send is looked up among the recipient's verifications (`to[0].phone_number`, the number we texted),
        by the message id each of its sends recorded: one Redis round trip for the lookup and the update.
        """
        message_id = event.payload.get("id")
        recipients = event.payload.get("to")
        first = recipients[0] if isinstance(recipients, list) and recipients else {}
        status = first.get("status") if isinstance(first, dict) else None
        if not (isinstance(message_id, str) and 0 < len(message_id) <= MESSAGE_ID_MAX) or event.id is None:
            return "ignored"
        if status not in RANK:
            log.info("delivery update with an unknown status ignored", extra={"status": str(status)[:32]})
            return "ignored"
        phone = recipient(first.get("phone_number"))
        if phone is None:  # no number to look in: no send of ours can match
            return "unknown_message"
        outcome = self.store.apply_update(
            phone, message_id=message_id, event_id=event.id, status=status,
            errors=carrier_errors(event.payload.get("errors")), blocked_by=blocked_by(status),
            failed_delivery=status in FAILED_DELIVERY, now_ms=now_ms, event_ttl_ms=self.event_ttl_ms)
        if outcome.outcome == "updated":
            self.events("delivery_status", status=status)
            if status == "delivered" and outcome.sent_at_ms:
                self.events("delivered", seconds=max(0.0, (now_ms - outcome.sent_at_ms) / 1000))
            log.info("delivery status", extra={"verification_id": outcome.verification_id,
                                               "send_number": outcome.send_number, "status": status,
                                               "previous": outcome.previous_status})
        return outcome.outcome

    def inbound(self, event: Event, *, now_ms: int) -> str:
        """STOP-type keywords record an opt-out for the sender (source inbound_stop); START/UNSTOP remove it."""
        sender = event.payload.get("from")
        raw_number = sender.get("phone_number") if isinstance(sender, dict) else None
        word = keyword(event.payload.get("text"), event.payload.get("autoresponse_type"))
        if word is None or event.id is None:
            return "ignored"
        try:
            number = phones.normalize(raw_number)
        except (InvalidPhoneNumber, InvalidRequest):
            return "ignored"
        if not self.store.claim_event(event.id, ttl_ms=self.event_ttl_ms):
            return "duplicate"
        try:
            if word == "STOP":
                profile = event.payload.get("messaging_profile_id")
                self.optouts.add(number.e164, "inbound_stop", now_ms=now_ms, keyword=stop_word(event.payload),
                                 messaging_profile_id=profile if isinstance(profile, str) else None)
            else:
                self.optouts.remove(number.e164, ("inbound_stop",))
        except Exception:
            self.store.release_event(event.id)  # not applied: let Telnyx's retry run for real
            raise
        self.events("inbound_keyword", keyword=word)
        log.info("inbound keyword", extra={"phone": number.masked, "keyword": word})
        return "opted_out" if word == "STOP" else "opted_in"

"""The Redis side of receipts: find a message's send, apply its update atomically, remember event ids.

A delivery update costs one round trip: lua/delivery_update.lua finds the send from the recipient number's
hash (every retained verification of the number) and the message id each record keeps per send (m<k>), then
applies the update in the same call. There is no message-id key.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otpservice import vocabulary
from otpservice.storage import keys
from otpservice.storage.connect import REDIS_ERRORS, StoreBase, guarded
from otpservice.storage.scripts import Scripts

MESSAGE_ID_MAX = 128


@dataclass(frozen=True)
class UpdateResult:
    """What the delivery_update script did (vocabulary.WEBHOOK_RESULTS: updated, unchanged, duplicate,
    unknown_message) and to which send."""

    outcome: str
    previous_status: str | None = None
    sent_at_ms: int = 0
    verification_id: str | None = None
    send_number: int = 0
    route: str = ""  # updated: the send's route
    cost_micros: int | None = None  # updated: the cost its send answer gave, when it gave one


def blocked_by(status: str) -> list[str]:
    """The stored statuses that `status` may not replace: itself, anything later, and every terminal one."""
    rank = vocabulary.DELIVERY_RANK[status]
    return [known for known, other in vocabulary.DELIVERY_RANK.items() if other >= rank]


class DeliveryStore(StoreBase):
    """Delivery updates and inbound event ids: one round trip per webhook."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.scripts = Scripts(client, ("delivery_update",))

    @guarded
    def apply_update(self, phone: str, *, message_id: str, event_id: str, status: str, errors: Sequence[dict],
                     now_ms: int, event_ttl_ms: int) -> UpdateResult:
        """Run delivery_update.lua for the send of E.164 `phone` that carried `message_id`: dedupe the event
        and move the send's status forward (never back). `unknown_message` when no retained send matches."""
        failed = status in vocabulary.FAILED_DELIVERY_STATUSES
        number, records = keys.number_and_records(phone)
        # A final status takes the send off the reconciler's list, in the same round trip.
        final = status in vocabulary.TERMINAL_STATUSES
        out = self.scripts.run(
            "delivery_update", [number, keys.delivery_event(phone, event_id)],
            [records, message_id, status, json.dumps(list(errors)), now_ms, event_ttl_ms,
             "1" if failed else "0", "," + ",".join(blocked_by(status)) + ",", keys.SEND_FIELDS["d"][1]],
            then=[("ZREM", keys.RECONCILE_INDEX, keys.pending_send(phone, message_id))] if final else [])
        outcome = out[0].decode()
        if outcome == "updated":
            route = out[5].decode() if len(out) > 5 and out[5] else keys.SEND_FIELDS["r"][1]
            cost = int(out[6]) if len(out) > 6 and out[6] else None
            return UpdateResult(outcome, out[1].decode(), int(out[2]), out[3].decode(), out[4], route, cost)
        if outcome == "unchanged":
            return UpdateResult(outcome, out[1].decode(), verification_id=out[2].decode(), send_number=out[3])
        return UpdateResult(outcome)

    @guarded
    def pending_sends(self, *, sent_before_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """(E.164, message id, sent at ms) of the oldest sends still without a final status, sent before then."""
        found = self.redis.zrangebyscore(keys.RECONCILE_INDEX, "-inf", sent_before_ms, start=0, num=limit,
                                         withscores=True)
        out = []
        for member, score in found:
            phone, _, message_id = member.decode().partition(" ")
            out.append((phone, message_id, int(score)))
        return out

    @guarded
    def settle(self, phone: str, message_id: str) -> None:
        """Take a send off the reconciler's list (its status is final, or nobody can know it any more)."""
        self.redis.zrem(keys.RECONCILE_INDEX, keys.pending_send(phone, message_id))

    @guarded
    def take_reconcile_lock(self, ttl_ms: int) -> bool:
        """Whether this process runs this turn of the reconciler (the lock lasts the turn's interval)."""
        return bool(self.redis.set(keys.RECONCILE_LOCK, "1", nx=True, px=ttl_ms))

    @guarded
    def claim_event(self, event_id: str, *, ttl_ms: int) -> bool:
        """Remember an inbound event id; False when it was already seen (a retry or a replay)."""
        return bool(self.redis.set(keys.inbound_event(event_id), "1", nx=True, px=ttl_ms))

    def release_event(self, event_id: str) -> None:
        """Forget an event whose handling failed, so the provider's retry runs for real (best effort)."""
        try:
            self.redis.delete(keys.inbound_event(event_id))
        except REDIS_ERRORS:
            pass

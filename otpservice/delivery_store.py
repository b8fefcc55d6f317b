"""The Redis side of Telnyx webhooks: find a message's send, apply its update atomically, remember event ids.

A delivery update costs one round trip: lua/delivery_update.lua finds the send from the recipient number's
hash (store.py's otp:{B}:n:<digest>: every retained verification of the number) and the message id each
record keeps per send (m<k>, written by store.record_send), then applies the update in the same call.
Keys beside store.py's layout (every one expires):
  otp:{B}:ev:<event id digest>   string a delivery event already applied to a send of the number in {B}
  otp:ev:<event id digest>       string an inbound event already applied
Event ids come from Telnyx: they are hashed before use in a key name, like everything not ours.
"""
from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

import redis

from otpservice.store import PREFIX, REDIS_ERRORS, Store, guarded, load_script, run_script

MESSAGE_ID_MAX = 128


class UpdateResult(NamedTuple):
    """What the delivery_update script did: updated, unchanged, duplicate or unknown_message; which send (a tuple,
    like store.VerifyResult: one is made per webhook)."""

    outcome: str
    previous_status: str | None = None
    sent_at_ms: int = 0
    verification_id: str | None = None
    send_number: int = 0


def digest(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


class DeliveryStore:
    """Message lookups and delivery updates: one round trip per webhook."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.script = client.register_script(load_script("delivery_update"))

    @guarded
    def apply_update(self, phone: str, *, message_id: str, event_id: str, status: str, errors: list[dict],
                     blocked_by: list[str], failed_delivery: bool, now_ms: int, event_ttl_ms: int) -> UpdateResult:
        """Run delivery_update.lua for the send of E.164 `phone` that carried `message_id`: dedupe the event
        and move the send's status forward (never back). `unknown_message` when no retained send matches."""
        base, number = Store.number_keys(phone)  # base: otp:{B}, the hash tag every key of the number shares
        out = run_script(self.redis, self.script, [f"{base}:n:{number}", f"{base}:ev:{digest(event_id)}"],
                         [f"{base}:v:", message_id, status, json.dumps(errors) if errors else "[]", now_ms,
                          event_ttl_ms, "1" if failed_delivery else "0", "," + ",".join(blocked_by) + ","])
        outcome = out[0].decode()
        if outcome == "updated":
            return UpdateResult(outcome, out[1].decode(), int(out[2]), out[3].decode(), out[4])
        if outcome == "unchanged":
            return UpdateResult(outcome, out[1].decode(), verification_id=out[2].decode(), send_number=out[3])
        return UpdateResult(outcome)

    @guarded
    def claim_event(self, event_id: str, *, ttl_ms: int) -> bool:
        """Remember an inbound event id; False when it was already seen (a retry or a replay)."""
        return bool(self.redis.set(f"{PREFIX}:ev:{digest(event_id)}", "1", nx=True, px=ttl_ms))

    def release_event(self, event_id: str) -> None:
        """Forget an event whose handling failed, so Telnyx's retry runs for real (best effort)."""
        try:
            self.redis.delete(f"{PREFIX}:ev:{digest(event_id)}")
        except REDIS_ERRORS:
            pass

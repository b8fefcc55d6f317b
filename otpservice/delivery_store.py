"""The Redis side of Telnyx webhooks: find a message's send, apply its update atomically, remember event ids.

Keys beside store.py's layout (every one expires):
  otp:msg:<message id>           string "<verification id>|<send number>" (written by store.record_send)
  otp:{B}:ev:<event id digest>   string a delivery event already applied to record otp:{B}:v:<id>
  otp:ev:<event id digest>       string an inbound event already applied
Event ids come from Telnyx: they are hashed before use in a key name, like everything not ours.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import redis

from otpservice.store import PREFIX, REDIS_ERRORS, Store, guarded, load_script

MESSAGE_ID_MAX = 128


@dataclass(frozen=True)
class SendRef:
    """Which send of which verification a Telnyx message id belongs to."""

    verification_id: str
    send_number: int


@dataclass(frozen=True)
class UpdateResult:
    """What the delivery_update script did: updated, unchanged, duplicate or unknown."""

    outcome: str
    previous_status: str | None = None
    sent_at_ms: int = 0


def digest(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


class DeliveryStore:
    """Message lookups and delivery updates: at most two round trips per webhook."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.script = client.register_script(load_script("delivery_update"))

    @guarded
    def find_send(self, message_id: str) -> SendRef | None:
        """The send a message id was recorded for, or None (not ours, or past its retention)."""
        if not 0 < len(message_id) <= MESSAGE_ID_MAX:
            return None
        raw = self.redis.get(f"{PREFIX}:msg:{message_id}")
        if not raw:
            return None
        vid, _, number = raw.decode().partition("|")
        if not Store.valid_id(vid) or not number.isdigit():
            return None
        return SendRef(vid, int(number))

    @guarded
    def apply_update(self, ref: SendRef, *, message_id: str, event_id: str, status: str, errors: list[dict],
                     blocked_by: list[str], failed_delivery: bool, now_ms: int, event_ttl_ms: int) -> UpdateResult:
        """Run delivery_update.lua: dedupe the event and move the send's status forward (never back)."""
        record = Store.record_key(ref.verification_id)
        tag = record[:record.index("}") + 1]
        out = self.script(keys=[record, f"{tag}:ev:{digest(event_id)}"],
                          args=[ref.send_number, message_id, status, json.dumps(errors), now_ms, event_ttl_ms,
                                "1" if failed_delivery else "0", *blocked_by])
        outcome = out[0].decode()
        if outcome == "updated":
            return UpdateResult(outcome, out[1].decode(), int(out[2]))
        return UpdateResult(outcome, out[1].decode() if len(out) > 1 else None)

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

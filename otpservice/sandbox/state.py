"""The simulator's memory: outbox, faults, opt-outs, request and webhook logs, all behind one lock."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

from otpservice.sandbox.idempotency import IdempotencyKeys

FAULT_MODES = frozenset(
    {
        "http_500",
        "timeout",
        "rate_limit",
        "opt_out",
        "invalid_to",
        "auth_failed",
        "delivery_failed",
        "no_webhook",
        "invalid_from",
        "alpha_sender_not_configured",
        "profile_disabled",
        "pool_empty",
    }
)
MAX_LOG = 1000  # the request and webhook logs keep the newest entries only, so a long demo cannot grow them


@dataclass
class Fault:
    """A fault armed for the next `remaining` sends, to one number or to any, from one sender or any (a number
    pool's send has no `from` of its own: `from_` None matches it)."""

    mode: str
    remaining: int
    to: str | None = None
    sleep: float | None = None
    from_: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fault as the control API shows it."""
        return {"mode": self.mode, "count": self.remaining, "to": self.to, "sleep": self.sleep, "from": self.from_}

    def matches(self, to: str, from_: str | None) -> bool:
        return (self.to is None or self.to == to) and (self.from_ is None or self.from_ == from_)


class SimState:
    """Thread-safe state shared by the request threads and the webhook threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.outbox: list[dict[str, Any]] = []  # oldest first; the API shows it newest first
        self.payloads: dict[str, dict[str, Any]] = {}  # message id -> the message as GET /v2/messages/{id} shows it
        self.faults: list[Fault] = []
        self.optouts: dict[tuple[str, str], dict[str, Any]] = {}  # (to, messaging_profile_id) -> record
        self.requests: list[dict[str, Any]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.last_webhook_url: str | None = None
        self.idempotency = IdempotencyKeys()
        self.latency = 0.0  # seconds every send takes to answer (a provider under load)
        # The account's messaging profiles and numbers (sandbox/account.py), and what a reset restores.
        self.default_inventory: dict[str, list[dict[str, Any]]] = {"messaging_profiles": [], "phone_numbers": []}
        self.inventory = copy.deepcopy(self.default_inventory)

    def reset(self) -> None:
        """Forget everything (between tests)."""
        with self.lock:
            self.outbox.clear()
            self.payloads.clear()
            self.faults.clear()
            self.optouts.clear()
            self.requests.clear()
            self.webhooks.clear()
            self.last_webhook_url = None
            self.latency = 0.0
            self.inventory = copy.deepcopy(self.default_inventory)
        self.idempotency.clear()

    def take_fault(self, to: str, from_: str | None = None) -> Fault | None:
        """Consume one use of the fault for `to` and the request's `from_`: one aimed at that number first, else
        one for any number (either kind may be aimed at one sender)."""
        with self.lock:
            fault = next((f for f in self.faults if f.to == to and f.matches(to, from_)), None) or next(
                (f for f in self.faults if f.to is None and f.matches(to, from_)), None
            )
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            return Fault(fault.mode, 1, fault.to, fault.sleep, fault.from_)

    def add_fault(self, fault: Fault) -> None:
        """Arm a fault."""
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        with self.lock:
            self.faults.clear()

    def record_message(self, record: dict[str, Any]) -> None:
        """Put a sent message in the outbox."""
        with self.lock:
            self.outbox.append(record)

    def keep_payload(self, payload: dict[str, Any]) -> None:
        """Keep a message's latest state (its outbound or inbound payload); an outbox entry follows its status."""
        with self.lock:
            self.payloads[payload["id"]] = payload
            for record in self.outbox:
                if record["id"] == payload["id"]:
                    record["status"] = payload["to"][0]["status"]

    def payload(self, message_id: str) -> dict[str, Any] | None:
        """The latest state of one message, or None for an id never seen."""
        with self.lock:
            return self.payloads.get(message_id)

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Copies of outbox messages, newest first, optionally to one number."""
        with self.lock:
            return [dict(r) for r in reversed(self.outbox) if to is None or r["to"] == to]

    def clear_messages(self) -> None:
        """Empty the outbox (and forget the messages' states)."""
        with self.lock:
            self.outbox.clear()
            self.payloads.clear()

    def is_opted_out(self, to: str, profile_id: str) -> bool:
        """Whether `to` blocked this messaging profile (a block covers the whole profile)."""
        with self.lock:
            return (to, profile_id) in self.optouts

    def add_optout(self, record: dict[str, Any]) -> None:
        """Record (or refresh) an opt-out."""
        with self.lock:
            self.optouts[(record["to"], record["messaging_profile_id"])] = record

    def remove_optout(self, to: str, profile_id: str | None = None) -> int:
        """Remove `to`'s opt-outs (for one profile, or all); returns how many went."""
        with self.lock:
            keys = [k for k in self.optouts if k[0] == to and (profile_id is None or k[1] == profile_id)]
            for key in keys:
                del self.optouts[key]
            return len(keys)

    def optout_list(self) -> list[dict[str, Any]]:
        """Copies of every opt-out, oldest first (a stable order for paging)."""
        with self.lock:
            return sorted((dict(r) for r in self.optouts.values()), key=lambda r: (r["_ts"], r["to"]))

    def set_inventory(self, inventory: dict[str, list[dict[str, Any]]], *, default: bool = False) -> None:
        """Replace the account's profiles and numbers (and, with `default`, what a reset restores)."""
        with self.lock:
            self.inventory = copy.deepcopy(inventory)
            if default:
                self.default_inventory = copy.deepcopy(inventory)

    def inventory_of(self, kind: str) -> list[dict[str, Any]]:
        """Copies of the account's `messaging_profiles` or `phone_numbers`."""
        with self.lock:
            return copy.deepcopy(self.inventory[kind])

    def log_request(self, entry: dict[str, Any]) -> None:
        """Keep a raw API request for contract tests."""
        with self.lock:
            self.requests.append(entry)
            del self.requests[:-MAX_LOG]

    def log_webhook(self, entry: dict[str, Any]) -> None:
        """Keep the outcome of one webhook delivery."""
        with self.lock:
            self.webhooks.append(entry)
            del self.webhooks[:-MAX_LOG]

    def snapshot(self, name: str) -> list[dict[str, Any]]:
        """A copy of the `requests` or `webhooks` log, oldest first."""
        with self.lock:
            return [dict(e) for e in getattr(self, name)]

    def clear_log(self, name: str) -> None:
        """Empty the `requests` or `webhooks` log."""
        with self.lock:
            getattr(self, name).clear()

"""Telnyx's Idempotency-Key, as its API fundamentals describe it: a request repeated with the same key, method
and path within 24 h gets the first successful answer again and does nothing; the same key with other bytes is
422; a failed answer is not kept, so a retry after it acts for real. A repeat that arrives while the first is
still being answered waits for it (the first may be asleep in a `timeout` fault), then is answered the same."""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any

KEY_RE = re.compile(r"[A-Za-z0-9_:-]{1,255}")
TTL_SECONDS = 24 * 3600
WAIT_SECONDS = 60  # a repeat waits this long at most for the first to be answered
MISMATCH = object()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What a repeat must match: method, path and the body byte for byte."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


@dataclass
class Entry:
    fingerprint: str
    at: float
    answered: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    payload: Any = None


class IdempotencyKeys:
    """Keys seen and the successful answers they got, shared by the simulator's request threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, Entry] = {}

    def begin(self, key: str, digest: str, *, now: float) -> Any:
        """None: the caller answers this request (and then calls finish); (status, payload): the answer to
        replay; MISMATCH: the key was used with another request."""
        while True:
            with self.lock:
                entry = self.entries.get(key)
                if entry is not None and entry.answered.is_set() and now - entry.at > TTL_SECONDS:
                    entry = None
                if entry is None:
                    self.entries[key] = Entry(digest, now)
                    return None
                if entry.fingerprint != digest:
                    return MISMATCH
                if entry.answered.is_set():
                    return entry.status, entry.payload
            if not entry.answered.wait(WAIT_SECONDS):
                return 409, {"errors": [{"code": "10015", "title": "Request in progress",
                                         "detail": "A request with this Idempotency-Key is still being answered."}]}

    def finish(self, key: str, digest: str, status: int, payload: Any, *, now: float) -> None:
        """Keep a successful answer for 24 h; forget the key after a failed one, so a retry acts for real."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or entry.fingerprint != digest:
                return
            if 200 <= status < 300:
                entry.status, entry.payload, entry.at = status, payload, now
            else:
                del self.entries[key]
            entry.answered.set()

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

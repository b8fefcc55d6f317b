"""Idempotency-Key: the same key with the same body within OTP_IDEMPOTENCY_TTL gets the first answer again and
runs nothing; the same key with another body is 422. The first final answer (2xx or 4xx) is kept; a 5xx is
not, so a retry with the same key runs for real."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otpservice.errors import IdempotencyInFlight, IdempotencyKeyReused, InvalidRequest, ServiceError
from otpservice.storage.idempotency import IdempotencyStore

KEY_MAX = 128


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to keep or replay: status, JSON body, headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


class Idempotency:
    """Run a request once per (client, key)."""

    def __init__(self, *, store: IdempotencyStore, ttl: int) -> None:
        self.store = store
        self.ttl_ms = ttl * 1000

    def run(self, client_key: str, key: str, body: dict[str, Any], handle: Callable[[], Answer]) -> Answer:
        """`handle()`'s answer, or the answer kept for this key; IdempotencyKeyReused for another body."""
        if not 1 <= len(key) <= KEY_MAX:
            raise InvalidRequest(f"Idempotency-Key must be 1-{KEY_MAX} characters.")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        previous = self.store.claim(client_key, key, fingerprint, self.ttl_ms)
        if previous is not None:
            if previous.get("fingerprint") != fingerprint:
                raise IdempotencyKeyReused()
            if previous.get("state") != "done":
                raise IdempotencyInFlight(headers={"Retry-After": "1"})
            return Answer(previous["status"], previous["body"], previous.get("headers", {}), replayed=True)
        try:
            answer = handle()
        except ServiceError as exc:
            if exc.status >= 500:
                self.store.release(client_key, key)  # transient: let the retry run for real
                raise
            answer = Answer(exc.status, exc.to_dict(), exc.headers)
        except Exception:
            self.store.release(client_key, key)
            raise
        self.store.store(client_key, key, fingerprint, answer.status, answer.body, answer.headers, self.ttl_ms)
        return answer

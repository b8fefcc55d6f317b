"""Idempotency-Key answers in Redis: claim a key, keep the first final answer under it, or forget the claim."""
from __future__ import annotations

import contextlib
import json
from typing import Any

from otpservice.storage import keys
from otpservice.storage.connect import REDIS_ERRORS, StoreBase, guarded


class IdempotencyStore(StoreBase):
    """One string per (client, key): {"state": "in_flight" | "done", "fingerprint", and the answer once done}."""

    @guarded
    def claim(self, client_key: str, key: str, fingerprint: str, ttl_ms: int) -> dict[str, Any] | None:
        """Claim an Idempotency-Key (None: ours now), or return what is already stored under it."""
        name = keys.idempotency(client_key, key)
        claim = json.dumps({"state": "in_flight", "fingerprint": fingerprint})
        if self.redis.set(name, claim, nx=True, px=ttl_ms):
            return None
        stored = self.redis.get(name)
        return json.loads(stored) if stored else {"state": "in_flight", "fingerprint": fingerprint}

    @guarded
    def store(self, client_key: str, key: str, fingerprint: str, status: int, body: dict, headers: dict,
              ttl_ms: int) -> None:
        """Keep the first final answer to an Idempotency-Key."""
        value = {"state": "done", "fingerprint": fingerprint, "status": status, "body": body, "headers": headers}
        self.redis.set(keys.idempotency(client_key, key), json.dumps(value), px=ttl_ms)

    def release(self, client_key: str, key: str) -> None:
        """Forget a claim whose request failed transiently, so a retry can run (best effort)."""
        with contextlib.suppress(*REDIS_ERRORS):
            self.redis.delete(keys.idempotency(client_key, key))

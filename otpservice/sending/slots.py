"""A bound on the sends in flight in one process: a provider that slows down fills the slots, and the requests
past them are refused at once (503 with Retry-After) instead of each waiting out the whole send deadline."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from otpservice.sending.base import ProviderUnavailable

RETRY_AFTER = 1


class NoSendSlot(ProviderUnavailable):
    """Every send slot of this process is taken: nothing was reserved or sent."""


class SendSlots:
    """At most `limit` sends at once (a gevent worker's greenlets or a gthread worker's threads share them)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """A slot for the block, or NoSendSlot at once (never a wait)."""
        if not self._slots.acquire(blocking=False):
            raise NoSendSlot("Every send slot is taken", retry_after=RETRY_AFTER, may_have_sent=False)
        try:
            yield
        finally:
            self._slots.release()

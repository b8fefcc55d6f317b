"""Keep the local opt-out registry in step with Telnyx's own list (GET /v2/messaging_optouts, every page).

A sync writes a `telnyx` record for every number on the list (of our messaging profile when one is set).
Telnyx is the authority on its own blocks, so a number no longer on the list loses its local `telnyx`
record, and its `send_rejected` record too (that one only mirrored a Telnyx block), unless that record is
newer than the sync's start. `inbound_stop` and `admin` records are ours and never touched. Nothing is
removed unless the whole list was read: a failed page fails the sync and changes nothing.

`SyncScheduler` runs a sync every OTP_OPTOUT_SYNC_INTERVAL seconds in whichever process takes a Redis lock
that lasts the interval, so many workers sync once between them. Its thread starts in a process that serves,
never where the app is built: a gunicorn master that preloads the app builds it, then forks the workers, and
a fork keeps no thread.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import redis

from otpservice import phones
from otpservice.errors import ProviderError, ProviderUnavailable, ServiceError
from otpservice.optouts import OptOutRegistry
from otpservice.store import PREFIX, available
from otpservice.telnyx import TelnyxClient, TelnyxError, TelnyxUnavailable

log = logging.getLogger(__name__)

LOCK_KEY = f"{PREFIX}:oo:sync:lock"
RECONCILED = ("telnyx", "send_rejected")


def parse_time_ms(text: Any, default_ms: int) -> int:
    """Telnyx's created_at (ISO 8601, or space-separated) in ms; `default_ms` when unreadable."""
    try:
        return int(datetime.fromisoformat(str(text).strip().replace("Z", "+00:00")).timestamp() * 1000)
    except (TypeError, ValueError):
        return default_ms


class OptOutSync:
    """Pull Telnyx's opt-out list into the registry, whole or for one number."""

    def __init__(self, *, registry: OptOutRegistry, telnyx: TelnyxClient, messaging_profile_id: str = "",
                 clock: Callable[[], float] = time.time, events: Callable[..., None] | None = None) -> None:
        self.registry = registry
        self.telnyx = telnyx
        self.profile = messaging_profile_id or None
        self.clock = clock
        self.events = events or (lambda name, **labels: None)

    def fetch(self, now_ms: int) -> dict[str, dict[str, Any]]:
        """Telnyx's whole list as E.164 → record entry; ProviderUnavailable/ProviderError when Telnyx fails."""
        listed: dict[str, dict[str, Any]] = {}
        try:
            for item in self.telnyx.list_opt_outs(messaging_profile_id=self.profile):
                if self.profile and item.get("messaging_profile_id") not in (None, self.profile):
                    continue
                try:
                    e164 = phones.normalize(item.get("to")).e164
                except ServiceError:
                    log.warning("opt-out list entry skipped: not a valid number")
                    continue
                listed[e164] = dict(phone=e164, source="telnyx", keyword=item.get("keyword"),
                                    messaging_profile_id=item.get("messaging_profile_id") or self.profile,
                                    created_ms=parse_time_ms(item.get("created_at"), now_ms))
        except TelnyxUnavailable as exc:
            raise ProviderUnavailable("Telnyx's opt-out list is unavailable: try again later.",
                                      retry_after=exc.retry_after) from exc
        except TelnyxError as exc:
            raise ProviderError("Telnyx refused the opt-out list request (check the API key and profile).") \
                from exc
        return listed

    def sync(self) -> dict[str, int]:
        """Pull the whole list; returns how many numbers it has, and how many local records were added/removed."""
        started_ms = int(self.clock() * 1000)
        listed = self.fetch(started_ms)
        added = self.registry.add_many(listed.values())
        removed = 0
        for source in RECONCILED:
            for phone in self.registry.numbers_with(source) - listed.keys():
                removed += self._drop_stale(phone, source, started_ms)
        self.events("optout_sync", added=added, removed=removed)
        log.info("opt-out sync", extra={"listed": len(listed), "added": added, "removed": removed})
        return {"listed": len(listed), "added": added, "removed": removed}

    def refresh(self, phone: str) -> dict[str, Any]:
        """Ask Telnyx's list live about one number, update its local record, and return the admin lookup."""
        started_ms = int(self.clock() * 1000)
        listed = self.fetch(started_ms)
        if phone in listed:
            self.registry.add_many([listed[phone]])
        else:
            for source in RECONCILED:
                self._drop_stale(phone, source, started_ms)
        return self.registry.lookup(phone)

    def _drop_stale(self, phone: str, source: str, started_ms: int) -> int:
        """Remove a mirrored record of a number Telnyx no longer lists (not one written during this sync)."""
        for record in self.registry.records(phone):
            if record["source"] == source:
                if source == "send_rejected" and parse_time_ms(record.get("created_at"), 0) >= started_ms - 1000:
                    return 0
                return self.registry.remove(phone, (source,))
        return 0


class SyncScheduler:
    """A daemon thread per serving process that syncs every `interval` seconds when it wins the Redis lock.

    Nothing starts at construction. `start()` starts this process's thread, once per process: gunicorn's
    post_worker_init calls it in each worker (config/gunicorn.conf.py), and `middleware()` calls it on the
    first request under any other server.
    """

    def __init__(self, sync: OptOutSync, client: redis.Redis, interval: int) -> None:
        self.sync = sync
        self.redis = client
        self.interval = interval
        self.pid = 0  # the process whose thread runs: after a fork, the child's pid differs and it has none
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> SyncScheduler:
        """Start this process's thread unless it runs already; a forked child starts its own."""
        with self._lock:
            if self.pid != os.getpid():
                self.stopped = threading.Event()
                self.thread = threading.Thread(target=self._loop, name="optout-sync", daemon=True)
                self.thread.start()
                self.pid = os.getpid()
        return self

    def middleware(self, wsgi_app: Callable) -> Callable:
        """`wsgi_app` that first starts this process's thread if need be: one pid comparison per request."""
        getpid = os.getpid

        def serve(environ, start_response):
            if self.pid != getpid():
                self.start()
            return wsgi_app(environ, start_response)

        return serve

    def stop(self) -> None:
        self.stopped.set()

    def run_once(self) -> bool:
        """Sync if no process has in this interval; the lock expires with the interval, never released early."""
        with available():
            won = self.redis.set(LOCK_KEY, uuid.uuid4().hex, nx=True, px=self.interval * 1000)
        if won:
            self.sync.sync()
        return bool(won)

    def _loop(self) -> None:
        log.info("opt-out sync thread started", extra={"pid": os.getpid(), "interval": self.interval})
        # A random first delay spreads workers started together; later ones follow the interval.
        delay = random.uniform(1, max(1, min(30, self.interval)))
        while not self.stopped.wait(delay):
            try:
                self.run_once()
            except Exception as exc:  # the thread must outlive a Redis or Telnyx outage
                log.warning("opt-out sync failed: %s", type(exc).__name__)
            delay = self.interval * random.uniform(1.0, 1.1)  # past the lock's expiry

"""The opt-out registry: one record per source for each number, consulted before every send, and its sync with
the provider's own list.

Four sources put a number on the registry (vocabulary.OPT_OUT_SOURCES): `inbound_stop` (a STOP text),
`send_rejected` (the provider refused a send as opted out), `admin`, and `telnyx` (the provider's list). A sync
writes a `telnyx` record for every number on the provider's list (of our messaging profile when one is set).
The provider is the authority on its own blocks, so a number no longer on the list loses its local `telnyx`
record, and its `send_rejected` record too (that one only mirrored a provider block), unless that record is
newer than the sync's start. `inbound_stop` and `admin` records are ours and never touched by a sync. Nothing
is removed unless the whole list was read: a failed page fails the sync and changes nothing.

`SyncScheduler` runs a sync every OTP_OPTOUT_SYNC_INTERVAL seconds in whichever process takes a Redis lock
that lasts the interval, so many workers sync once between them (core/periodic.py).
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from otpservice.core import phones
from otpservice.core.periodic import Periodic
from otpservice.errors import InvalidRequest, ProviderError, ProviderUnavailable, ServiceError
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.sending.base import OptOutList, SendError
from otpservice.sending.base import ProviderUnavailable as SendUnavailable
from otpservice.storage.optouts import OptOutStore

log = logging.getLogger(__name__)

PUBLIC_FIELDS = ("source", "keyword", "messaging_profile_id", "created_at")
CURSOR_RE = re.compile(r"^\+\d{1,16}$")
RECONCILED = ("telnyx", "send_rejected")  # the sources that mirror the provider's list
LOCAL = ("admin", "inbound_stop")  # the sources an operator may remove


def parse_time_ms(text: Any, default_ms: int) -> int:
    """The provider's created_at (ISO 8601, or space-separated) in ms; `default_ms` when unreadable."""
    try:
        return int(datetime.fromisoformat(str(text).strip().replace("Z", "+00:00")).timestamp() * 1000)
    except (TypeError, ValueError):
        return default_ms


def encode_cursor(phone: str) -> str:
    return base64.urlsafe_b64encode(phone.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The last number of the previous page, or InvalidRequest for anything this service did not issue."""
    try:
        phone = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        phone = ""
    if not CURSOR_RE.match(phone):
        raise InvalidRequest("cursor is not one this service issued.", field="cursor")
    return phone


def render(phone: str, records: list[dict]) -> dict[str, Any]:
    """A number's opt-out state as the admin API shows it."""
    return {"phone_number": phone, "opted_out": bool(records),
            "records": [{f: r.get(f) for f in PUBLIC_FIELDS} for r in records]}


class OptOutService:
    """Look up, block, unblock and list numbers; pull the provider's list into the registry."""

    def __init__(self, *, store: OptOutStore, provider: OptOutList, messaging_profile_id: str = "",
                 default_region: str = "", clock: Callable[[], float] = time.time,
                 metrics: Metrics | NullMetrics | None = None) -> None:
        self.store = store
        self.provider = provider
        self.profile = messaging_profile_id or None
        self.default_region = default_region
        self.clock = clock
        self.metrics = metrics or NullMetrics()

    def number(self, raw: object) -> phones.PhoneNumber:
        """A caller's number in E.164, or 422 invalid_phone_number (400 when missing)."""
        return phones.normalize(raw, self.default_region)

    def lookup(self, phone: str) -> dict[str, Any]:
        """The admin view of one number (one round trip)."""
        return render(phone, self.store.records(phone))

    def block(self, phone: str, *, keyword: str | None = None) -> dict[str, Any]:
        """Record an `admin` opt-out."""
        self.store.add(phone, "admin", now_ms=int(self.clock() * 1000), keyword=keyword)
        return self.lookup(phone)

    def unblock(self, phone: str) -> dict[str, Any]:
        """Remove the local `admin` and `inbound_stop` records; the provider's own block stays the provider's."""
        self.store.remove(phone, LOCAL)
        return self.lookup(phone)

    def page(self, *, limit: int, cursor: str | None = None) -> dict[str, Any]:
        """Opted-out numbers in E.164 order after `cursor`, with their records, and the next cursor."""
        after = decode_cursor(cursor) if cursor else None
        found, more = self.store.page(limit=limit, after=after)
        data = [render(phone, records) for phone, records in found]
        return {"data": data, "next_cursor": encode_cursor(found[-1][0]) if more and found else None}

    # -- the provider's list ---------------------------------------------------------------------------
    def fetch(self, now_ms: int) -> dict[str, dict[str, Any]]:
        """The provider's whole list as E.164 -> record entry; ProviderUnavailable/ProviderError when it fails."""
        listed: dict[str, dict[str, Any]] = {}
        try:
            for item in self.provider.list_opt_outs(messaging_profile_id=self.profile):
                if self.profile and item.messaging_profile_id not in (None, self.profile):
                    continue
                try:
                    e164 = phones.normalize(item.phone_number).e164
                except ServiceError:
                    log.warning("opt-out list entry skipped: not a valid number")
                    continue
                listed[e164] = dict(phone=e164, source="telnyx", keyword=item.keyword,
                                    messaging_profile_id=item.messaging_profile_id or self.profile,
                                    created_ms=parse_time_ms(item.created_at, now_ms))
        except SendUnavailable as exc:
            raise ProviderUnavailable("The provider's opt-out list is unavailable: try again later.",
                                      retry_after=exc.retry_after) from exc
        except SendError as exc:
            raise ProviderError("The provider refused the opt-out list request (check the API key and profile).") \
                from exc
        return listed

    def sync(self) -> dict[str, int]:
        """Pull the whole list; returns how many numbers it has, and how many local records were added/removed."""
        started_ms = int(self.clock() * 1000)
        listed = self.fetch(started_ms)
        added = self.store.add_many(listed.values())
        removed = 0
        for source in RECONCILED:
            for phone in self.store.numbers_with(source) - listed.keys():
                removed += self._drop_stale(phone, source, started_ms)
        self.metrics.optout_sync(added=added, removed=removed)
        log.info("opt-out sync", extra={"listed": len(listed), "added": added, "removed": removed})
        return {"listed": len(listed), "added": added, "removed": removed}

    def refresh(self, phone: str) -> dict[str, Any]:
        """Ask the provider's list live about one number, update its local record, and return the lookup."""
        started_ms = int(self.clock() * 1000)
        listed = self.fetch(started_ms)
        if phone in listed:
            self.store.add_many([listed[phone]])
        else:
            for source in RECONCILED:
                self._drop_stale(phone, source, started_ms)
        return self.lookup(phone)

    def _drop_stale(self, phone: str, source: str, started_ms: int) -> int:
        """Remove a mirrored record of a number the provider no longer lists (not one written during this sync)."""
        for record in self.store.records(phone):
            if record["source"] == source:
                if source == "send_rejected" and parse_time_ms(record.get("created_at"), 0) >= started_ms - 1000:
                    return 0
                return self.store.remove(phone, (source,))
        return 0


class SyncScheduler(Periodic):
    """The opt-out sync, every `interval` seconds in whichever serving process takes the lock."""

    def __init__(self, service: OptOutService, interval: int) -> None:
        super().__init__("opt-out sync", interval, service.store.take_sync_lock, service.sync)
        self.service = service

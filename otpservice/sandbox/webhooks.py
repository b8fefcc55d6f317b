"""Signed webhook delivery as Telnyx does it: raw bytes, Ed25519 headers, retries, then the next URL."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import nacl.signing
import requests

from otpservice.sandbox import payloads
from otpservice.sandbox.state import SimState
from otpservice.sending.telnyx.signatures import sign_webhook

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 2.0  # Telnyx wants a 2xx within 2 s


class WebhookDispatcher:
    """Posts signed events to a message's webhook URLs and logs every outcome in the state."""

    def __init__(
        self,
        *,
        state: SimState,
        signing_key: nacl.signing.SigningKey,
        clock: Callable[[], float],
        delay: float,
        max_attempts: int,
        backoff: float = 0.05,
        timeout: float = WEBHOOK_TIMEOUT,
    ) -> None:
        self.state = state
        self.signing_key = signing_key
        self.clock = clock
        self.delay = delay
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.timeout = timeout

    def deliver(self, data: dict[str, Any], urls: list[str]) -> dict[str, Any]:
        """Deliver one event: each URL in turn, up to max_attempts each, until one answers 2xx."""
        outcome: dict[str, Any] = {
            "event_id": data["id"],
            "event_type": data["event_type"],
            "message_id": data["payload"].get("id"),
            "url": None,
            "attempts": 0,
            "status": None,
            "delivered": False,
        }
        for url in urls:
            for attempt in range(1, self.max_attempts + 1):
                if attempt > 1:
                    time.sleep(self.backoff * 2 ** (attempt - 2))
                # Serialised once per attempt (meta.attempt changes) and sent as exactly the bytes signed.
                body = json.dumps(
                    {"data": data, "meta": {"attempt": attempt, "delivered_to": url}}, separators=(",", ":")
                ).encode("utf-8")
                headers = sign_webhook(self.signing_key, body, timestamp=int(self.clock()))
                headers["Content-Type"] = "application/json"
                outcome.update(url=url, attempts=outcome["attempts"] + 1)
                try:
                    # No shared Session: requests does not promise one is thread-safe, and each message has
                    # its own thread. Redirects are not followed: Telnyx counts a 3xx as a failure.
                    answer = requests.post(
                        url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
                    )
                    outcome["status"] = answer.status_code
                except requests.RequestException as exc:
                    outcome["status"] = None
                    outcome["error"] = type(exc).__name__
                    continue
                if 200 <= answer.status_code < 300:
                    outcome["delivered"] = True
                    outcome.pop("error", None)
                    self.state.log_webhook(outcome)
                    return outcome
        log.info(
            "sim webhook undelivered event=%s type=%s attempts=%s",
            data["id"],
            data["event_type"],
            outcome["attempts"],
        )
        self.state.log_webhook(outcome)
        return outcome

    def delivery_reports(self, payload: dict[str, Any], urls: list[str], final_status: str) -> None:
        """Move the message to sent then `final_status` in a daemon thread after `delay`, posting
        message.sent and message.finalized to `urls` (none: the SMS still goes, nobody is told)."""

        def run() -> None:
            try:
                time.sleep(self.delay)
                sent = payloads.advance(payload, "sent", now=self.clock())
                self.state.keep_payload(sent)
                if urls:
                    self.deliver(payloads.event("message.sent", sent, now=self.clock()), urls)
                final = payloads.advance(sent, final_status, now=self.clock())
                self.state.keep_payload(final)
                if urls:
                    self.deliver(payloads.event("message.finalized", final, now=self.clock()), urls)
            except Exception:  # a daemon thread has nobody to raise to: log it instead of dying silently
                log.exception("sim delivery reports failed for message %s", payload.get("id"))

        self.state.keep_payload(payload)  # queued, readable at once through GET /v2/messages/{id}
        threading.Thread(target=run, name=f"sim-webhooks-{payload['id'][:8]}", daemon=True).start()

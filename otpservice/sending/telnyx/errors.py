"""Telnyx's answers to SendErrors: which error codes mean an opted-out or invalid recipient, a configuration of
ours, or "back off", and how long Telnyx asks us to wait."""
from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from otpservice.sending.base import (
    DEFAULT_RETRY_AFTER,
    InvalidRecipient,
    Misconfigured,
    ProviderUnavailable,
    RecipientOptedOut,
    RouteRefused,
    SendError,
)

OPT_OUT_CODE = "40300"
INVALID_NUMBER_CODES = frozenset({"40310", "10002", "10016"})
CONFIG_CODES = frozenset({"10009", "10010", "40305", "40306", "40312", "40321", "40333"})
# The configuration errors of one route's sender or profile, which another route does not share: the text may
# go out on the next route (vocabulary.FAILOVER_REASONS). Credentials and the spend limit are the account's.
ROUTE_CODES = {"40305": "invalid_sender", "40306": "alpha_sender_not_configured", "40312": "profile_disabled",
               "40321": "pool_empty"}
BACK_OFF_CODES = frozenset({"10011", "40318"})
# x-ratelimit-reset above this is an epoch timestamp, below it a number of seconds to wait.
_EPOCH_THRESHOLD = 1_000_000_000


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> int:
    """Seconds to wait from Retry-After or x-ratelimit-reset (seconds or epoch); 30 if neither parses."""
    for name in ("Retry-After", "x-ratelimit-reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        raw = str(raw).strip()
        try:
            value = float(raw)
        except ValueError:
            parsed = email.utils.parsedate_tz(raw)  # Retry-After may be an HTTP date
            if parsed is None:
                continue
            value = float(email.utils.mktime_tz(parsed))
        if not math.isfinite(value):
            continue
        seconds = value - now if value >= _EPOCH_THRESHOLD else value
        return max(1, math.ceil(seconds))
    return DEFAULT_RETRY_AFTER


def named_wait(headers: Mapping[str, str]) -> bool:
    """Whether the answer names how long to wait (else parse_retry_after's default stands in)."""
    return any(headers.get(name) is not None for name in ("Retry-After", "x-ratelimit-reset"))


def _server_now(response: requests.Response, clock: Callable[[], float]) -> float:
    """Telnyx's own time from its Date header, so an epoch reset is read without our clock skew."""
    date = response.headers.get("Date")
    parsed = email.utils.parsedate_tz(date) if date else None
    return float(email.utils.mktime_tz(parsed)) if parsed else clock()


def _error_objects(response: requests.Response) -> list[dict]:
    """The Telnyx error objects of a failed response; [] if the body is not Telnyx's error shape."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, dict)]
    if isinstance(body, dict) and "code" in body:
        return [body]  # the spec declares a bare error object for some 4xx answers: accept both shapes
    return []


def _is_opt_out(error: Mapping[str, Any]) -> bool:
    """A 40300 that names STOP or a block rule; Telnyx reuses 40300 for unrelated request errors."""
    text = f"{error.get('title', '')} {error.get('detail', '')}"
    return str(error.get("code")) == OPT_OUT_CODE and ("STOP" in text.upper() or "block rule" in text.lower())


def error_from_response(response: requests.Response, *, clock: Callable[[], float] = time.time) -> SendError:
    """The SendError for a non-2xx Telnyx response."""
    status = response.status_code
    errors = _error_objects(response)
    codes = [str(e.get("code")) for e in errors if e.get("code") is not None]

    def build(cls: type[SendError], error: Mapping[str, Any] | None, **extra: Any) -> SendError:
        error = error or {}
        return cls(str(error.get("title") or f"HTTP {status}"), code=str(error["code"]) if "code" in error else None,
                   detail=str(error.get("detail") or ""), http_status=status, errors=errors, **extra)

    def first(match: Callable[[Mapping[str, Any]], bool]) -> Mapping[str, Any] | None:
        return next((e for e in errors if match(e)), None)

    if (opt_out := first(_is_opt_out)) is not None:
        return build(RecipientOptedOut, opt_out)
    if (invalid := first(lambda e: str(e.get("code")) in INVALID_NUMBER_CODES)) is not None:
        return build(InvalidRecipient, invalid)
    if status == 429 or BACK_OFF_CODES.intersection(codes):
        # Telnyx refused this one outright, so no text went out.
        retry_after = parse_retry_after(response.headers, now=_server_now(response, clock))
        backoff = first(lambda e: str(e.get("code")) in BACK_OFF_CODES) or (errors[0] if errors else None)
        return build(ProviderUnavailable, backoff, retry_after=retry_after, may_have_sent=False,
                     retry_after_given=named_wait(response.headers))
    if status >= 500:
        # Telnyx failed on its side: most likely nothing was queued, but it cannot be ruled out. With an
        # Idempotency-Key a retry is safe either way (a taken send is answered again, not sent again).
        retry_after = parse_retry_after(response.headers, now=_server_now(response, clock))
        return build(ProviderUnavailable, errors[0] if errors else None, retry_after=retry_after, may_have_sent=True,
                     retry_after_given=named_wait(response.headers))
    if 400 <= status < 500:
        if (route := first(lambda e: str(e.get("code")) in ROUTE_CODES)) is not None:
            return build(RouteRefused, route, reason=ROUTE_CODES[str(route["code"])])
        config = first(lambda e: str(e.get("code")) in CONFIG_CODES)
        return build(Misconfigured, config or (errors[0] if errors else None))
    return build(SendError, errors[0] if errors else None)

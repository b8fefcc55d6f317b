"""The Telnyx Messaging API client: one session, explicit timeouts, no blind re-sends, typed errors."""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 10.0)
CONNECT_RETRIES = 2
RETRY_BACKOFF = 0.1
DEFAULT_RETRY_AFTER = 30
MAX_PAGE_SIZE = 250
MAX_OPT_OUT_PAGES = 1000
ENDPOINTS = {"messages": "/messages", "number_pool": "/messages/number_pool"}
USER_AGENT = "otpservice-telnyx/0.1"
# x-ratelimit-reset above this is an epoch timestamp, below it a number of seconds to wait.
_EPOCH_THRESHOLD = 1_000_000_000

OPT_OUT_CODE = "40300"
INVALID_NUMBER_CODES = frozenset({"40310", "10002", "10016"})
CONFIG_CODES = frozenset({"10009", "10010", "40305", "40306", "40312", "40321", "40333"})
BACK_OFF_CODES = frozenset({"10011", "40318"})


class TelnyxError(Exception):
    """A Telnyx call failed. `detail` and `errors` may hold phone numbers: mask before logging them."""

    def __init__(
        self,
        title: str,
        *,
        code: str | None = None,
        detail: str = "",
        http_status: int | None = None,
        errors: list[dict] | None = None,
    ) -> None:
        super().__init__(title)
        self.code = code
        self.title = title
        self.detail = detail
        self.http_status = http_status
        self.errors = list(errors or [])

    def __str__(self) -> str:
        # The detail is left out on purpose: Telnyx puts full phone numbers in it.
        return f"Telnyx {self.code or '-'} (HTTP {self.http_status or '-'}): {self.title}"


class TelnyxOptOut(TelnyxError):
    """The recipient opted out (40300 block rule): never retry, record the opt-out."""


class TelnyxInvalidNumber(TelnyxError):
    """Telnyx refused the destination number: the caller's input is bad."""


class TelnyxConfigError(TelnyxError):
    """Telnyx refused the request for a reason of ours (credentials, sender, profile, spend limit)."""


class TelnyxUnavailable(TelnyxError):
    """Telnyx could not be reached or asked us to back off; `may_have_sent` says whether an SMS may be out."""

    def __init__(
        self, title: str, *, retry_after: int = DEFAULT_RETRY_AFTER, may_have_sent: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(title, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.may_have_sent = may_have_sent


@dataclass(frozen=True)
class SentMessage:
    """What Telnyx answered to an accepted send."""

    id: str
    status: str
    endpoint: str
    to: str = field(repr=False)  # kept out of repr so that logging the object never shows the full number
    cost: str | None


def mask_number(number: str) -> str:
    """A phone number safe for logs: `+1312*****23`."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:5] + "*" * (len(number) - 7) + number[-2:]


def normalise_cost(cost: Any) -> str | None:
    """Telnyx's cost (null, number, decimal string or {amount, currency}) as the amount's decimal string."""
    if isinstance(cost, Mapping):
        cost = cost.get("amount")
    if cost is None or isinstance(cost, bool) or not isinstance(cost, (int, float, str)):
        return None
    try:
        # str() first so that a float such as 0.0051 keeps its short form instead of its binary expansion.
        value = Decimal(str(cost).strip())
    except InvalidOperation:
        return None
    return str(value) if value.is_finite() else None


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


def error_from_response(
    response: requests.Response, *, clock: Callable[[], float] = time.time
) -> TelnyxError:
    """The typed exception for a non-2xx Telnyx response."""
    status = response.status_code
    errors = _error_objects(response)
    codes = [str(e.get("code")) for e in errors if e.get("code") is not None]

    def build(cls: type[TelnyxError], error: Mapping[str, Any] | None, **extra: Any) -> TelnyxError:
        error = error or {}
        return cls(
            str(error.get("title") or f"HTTP {status}"),
            code=str(error["code"]) if "code" in error else None,
            detail=str(error.get("detail") or ""),
            http_status=status,
            errors=errors,
            **extra,
        )

    def first(match: Callable[[Mapping[str, Any]], bool]) -> Mapping[str, Any] | None:
        return next((e for e in errors if match(e)), None)

    if (opt_out := first(_is_opt_out)) is not None:
        return build(TelnyxOptOut, opt_out)
    if (invalid := first(lambda e: str(e.get("code")) in INVALID_NUMBER_CODES)) is not None:
        return build(TelnyxInvalidNumber, invalid)
    if status == 429 or BACK_OFF_CODES.intersection(codes):
        # Telnyx refused this one outright, so no SMS went out.
        retry_after = parse_retry_after(response.headers, now=_server_now(response, clock))
        backoff = first(lambda e: str(e.get("code")) in BACK_OFF_CODES) or (errors[0] if errors else None)
        return build(TelnyxUnavailable, backoff, retry_after=retry_after, may_have_sent=False)
    if status >= 500:
        retry_after = parse_retry_after(response.headers, now=_server_now(response, clock))
        return build(
            TelnyxUnavailable, errors[0] if errors else None, retry_after=retry_after, may_have_sent=True
        )
    if 400 <= status < 500:
        config = first(lambda e: str(e.get("code")) in CONFIG_CODES)
        return build(TelnyxConfigError, config or (errors[0] if errors else None))
    return build(TelnyxError, errors[0] if errors else None)


def _never_reached(exc: requests.ConnectionError) -> bool:
    """True only when the connection itself failed, so the request surely never reached Telnyx."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def build_session() -> requests.Session:
    """A session whose adapter retries connection failures only, POST included."""
    retry = Retry(
        total=CONNECT_RETRIES,
        connect=CONNECT_RETRIES,
        # A refused connection never reached Telnyx, so retrying it is safe even for POST; anything that may
        # have reached it (read errors, any status) is never retried: there is no idempotency key. read=False
        # re-raises a read error as itself, so requests still reports a ReadTimeout as one.
        read=False,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "POST"}),
        backoff_factor=RETRY_BACKOFF,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class TelnyxClient:
    """Sends SMS and lists opt-outs through the Telnyx Messaging API v2."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        events: Callable[..., None] | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._owns_session = session is None
        self.session = session or build_session()
        self._clock = clock
        # events("telnyx_call", path=, outcome=, seconds=) after every call: the app's metrics hook.
        self.events = events

    def __repr__(self) -> str:
        return f"TelnyxClient(base_url={self.base_url!r})"  # never the key

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with auth and timeout, timed for the events hook."""
        started, outcome = time.perf_counter(), "error"
        try:
            response = self._call(method, path, **kwargs)
            outcome = f"{response.status_code // 100}xx"
            return response
        except TelnyxUnavailable as exc:
            outcome = "timeout" if exc.title == "Timed out" else "connection_error"
            raise
        finally:
            if self.events is not None:
                self.events("telnyx_call", path=path, outcome=outcome, seconds=time.perf_counter() - started)

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with auth and timeout; network failures become TelnyxUnavailable."""
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            return self.session.request(
                method,
                self.base_url + path,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                **kwargs,
            )
        except requests.Timeout as exc:
            # A read timeout means Telnyx got the request and may have queued the SMS.
            never = isinstance(exc, requests.ConnectTimeout)
            raise TelnyxUnavailable("Timed out", http_status=None, may_have_sent=not never) from exc
        except requests.ConnectionError as exc:
            never = _never_reached(exc)
            title = "Connection failed" if never else "Connection lost"
            raise TelnyxUnavailable(title, may_have_sent=not never) from exc
        except requests.RequestException as exc:
            raise TelnyxUnavailable("Request failed", may_have_sent=True) from exc

    def send_message(
        self,
        *,
        to: str,
        text: str,
        endpoint: str = "messages",
        from_: str | None = None,
        messaging_profile_id: str | None = None,
        webhook_url: str | None = None,
    ) -> SentMessage:
        """Send one SMS; raises a TelnyxError subclass, and never re-sends a request that may have arrived."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}")
        if not to or not text:
            raise ValueError("to and text are required")
        body: dict[str, Any] = {"to": to, "text": text}
        if endpoint == "messages":
            if not from_:
                raise ValueError("from_ is required for the messages endpoint")
            body["from"] = from_
            if messaging_profile_id:
                body["messaging_profile_id"] = messaging_profile_id
        else:
            if not messaging_profile_id:
                raise ValueError("messaging_profile_id is required for the number_pool endpoint")
            if from_:
                raise ValueError("the number pool picks the sender: from_ must not be given")
            body["messaging_profile_id"] = messaging_profile_id
        if webhook_url:
            body["webhook_url"] = webhook_url
            # With profile webhooks on, Telnyx also delivers this message's events (text included, i.e. the
            # code) to the profile's URL, which another app may own. We name our own URL, so turn them off.
            body["use_profile_webhooks"] = False
        try:
            response = self._request("POST", ENDPOINTS[endpoint], json=body)
        except TelnyxUnavailable as exc:
            log.warning(
                "telnyx send failed endpoint=%s to=%s error=%r may_have_sent=%s",
                endpoint,
                mask_number(to),
                exc.title,
                exc.may_have_sent,
            )
            raise
        if not 200 <= response.status_code < 300:
            error = error_from_response(response, clock=self._clock)
            log.warning(
                "telnyx send refused endpoint=%s to=%s http=%s code=%s kind=%s",
                endpoint,
                mask_number(to),
                error.http_status,
                error.code,
                type(error).__name__,
            )
            raise error
        sent = self._sent_message(response, endpoint=endpoint, to=to)
        log.info(
            "telnyx send accepted endpoint=%s to=%s id=%s status=%s",
            endpoint,
            mask_number(to),
            sent.id,
            sent.status,
        )
        return sent

    @staticmethod
    def _sent_message(response: requests.Response, *, endpoint: str, to: str) -> SentMessage:
        """The SentMessage of a 2xx answer; a garbled one is Unavailable, may_have_sent."""
        try:
            data = response.json()["data"]
            message_id = data["id"]
            recipients = data.get("to") or [{}]
            if not isinstance(message_id, str) or not message_id:
                raise TypeError("id")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TelnyxUnavailable(
                "Malformed success response", http_status=response.status_code, may_have_sent=True
            ) from exc
        first = recipients[0] if isinstance(recipients, list) and recipients else {}
        first = first if isinstance(first, dict) else {}
        return SentMessage(
            id=message_id,
            status=str(first.get("status") or "queued"),
            endpoint=endpoint,
            to=str(first.get("phone_number") or to),
            cost=normalise_cost(data.get("cost")),
        )

    def list_opt_outs(
        self, *, messaging_profile_id: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[dict]:
        """Every opt-out on the account (or one profile), across every page."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1-{MAX_PAGE_SIZE}")
        page = 1
        while True:
            params: dict[str, Any] = {"page[number]": page, "page[size]": page_size}
            if messaging_profile_id:
                params["filter[messaging_profile_id]"] = messaging_profile_id
            response = self._request("GET", "/messaging_optouts", params=params)
            if not 200 <= response.status_code < 300:
                raise error_from_response(response, clock=self._clock)
            try:
                body = response.json()
                items = body.get("data") or []
                total_pages = int((body.get("meta") or {}).get("total_pages") or 0)
            except (ValueError, TypeError, AttributeError) as exc:
                raise TelnyxError("Malformed opt-out list", http_status=response.status_code) from exc
            yield from (item for item in items if isinstance(item, dict))
            # Stop on the last page, on an empty page whatever meta claims, and if meta is missing on a short
            # page; the hard cap stops a server that keeps announcing more pages.
            last_page = page >= total_pages if total_pages else len(items) < page_size
            if not items or last_page:
                return
            page += 1
            if page > MAX_OPT_OUT_PAGES:
                raise TelnyxError(
                    f"Opt-out list longer than {MAX_OPT_OUT_PAGES} pages", http_status=response.status_code
                )

    def close(self) -> None:
        """Release the connection pool (only if the session is ours)."""
        if self._owns_session:
            self.session.close()

"""The Telnyx Messaging API client: one session, explicit timeouts, no blind re-sends, SendErrors.

`TelnyxClient.send` is the Sender (sending/base.py) the domain calls; `send_message` is the Telnyx call under
it; `list_opt_outs` reads Telnyx's own opt-out list for the registry's sync.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from otpservice import vocabulary
from otpservice.observability.logs import mask_number
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.sending.base import OutboundMessage, ProviderOptOut, ProviderUnavailable, SendError, SentMessage
from otpservice.sending.telnyx.errors import error_from_response

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 10.0)
CONNECT_RETRIES = 2
RETRY_BACKOFF = 0.1
MAX_PAGE_SIZE = 250
MAX_OPT_OUT_PAGES = 1000
PATHS = {"messages": "/messages", "number_pool": "/messages/number_pool"}
# The metric name of each call (vocabulary.PROVIDER_OPERATIONS).
OPERATIONS = {"/messages": "send_message", "/messages/number_pool": "send_number_pool",
              "/messaging_optouts": "list_opt_outs"}
USER_AGENT = "otpservice-telnyx/0.1"


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
        # have reached it (read errors, any status) is never retried here. read=False re-raises a read error as
        # itself, so requests still reports a ReadTimeout as one.
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
    """Sends texts and lists opt-outs through the Telnyx Messaging API v2."""

    def __init__(self, *, api_key: str, base_url: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time,
                 metrics: Metrics | NullMetrics | None = None) -> None:
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
        self.metrics = metrics or NullMetrics()

    def __repr__(self) -> str:
        return f"TelnyxClient(base_url={self.base_url!r})"  # never the key

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call with auth and timeout, timed into the metrics; network failures become ProviderUnavailable."""
        started, outcome = time.perf_counter(), "error"
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json",
                   "User-Agent": USER_AGENT}
        try:
            response = self.session.request(method, self.base_url + path, headers=headers, timeout=self.timeout,
                                            allow_redirects=False, **kwargs)
            outcome = f"{response.status_code // 100}xx"
            return response
        except requests.Timeout as exc:
            outcome = "timeout"
            # A read timeout means Telnyx got the request and may have queued the text.
            never = isinstance(exc, requests.ConnectTimeout)
            raise ProviderUnavailable("Timed out", may_have_sent=not never) from exc
        except requests.ConnectionError as exc:
            outcome = "connection_error"
            never = _never_reached(exc)
            raise ProviderUnavailable("Connection failed" if never else "Connection lost",
                                      may_have_sent=not never) from exc
        except requests.RequestException as exc:
            raise ProviderUnavailable("Request failed", may_have_sent=True) from exc
        finally:
            self.metrics.provider_call(OPERATIONS.get(path, "other"), outcome, time.perf_counter() - started)

    def send(self, message: OutboundMessage) -> SentMessage:
        """The Sender protocol: one text on its route."""
        route = message.route
        return self.send_message(to=message.to, text=message.text, endpoint=route.endpoint, from_=route.sender,
                                 messaging_profile_id=route.messaging_profile_id, webhook_url=message.webhook_url)

    def send_message(self, *, to: str, text: str, endpoint: str = "messages", from_: str | None = None,
                     messaging_profile_id: str | None = None, webhook_url: str | None = None) -> SentMessage:
        """Send one text; raises a SendError, and never re-sends a request that may have arrived."""
        if endpoint not in PATHS:
            raise ValueError(f"endpoint must be one of {sorted(PATHS)}")
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
            response = self._request("POST", PATHS[endpoint], json=body)
        except ProviderUnavailable as exc:
            log.warning("telnyx send failed endpoint=%s to=%s error=%r may_have_sent=%s", endpoint,
                        mask_number(to), exc.title, exc.may_have_sent)
            raise
        if not 200 <= response.status_code < 300:
            error = error_from_response(response, clock=self._clock)
            log.warning("telnyx send refused endpoint=%s to=%s http=%s code=%s kind=%s", endpoint, mask_number(to),
                        error.http_status, error.code, type(error).__name__)
            raise error
        sent = self._sent_message(response)
        log.info("telnyx send accepted endpoint=%s to=%s id=%s status=%s", endpoint, mask_number(to),
                 sent.message_id, sent.status)
        return sent

    @staticmethod
    def _sent_message(response: requests.Response) -> SentMessage:
        """The SentMessage of a 2xx answer; a garbled one is ProviderUnavailable, may_have_sent."""
        try:
            data = response.json()["data"]
            message_id = data["id"]
            recipients = data.get("to") or [{}]
            if not isinstance(message_id, str) or not message_id:
                raise TypeError("id")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable("Malformed success response", http_status=response.status_code,
                                      may_have_sent=True) from exc
        first = recipients[0] if isinstance(recipients, list) and recipients else {}
        status = first.get("status") if isinstance(first, dict) else None
        return SentMessage(message_id=message_id,
                           status=status if status in vocabulary.DELIVERY_STATUSES else "queued")

    def list_opt_outs(self, *, messaging_profile_id: str | None = None,
                      page_size: int = MAX_PAGE_SIZE) -> Iterator[ProviderOptOut]:
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
                raise SendError("Malformed opt-out list", http_status=response.status_code) from exc
            for item in items:
                if isinstance(item, dict):
                    yield ProviderOptOut(phone_number=item.get("to"), keyword=item.get("keyword"),
                                         messaging_profile_id=item.get("messaging_profile_id"),
                                         created_at=item.get("created_at"))
            # Stop on the last page, on an empty page whatever meta claims, and if meta is missing on a short
            # page; the hard cap stops a server that keeps announcing more pages.
            last_page = page >= total_pages if total_pages else len(items) < page_size
            if not items or last_page:
                return
            page += 1
            if page > MAX_OPT_OUT_PAGES:
                raise SendError(f"Opt-out list longer than {MAX_OPT_OUT_PAGES} pages",
                                http_status=response.status_code)

    def close(self) -> None:
        """Release the connection pool (only if the session is ours)."""
        if self._owns_session:
            self.session.close()

"""The Telnyx Messaging API client: one session, explicit timeouts, no blind re-sends, SendErrors.

`TelnyxClient.send` is the Sender (sending/base.py) the domain calls; `send_message` and `send_whatsapp` are the
Telnyx calls under it; `list_opt_outs` reads Telnyx's own opt-out list for the registry's sync, and `get` the
account's numbers and profiles for `otpservice doctor` (sending/telnyx/doctor.py).
"""
from __future__ import annotations

import json
import logging
import random
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
from otpservice.sending.base import MessageState, OutboundMessage, ProviderOptOut, ProviderUnavailable, SendError, \
    SentMessage
from otpservice.sending.telnyx.errors import error_from_response
from otpservice.sending.telnyx.webhooks import carrier_errors, cost_of

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 10.0)
DEFAULT_DEADLINE = 6.0
SEND_ATTEMPTS = 3  # a send, retried under its Idempotency-Key after a timeout, a 5xx or a 429
RETRY_BASE = 0.2  # seconds: full jitter over 0.2, 0.4, ... between attempts
CONNECT_RETRIES = 2
RETRY_BACKOFF = 0.1
MAX_PAGE_SIZE = 250
MAX_OPT_OUT_PAGES = 1000
PATHS = {"messages": "/messages", "number_pool": "/messages/number_pool", "whatsapp": "/messages/whatsapp"}
SMS_PATHS = {endpoint: PATHS[endpoint] for endpoint in ("messages", "number_pool")}
DEFAULT_WHATSAPP_LANGUAGE = "en_US"
# The metric name of each call (vocabulary.PROVIDER_OPERATIONS).
OPERATIONS = {"/messages": "send_message", "/messages/number_pool": "send_number_pool",
              "/messages/whatsapp": "send_whatsapp", "/messaging_optouts": "list_opt_outs"}
RETRIEVE_OPERATION = "retrieve_message"
USER_AGENT = "otpservice-telnyx/0.1"


def _never_reached(exc: requests.ConnectionError) -> bool:
    """True only when the connection itself failed, so the request surely never reached Telnyx."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


def build_session(pool_size: int = 10) -> requests.Session:
    """A session whose adapter retries connection failures only, POST included, and keeps up to `pool_size`
    connections open (one per send in flight: a smaller pool would open and drop one per send)."""
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
    adapter = HTTPAdapter(max_retries=retry, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class TelnyxClient:
    """Sends texts and lists opt-outs through the Telnyx Messaging API v2."""

    def __init__(self, *, api_key: str, base_url: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 send_deadline: float = DEFAULT_DEADLINE, session: requests.Session | None = None,
                 pool_size: int = 10,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 metrics: Metrics | NullMetrics | None = None, whatsapp_template: str = "",
                 whatsapp_language: str = DEFAULT_WHATSAPP_LANGUAGE) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.send_deadline = send_deadline
        self._owns_session = session is None
        self.session = session or build_session(pool_size)
        self._clock = clock
        self._sleep = sleep
        self.metrics = metrics or NullMetrics()
        self.whatsapp_template = whatsapp_template  # the authentication template's name, as approved by Meta
        self.whatsapp_language = whatsapp_language

    def __repr__(self) -> str:
        return f"TelnyxClient(base_url={self.base_url!r})"  # never the key

    def _request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                 timeout: tuple[float, float] | None = None, operation: str | None = None,
                 **kwargs: Any) -> requests.Response:
        """One call with auth and timeout, timed into the metrics; network failures become ProviderUnavailable."""
        started, outcome = time.perf_counter(), "error"
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json",
                   "User-Agent": USER_AGENT, **(headers or {})}
        try:
            response = self.session.request(method, self.base_url + path, headers=headers,
                                            timeout=timeout or self.timeout, allow_redirects=False, **kwargs)
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
            self.metrics.provider_call(operation or OPERATIONS.get(path, "other"), outcome,
                                       time.perf_counter() - started)

    def send(self, message: OutboundMessage, *, deadline: float | None = None) -> SentMessage:
        """The Sender protocol: one text on its route (a WhatsApp route sends the authentication template)."""
        route = message.route
        if route.endpoint == "whatsapp":
            return self.send_whatsapp(to=message.to, code=message.code, from_=route.sender or "",
                                      messaging_profile_id=route.messaging_profile_id,
                                      webhook_url=message.webhook_url, idempotency_key=message.idempotency_key,
                                      deadline=deadline)
        return self.send_message(to=message.to, text=message.text, endpoint=route.endpoint, from_=route.sender,
                                 messaging_profile_id=route.messaging_profile_id, webhook_url=message.webhook_url,
                                 webhook_failover_url=message.webhook_failover_url,
                                 idempotency_key=message.idempotency_key, deadline=deadline)

    def send_message(self, *, to: str, text: str, endpoint: str = "messages", from_: str | None = None,
                     messaging_profile_id: str | None = None, webhook_url: str | None = None,
                     webhook_failover_url: str | None = None, idempotency_key: str | None = None,
                     deadline: float | None = None) -> SentMessage:
        """Send one text; raises a SendError. With an `idempotency_key`, a timeout, a 5xx or a 429 is retried with
        the same key and the same bytes (Telnyx answers a repeat with its first successful answer, so the text
        goes once), at most SEND_ATTEMPTS times within the send deadline; without one, nothing that may have
        reached Telnyx is sent again."""
        if endpoint not in SMS_PATHS:
            raise ValueError(f"endpoint must be one of {sorted(SMS_PATHS)}")
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
        if webhook_failover_url:
            body["webhook_failover_url"] = webhook_failover_url
        return self._send_with_retries(endpoint, body, to=to, idempotency_key=idempotency_key, deadline=deadline)

    def send_whatsapp(self, *, to: str, code: str, from_: str, template: str | None = None,
                      language: str | None = None, messaging_profile_id: str | None = None,
                      webhook_url: str | None = None, idempotency_key: str | None = None,
                      deadline: float | None = None) -> SentMessage:
        """Send the code in a WhatsApp authentication template (POST /messages/whatsapp): the code is the body's
        parameter and the copy-code button's (Meta's authentication templates take it in both). Retried as
        send_message is."""
        template, language = template or self.whatsapp_template, language or self.whatsapp_language
        if not to or not code or not from_:
            raise ValueError("to, code and from_ are required")
        if not template:
            raise ValueError("a WhatsApp send needs its authentication template (OTP_WHATSAPP_TEMPLATE)")
        parameter = [{"type": "text", "text": code}]
        body: dict[str, Any] = {
            "from": from_, "to": to, "type": "WHATSAPP",
            "whatsapp_message": {"type": "template", "template": {
                "name": template, "language": {"code": language, "policy": "deterministic"},
                "components": [{"type": "body", "parameters": parameter},
                               {"type": "button", "sub_type": "url", "index": 0, "parameters": parameter}]}},
        }
        if messaging_profile_id:
            body["messaging_profile_id"] = messaging_profile_id
        if webhook_url:
            body["webhook_url"] = webhook_url
        return self._send_with_retries("whatsapp", body, to=to, idempotency_key=idempotency_key, deadline=deadline)

    def _send_with_retries(self, endpoint: str, body: dict[str, Any], *, to: str, idempotency_key: str | None,
                           deadline: float | None) -> SentMessage:
        """POST one send, retried under its key as send_message says, until the sooner of the client's send
        deadline and `deadline` (time.monotonic())."""
        # The same bytes on every attempt: Telnyx refuses (422) a repeated key whose body is not identical.
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        ends = time.monotonic() + self.send_deadline
        ends = ends if deadline is None else min(ends, deadline)
        unanswered = False  # an attempt had no answer: it may have been sent, whatever the later ones say
        for attempt in range(1, SEND_ATTEMPTS + 1):
            remaining = max(0.01, ends - time.monotonic())
            try:
                response = self._request("POST", PATHS[endpoint], data=data, headers=headers,
                                         timeout=(min(self.timeout[0], remaining), min(self.timeout[1], remaining)))
                error = None if 200 <= response.status_code < 300 else error_from_response(response, clock=self._clock)
            except ProviderUnavailable as exc:
                error = exc
            if error is None:
                sent = self._sent_message(response)
                log.info("telnyx send accepted endpoint=%s to=%s id=%s status=%s attempt=%s", endpoint,
                         mask_number(to), sent.message_id, sent.status, attempt)
                return sent
            unanswered = unanswered or (isinstance(error, ProviderUnavailable) and error.unanswered)
            log.warning("telnyx send attempt failed endpoint=%s to=%s attempt=%s http=%s code=%s kind=%s "
                        "may_have_sent=%s", endpoint, mask_number(to), attempt, error.http_status, error.code,
                        type(error).__name__, getattr(error, "may_have_sent", False))
            wait = self._retry_wait(error, attempt) if idempotency_key else None
            if wait is None or attempt == SEND_ATTEMPTS or time.monotonic() + wait >= ends:
                break
            self._sleep(wait)
        if unanswered and not (isinstance(error, ProviderUnavailable) and error.unanswered):
            # A later attempt's 5xx does not undo an earlier attempt Telnyx may have taken.
            error = ProviderUnavailable("No definite answer within the send deadline", may_have_sent=True)
        raise error

    @staticmethod
    def _retry_wait(error: SendError, attempt: int) -> float | None:
        """Seconds before the next attempt, or None when `error` is not worth one (a 4xx: Telnyx said no)."""
        if not isinstance(error, ProviderUnavailable):
            return None
        backoff = random.uniform(0, RETRY_BASE * 2 ** (attempt - 1))
        # A 429 or an answer with Retry-After names its own wait: the attempt after it would be refused again.
        return max(backoff, error.retry_after) if error.http_status is not None and error.retry_after_given \
            else backoff

    def message_state(self, message_id: str) -> MessageState | None:
        """GET /messages/{id}: the message's delivery status and errors today; None when Telnyx has no such
        message (it keeps them 10 days)."""
        response = self._request("GET", f"/messages/{requests.utils.quote(message_id, safe='')}",
                                 operation=RETRIEVE_OPERATION)
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise error_from_response(response, clock=self._clock)
        try:
            data = response.json()["data"]
            first = (data.get("to") or [{}])[0]
            status = first.get("status")
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise SendError("Malformed message", http_status=response.status_code) from exc
        if status not in vocabulary.DELIVERY_STATUSES:
            raise SendError(f"Unknown message status {str(status)[:32]!r}", http_status=response.status_code)
        return MessageState(status=status, errors=carrier_errors(data.get("errors")))

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
                           status=status if status in vocabulary.DELIVERY_STATUSES else "queued",
                           cost=cost_of(data))

    def get(self, path: str, *, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """GET one resource of the API (`path` under the base URL, its parts quoted by the caller): its JSON
        body; None when Telnyx has no such resource (404); a SendError for any other failure."""
        response = self._request("GET", path, params=params, operation=operation)
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise error_from_response(response, clock=self._clock)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SendError("Malformed answer", http_status=response.status_code)
        return body

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

"""What every provider offers the domain, whoever the provider is: the Sender protocol, its message and answer,
the SendError tree, the provider-neutral webhook events, and a route.

The domain (core/) speaks only these types. A provider package (sending/telnyx/) turns them into its API's
requests and its answers and errors back into them; adding a provider means adding such a package and
choosing it in wiring.py.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from otpservice import vocabulary

DEFAULT_RETRY_AFTER = 30
DEFAULT_ROUTE = "primary"  # the name of the route the settings give (OTP_SEND_ENDPOINT and its sender)


@dataclass(frozen=True)
class Route:
    """How one text goes out: the endpoint (vocabulary.ENDPOINTS), the sender and the messaging profile, under a
    name of the routes file (or the settings'), which metrics and the verification record show."""

    endpoint: str
    sender: str | None = None  # a `from` number, short code or alphanumeric ID (not for the number pool)
    messaging_profile_id: str | None = None
    name: str = DEFAULT_ROUTE

    @property
    def channel(self) -> str:
        """The channel the route sends on (vocabulary.SEND_CHANNELS)."""
        return vocabulary.ENDPOINT_CHANNELS[self.endpoint]


@dataclass(frozen=True)
class OutboundMessage:
    """One text to send. `idempotency_key` names this send (the verification and its send number): a retry of
    it carries the same key and the same bytes, so the provider sends it once whatever happens to the answers."""

    to: str = field(repr=False)  # an E.164 number: kept out of repr, so logging the object never shows it
    text: str = field(repr=False)  # holds the code
    route: Route
    idempotency_key: str | None = None
    webhook_url: str | None = None
    webhook_failover_url: str | None = None
    code: str = field(default="", repr=False)  # the code alone, for channels that carry it as a parameter


@dataclass(frozen=True)
class SentMessage:
    """What the provider answered to an accepted send; `message_id` None when nothing was sent (a test number).
    `route` is the route that took it (set by routing.RoutedSender)."""

    message_id: str | None
    status: str  # vocabulary.DELIVERY_STATUSES
    route: Route | None = None
    cost: tuple[str, str] | None = None  # (amount, currency) as the provider's answer gave it, when it did


class SendError(Exception):
    """A send failed. `errors` are the provider's error objects ({code, title}); `detail` may hold a phone number,
    so it never reaches a log or `str()`."""

    outcome = "provider_error"  # vocabulary.SEND_OUTCOMES: how metrics count it

    def __init__(self, title: str, *, code: str | None = None, detail: str = "", http_status: int | None = None,
                 errors: list[dict] | None = None) -> None:
        super().__init__(title)
        self.title = title
        self.code = code
        self.detail = detail
        self.http_status = http_status
        self.errors = list(errors or [])
        self.route: Route | None = None  # the route the send failed on (set by routing.RoutedSender)

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.code or '-'} (HTTP {self.http_status or '-'}): {self.title}"


class RecipientOptedOut(SendError):
    """The recipient opted out with the provider: never retry; the registry records it."""

    outcome = "opted_out"


class InvalidRecipient(SendError):
    """The provider refused the destination number: the caller's input is bad."""

    outcome = "invalid_number"


class Misconfigured(SendError):
    """The provider refused the request for a reason of ours (credentials, sender, profile, spend limit)."""


class RouteRefused(Misconfigured):
    """The provider refused this route's sender or profile, and said so before sending anything: another route
    of the country may take the text. `reason` is a vocabulary.FAILOVER_REASONS word."""

    def __init__(self, title: str, *, reason: str, **kwargs) -> None:
        super().__init__(title, **kwargs)
        self.reason = reason


class ProviderUnavailable(SendError):
    """The provider could not be reached or asked us to back off; `may_have_sent` says whether a text may be out."""

    outcome = "unavailable"

    def __init__(self, title: str, *, retry_after: int = DEFAULT_RETRY_AFTER, retry_after_given: bool = False,
                 may_have_sent: bool = True, **kwargs) -> None:
        super().__init__(title, **kwargs)
        self.retry_after = max(1, int(retry_after))
        self.retry_after_given = retry_after_given  # the provider named the wait (Retry-After, x-ratelimit-reset)
        self.may_have_sent = may_have_sent

    @property
    def unanswered(self) -> bool:
        """No answer at all (a read timeout or a lost connection): the text may still arrive."""
        return self.may_have_sent and self.http_status is None


class Sender(Protocol):
    """Sends one text; raises a SendError. A request that may have arrived is sent again only under the same
    idempotency key, and within the sender's deadline (or `deadline`, a time.monotonic() value, when sooner)."""

    def send(self, message: OutboundMessage, *, deadline: float | None = None) -> SentMessage: ...


@dataclass(frozen=True)
class MessageState:
    """What the provider says today of a message it took (a receipt that may never have come)."""

    status: str  # vocabulary.DELIVERY_STATUSES
    errors: list[dict[str, str]]


class MessageLookup(Protocol):
    """Asks the provider for a message's current state; None when the provider no longer knows it."""

    def message_state(self, message_id: str) -> MessageState | None: ...


@dataclass(frozen=True)
class ProviderOptOut:
    """One entry of the provider's own opt-out list."""

    phone_number: object  # as the provider wrote it: the domain parses it
    keyword: str | None
    messaging_profile_id: str | None
    created_at: object


class OptOutList(Protocol):
    """The provider's own opt-out list, every page of it."""

    def list_opt_outs(self, *, messaging_profile_id: str | None = None) -> Iterator[ProviderOptOut]: ...


# -- webhooks ---------------------------------------------------------------------------------------------
class WebhookSignatureError(Exception):
    """A webhook failed verification; `reason` (vocabulary.SIGNATURE_FAILURES) is for logs and metrics only."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DeliveryReceipt:
    """The provider says a text we sent moved to `status`."""

    event_id: str | None
    message_id: object
    recipient: object  # the number the text went to, as the provider wrote it
    status: object
    errors: list[dict[str, str]]
    cost: tuple[str, str] | None = None  # (amount, currency), when the event carries one


@dataclass(frozen=True)
class InboundMessage:
    """A subscriber texted us."""

    event_id: str | None
    sender: object
    text: object
    provider_keyword: object  # the provider's own reading of the text as a keyword, if it gives one
    messaging_profile_id: object


@dataclass(frozen=True)
class OtherEvent:
    """An event of a type the service does not act on."""

    event_id: str | None


@dataclass(frozen=True)
class Webhook:
    """A verified webhook: its type as the provider names it, and what it says."""

    event_type: str
    event: DeliveryReceipt | InboundMessage | OtherEvent


class WebhookDecoder(Protocol):
    """Verifies a provider's webhook over its raw bytes, then decodes it; raises WebhookSignatureError, or
    errors.InvalidPayload for signed bytes that are not one of its events. `header_names` are the request
    headers it reads (the web layer hands over those alone)."""

    header_names: tuple[str, ...]

    def decode(self, headers: Mapping[str, str], body: bytes, *, now: float) -> Webhook: ...

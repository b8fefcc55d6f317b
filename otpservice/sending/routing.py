"""Which routes a text may take, and sending it along them.

A route is an endpoint with its sender and messaging profile (sending/base.py Route). The routing table gives
each country (and `default`) an ordered list: OTP_ROUTES_FILE (sending/routes_file.py) when set, and the
settings' route (OTP_SEND_ENDPOINT with OTP_TELNYX_FROM or the profile, then OTP_FAILOVER_ENDPOINT's) as the
default list when the file has none. A text goes out on the first route of its country and channel; it moves to
the next one only when the provider refused the route itself before sending anything (RouteRefused), within the
send deadline, and a resend after a failed delivery starts on the route after the one that failed.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from otpservice import vocabulary
from otpservice.config import ConfigError, Settings
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.sending.base import DEFAULT_ROUTE, OutboundMessage, ProviderUnavailable, Route, RouteRefused, \
    SendError, Sender, SentMessage
from otpservice.sending.routes_file import DEFAULT_COUNTRY, FAILOVER_ROUTE, all_names, load_routes

log = logging.getLogger(__name__)


def route_for(endpoint: str, settings: Settings, name: str = DEFAULT_ROUTE) -> Route:
    """The route of `endpoint` with the configured sender and profile (the pool picks its own sender)."""
    return Route(endpoint=endpoint, sender=(settings.telnyx_from or None) if endpoint == "messages" else None,
                 messaging_profile_id=settings.telnyx_messaging_profile_id or None, name=name)


def settings_routes(settings: Settings) -> tuple[Route, ...]:
    """The routes the settings give: OTP_SEND_ENDPOINT's, then OTP_FAILOVER_ENDPOINT's when set."""
    routes = [route_for(settings.send_endpoint, settings)]
    if settings.failover_endpoint:
        routes.append(route_for(settings.failover_endpoint, settings, FAILOVER_ROUTE))
    return tuple(routes)


def starting_after(routes: Sequence[Route], name: str | None) -> tuple[Route, ...]:
    """`routes` in order from the one after the route called `name` (round to the start); as they are when no
    route has that name."""
    names = [route.name for route in routes]
    if name not in names:
        return tuple(routes)
    at = names.index(name) + 1
    return tuple(routes[at:]) + tuple(routes[:at])


class Router:
    """The routing table: the routes of each country, and of every other country (`default`)."""

    def __init__(self, table: Mapping[str, Sequence[Route]]) -> None:
        if not table.get(DEFAULT_COUNTRY):
            raise ValueError("the routing table needs a default list")
        self.table = {country: tuple(routes) for country, routes in table.items()}
        self.names = all_names(self.table)

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        """The table of OTP_ROUTES_FILE over the settings' route; ConfigError naming what is wrong."""
        table = load_routes(settings.routes_file) if settings.routes_file else {}
        if DEFAULT_COUNTRY not in table:
            table[DEFAULT_COUNTRY] = settings_routes(settings)
            incomplete = [r for r in table[DEFAULT_COUNTRY] if r.endpoint == "messages" and not r.sender] + \
                [r for r in table[DEFAULT_COUNTRY] if r.endpoint == "number_pool" and not r.messaging_profile_id]
            if settings.routes_file and incomplete:
                raise ConfigError(f"OTP_ROUTES_FILE {settings.routes_file} has no `default` list, so the other "
                                  "countries take the settings' route, which needs "
                                  + ("OTP_TELNYX_FROM" if incomplete[0].endpoint == "messages"
                                     else "OTP_TELNYX_MESSAGING_PROFILE_ID"))
        router = cls(table)
        whatsapp = [route.name for route in router.all_routes() if route.channel == vocabulary.WHATSAPP]
        if whatsapp and not settings.whatsapp_template:
            raise ConfigError(f"OTP_WHATSAPP_TEMPLATE is required: route {whatsapp[0]} sends on WhatsApp, with the "
                              "authentication template it names")
        return router

    def all_routes(self) -> list[Route]:
        """Every route of the table, each once."""
        seen: dict[str, Route] = {}
        for routes in self.table.values():
            for route in routes:
                seen.setdefault(route.name, route)
        return list(seen.values())

    def countries(self) -> list[tuple[str, Route]]:
        """(country, route) for every entry of the table."""
        return [(country, route) for country, routes in self.table.items() for route in routes]

    def routes(self, *, region: str, channel: str | None = None) -> tuple[str, tuple[Route, ...]]:
        """(the channel, its routes in order) for a number of `region`: the country's list, else `default`'s.
        Without `channel`, the channel of the country's first route; with one, the routes of that channel (the
        default list's when the country has none); no route at all: an empty tuple."""
        country = self.table.get(region) or self.table[DEFAULT_COUNTRY]
        channel = channel or country[0].channel
        for routes in (country, self.table[DEFAULT_COUNTRY]):
            chosen = tuple(route for route in routes if route.channel == channel)
            if chosen:
                return channel, chosen
        return channel, ()


class RoutedSender:
    """Sends a message along its routes: one request per route, each under its own Idempotency-Key (Telnyx
    answers a repeated key with the first answer, so the next route needs another), never after a definite
    acceptance or an answer that may have been one, and never past the send deadline."""

    def __init__(self, sender: Sender, *, deadline: float, metrics: Metrics | NullMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sender = sender
        self.deadline = deadline
        self.metrics = metrics or NullMetrics()
        self.clock = clock

    def send(self, message: OutboundMessage, routes: Sequence[Route], *,
             failed_route: str | None = None) -> SentMessage:
        """Send on the first route that takes the text; a SendError carries the route it last failed on.
        `failed_route`: the route whose latest text was not delivered (this send starts after it)."""
        if not routes:
            raise ValueError("a send needs at least one route")
        ordered = starting_after(routes, failed_route)
        if len(routes) > 1 and failed_route in {route.name for route in routes}:
            self.metrics.route_failover(failed_route, "delivery_failed")
        ends = self.clock() + self.deadline
        for attempt, route in enumerate(ordered):
            key = message.idempotency_key
            attempt_key = f"{key}:{attempt}" if key and attempt else key
            try:
                sent = self.sender.send(dataclasses.replace(message, route=route, idempotency_key=attempt_key),
                                        deadline=ends)
            except SendError as exc:
                exc.route = route
                unanswered = isinstance(exc, ProviderUnavailable) and exc.unanswered
                self.metrics.route_send(route.name, "unanswered" if unanswered else exc.outcome)
                if not isinstance(exc, RouteRefused) or attempt + 1 == len(ordered) or self.clock() >= ends:
                    raise
                self.metrics.route_failover(route.name, exc.reason)
                log.warning("route refused, trying the next one", extra={
                    "route": route.name, "next_route": ordered[attempt + 1].name, "reason": exc.reason,
                    "provider_code": exc.code})
                continue
            self.metrics.route_send(route.name, "accepted")
            return dataclasses.replace(sent, route=route)
        raise AssertionError("unreachable: the last route's error is raised")

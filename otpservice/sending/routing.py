"""Which route a text takes: the endpoint, sender and messaging profile a number gets, and the route a resend
takes after the latest text's delivery failed.

Today one route serves every number (OTP_SEND_ENDPOINT with OTP_TELNYX_FROM or the messaging profile), and
OTP_FAILOVER_ENDPOINT names the endpoint of a resend after a failed delivery. A routing rule (per country, per
number type) is a change to `Router.route` and the settings it reads.
"""
from __future__ import annotations

from otpservice.config import Settings
from otpservice.sending.base import Route


def route_for(endpoint: str, settings: Settings) -> Route:
    """The route of `endpoint` with the configured sender and profile (the pool picks its own sender)."""
    return Route(endpoint=endpoint, sender=(settings.telnyx_from or None) if endpoint == "messages" else None,
                 messaging_profile_id=settings.telnyx_messaging_profile_id or None)


class Router:
    """The route of each text."""

    def __init__(self, *, primary: Route, failover: Route | None = None) -> None:
        self.primary = primary
        self.failover = failover

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        failover = route_for(settings.failover_endpoint, settings) if settings.failover_endpoint else None
        return cls(primary=route_for(settings.send_endpoint, settings), failover=failover)

    def route(self, *, region: str, after_failed_delivery: bool) -> Route:
        """The route for a number of `region` (ISO code); a resend after a failed delivery fails over."""
        if after_failed_delivery and self.failover is not None:
            return self.failover
        return self.primary

"""The one place collaborators are chosen: Settings in, the services the views call out.

Which store backs what, which sender texts a code, which decoder reads a webhook: all decided here, so adding a
provider is a sending/ package plus a line below. Tests pass real collaborators they started themselves
(`redis_client`, `sender`, `clock`).
"""
from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otpservice.config import ConfigError, Settings
from otpservice.core.delivery import DeliveryService
from otpservice.core.health import Readiness
from otpservice.core.idempotency import Idempotency
from otpservice.core.optouts import OptOutService, SyncScheduler
from otpservice.core.sendgate import SendGate
from otpservice.core.totp import TotpService, sealing_key
from otpservice.core.verification import VerificationService
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.sending.fixed import FixedCodeSender
from otpservice.sending.routing import Router
from otpservice.sending.telnyx.client import TelnyxClient
from otpservice.sending.telnyx.webhooks import TelnyxWebhooks
from otpservice.storage.budgets import BudgetStore
from otpservice.storage.connect import connect
from otpservice.storage.deliveries import DeliveryStore
from otpservice.storage.idempotency import IdempotencyStore
from otpservice.storage.optouts import OptOutStore
from otpservice.storage.totp import TotpStore
from otpservice.storage.verifications import VerificationStore

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 3.05  # seconds to reach Telnyx (a little over a TCP retransmission window)


@dataclass
class Services:
    """Everything a request may need, built once per app."""

    settings: Settings
    clock: Callable[[], float]
    metrics: Metrics | NullMetrics
    redis: Any
    telnyx: TelnyxClient
    verifications: VerificationService
    delivery: DeliveryService
    optouts: OptOutService
    idempotency: Idempotency
    readiness: Readiness
    totp: TotpService | None = None
    scheduler: SyncScheduler | None = None


def telnyx_client(settings: Settings, *, metrics: Metrics | NullMetrics | None = None) -> TelnyxClient:
    """The Telnyx client the settings name; ConfigError naming the setting when they name none."""
    if not settings.telnyx_api_key:
        raise ConfigError("OTP_TELNYX_API_KEY is required to send texts (`make run` wires the simulator's own)")
    try:
        return TelnyxClient(api_key=settings.telnyx_api_key, base_url=settings.telnyx_base_url,
                            timeout=(CONNECT_TIMEOUT, settings.telnyx_timeout), metrics=metrics)
    except ValueError as exc:
        raise ConfigError(f"OTP_TELNYX_BASE_URL: {exc}") from None


def with_code_secret(settings: Settings) -> Settings:
    """The settings, with a random OTP_CODE_SECRET when a sandbox has none (production refuses to start)."""
    if settings.code_secret:
        return settings
    # Workers forked from a preloading master share the app, and so the secret; separately started processes do
    # not, and a restart forgets it.
    log.warning("OTP_CODE_SECRET is unset: using a random secret until this service stops; codes issued "
                "by another process or before a restart will not verify (sandbox only)")
    return dataclasses.replace(settings, code_secret=secrets.token_urlsafe(32))


def build(settings: Settings, *, redis_client: Any = None, sender: TelnyxClient | None = None,
          clock: Callable[[], float] = time.time, metrics: Metrics | NullMetrics | None = None) -> Services:
    """The services of one app, from its settings."""
    settings = with_code_secret(settings)
    metrics = metrics or NullMetrics()
    client = redis_client if redis_client is not None else connect(settings.redis_url, timeout=settings.redis_timeout)
    telnyx = sender or telnyx_client(settings, metrics=metrics)
    stores = dict(metrics=metrics)
    verification_store = VerificationStore(client, **stores)
    optout_store = OptOutStore(client, **stores)
    gate = SendGate(settings=settings, optouts=optout_store, budgets=BudgetStore(client, **stores), metrics=metrics)
    optouts = OptOutService(store=optout_store, provider=telnyx,
                            messaging_profile_id=settings.telnyx_messaging_profile_id,
                            default_region=settings.default_region, clock=clock, metrics=metrics)
    services = Services(
        settings=settings, clock=clock, metrics=metrics, redis=client, telnyx=telnyx,
        verifications=VerificationService(settings=settings, store=verification_store, gate=gate, sender=telnyx,
                                          test_sender=FixedCodeSender(), router=Router.from_settings(settings),
                                          optouts=optout_store, clock=clock, metrics=metrics),
        delivery=DeliveryService(decoder=TelnyxWebhooks(settings.telnyx_public_key),
                                 store=DeliveryStore(client, **stores), optouts=optout_store,
                                 event_ttl=settings.webhook_event_ttl, clock=clock, metrics=metrics),
        optouts=optouts,
        idempotency=Idempotency(store=IdempotencyStore(client, **stores), ttl=settings.idempotency_ttl),
        readiness=Readiness(settings=settings, store=verification_store),
    )
    if settings.totp_enabled:
        services.totp = TotpService(settings=settings, store=TotpStore(client, **stores), key=sealing_key(settings),
                                    clock=clock, metrics=metrics)
    if settings.optout_sync_interval > 0:
        # Not started here: this may be a gunicorn master that preloads the app and forks (no thread survives).
        services.scheduler = SyncScheduler(optouts, settings.optout_sync_interval)
    return services

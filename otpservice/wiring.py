"""The one place collaborators are chosen: Settings in, the services the views call out.

Which store backs what, which sender texts a code, which decoder reads a webhook: all decided here, so adding a
provider is a sending/ package plus a line below. Tests pass real collaborators they started themselves
(`redis_client`, `sender`, `clock`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from otpservice.config import ConfigError, Settings
from otpservice.errors import StoreUnavailable
from otpservice.core.delivery import DeliveryService, ReconcileScheduler
from otpservice.core.fraud import FraudGuard
from otpservice.core.health import Readiness, redis_problems
from otpservice.core.idempotency import Idempotency
from otpservice.core.optouts import OptOutService, SyncScheduler
from otpservice.core.periodic import Periodic
from otpservice.core.sendgate import Rate, SendGate
from otpservice.core.throttle import FailureBudget
from otpservice.core.totp import TotpService, sealing_key
from otpservice.core.verification import VerificationService
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.sending.fixed import FixedCodeSender
from otpservice.sending.routes_file import DEFAULT_COUNTRY, load_routes
from otpservice.sending.routing import RoutedSender, Router
from otpservice.sending.slots import SendSlots
from otpservice.sending.telnyx.client import TelnyxClient
from otpservice.sending.telnyx.doctor import Check, run_checks
from otpservice.sending.telnyx.webhooks import TelnyxWebhooks
from otpservice.storage.budgets import BudgetStore
from otpservice.storage.connect import connect
from otpservice.storage.deliveries import DeliveryStore
from otpservice.storage.fraud import FraudStore
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
    guard: FraudGuard
    verifications: VerificationService
    delivery: DeliveryService
    optouts: OptOutService
    idempotency: Idempotency
    readiness: Readiness
    admin_failures: FailureBudget
    totp: TotpService | None = None
    scheduler: SyncScheduler | None = None
    reconciler: ReconcileScheduler | None = None

    def background(self) -> list[Periodic]:
        """The background work each serving process runs (started by create_app's middleware or gunicorn)."""
        return [job for job in (self.scheduler, self.reconciler) if job is not None]


def require_sending(settings: Settings) -> None:
    """ConfigError naming each setting a text cannot be sent without, on every endpoint configured.

    Checked before serving (and by `otpservice config`): a missing sender found by the first request would
    answer it with a 500, after its send had been reserved.
    """
    problems = []
    if not settings.telnyx_api_key:
        problems.append("OTP_TELNYX_API_KEY is required to send texts (`make run` wires the simulator's own)")
    # The settings' route serves the countries OTP_ROUTES_FILE leaves out (all of them without a file); the file
    # names its own senders and profiles, checked when it is read.
    settings_route_serves = True
    if settings.routes_file:
        try:
            settings_route_serves = DEFAULT_COUNTRY not in load_routes(settings.routes_file)
            Router.from_settings(settings)
        except ConfigError as exc:
            problems.append(str(exc))
            settings_route_serves = False
    endpoints = (("OTP_SEND_ENDPOINT", settings.send_endpoint), ("OTP_FAILOVER_ENDPOINT", settings.failover_endpoint))
    for name, endpoint in endpoints if settings_route_serves else ():
        if endpoint == "messages" and not settings.telnyx_from:
            problems.append(f"OTP_TELNYX_FROM is required with {name}=messages: it is each text's sender")
        elif endpoint == "number_pool" and not settings.telnyx_messaging_profile_id:
            problems.append(f"OTP_TELNYX_MESSAGING_PROFILE_ID is required with {name}=number_pool: the pool is "
                            "the profile's")
    if settings_route_serves and any(ch.isalpha() for ch in settings.telnyx_from) \
            and not settings.telnyx_messaging_profile_id:
        # Telnyx refuses an alphanumeric sender ID without the profile that holds it (40306).
        problems.append(f"OTP_TELNYX_MESSAGING_PROFILE_ID is required with an alphanumeric OTP_TELNYX_FROM "
                        f"({settings.telnyx_from!r})")
    if problems:
        raise ConfigError("; ".join(problems))


def telnyx_client(settings: Settings, *, metrics: Metrics | NullMetrics | None = None) -> TelnyxClient:
    """The Telnyx client the settings name; ConfigError naming the setting when they name none."""
    if not settings.telnyx_api_key:
        raise ConfigError("OTP_TELNYX_API_KEY is required to reach Telnyx (`make run` wires the simulator's own)")
    try:
        return TelnyxClient(api_key=settings.telnyx_api_key, base_url=settings.telnyx_base_url,
                            timeout=(min(CONNECT_TIMEOUT, settings.telnyx_timeout), settings.telnyx_timeout),
                            send_deadline=settings.telnyx_send_deadline, pool_size=settings.send_concurrency,
                            metrics=metrics, whatsapp_template=settings.whatsapp_template,
                            whatsapp_language=settings.whatsapp_language)
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
          clock: Callable[[], float] = time.time, metrics: Metrics | NullMetrics | None = None,
          sends_texts: bool = True) -> Services:
    """The services of one app, from its settings; `sends_texts=False` for a command that only reads Telnyx
    (the opt-out list), which needs no sender."""
    settings = with_code_secret(settings)
    metrics = metrics or NullMetrics()
    if sender is None and sends_texts:
        require_sending(settings)
    client = redis_client if redis_client is not None else connect(settings.redis_url, timeout=settings.redis_timeout)
    telnyx = sender or telnyx_client(settings, metrics=metrics)
    router = Router.from_settings(settings)
    metrics.known_routes(router.names)
    routed = RoutedSender(telnyx, deadline=settings.telnyx_send_deadline, metrics=metrics)
    stores = dict(metrics=metrics)
    durable = dict(replicas=settings.wait_replicas, wait_timeout_ms=int(settings.redis_wait_timeout * 1000))
    verification_store = VerificationStore(client, **stores, **durable, retention_ms=settings.record_retention * 1000)
    optout_store = OptOutStore(client, **stores)
    budgets = BudgetStore(client, **stores)
    gate = SendGate(settings=settings, optouts=optout_store, budgets=budgets, metrics=metrics)
    guard = FraudGuard(settings=settings, store=FraudStore(client, window_ms=settings.fraud_window * 1000,
                                                           history_ms=settings.fraud_history * 1000, **stores),
                       budgets=budgets, refused=gate.refused, metrics=metrics)

    def failures(policy: str, limit: str) -> FailureBudget:
        return FailureBudget(budgets=budgets, rate=Rate.parse(policy, limit), scope=policy, clock=clock,
                             metrics=metrics)
    optouts = OptOutService(store=optout_store, provider=telnyx,
                            messaging_profile_id=settings.telnyx_messaging_profile_id,
                            default_region=settings.default_region, clock=clock, metrics=metrics)
    services = Services(
        settings=settings, clock=clock, metrics=metrics, redis=client, telnyx=telnyx, guard=guard,
        verifications=VerificationService(settings=settings, store=verification_store, gate=gate, sender=routed,
                                          test_sender=FixedCodeSender(), router=router,
                                          optouts=optout_store, clock=clock, metrics=metrics,
                                          client_failures=failures("verify_client_ip",
                                                                   settings.limit_verify_failures_ip),
                                          slots=SendSlots(settings.send_concurrency), guard=guard),
        delivery=DeliveryService(decoder=TelnyxWebhooks(settings.telnyx_public_key),
                                 store=DeliveryStore(client, **stores), optouts=optout_store,
                                 event_ttl=settings.webhook_event_ttl, lookup=telnyx, guard=guard,
                                 reconcile_after=settings.reconcile_after, retention=settings.record_retention,
                                 clock=clock, metrics=metrics),
        optouts=optouts,
        idempotency=Idempotency(store=IdempotencyStore(client, **stores), ttl=settings.idempotency_ttl),
        readiness=Readiness(settings=settings, store=verification_store),
        admin_failures=failures("admin_client_ip", settings.limit_admin_failures),
    )
    if settings.totp_enabled:
        services.totp = TotpService(settings=settings, store=TotpStore(client, **stores, **durable),
                                    key=sealing_key(settings), clock=clock, metrics=metrics)
    # Not started here: this may be a gunicorn master that preloads the app and forks (no thread survives).
    if settings.optout_sync_interval > 0:
        services.scheduler = SyncScheduler(optouts, settings.optout_sync_interval)
    if settings.reconcile_after > 0:
        # A turn a quarter of the wait, between 30 s and 5 min: a send is looked up soon after it is due.
        services.reconciler = ReconcileScheduler(services.delivery, min(300, max(30, settings.reconcile_after // 4)))
    return services


def doctor(settings: Settings) -> list[Check]:
    """The checks of `otpservice doctor`: the routing table and the settings against the Telnyx account."""
    router = Router.from_settings(settings)
    client = telnyx_client(settings)
    try:
        return run_checks(client, router, settings)
    finally:
        client.close()


def refuse_unsafe_redis(settings: Settings) -> None:
    """Before serving in production: ConfigError when Redis may evict the service's keys (a cap could reset,
    a live code vanish). A Redis that cannot be reached yet is not judged here: /readyz reports it until it
    answers, and its checks again."""
    if not (settings.production and settings.redis_url):
        return
    client = connect(settings.redis_url, timeout=settings.redis_timeout)
    try:
        problem = redis_problems(settings, VerificationStore(client)).get("redis_eviction")
    except StoreUnavailable:
        log.warning("Redis does not answer yet: its maxmemory-policy is checked by /readyz once it does")
        return
    finally:
        with contextlib.suppress(Exception):  # a cluster that never answered has nothing to close
            client.close()
    if problem:
        raise ConfigError(f"Redis {problem} (production refuses any other: evicted keys would reset cooldowns, "
                          "budgets and lock-outs)")

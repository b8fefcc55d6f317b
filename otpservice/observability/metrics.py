"""Prometheus metrics: one typed method per thing the service counts, and a null implementation.

Every label value is checked against its closed set in otpservice.vocabulary (anything else is counted as
`other`, and said so in the log), so no phone number, code or caller text can become a label and series
stay bounded. The emitters pass the same vocabulary words, so a refusal, a signature failure or a webhook
result shows up under its own name; tests/functional/test_metrics.py drives the real emitters to hold that.

Under gunicorn each worker is its own process: with a metrics directory configured, prometheus_client keeps
values in memory-mapped files there (it reads PROMETHEUS_MULTIPROC_DIR, which config/gunicorn.conf.py sets
before the app is imported) and /metrics sums every worker's files, so any worker answers for all of them.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess, values

from otpservice import vocabulary as v

log = logging.getLogger(__name__)

OTHER = "other"
# unconfirmed: the send had no definite answer within its deadline (answered 202, delivery status unknown).
CODE_REQUEST_OUTCOMES = ("sent", "refused", "send_failed", "unconfirmed")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
SYNC_CHANGES = ("added", "removed")
# Seconds from send to carrier-confirmed delivery: most texts land in seconds, a slow carrier in minutes.
DELIVERY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15)


def bounded(value: Any, allowed: Collection[str], label: str) -> str:
    """`value` if it is one of `allowed`, else `other` (logged: an emitter and the vocabulary disagree)."""
    if isinstance(value, str) and value in allowed:
        return value
    log.warning("metrics: %s %r is not in its vocabulary; counted as other", label,
                value if isinstance(value, str) and value.isidentifier() and len(value) <= 40 else "?")
    return OTHER


# Countries are phonenumbers' words, not ours: an ISO region, or a non-geographic number's country code. The
# pattern bounds the series all the same (at most 26 x 26 + 900).
COUNTRY_RE = re.compile(r"^(?:[A-Z]{2}|[1-9][0-9]{2})$")


def country_label(value: Any) -> str:
    return value if isinstance(value, str) and COUNTRY_RE.match(value) else OTHER


class Metrics:
    """The service's metric objects on a registry of their own, fed through typed methods."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.code_requests = Counter("otp_code_requests", "Code requests past validation, by outcome",
                                     ["outcome"], registry=r)
        self.code_refusals = Counter("otp_code_refusals", "Code requests refused before any send, by reason",
                                     ["reason"], registry=r)
        self.rate_limits = Counter("otp_rate_limited", "Requests refused by a rate limit, by policy",
                                   ["policy"], registry=r)
        self.sends = Counter("otp_sends", "Texts handed to the provider, by endpoint and outcome",
                             ["endpoint", "outcome"], registry=r)
        self.route_sends = Counter("otp_route_sends", "Sends handed to the provider on each route (one per route "
                                   "tried), by route and outcome", ["route", "outcome"], registry=r)
        self.route_failovers = Counter("otp_route_failovers", "Sends that left a route for the next one of its "
                                       "country, by the route left and why", ["route", "reason"], registry=r)
        self.route_names: set[str] = set()  # the routes of the routing tables built in this process
        self.unrecorded = Counter("otp_sends_unrecorded", "Texts the provider took whose result Redis could not "
                                  "record (their receipts will find no send)", registry=r)
        self.slots_exhausted = Counter("otp_send_slots_exhausted", "Code requests refused at once because every "
                                       "send slot of the process was taken (OTP_SEND_CONCURRENCY)", registry=r)
        self.test_numbers = Counter("otp_test_number_uses", "Code requests for OTP_TEST_NUMBERS (nothing sent)",
                                    registry=r)
        self.verifications = Counter("otp_verifications", "Code checks by result and channel",
                                     ["result", "channel"], registry=r)
        self.deliveries = Counter("otp_delivery_status", "Delivery status updates applied to a send",
                                  ["status"], registry=r)
        self.delivery_seconds = Histogram("otp_delivery_seconds", "Seconds from send to carrier delivery",
                                          buckets=DELIVERY_BUCKETS, registry=r)
        self.webhooks = Counter("otp_webhooks", "Signed webhooks by kind and what they did",
                                ["kind", "result"], registry=r)
        self.signature_failures = Counter("otp_webhook_signature_failures",
                                          "Webhooks refused for their signature, by reason", ["reason"], registry=r)
        self.keywords = Counter("otp_inbound_keywords", "Inbound STOP/START keywords applied", ["keyword"],
                                registry=r)
        self.reconciliations = Counter("otp_reconciled_sends", "Sends whose status was looked up with the provider "
                                       "(no receipt in OTP_RECONCILE_AFTER), by status and what it did",
                                       ["status", "result"], registry=r)
        self.syncs = Counter("otp_optout_syncs", "Completed syncs of the provider's opt-out list", registry=r)
        self.sync_changes = Counter("otp_optout_sync_changes", "Local opt-out records a sync added or removed",
                                    ["change"], registry=r)
        self.provider_seconds = Histogram("otp_telnyx_request_seconds", "Provider API call latency",
                                          ["operation", "outcome"], buckets=PROVIDER_BUCKETS, registry=r)
        self.store_errors = Counter("otp_redis_errors", "Redis calls that failed (the request failed closed)",
                                    ["error"], registry=r)
        self.admin_failures = Counter("otp_admin_auth_failures", "Admin requests with a missing or wrong token",
                                      registry=r)
        self.fraud_events = Counter("otp_fraud_events", "What the fraud guard counts, by the number's country: texts "
                                    "sent, codes approved, deliveries failed (conversion: approved / (sent - "
                                    "failed))", ["country", "event"], registry=r)
        self.fraud_blocks = Counter("otp_fraud_blocks", "Scopes the fraud guard blocked, by rule and mode",
                                    ["rule", "mode"], registry=r)
        self.fraud_decisions = Counter("otp_fraud_decisions", "Code requests a block refused (enforce) or would "
                                       "have refused (shadow: sent anyway), by rule and mode", ["rule", "mode"],
                                       registry=r)
        self.spend_total = Counter("otp_spend", "What texts cost, per the provider, by country (in "
                                   "OTP_SPEND_CURRENCY)", ["country"], registry=r)
        self.spend_refusals = Counter("otp_spend_refusals", "Code requests refused by a daily spend cap",
                                      ["cap"], registry=r)
        self.http_requests = Counter("otp_http_requests", "HTTP requests by route, method and status",
                                     ["route", "method", "status"], registry=r)

    # -- code requests -----------------------------------------------------------------------------------
    def code_sent(self, endpoint: str) -> None:
        self.code_requests.labels("sent").inc()
        self.sends.labels(bounded(endpoint, v.ENDPOINTS, "endpoint"), "accepted").inc()

    def code_refused(self, reason: str, policy: str | None = None) -> None:
        """A request refused before any send; `policy` names the budget of a `rate_limited` one."""
        self.code_requests.labels("refused").inc()
        self.code_refusals.labels(bounded(reason, v.REFUSAL_REASONS, "reason")).inc()
        if policy is not None:
            self.rate_limits.labels(bounded(policy, v.LIMIT_POLICIES, "policy")).inc()

    def throttled(self, policy: str) -> None:
        """A request refused by a client's failure budget (wrong codes, failed admin authentications)."""
        self.rate_limits.labels(bounded(policy, v.LIMIT_POLICIES, "policy")).inc()

    def admin_auth_failed(self) -> None:
        self.admin_failures.inc()

    def send_failed(self, endpoint: str, outcome: str) -> None:
        self.code_requests.labels("send_failed").inc()
        self.sends.labels(bounded(endpoint, v.ENDPOINTS, "endpoint"),
                          bounded(outcome, v.SEND_OUTCOMES, "outcome")).inc()

    def known_routes(self, names: Collection[str]) -> None:
        """The route names of a routing table (checked bounded at start-up): the values the route label takes."""
        self.route_names.update(names)

    def route_send(self, route: str, outcome: str) -> None:
        self.route_sends.labels(bounded(route, self.route_names, "route"),
                                bounded(outcome, v.SEND_OUTCOMES, "outcome")).inc()

    def route_failover(self, route: str, reason: str) -> None:
        self.route_failovers.labels(bounded(route, self.route_names, "route"),
                                    bounded(reason, v.FAILOVER_REASONS, "reason")).inc()

    def send_unanswered(self, endpoint: str) -> None:
        self.code_requests.labels("unconfirmed").inc()
        self.sends.labels(bounded(endpoint, v.ENDPOINTS, "endpoint"), "unanswered").inc()

    def send_slots_exhausted(self) -> None:
        self.slots_exhausted.inc()

    def send_unrecorded(self) -> None:
        self.unrecorded.inc()

    def test_number_used(self) -> None:
        self.code_requests.labels("sent").inc()
        self.test_numbers.inc()

    # -- the fraud guard ---------------------------------------------------------------------------------
    def fraud_event(self, country: str, event: str) -> None:
        self.fraud_events.labels(country_label(country), bounded(event, v.FRAUD_EVENTS, "event")).inc()

    def fraud_block(self, rule: str, mode: str) -> None:
        self.fraud_blocks.labels(bounded(rule, v.FRAUD_RULES, "rule"), bounded(mode, v.FRAUD_MODES, "mode")).inc()

    def fraud_decision(self, rule: str, mode: str) -> None:
        self.fraud_decisions.labels(bounded(rule, v.FRAUD_RULES, "rule"),
                                    bounded(mode, v.FRAUD_MODES, "mode")).inc()

    def spend(self, country: str, amount: float) -> None:
        if amount > 0:  # a counter only grows: a downward correction stays in Redis's figures
            self.spend_total.labels(country_label(country)).inc(amount)

    def spend_refused(self, cap: str) -> None:
        self.spend_refusals.labels(bounded(cap, v.SPEND_SCOPES, "cap")).inc()

    # -- checks ------------------------------------------------------------------------------------------
    def verification(self, result: str, channel: str) -> None:
        self.verifications.labels(bounded(result, v.VERIFY_RESULTS, "result"),
                                  bounded(channel, v.CHANNELS, "channel")).inc()

    # -- webhooks ----------------------------------------------------------------------------------------
    def delivery_status(self, status: str) -> None:
        self.deliveries.labels(bounded(status, v.DELIVERY_STATUSES, "status")).inc()

    def delivered(self, seconds: float) -> None:
        self.delivery_seconds.observe(max(0.0, float(seconds)))

    def webhook(self, kind: str, result: str) -> None:
        self.webhooks.labels(bounded(kind, v.WEBHOOK_KINDS, "kind"), bounded(result, v.WEBHOOK_RESULTS, "result")).inc()

    def signature_failure(self, reason: str) -> None:
        self.signature_failures.labels(bounded(reason, v.SIGNATURE_FAILURES, "reason")).inc()

    def inbound_keyword(self, keyword: str) -> None:
        self.keywords.labels(bounded(keyword, v.KEYWORDS, "keyword")).inc()

    def reconciled(self, status: str, result: str) -> None:
        """A send looked up with the provider because its receipt had not come (`result`: what applying it did)."""
        self.reconciliations.labels(bounded(status, v.DELIVERY_STATUSES, "status"),
                                    bounded(result, v.WEBHOOK_RESULTS, "result")).inc()

    def optout_sync(self, *, added: int, removed: int) -> None:
        self.syncs.inc()
        self.sync_changes.labels("added").inc(max(0, added))
        self.sync_changes.labels("removed").inc(max(0, removed))

    # -- dependencies ------------------------------------------------------------------------------------
    def provider_call(self, operation: str, outcome: str, seconds: float) -> None:
        self.provider_seconds.labels(bounded(operation, v.PROVIDER_OPERATIONS, "operation"),
                                     bounded(outcome, v.PROVIDER_CALL_OUTCOMES, "outcome")).observe(max(0.0, seconds))

    def store_error(self, error: str) -> None:
        self.store_errors.labels(bounded(error, v.STORE_ERRORS, "error")).inc()

    def http_request(self, route: str, method: str, status: int) -> None:
        """One HTTP answer; `route` is the matched pattern (or `unmatched`), never a raw path."""
        method = method if method in HTTP_METHODS else OTHER  # any method string may arrive
        self.http_requests.labels(route, method, str(status)).inc()

    def render(self, multiprocess_dir: str = "") -> bytes:
        """The Prometheus text exposition: every worker's files in multiprocess mode, else this process."""
        if not multiprocess_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry)


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


class NullMetrics:
    """Metrics for a process nobody scrapes (the CLI, unit tests): every method of Metrics, counting nothing.

    Not a Metrics on a throwaway registry: in multiprocess mode prometheus_client writes every value to the
    shared files whatever the registry, so a throwaway one would still count into the service's /metrics.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not callable(getattr(Metrics, name, None)):
            raise AttributeError(name)
        return _ignore


def multiprocess_active() -> bool:
    """True when prometheus_client stores values in files (PROMETHEUS_MULTIPROC_DIR was set at its import)."""
    return values.ValueClass.__name__ == "MmapedValue"


_process_metrics: Metrics | None = None


def process_metrics() -> Metrics:
    """The one Metrics of this process: metric values are per process, however many apps a test builds."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = Metrics()
    return _process_metrics

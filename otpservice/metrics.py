"""Prometheus metrics at /metrics: the domain's events mapped onto counters and histograms.

Services report what happened through `events(name, **labels)`; this module is the only place that knows
metric names. Every label value is checked against a closed list (anything else reads `other`), so no phone
number, code or caller text can ever become a label, and series stay bounded.

Under gunicorn each worker is its own process: with a metrics directory configured, prometheus_client keeps
values in memory-mapped files there (it reads PROMETHEUS_MULTIPROC_DIR, which config/gunicorn.conf.py sets
before the app is imported) and /metrics sums every worker's files, so any worker answers for all of them.
The master builds the app and forks the workers (preload_app): prometheus_client sees the new pid on a
worker's first count and opens files named after it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

log = logging.getLogger(__name__)

OTHER = "other"
DELIVERY_STATUSES = ("queued", "sending", "sent", "delivered", "sending_failed", "delivery_failed",
                     "delivery_unconfirmed", "expired", "unknown")
VERIFY_RESULTS = ("approved", "wrong", "not_found", "max_attempts", "number_locked", "invalid")
REFUSAL_REASONS = ("cooldown", "rate_limited", "country_not_allowed", "unsupported_number_type", "opted_out",
                   "invalid_phone_number", "idempotency_key_reused")
ENDPOINTS = ("messages", "number_pool")
CHANNELS = ("sms", "totp")
SEND_ERRORS = {"TelnyxUnavailable": "unavailable", "TelnyxOptOut": "opted_out",
               "TelnyxInvalidNumber": "invalid_number", "TelnyxConfigError": "provider_error",
               "TelnyxError": "error"}
SIGNATURE_REASONS = ("missing_header", "bad_encoding", "bad_timestamp", "stale_timestamp", "bad_signature",
                     "no_public_key", "invalid_signature")
TELNYX_OPERATIONS = {"/messages": "send_message", "/messages/number_pool": "send_number_pool",
                     "/messaging_optouts": "list_opt_outs"}
TELNYX_OUTCOMES = ("2xx", "4xx", "5xx", "timeout", "connection_error", "error")
REDIS_ERRORS = ("ConnectionError", "TimeoutError", "BusyLoadingError", "ReadOnlyError", "ClusterDownError",
                "TryAgainError", "ResponseError", "MovedError", "AskError", "MasterNotFoundError",
                "RedisClusterException")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
# Seconds from send to carrier-confirmed delivery: most texts land in seconds, a slow carrier in minutes.
DELIVERY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
TELNYX_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 15)


def bounded(value: Any, allowed) -> str:
    """`value` if it is one of `allowed`, else `other`: labels never carry free text."""
    return value if isinstance(value, str) and value in allowed else OTHER


class Metrics:
    """The service's metric objects on a registry of their own, and the `events` function that feeds them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.code_requests = Counter("otp_code_requests", "Code requests by outcome (sent, refused, send_failed)",
                                     ["outcome"], registry=r)
        self.code_refusals = Counter("otp_code_refusals", "Code requests refused before any send, by reason",
                                     ["reason"], registry=r)
        self.sends = Counter("otp_sends", "Texts handed to Telnyx, by endpoint and outcome (accepted or error)",
                             ["endpoint", "outcome"], registry=r)
        self.deliveries = Counter("otp_delivery_status", "Delivery status updates received from Telnyx",
                                  ["status"], registry=r)
        self.delivery_seconds = Histogram("otp_delivery_seconds", "Seconds from send to carrier delivery",
                                          buckets=DELIVERY_BUCKETS, registry=r)
        self.verifications = Counter("otp_verifications", "Code checks by result and channel",
                                     ["result", "channel"], registry=r)
        self.signature_failures = Counter("otp_webhook_signature_failures",
                                          "Webhooks refused for their signature, by reason", ["reason"], registry=r)
        self.rate_limited = Counter("otp_rate_limited", "Requests refused by a rate limit, by policy",
                                    ["policy"], registry=r)
        self.telnyx_seconds = Histogram("otp_telnyx_request_seconds", "Telnyx API call latency",
                                        ["operation", "outcome"], buckets=TELNYX_BUCKETS, registry=r)
        self.redis_errors = Counter("otp_redis_errors", "Redis calls that failed (the request failed closed)",
                                    ["error"], registry=r)
        self.http_requests = Counter("otp_http_requests", "HTTP requests by route, method and status",
                                     ["route", "method", "status"], registry=r)
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        # The bound inc() of the counters every /verify and every request feed, by their raw label values: a
        # value is kept only once known to be allowed (so the dict is as bounded as the series), and a hit
        # skips the label checks and child lookup, a few µs per request (issue 6).
        self._incs: dict[tuple, Callable[[], None]] = {}
        self.handlers: dict[str, Callable[..., None]] = {
            "code_sent": self._code_sent, "code_refused": self._code_refused,
            "code_send_failed": self._code_send_failed, "verification": self._verification,
            "delivery_status": self._delivery_status, "delivered": self._delivered,
            "webhook_signature_failure": self._signature_failure, "rate_limited": self._rate_limited,
            "telnyx_call": self._telnyx_call, "redis_error": self.redis_error,
        }

    def events(self, name: str, **labels: Any) -> None:
        """Record one domain event; unknown events are ignored so emitters never depend on this module."""
        handler = self.handlers.get(name)
        if handler is None:
            return
        try:
            handler(**labels)
        except (TypeError, ValueError):
            # A metric must never fail a request: a malformed event is dropped and said so, once per call.
            log.warning("metrics: malformed event %s", name)

    def _code_sent(self, endpoint: str = "", **_: Any) -> None:
        self.child(self.code_requests, "sent").inc()
        self.child(self.sends, bounded(endpoint, ENDPOINTS), "accepted").inc()

    def _code_refused(self, reason: str = "", **_: Any) -> None:
        self.child(self.code_requests, "refused").inc()
        self.child(self.code_refusals, bounded(reason, REFUSAL_REASONS)).inc()

    def _code_send_failed(self, endpoint: str = "", error: str = "", **_: Any) -> None:
        self.child(self.code_requests, "send_failed").inc()
        self.child(self.sends, bounded(endpoint, ENDPOINTS), SEND_ERRORS.get(error, "error")).inc()

    def _verification(self, result: str = "", channel: str = "sms", **_: Any) -> None:
        key = ("verification", result, channel)
        inc = self._incs.get(key)
        if inc is None:
            labels = bounded(result, VERIFY_RESULTS), bounded(channel, CHANNELS)
            inc = self._bound_inc(key, self.verifications, labels, keep=labels == key[1:])
        inc()

    def _delivery_status(self, status: str = "", **_: Any) -> None:
        self.child(self.deliveries, bounded(status, DELIVERY_STATUSES)).inc()

    def _delivered(self, seconds: float = 0.0, **_: Any) -> None:
        self.delivery_seconds.observe(max(0.0, float(seconds)))

    def _signature_failure(self, reason: str = "", **_: Any) -> None:
        self.child(self.signature_failures, bounded(reason, SIGNATURE_REASONS)).inc()

    def _rate_limited(self, policy: str = "", **_: Any) -> None:
        # Policy names are the service's own constants; the bound keeps a typo from minting series forever.
        named = isinstance(policy, str) and policy.isidentifier() and len(policy) <= 40
        self.child(self.rate_limited, policy if named else OTHER).inc()

    def _telnyx_call(self, path: str = "", outcome: str = "", seconds: float = 0.0, **_: Any) -> None:
        operation = TELNYX_OPERATIONS.get(path, OTHER)
        self.child(self.telnyx_seconds, operation, bounded(outcome, TELNYX_OUTCOMES)).observe(max(0.0, float(seconds)))

    def child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, kept after the first call: events run on every request, and the label
        values are already bounded (closed lists, route patterns), so the cache is as bounded as the series."""
        key = (metric, values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def count_request(self, route: str, method: str, status: int) -> None:
        """Count one HTTP request; `route` is the matched pattern (or `unmatched`), never a raw path."""
        key = ("http", route, method, status)
        inc = self._incs.get(key)
        if inc is None:
            known = method in HTTP_METHODS  # any method string may arrive: only known ones are kept
            inc = self._bound_inc(key, self.http_requests, (route, method if known else OTHER, str(status)),
                                  keep=known)
        inc()

    def _bound_inc(self, key: tuple, metric: Any, labels: tuple[str, ...], *, keep: bool) -> Callable[[], None]:
        """The inc() of `metric`'s child for `labels`, kept under the raw `key` when `keep` (see _incs)."""
        inc = self.child(metric, *labels).inc
        if keep:
            self._incs[key] = inc
        return inc

    def redis_error(self, error: str = "", **_: Any) -> None:
        """Count one failed Redis call (store.on_redis_error calls this with the error's class name)."""
        self.redis_errors.labels(bounded(error, REDIS_ERRORS)).inc()

    def render(self, multiprocess_dir: str = "") -> bytes:
        """The Prometheus text exposition: every worker's files in multiprocess mode, else this process."""
        if not multiprocess_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry)


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


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics_view():
    """Prometheus text format; no key, like /healthz (keep it off the public internet at the proxy)."""
    metrics, directory = current_app.extensions["otp.metrics"], current_app.extensions["otp.metrics_dir"]
    return Response(metrics.render(directory), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, metrics: Metrics, *, metrics_dir: str = "") -> Callable[..., None]:
    """Register /metrics; returns the `events` function services take.

    The per-request counter is `metrics.count_request`, called by the request hook in otpservice.logs.
    """
    if metrics_dir and not multiprocess_active():
        log.warning("OTP_METRICS_DIR is set but PROMETHEUS_MULTIPROC_DIR was not at start: /metrics shows "
                    "this process only (start through `otpservice serve`, whose gunicorn config sets it)")
        metrics_dir = ""
    app.extensions["otp.metrics"] = metrics
    app.extensions["otp.metrics_dir"] = metrics_dir
    app.extensions["otp.events"] = metrics.events

    app.register_blueprint(bp)
    return metrics.events


OPENAPI_PATHS = {
    "/metrics": {"get": {
        "summary": "Prometheus metrics of every worker", "operationId": "metrics", "security": [],
        "description": "Prometheus text exposition format. Counters: otp_code_requests_total{outcome}, "
                       "otp_code_refusals_total{reason}, otp_sends_total{endpoint,outcome}, "
                       "otp_delivery_status_total{status}, otp_verifications_total{result,channel}, "
                       "otp_webhook_signature_failures_total{reason}, otp_rate_limited_total{policy}, "
                       "otp_redis_errors_total{error}, otp_http_requests_total{route,method,status}; "
                       "histograms: otp_delivery_seconds, otp_telnyx_request_seconds{operation,outcome}.",
        "responses": {"200": {"description": "The metrics", "content": {
            "text/plain": {"schema": {"type": "string"}}}}},
    }},
}

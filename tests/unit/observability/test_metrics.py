"""Metrics: typed methods whose labels stay inside their vocabularies, and a null implementation."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otpservice.observability.metrics import Metrics, NullMetrics


def value(text: str, name: str, **labels: str) -> float:
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for family in text_string_to_metric_families(text) for s in family.samples}
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_labels_stay_bounded_whatever_an_emitter_passes(caplog):
    """A value outside its vocabulary is counted as `other` (and logged), never as a new series."""
    metrics = Metrics()
    metrics.signature_failure("stale")
    metrics.delivery_status("delivered")
    metrics.delivered(4.2)
    metrics.code_refused("rate_limited", "phone_number")
    metrics.code_refused("rate_limited", "+13125550123")  # never a label, whatever a caller passes
    metrics.code_refused("+13125550123")
    metrics.verification("approved", "totp")
    metrics.http_request("/verify", "BREW", 200)
    text = metrics.render().decode()
    assert value(text, "otp_webhook_signature_failures_total", reason="stale") == 1
    assert value(text, "otp_delivery_status_total", status="delivered") == 1
    assert value(text, "otp_delivery_seconds_count") == 1 and value(text, "otp_delivery_seconds_bucket", le="5.0") == 1
    assert value(text, "otp_rate_limited_total", policy="phone_number") == 1
    assert value(text, "otp_rate_limited_total", policy="other") == 1
    assert value(text, "otp_code_refusals_total", reason="other") == 1
    assert value(text, "otp_verifications_total", result="approved", channel="totp") == 1
    assert value(text, "otp_http_requests_total", route="/verify", method="other", status="200") == 1
    assert "5550123" not in text and "5550123" not in caplog.text
    assert "not in its vocabulary" in caplog.text


def test_the_null_metrics_take_every_method_and_nothing_else():
    null = NullMetrics()
    assert null.verification("approved", "sms") is None and null.http_request("/verify", "POST", 200) is None
    with pytest.raises(AttributeError):
        null.no_such_counter()

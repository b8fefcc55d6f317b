from otpservice import vocabulary as v
from otpservice.web.openapi.common import enum

OPENAPI_PATHS = {
    "/metrics": {"get": {
        "summary": "Prometheus metrics of every worker", "operationId": "metrics", "security": [],
        "description": "Prometheus text exposition format. Counters: otp_code_requests_total{outcome}, "
                       "otp_code_refusals_total{reason}, otp_rate_limited_total{policy}, "
                       "otp_sends_total{endpoint,outcome}, otp_sends_unrecorded_total, otp_test_number_uses_total, "
                       "otp_verifications_total{result,channel}, otp_delivery_status_total{status}, "
                       "otp_webhooks_total{kind,result}, otp_webhook_signature_failures_total{reason}, "
                       "otp_inbound_keywords_total{keyword}, otp_optout_syncs_total, "
                       "otp_optout_sync_changes_total{change}, otp_redis_errors_total{error}, "
                       "otp_http_requests_total{route,method,status}, otp_fraud_events_total{country,event}, "
                       "otp_fraud_blocks_total{rule,mode}, otp_fraud_decisions_total{rule,mode}, "
                       "otp_spend_total{country}, otp_spend_refusals_total{cap}; histograms: otp_delivery_seconds, "
                       "otp_telnyx_request_seconds{operation,outcome}. Every label value but route and status is "
                       "one of the service's vocabulary words (the schemas MetricLabel* below) or `other`.",
        "responses": {"200": {"description": "The metrics", "content": {
            "text/plain": {"schema": {"type": "string"}}}}},
    }},
}

OPENAPI_SCHEMAS = {
    "MetricLabelRefusalReason": enum(v.REFUSAL_REASONS),
    "MetricLabelLimitPolicy": enum(v.LIMIT_POLICIES),
    "MetricLabelSendOutcome": enum(("accepted", *v.SEND_OUTCOMES[1:])),
    "MetricLabelVerifyResult": enum(v.VERIFY_RESULTS),
    "MetricLabelWebhookKind": enum(v.WEBHOOK_KINDS),
    "MetricLabelWebhookResult": enum(v.WEBHOOK_RESULTS),
    "MetricLabelSignatureFailure": enum(v.SIGNATURE_FAILURES),
    "MetricLabelFraudEvent": enum(v.FRAUD_EVENTS),
    "MetricLabelFraudRule": enum(v.FRAUD_RULES),
    "MetricLabelFraudMode": enum(v.FRAUD_MODES[:2]),
    "MetricLabelSpendCap": enum(v.SPEND_SCOPES),
}

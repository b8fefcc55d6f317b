"""/metrics: events become bounded series, and under gunicorn every worker's counts add up."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from otpservice.observability.metrics import process_metrics
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, CODE_SECRET, SIM_API_KEY, code_from, outbox, services
from tests.support.gunicorn_server import GunicornServer
from tests.support.openapi_check import DocumentChecker
from tests.support.redis_server import free_port

NUMBER = "+13125550190"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_request_verify_cycle_moves_its_counters(client, sim):
    before = client.get("/metrics").get_data(as_text=True)
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 429
    code = code_from(outbox(sim, NUMBER)[0])
    wrong = "000000" if code != "000000" else "111111"
    client.post("/verify", json={"phone_number": NUMBER, "code": wrong})
    client.post("/verify", json={"phone_number": NUMBER, "code": code})
    after = client.get("/metrics").get_data(as_text=True)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("otp_code_requests_total", outcome="sent") == 1
    assert moved("otp_code_requests_total", outcome="refused") == 1
    assert moved("otp_code_refusals_total", reason="rate_limited") == 1
    assert moved("otp_rate_limited_total", policy="resend_cooldown") == 1
    assert moved("otp_sends_total", endpoint="messages", outcome="accepted") == 1
    assert moved("otp_verifications_total", result="wrong", channel="sms") == 1
    assert moved("otp_verifications_total", result="approved", channel="sms") == 1
    assert moved("otp_telnyx_request_seconds_count", operation="send_message", outcome="2xx") == 1
    assert moved("otp_http_requests_total", route="/request-code", method="POST", status="202") == 1
    label_values = {v for _, labels in samples(after) for _, v in labels}
    assert not any(NUMBER[2:] in v or code in v for v in label_values)


def test_a_send_failure_counts_by_endpoint_and_kind(client, sim):
    before = client.get("/metrics").get_data(as_text=True)
    requests.post(f"{sim.url}/sim/faults", json={"mode": "http_500", "count": 3}, timeout=5)  # every attempt
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 503
    after = client.get("/metrics").get_data(as_text=True)
    assert value(after, "otp_sends_total", endpoint="messages", outcome="unavailable") - \
        value(before, "otp_sends_total", endpoint="messages", outcome="unavailable") == 1
    # Each attempt is one call to Telnyx: three 5xx answers for one send.
    assert value(after, "otp_telnyx_request_seconds_count", operation="send_message", outcome="5xx") - \
        value(before, "otp_telnyx_request_seconds_count", operation="send_message", outcome="5xx") == 3


def test_redis_errors_are_counted(make_app):
    app = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout=0.2)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    before = value(client.get("/metrics").get_data(as_text=True), "otp_redis_errors_total", error="ConnectionError")
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 503
    after = value(client.get("/metrics").get_data(as_text=True), "otp_redis_errors_total", error="ConnectionError")
    assert after - before >= 1


def test_metrics_route_is_documented_and_plain_text(app):
    response = DocumentChecker(app)(app.test_client(), "get", "/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert services(app).metrics is process_metrics()  # what the app counts is what /metrics shows


@pytest.mark.slow
def test_gunicorn_workers_add_up_in_metrics_and_log_json(redis_url, sim, sim_signing_key, tmp_path):
    from otpservice.sending.telnyx.signatures import public_key_b64

    metrics_dir = tmp_path / "metrics"
    server = GunicornServer({
        "OTP_REDIS_URL": redis_url, "OTP_API_KEYS": CLIENT_KEY, "OTP_ADMIN_TOKEN": ADMIN_TOKEN,
        "OTP_CODE_SECRET": CODE_SECRET, "OTP_TELNYX_API_KEY": SIM_API_KEY, "OTP_TELNYX_BASE_URL": sim.base_url,
        "OTP_TELNYX_PUBLIC_KEY": public_key_b64(sim_signing_key), "OTP_TELNYX_FROM": "+13125550100",
        "OTP_METRICS_DIR": str(metrics_dir)}, workers=3, args=("--", "--max-requests", "10"))
    auth = {"Authorization": f"Bearer {CLIENT_KEY}", "Connection": "close"}
    numbers = [f"+1312555{n:04d}" for n in range(300, 330)]
    try:
        server.start()

        def cycle(number: str) -> tuple[int, int]:
            sent = requests.post(f"{server.url}/request-code", json={"phone_number": number}, headers=auth,
                                 timeout=30)
            code = code_from(outbox(sim, number)[0])
            checked = requests.post(f"{server.url}/verify", json={"phone_number": number, "code": code},
                                    headers=auth, timeout=30)
            return sent.status_code, checked.json().get("valid")

        with ThreadPoolExecutor(10) as pool:
            assert list(pool.map(cycle, numbers)) == [(202, True)] * len(numbers)
        # Which worker accepts a connection is the kernel's choice, so workers are made to retire after ten
        # requests: sixty requests are then surely counted by several processes, each in its own file, and
        # the answers below must add up all of them, retired workers included.
        assert len(list(Path(metrics_dir).glob("counter_*.db"))) >= 2
        for _ in range(3):  # whichever worker answers /metrics, it reports them all
            text = requests.get(f"{server.url}/metrics", headers={"Connection": "close"}, timeout=10).text
            assert value(text, "otp_code_requests_total", outcome="sent") == len(numbers)
            assert value(text, "otp_verifications_total", result="approved", channel="sms") == len(numbers)
            assert value(text, "otp_http_requests_total", route="/verify", method="POST", status="200") == \
                len(numbers)
    finally:
        stopped = server.stop()
        output = server.output()
        server.cleanup()
    assert stopped == 0  # a graceful stop on SIGTERM
    lines = output.splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)  # gunicorn's own lines too
    access = [json.loads(line) for line in lines if '"otpservice.access"' in line]
    assert len(access) >= 2 * len(numbers) and all(entry.get("request_id") for entry in access)
    assert not any(number in output for number in numbers) and CLIENT_KEY not in output


def test_totp_verifications_are_counted_with_their_channel(client, clock):
    """The TOTP service gets the app's events too: its verdicts show up under channel="totp"."""
    import pyotp
    enrolled = client.post("/totp/enroll", json={"user_id": "metrics-user"}).get_json()
    totp = pyotp.TOTP(enrolled["secret"])
    clock.freeze()
    assert client.post("/totp/confirm", json={"user_id": "metrics-user",
                                              "code": totp.at(clock())}).status_code == 200
    before = value(client.get("/metrics").get_data(as_text=True), "otp_verifications_total",
                   result="approved", channel="totp")
    clock.advance(30)
    answer = client.post("/verify", json={"user_id": "metrics-user", "channel": "totp", "code": totp.at(clock())})
    assert answer.get_json()["valid"] is True
    after = value(client.get("/metrics").get_data(as_text=True), "otp_verifications_total",
                  result="approved", channel="totp")
    assert after == before + 1

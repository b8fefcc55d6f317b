"""Routes per country (OTP_ROUTES_FILE) through the whole app and the real simulator: each country's text goes out
on its route and the verification names it; a route Telnyx refuses hands the text to the next one, once; an
answer that may be an acceptance never does; a failed delivery moves the resend on; bad files stop start-up."""
from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from otpservice.config import ConfigError
from tests.support.app import CLIENT_KEY, PROFILE_ID, outbox
from tests.support.webhooks import delivery_event, post_signed

UK_PROFILE = "7a1b2c3d-0000-4000-8000-00000000000b"
ROUTES = f"""\
US:
  - name: us-long
    endpoint: messages
    from: +13125550100
  - name: us-pool
    endpoint: number_pool
    messaging_profile_id: {PROFILE_ID}
GB:
  - name: uk-alpha
    endpoint: messages
    from: ACME
    messaging_profile_id: {UK_PROFILE}
  - name: uk-pool
    endpoint: number_pool
    messaging_profile_id: {UK_PROFILE}
default:
  - name: pool
    endpoint: number_pool
    messaging_profile_id: {PROFILE_ID}
"""
US, UK, BR = "+13125550170", "+447400123470", "+5511961234570"


@pytest.fixture
def routed(make_app, routes_file):
    return make_app(routes_file=routes_file)


@pytest.fixture
def tc(routed):
    client = routed.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    return client


def ask(tc, number: str, **body) -> dict:
    response = tc.post("/request-code", json={"phone_number": number, **body})
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def sends(tc, vid: str) -> list[dict]:
    return tc.get(f"/verifications/{vid}").get_json()["sends"]


def arm(sim, mode: str, **extra) -> None:
    requests.post(f"{sim.url}/sim/faults", json={"mode": mode, **extra}, timeout=5).raise_for_status()


def send_posts(sim) -> list[dict]:
    return [r for r in requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"]
            if r["method"] == "POST" and r["path"].startswith("/v2/messages")]


def counter(app, name: str, **labels: str) -> float:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_each_country_goes_out_on_its_route_and_the_verification_names_it(tc, sim):
    expected = {US: ("messages", "+13125550100", "us-long"), UK: ("messages", "ACME", "uk-alpha"),
                BR: ("number_pool", None, "pool")}
    for number, (endpoint, sender, route) in expected.items():
        created = ask(tc, number)
        [message] = outbox(sim, number)
        assert message["endpoint"] == endpoint and message["id"] == created["delivery"]["message_id"]
        if sender:
            assert message["from"] == sender
        [send] = sends(tc, created["verification_id"])
        assert (send["route"], send["endpoint"], send["channel"]) == (route, endpoint, "sms")
    assert outbox(sim, UK)[0]["messaging_profile_id"] == UK_PROFILE


def test_a_refused_route_hands_the_text_to_the_next_once(routed, tc, sim):
    before = counter(routed, "otp_route_failovers_total", route="uk-alpha", reason="alpha_sender_not_configured")
    arm(sim, "alpha_sender_not_configured", **{"from": "ACME", "count": 5})
    created = ask(tc, UK)
    [message] = outbox(sim, UK)
    assert message["endpoint"] == "number_pool" and message["id"] == created["delivery"]["message_id"]
    keys = [r["idempotency_key"] for r in send_posts(sim)]
    assert keys == [f"{created['verification_id']}-1", f"{created['verification_id']}-1:1"]
    [send] = sends(tc, created["verification_id"])
    assert (send["route"], send["endpoint"], send["delivery_status"]) == ("uk-pool", "number_pool", "queued")
    assert counter(routed, "otp_route_failovers_total", route="uk-alpha",
                   reason="alpha_sender_not_configured") == before + 1
    assert counter(routed, "otp_route_sends_total", route="uk-pool", outcome="accepted") >= 1


def test_every_route_refused_is_a_provider_error_kept_on_the_last_route(tc, sim):
    arm(sim, "profile_disabled", count=2)
    response = tc.post("/request-code", json={"phone_number": UK})
    assert response.status_code == 502 and response.get_json()["error"]["code"] == "provider_error"
    assert outbox(sim, UK) == [] and len(send_posts(sim)) == 2
    # The failure gave the cooldown back: the retry goes at once, starting after the route that failed last.
    retry = ask(tc, UK)
    first, second = sends(tc, retry["verification_id"])
    assert (first["route"], first["delivery_status"], first["errors"][0]["code"]) == \
        ("uk-pool", "sending_failed", "40312")
    assert second["route"] == "uk-alpha" and outbox(sim, UK)[0]["from"] == "ACME"


@pytest.mark.parametrize("deadline, status", [(6.0, "queued"), (1.2, "unknown")])
def test_an_acceptance_answered_late_never_goes_out_twice(make_app, routes_file, sim, deadline, status):
    """The alphanumeric route took the text and answered after the read timeout: the retry under the same key
    gets Telnyx's first answer (a long deadline) or the deadline passes (202, status unknown); either way the
    pool route is never asked and the text goes once."""
    app = make_app(routes_file=routes_file, telnyx_send_deadline=deadline)
    tc = app.test_client()
    tc.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    arm(sim, "timeout", **{"from": "ACME"})  # sleeps 1.5 s, then sends; the client reads for 1 s
    created = ask(tc, UK)
    assert created["delivery"]["status"] == status
    assert {r["path"] for r in send_posts(sim)} == {"/v2/messages"}
    time.sleep(0.7)
    [message] = outbox(sim, UK)
    assert message["from"] == "ACME"
    [send] = sends(tc, created["verification_id"])
    assert send["route"] == "uk-alpha"


def test_a_failed_delivery_moves_the_resend_to_the_next_route_and_round(routed, tc, sim, clock, sim_signing_key):
    clock.freeze()
    hooks = routed.test_client()
    first = ask(tc, US)
    for expected in ("us-pool", "us-long"):
        latest = outbox(sim, US)[0]
        failed = delivery_event(latest["id"], "delivery_failed", to=US)
        assert post_signed(hooks, failed, sim_signing_key, timestamp=clock()).get_json()["result"] == "updated"
        again = ask(tc, US)  # the failed delivery skips the cooldown
        assert again["verification_id"] == first["verification_id"]
        assert sends(tc, again["verification_id"])[-1]["route"] == expected
    assert [s["route"] for s in sends(tc, first["verification_id"])] == ["us-long", "us-pool", "us-long"]
    assert [m["endpoint"] for m in outbox(sim, US)] == ["messages", "number_pool", "messages"]


def test_a_channel_no_route_serves_is_refused_and_reserves_nothing(tc, sim):
    response = tc.post("/request-code", json={"phone_number": US, "channel": "whatsapp"})
    assert response.status_code == 422 and response.get_json()["error"] == {
        "code": "channel_unavailable", "message": "No route sends whatsapp codes to this number's country.",
        "field": "channel"}
    bad = tc.post("/request-code", json={"phone_number": US, "channel": "fax"})
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "channel"
    assert outbox(sim, US) == [] and send_posts(sim) == []
    assert ask(tc, US)["send_count"] == 1  # no cooldown, no budget was taken


def test_a_malformed_routes_file_refuses_start_up_naming_the_line(make_app, tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.replace("endpoint: number_pool\n    messaging_profile_id: " + UK_PROFILE,
                                   "endpoint: numberpool\n    messaging_profile_id: " + UK_PROFILE))
    with pytest.raises(ConfigError, match=rf"OTP_ROUTES_FILE {path}, line 14: endpoint must be one of"):
        make_app(routes_file=str(path))

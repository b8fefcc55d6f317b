"""The WhatsApp channel through the app and the real simulator: `channel: "whatsapp"` sends the authentication
template through POST /v2/messages/whatsapp with the code as the body's parameter and the copy-code button's,
the code verifies, its receipts update the verification, and the cooldown, opt-outs and attempts are the SMS
ones."""
from __future__ import annotations

import json
import time

import pytest
import requests

from otpservice.config import ConfigError
from tests.support.app import CLIENT_KEY, LiveServer, code_from, outbox

WA_FROM = "+13125550199"
ROUTES = f"""\
BR:
  - name: br-wa
    endpoint: whatsapp
    from: {WA_FROM}
  - name: br-sms
    endpoint: messages
    from: +13125550100
default:
  - name: sms
    endpoint: messages
    from: +13125550100
  - name: wa
    endpoint: whatsapp
    from: {WA_FROM}
"""
US, BR = "+13125550180", "+5511961234580"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.fixture
def tc(make_app, routes_file):
    client = make_app(routes_file=routes_file, whatsapp_template="otp_code").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    return client


def whatsapp_posts(sim) -> list[dict]:
    return [json.loads(r["body"]) for r in requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"]
            if r["method"] == "POST" and r["path"] == "/v2/messages/whatsapp"]


def test_a_whatsapp_code_goes_as_the_authentication_template_and_verifies(tc, sim):
    response = tc.post("/request-code", json={"phone_number": US, "channel": "whatsapp"})
    assert response.status_code == 202
    created = response.get_json()
    assert created["channel"] == "whatsapp" and created["delivery"]["status"] == "queued"
    [message] = outbox(sim, US)
    code = code_from(message)
    assert message["endpoint"] == "whatsapp" and message["from"] == WA_FROM
    assert message["text"] == f"{code} is your verification code."
    [body] = whatsapp_posts(sim)
    assert (body["from"], body["to"], body["type"]) == (WA_FROM, US, "WHATSAPP")
    template = body["whatsapp_message"]["template"]
    assert body["whatsapp_message"]["type"] == "template" and template["name"] == "otp_code"
    assert template["language"] == {"code": "en_US", "policy": "deterministic"}
    assert template["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": code}]},
        {"type": "button", "sub_type": "url", "index": 0, "parameters": [{"type": "text", "text": code}]}]
    record = tc.get(f"/verifications/{created['verification_id']}").get_json()
    assert record["channel"] == "whatsapp"
    assert [(s["endpoint"], s["route"], s["channel"]) for s in record["sends"]] == [("whatsapp", "wa", "whatsapp")]
    verdict = tc.post("/verify", json={"phone_number": US, "code": code, "channel": "whatsapp"}).get_json()
    assert verdict["valid"] is True and verdict["status"] == "approved"


def test_the_channel_defaults_to_the_countrys_first_route(tc, sim):
    assert tc.post("/request-code", json={"phone_number": BR}).get_json()["channel"] == "whatsapp"
    assert outbox(sim, BR)[0]["endpoint"] == "whatsapp"
    assert tc.post("/request-code", json={"phone_number": US}).get_json()["channel"] == "sms"
    assert outbox(sim, US)[0]["endpoint"] == "messages"


def test_the_receipts_of_a_whatsapp_send_update_its_verification(make_app, routes_file, sim):
    holder = {}
    server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
    holder["app"] = make_app(routes_file=routes_file, whatsapp_template="otp_code",
                             webhook_url=f"{server.url}/webhooks/telnyx")
    try:
        created = requests.post(f"{server.url}/request-code", json={"phone_number": BR}, headers=AUTH,
                                timeout=5).json()
        deadline, send = time.monotonic() + 10, {}
        while time.monotonic() < deadline:
            send = requests.get(f"{server.url}/verifications/{created['verification_id']}", headers=AUTH,
                                timeout=5).json()["sends"][0]
            if send["delivery_status"] == "delivered":
                break
            time.sleep(0.05)
        assert (send["endpoint"], send["route"], send["delivery_status"]) == ("whatsapp", "br-wa", "delivered")
        log = requests.get(f"{sim.url}/sim/webhooks", timeout=5).json()["data"]
        mine = [e for e in log if e["message_id"] == created["delivery"]["message_id"]]
        assert {e["event_type"] for e in mine} == {"message.sent", "message.finalized"}
    finally:
        server.stop()


def test_the_cooldown_attempts_and_opt_outs_are_those_of_sms(tc, sim):
    assert tc.post("/request-code", json={"phone_number": US}).status_code == 202
    again = tc.post("/request-code", json={"phone_number": US, "channel": "whatsapp"})
    assert again.status_code == 429 and again.get_json()["error"]["limit"] == "resend_cooldown"
    assert whatsapp_posts(sim) == []
    right = code_from(outbox(sim, US)[0])
    wrong = "000000" if right != "000000" else "111111"
    verdict = tc.post("/verify", json={"phone_number": US, "code": wrong, "channel": "whatsapp"}).get_json()
    assert (verdict["valid"], verdict["attempts_remaining"]) == (False, 4)
    # Telnyx's own opt-out refuses the WhatsApp send as it does an SMS; the registry keeps it.
    requests.post(f"{sim.url}/sim/optouts", json={"to": BR}, timeout=5).raise_for_status()
    refused = tc.post("/request-code", json={"phone_number": BR, "channel": "whatsapp"})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "opted_out"
    later = tc.post("/request-code", json={"phone_number": BR, "channel": "whatsapp"})
    assert later.status_code == 409 and len(whatsapp_posts(sim)) == 1  # the registry answered; nothing sent
    assert outbox(sim, BR) == []


def test_a_whatsapp_route_without_its_template_stops_start_up(make_app, routes_file):
    with pytest.raises(ConfigError, match="OTP_WHATSAPP_TEMPLATE is required: route br-wa"):
        make_app(routes_file=routes_file)

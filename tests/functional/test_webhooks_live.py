"""End to end: the real simulator's signed webhooks reach the app on a real port and drive each send's status."""
from __future__ import annotations

import time

import pytest
import requests

from tests.support.app import CLIENT_KEY, LiveServer, outbox

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
DEADLINE = 10.0


@pytest.fixture
def wired(make_app):
    """The app served on a port bound first, so its OTP_WEBHOOK_URL can point at itself."""
    holder = {}
    server = LiveServer(lambda environ, start_response: holder["app"](environ, start_response))
    holder["app"] = make_app(webhook_url=f"{server.url}/webhooks/telnyx")
    yield server
    server.stop()


def request_code(server, number: str) -> dict:
    response = requests.post(f"{server.url}/request-code", json={"phone_number": number}, headers=AUTH, timeout=5)
    assert response.status_code == 202, response.text
    return response.json()


def wait_for_status(server, vid: str, wanted: str) -> dict:
    """Poll the verification until its first send reaches `wanted` (bounded), and return that send."""
    deadline = time.monotonic() + DEADLINE
    while True:
        send = requests.get(f"{server.url}/verifications/{vid}", headers=AUTH, timeout=5).json()["sends"][0]
        if send["delivery_status"] == wanted or time.monotonic() > deadline:
            return send
        time.sleep(0.05)


def test_simulator_webhooks_mark_the_send_delivered(wired, sim):
    created = request_code(wired, "+13125550160")
    send = wait_for_status(wired, created["verification_id"], "delivered")
    assert send["delivery_status"] == "delivered" and send["errors"] == []
    log = requests.get(f"{sim.url}/sim/webhooks", timeout=5).json()["data"]
    mine = [entry for entry in log if entry["message_id"] == created["delivery"]["message_id"]]
    assert {e["event_type"] for e in mine} == {"message.sent", "message.finalized"}
    assert all(e["delivered"] and e["status"] == 200 for e in mine)


def test_simulator_delivery_failure_keeps_the_carrier_error(wired, sim):
    number = "+13125550161"
    requests.post(f"{sim.url}/sim/faults", json={"mode": "delivery_failed", "to": number}, timeout=5)
    created = request_code(wired, number)
    send = wait_for_status(wired, created["verification_id"], "delivery_failed")
    assert send["delivery_status"] == "delivery_failed"
    assert send["errors"] == [{"code": "40008", "title": "Undeliverable"}]
    again = request_code(wired, number)  # inside the cooldown, allowed because the text never arrived
    assert again["send_count"] == 2 and len(outbox(sim, number)) == 2


def test_simulator_inbound_stop_blocks_the_next_request(wired, sim):
    number = "+13125550162"
    inbound = requests.post(f"{sim.url}/sim/inbound", timeout=5, json={
        "from": number, "text": " stop all ", "webhook_url": f"{wired.url}/webhooks/telnyx"}).json()["data"]
    assert inbound["delivery"]["delivered"] and inbound["delivery"]["status"] == 200
    requests.delete(f"{sim.url}/sim/requests", timeout=5)
    response = requests.post(f"{wired.url}/request-code", json={"phone_number": number}, headers=AUTH, timeout=5)
    assert response.status_code == 409 and response.json()["error"]["code"] == "opted_out"
    # Refused by our own registry before any call: the simulator (which also lists the number) saw nothing.
    assert requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"] == []

"""The reconciler: a send whose receipt never came is looked up with Telnyx (the real simulator's
GET /v2/messages/{id}) OTP_RECONCILE_AFTER after it left, and its status applied as a receipt would be."""
from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.app import CLIENT_KEY, services
from tests.support.redis_server import free_port

NUMBER = "+13125550177"
AFTER = 900


def arm_no_webhook(sim) -> None:
    requests.post(f"{sim.url}/sim/faults", json={"mode": "no_webhook"}, timeout=5).raise_for_status()


def final_at_telnyx(sim, message_id: str, timeout: float = 8.0) -> str:
    """The message's status at the simulator once its dispatcher has finished with it."""
    deadline = time.time() + timeout
    while True:
        status = requests.get(f"{sim.base_url}/messages/{message_id}", timeout=5,
                              headers={"Authorization": f"Bearer {sim.api_key}"}).json()["data"]["to"][0]["status"]
        if status in ("delivered", "delivery_failed") or time.time() > deadline:
            return status
        time.sleep(0.05)


def lookups(sim, message_id: str) -> int:
    """How many times the simulator was asked about the message."""
    return sum(1 for r in requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"]
               if r["method"] == "GET" and r["path"] == f"/v2/messages/{message_id}")


def reconciled(client, status: str, result: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "otp_reconciled_sends_total" and s.labels == {"status": status, "result": result})


def send_without_receipt(make_app, sim, clock):
    app = make_app(reconcile_after=AFTER)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    clock.freeze()
    arm_no_webhook(sim)
    answer = client.post("/request-code", json={"phone_number": NUMBER})
    assert answer.status_code == 202, answer.get_json()
    return app, client, answer.get_json()


def test_a_receipt_that_never_came_is_looked_up_and_applied_once(make_app, sim, clock):
    app, client, sent = send_without_receipt(make_app, sim, clock)
    message_id = sent["delivery"]["message_id"]
    assert final_at_telnyx(sim, message_id) == "delivered"
    delivery = services(app).delivery
    record = client.get(f"/verifications/{sent['verification_id']}").get_json()
    assert record["sends"][0]["delivery_status"] == "queued"  # no webhook came

    assert delivery.reconcile()["looked_up"] == 0  # not yet due: Telnyx is given its time to report
    clock.advance(AFTER + 1)
    before, asked = reconciled(client, "delivered", "updated"), lookups(sim, message_id)
    assert delivery.reconcile() == {"looked_up": 1, "updated": 1, "settled": 0}
    record = client.get(f"/verifications/{sent['verification_id']}").get_json()
    assert record["sends"][0]["delivery_status"] == "delivered"
    assert reconciled(client, "delivered", "updated") == before + 1
    assert lookups(sim, message_id) == asked + 1
    assert delivery.reconcile()["looked_up"] == 0  # final: off the list, never asked about again
    assert lookups(sim, message_id) == asked + 1


def test_a_message_telnyx_no_longer_knows_leaves_the_list_unchanged(make_app, sim, clock):
    app, client, sent = send_without_receipt(make_app, sim, clock)
    final_at_telnyx(sim, sent["delivery"]["message_id"])
    requests.post(f"{sim.url}/sim/reset", timeout=5).raise_for_status()  # Telnyx forgets it: 404
    clock.advance(AFTER + 1)
    delivery = services(app).delivery
    assert delivery.reconcile() == {"looked_up": 1, "updated": 0, "settled": 1}
    record = client.get(f"/verifications/{sent['verification_id']}").get_json()
    assert record["sends"][0]["delivery_status"] == "queued"  # nothing made up
    assert delivery.reconcile()["looked_up"] == 0


def test_telnyx_down_keeps_the_send_for_the_next_turn(make_app, sim, clock):
    """A lookup that fails (another process of the service, whose Telnyx refuses connections) stops the turn
    and keeps the send for a process that reaches Telnyx."""
    app, client, sent = send_without_receipt(make_app, sim, clock)
    final_at_telnyx(sim, sent["delivery"]["message_id"])
    clock.advance(AFTER + 1)
    cut_off = make_app(reconcile_after=AFTER, telnyx_base_url=f"http://127.0.0.1:{free_port()}/v2")
    assert services(cut_off).delivery.reconcile() == {"looked_up": 0, "updated": 0, "settled": 0}
    assert services(app).delivery.reconcile() == {"looked_up": 1, "updated": 1, "settled": 0}

"""The simulator seen from Telnyx's own Python SDK (`telnyx` on PyPI): a client nobody here wrote.

Each call the service makes of Telnyx goes through the SDK against the simulator over HTTP: both send endpoints,
reading a message back, the opt-out list; each fault of the simulator arrives as the SDK's exception class for
it; the simulator's webhooks pass the SDK's own signature check (`webhooks.unwrap`). `max_retries=0`: the SDK
would otherwise repeat a 409, a 429, a 5xx or a timeout twice, and each fault here is armed for one send.
"""
from __future__ import annotations

import json
import time
import uuid

import nacl.signing
import pytest
import requests
import telnyx

from otpservice.sandbox import WebhookRecorder
from otpservice.sending.telnyx.signatures import public_key_b64
from tests.contract.test_telnyx_contract import check, logged_requests, request_schema, response_schema
from tests.support.sim_fixtures import simulator_fixtures

TO, FROM, PROFILE = "+13125550123", "+18445550001", "0f512bda-ae1e-4597-8e11-e5f5686b97d3"
TEXT = "Your verification code is 482913"
TIMEOUT_SLEEP = 1.0  # the simulator's timeout fault sleeps this long before it sends anyway

sim, fresh_sim, client = simulator_fixtures(timeout_sleep=TIMEOUT_SLEEP)


@pytest.fixture
def sdk(sim):
    """Telnyx's client, pointed at the simulator as its README says: base_url ending in /v2."""
    with telnyx.Telnyx(api_key=sim.api_key, base_url=sim.base_url, max_retries=0, timeout=5.0) as api:
        yield api


def arm(sim, mode: str, **extra) -> None:
    requests.post(sim.url + "/sim/faults", json={"mode": mode, **extra}, timeout=5).raise_for_status()


def outbox(sim) -> list[dict]:
    return requests.get(sim.url + "/sim/messages", timeout=5).json()["data"]


def public_key(sim) -> str:
    return requests.get(sim.url + "/sim/public-key", timeout=5).json()["public_key"]


def error_code(body) -> str:
    """The first Telnyx error code of an SDK exception's parsed body."""
    return body["errors"][0]["code"]


def unwrapped(sdk, sim, delivery):
    """The SDK's verified event for one webhook delivery, from the exact bytes and headers the simulator sent."""
    return sdk.webhooks.unwrap(delivery.body.decode("utf-8"), headers=dict(delivery.headers), key=public_key(sim))


def test_send_through_messages(sim, sdk):
    answer = sdk.messages.send(to=TO, from_=FROM, text=TEXT, messaging_profile_id=PROFILE)
    uuid.UUID(answer.data.id)
    assert (answer.data.to[0].phone_number, answer.data.to[0].status, answer.data.text) == (TO, "queued", TEXT)
    [message] = outbox(sim)
    assert (message["id"], message["endpoint"], message["from"]) == (answer.data.id, "messages", FROM)
    [post] = [r for r in logged_requests(sim) if r["method"] == "POST"]
    assert post["path"] == "/v2/messages"


def test_send_through_the_number_pool(sim, sdk):
    answer = sdk.messages.send_number_pool(messaging_profile_id=PROFILE, to=TO, text=TEXT)
    [message] = outbox(sim)
    assert (message["id"], message["endpoint"], message["messaging_profile_id"]) == (
        answer.data.id, "number_pool", PROFILE)
    [post] = [r for r in logged_requests(sim) if r["method"] == "POST"]
    assert post["path"] == "/v2/messages/number_pool"


def test_the_sdk_request_bodies_match_the_spec(sim, sdk):
    sdk.messages.send(to=TO, from_=FROM, text=TEXT, webhook_url="http://127.0.0.1:9/none", use_profile_webhooks=False)
    sdk.messages.send_number_pool(messaging_profile_id=PROFILE, to=TO, text=TEXT)
    for post in (r for r in logged_requests(sim) if r["method"] == "POST"):
        check(json.loads(post["body"]), request_schema(post["path"].removeprefix("/v2")))


def test_retrieve_follows_the_message_to_delivered(sim, sdk):
    sent = sdk.messages.send(to=TO, from_=FROM, text=TEXT)
    deadline = time.monotonic() + 5
    while (read := sdk.messages.retrieve(sent.data.id)).data.to[0].status != "delivered":
        assert time.monotonic() < deadline, read.data.to[0].status
        time.sleep(0.02)
    assert (read.data.id, read.data.text, read.data.direction) == (sent.data.id, TEXT, "outbound")
    assert read.data.completed_at is not None and read.data.sent_at is not None
    raw = sdk.messages.with_raw_response.retrieve(sent.data.id)
    check(raw.http_response.json(), response_schema("/messages/{id}", "200", "get"))
    with pytest.raises(telnyx.NotFoundError):
        sdk.messages.retrieve(str(uuid.uuid4()))


def test_the_opt_out_list_pages_through_the_sdk(sim, sdk):
    numbers = [f"+1312555000{n}" for n in range(5)]
    for number in numbers:
        requests.post(sim.url + "/sim/optouts", json={"to": number, "messaging_profile_id": PROFILE},
                      timeout=5).raise_for_status()
    requests.post(sim.url + "/sim/optouts", json={"to": "+13125559999", "messaging_profile_id": str(uuid.uuid4())},
                  timeout=5).raise_for_status()
    page = sdk.messaging_optouts.list(filter={"messaging_profile_id": PROFILE}, page_size=2)
    listed = [item.to for item in page]  # the SDK follows the pages itself
    assert sorted(listed) == numbers
    gets = [r for r in logged_requests(sim) if r["path"] == "/v2/messaging_optouts"]
    assert len(gets) == 3  # 5 records, 2 a page


@pytest.mark.parametrize("mode, error, status", [
    ("http_500", telnyx.InternalServerError, 500),
    ("rate_limit", telnyx.RateLimitError, 429),
    ("opt_out", telnyx.ConflictError, 409),
    ("invalid_to", telnyx.BadRequestError, 400),
    ("auth_failed", telnyx.AuthenticationError, 401),
])
def test_each_refusing_fault_is_its_sdk_exception(sim, sdk, mode, error, status):
    arm(sim, mode)
    with pytest.raises(error) as raised:
        sdk.messages.send(to=TO, from_=FROM, text=TEXT)
    assert raised.value.status_code == status
    assert error_code(raised.value.body) == {"http_500": "10007", "rate_limit": "10011", "opt_out": "40300",
                                          "invalid_to": "40310", "auth_failed": "10009"}[mode]
    assert outbox(sim) == []
    sdk.messages.send(to=TO, from_=FROM, text=TEXT)  # the fault was for one send only
    assert len(outbox(sim)) == 1


def test_a_timeout_is_the_sdk_timeout_and_the_text_still_goes(sim, sdk):
    arm(sim, "timeout")
    with pytest.raises(telnyx.APITimeoutError):
        sdk.messages.send(to=TO, from_=FROM, text=TEXT, timeout=0.3)
    deadline = time.monotonic() + TIMEOUT_SLEEP + 5
    while not outbox(sim):  # what a blind retry would have doubled
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_webhooks_pass_the_sdk_signature_check(sim, sdk):
    with WebhookRecorder() as hooks:
        delivered = sdk.messages.send(to=TO, from_=FROM, text=TEXT, webhook_url=hooks.url)
        arm(sim, "delivery_failed")
        failed = sdk.messages.send(to=TO, from_=FROM, text=TEXT, webhook_url=hooks.url)
        requests.post(sim.url + "/sim/inbound", json={"from": TO, "text": "STOP", "webhook_url": hooks.url},
                      timeout=5).raise_for_status()
        deliveries = hooks.wait_for(lambda d: len(d) >= 5)
    events = [unwrapped(sdk, sim, d) for d in deliveries]
    final = {(e.data.payload.id, e.data.event_type): e.data.payload for e in events if e.data.payload.id}
    assert final[(delivered.data.id, "message.finalized")].to[0].status == "delivered"
    assert final[(failed.data.id, "message.finalized")].to[0].status == "delivery_failed"
    assert final[(failed.data.id, "message.finalized")].errors[0].code == "40008"
    [inbound] = [e for e in events if e.data.event_type == "message.received"]
    assert (inbound.data.payload.from_.phone_number, inbound.data.payload.text) == (TO, "STOP")
    # The check is real: a byte changed, or another key, and the SDK refuses.
    body = deliveries[0].body.decode("utf-8")
    with pytest.raises(ValueError, match="Signature verification failed"):
        sdk.webhooks.unwrap(body.replace(TO, "+13125550124"), headers=dict(deliveries[0].headers),
                            key=public_key(sim))
    other_key = public_key_b64(nacl.signing.SigningKey.generate())
    with pytest.raises(ValueError, match="Signature verification failed"):
        sdk.webhooks.unwrap(body, headers=dict(deliveries[0].headers), key=other_key)


def test_no_webhook_sends_but_tells_nobody(sim, sdk):
    with WebhookRecorder() as hooks:
        arm(sim, "no_webhook")
        sent = sdk.messages.send(to=TO, from_=FROM, text=TEXT, webhook_url=hooks.url)
        deadline = time.monotonic() + 5
        while sdk.messages.retrieve(sent.data.id).data.to[0].status != "delivered":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert hooks.deliveries == []


def test_the_refusals_telnyx_makes_reach_the_sdk(sim, sdk):
    with pytest.raises(telnyx.BadRequestError) as raised:
        sdk.messages.send(to=TO, from_=FROM, text="Code ✓ 482913", encoding="gsm7")
    assert error_code(raised.value.body) == "10003"
    with pytest.raises(telnyx.BadRequestError) as raised:
        sdk.messages.send(to=TO, from_="Acme", text=TEXT)
    assert error_code(raised.value.body) == "40306"
    assert outbox(sim) == []
    assert sdk.messages.send(to=TO, from_="Acme", text=TEXT, messaging_profile_id=PROFILE).data.from_.phone_number \
        == "Acme"
    assert sdk.messages.send(to=TO, from_=FROM, text="Code ✓ 482913").data.encoding == "UCS-2"

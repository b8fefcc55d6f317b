"""The real Telnyx client over HTTP against the real simulator: sends, typed errors, no re-sends, paging."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest
import requests

from otpservice.sandbox import WebhookRecorder
from otpservice.observability.logs import mask_number
from otpservice.sending.base import (
    InvalidRecipient,
    Misconfigured,
    ProviderUnavailable,
    RecipientOptedOut,
    OutboundMessage,
    Route,
    RouteRefused,
    SendError,
    SentMessage,
)
from otpservice.sending.telnyx.client import TelnyxClient
from otpservice.sending.telnyx.errors import error_from_response, parse_retry_after
from tests.support.sim_fixtures import simulator_fixtures

TO = "+13125550123"
OTHER = "+13125550188"
FROM = "+18445550001"
PROFILE = "0f512bda-ae1e-4597-8e11-e5f5686b97d3"
TEXT = "Your verification code is 482913"
SIM_TIMEOUT_SLEEP = 0.6  # the simulator's "timeout" fault answers after this...
READ_TIMEOUT = 0.25  # ...long after the client has given up


sim, fresh_sim, client = simulator_fixtures(timeout_sleep=SIM_TIMEOUT_SLEEP)


def outbox(sim, to: str | None = None) -> list[dict]:
    """The simulator's outbox, newest first."""
    params = {"to": to} if to else {}
    return requests.get(sim.url + "/sim/messages", params=params, timeout=5).json()["data"]


def api_requests(sim, path: str) -> list[dict]:
    """Raw API requests the simulator received on `path`."""
    return [r for r in requests.get(sim.url + "/sim/requests", timeout=5).json()["data"] if r["path"] == path]


def arm(sim, mode: str, count: int = 1, to: str | None = None, **extra) -> None:
    """Arm a simulator fault."""
    body = {"mode": mode, "count": count, **({"to": to} if to else {}), **extra}
    requests.post(sim.url + "/sim/faults", json=body, timeout=5).raise_for_status()


def test_send_through_messages_endpoint(sim, client):
    sent = client.send_message(to=TO, text=TEXT, from_=FROM, messaging_profile_id=PROFILE)
    assert isinstance(sent, SentMessage)
    assert sent.status == "queued" and sent.message_id
    [message] = outbox(sim, TO)
    assert message["id"] == sent.message_id
    assert (message["from"], message["text"], message["endpoint"]) == (FROM, TEXT, "messages")
    assert message["messaging_profile_id"] == PROFILE


def test_send_through_number_pool(sim, client):
    sent = client.send_message(to=TO, text=TEXT, endpoint="number_pool", messaging_profile_id=PROFILE)
    [message] = outbox(sim)
    assert (message["id"], message["endpoint"], message["messaging_profile_id"]) == (
        sent.message_id,
        "number_pool",
        PROFILE,
    )
    assert message["from"]  # the pool picked a sender
    [raw] = api_requests(sim, "/v2/messages/number_pool")
    assert '"from"' not in raw["body"]


def test_webhook_url_is_sent_and_reports_arrive(sim, client):
    with WebhookRecorder() as hooks:
        sent = client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        hooks.wait_for(lambda d: len(d) >= 2)
    events = {e["data"]["event_type"]: e["data"]["payload"] for e in hooks.events()}
    assert events["message.sent"]["id"] == events["message.finalized"]["id"] == sent.message_id
    assert events["message.finalized"]["to"][0]["status"] == "delivered"
    assert outbox(sim)[0]["status"] == "delivered"


@pytest.mark.parametrize(
    "mode, exc_type, http_status, code, may_have_sent",
    [
        ("http_500", ProviderUnavailable, 500, "10007", True),
        ("rate_limit", ProviderUnavailable, 429, "10011", False),
        ("opt_out", RecipientOptedOut, 409, "40300", None),
        ("invalid_to", InvalidRecipient, 400, "40310", None),
        ("auth_failed", Misconfigured, 401, "10009", None),
    ],
)
def test_fault_modes_map_to_typed_errors(sim, client, mode, exc_type, http_status, code, may_have_sent):
    arm(sim, mode)
    with pytest.raises(exc_type) as info:
        client.send_message(to=TO, text=TEXT, from_=FROM)
    error = info.value
    assert type(error) is exc_type
    assert (error.http_status, error.code) == (http_status, code)
    assert error.errors and error.errors[0]["code"] == code
    if may_have_sent is not None:
        assert error.may_have_sent is may_have_sent
    assert outbox(sim) == []
    # The fault was for one send only: the next one goes through.
    client.send_message(to=TO, text=TEXT, from_=FROM)
    assert len(outbox(sim)) == 1


def test_rate_limit_carries_retry_after_from_the_reset_header(sim, client):
    arm(sim, "rate_limit")
    with pytest.raises(ProviderUnavailable) as info:
        client.send_message(to=TO, text=TEXT, from_=FROM)
    assert 1 <= info.value.retry_after <= 3  # the simulator resets its window 2 s ahead


def test_opt_out_error_keeps_the_block_rule_but_str_hides_numbers(sim, client):
    arm(sim, "opt_out")
    with pytest.raises(RecipientOptedOut) as info:
        client.send_message(to=TO, text=TEXT, from_=FROM)
    assert "block rule" in info.value.detail
    assert TO not in str(info.value) and TO not in repr(info.value)


def test_wrong_api_key_is_a_config_error(sim):
    with TelnyxClientContext(sim, api_key="KEY-wrong") as bad, pytest.raises(Misconfigured) as info:
        bad.send_message(to=TO, text=TEXT, from_=FROM)
    assert (info.value.http_status, info.value.code) == (401, "10009")


def test_fault_aimed_at_one_number_spares_the_others(sim, client):
    arm(sim, "http_500", count=2, to=OTHER)
    client.send_message(to=TO, text=TEXT, from_=FROM)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            client.send_message(to=OTHER, text=TEXT, from_=FROM)
    client.send_message(to=OTHER, text=TEXT, from_=FROM)
    assert [m["to"] for m in outbox(sim)] == [OTHER, TO]


def test_read_timeout_may_have_sent_and_is_never_resent(sim):
    arm(sim, "timeout")
    slow = TelnyxClient(api_key=sim.api_key, base_url=sim.base_url, timeout=(1.0, READ_TIMEOUT))
    try:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            slow.send_message(to=TO, text=TEXT, from_=FROM)
        assert time.monotonic() - started < SIM_TIMEOUT_SLEEP  # gave up at the read timeout
    finally:
        slow.close()
    assert info.value.may_have_sent is True
    assert isinstance(info.value.__cause__, requests.ReadTimeout)
    deadline = time.monotonic() + 5
    while not outbox(sim) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # room for a (wrong) second attempt to land
    assert len(outbox(sim)) == 1  # Telnyx "sent" it once, and the client did not send it again
    assert len(api_requests(sim, "/v2/messages")) == 1


def _closed_port() -> int:
    """A loopback port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_then_reported_as_not_sent(caplog):
    client = TelnyxClient(
        api_key="KEY-x", base_url=f"http://127.0.0.1:{_closed_port()}/v2", timeout=(0.5, 0.5)
    )
    caplog.set_level(logging.WARNING, logger="urllib3.connectionpool")
    try:
        with pytest.raises(ProviderUnavailable) as info:
            client.send_message(to=TO, text=TEXT, from_=FROM)
    finally:
        client.close()
    assert info.value.may_have_sent is False
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    retries = [
        r for r in caplog.records if r.name == "urllib3.connectionpool" and "Retrying" in r.getMessage()
    ]
    assert len(retries) == 2  # the adapter retried the refused POST twice before giving up


def test_adapter_retries_connection_errors_only(client):
    retry = client.session.get_adapter("https://api.telnyx.com/v2").max_retries
    assert (retry.connect, retry.read, retry.status, retry.other) == (2, False, 0, 0)
    assert "POST" in retry.allowed_methods


def test_opt_out_list_pages_through_everything(sim, client):
    numbers = [f"+1312555{n:04d}" for n in range(7)]
    for number in numbers:
        requests.post(
            sim.url + "/sim/optouts", json={"to": number, "messaging_profile_id": PROFILE}, timeout=5
        ).raise_for_status()
    requests.post(
        sim.url + "/sim/optouts", json={"to": OTHER, "messaging_profile_id": "another-profile"}, timeout=5
    ).raise_for_status()
    items = list(client.list_opt_outs(messaging_profile_id=PROFILE, page_size=3))
    assert sorted(item.phone_number for item in items) == numbers
    queries = [r["query_string"] for r in api_requests(sim, "/v2/messaging_optouts")]
    assert len(queries) == 3  # 3 + 3 + 1, and no fourth call
    assert all("page%5Bsize%5D=3" in q and "filter%5Bmessaging_profile_id%5D=" in q for q in queries)
    assert len(list(client.list_opt_outs())) == 8


def test_opt_out_list_empty_and_bad_page_size(client):
    assert list(client.list_opt_outs()) == []
    with pytest.raises(ValueError):
        list(client.list_opt_outs(page_size=251))


def test_stop_from_subscriber_blocks_and_start_unblocks(sim, client):
    with WebhookRecorder() as hooks:
        answer = requests.post(
            sim.url + "/sim/inbound", timeout=5, json={"from": TO, "text": " Stop ", "webhook_url": hooks.url}
        ).json()["data"]
        assert answer["delivery"]["delivered"] is True and answer["keyword"] == "STOP"
        with pytest.raises(RecipientOptedOut):
            client.send_message(to=TO, text=TEXT, from_=FROM)
        assert [i.phone_number for i in client.list_opt_outs()] == [TO]
        requests.post(
            sim.url + "/sim/inbound", json={"from": TO, "text": "unstop", "webhook_url": hooks.url}, timeout=5
        ).raise_for_status()
    client.send_message(to=TO, text=TEXT, from_=FROM)
    assert len(outbox(sim, TO)) == 1


def test_delivery_failed_and_no_webhook_faults(sim, client):
    with WebhookRecorder() as hooks:
        arm(sim, "delivery_failed")
        failed = client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        hooks.wait_for(lambda d: len(d) >= 2)
        arm(sim, "no_webhook")
        silent = client.send_message(to=OTHER, text=TEXT, from_=FROM, webhook_url=hooks.url)
        time.sleep(0.3)
        final = hooks.events("message.finalized")
    assert [e["data"]["payload"]["id"] for e in final] == [failed.message_id]
    payload = final[0]["data"]["payload"]
    assert payload["to"][0]["status"] == "delivery_failed" and payload["errors"][0]["code"] == "40008"
    # Without webhooks the SMS still went out: only the reports are missing.
    assert {m["id"]: m["status"] for m in outbox(sim)} == {
        failed.message_id: "delivery_failed",
        silent.message_id: "delivered",
    }
    log = requests.get(sim.url + "/sim/webhooks", timeout=5).json()["data"]
    assert {w["message_id"] for w in log} == {failed.message_id}


def test_send_arguments_are_checked_before_any_request(sim, client):
    for kwargs in (
        {"endpoint": "mms"},
        {"from_": None},
        {"text": ""},
        {"endpoint": "number_pool", "from_": None},
        {"endpoint": "number_pool", "messaging_profile_id": PROFILE},
    ):
        with pytest.raises(ValueError):
            client.send_message(**{"to": TO, "text": TEXT, "from_": FROM, **kwargs})
    assert api_requests(sim, "/v2/messages") == [] and api_requests(sim, "/v2/messages/number_pool") == []


def test_a_whatsapp_send_is_retried_under_its_key_with_the_same_bytes(sim):
    """The Sender's WhatsApp route: the template from the client's settings, a 5xx retried as an SMS is."""
    whatsapp = TelnyxClient(api_key=sim.api_key, base_url=sim.base_url, timeout=(1.0, 3.0),
                            whatsapp_template="otp_code", whatsapp_language="pt_BR")
    try:
        arm(sim, "http_500")
        sent = whatsapp.send(OutboundMessage(to=TO, text="unused", code="482913", idempotency_key="v-1",
                                             route=Route("whatsapp", FROM, None, "wa")))
    finally:
        whatsapp.close()
    [message] = outbox(sim, TO)
    assert (message["id"], message["endpoint"], message["text"]) == (sent.message_id, "whatsapp",
                                                                    "482913 is your verification code.")
    posts = api_requests(sim, "/v2/messages/whatsapp")
    assert len(posts) == 2 and len({(p["idempotency_key"], p["body"]) for p in posts}) == 1
    template = json.loads(posts[0]["body"])["whatsapp_message"]["template"]
    assert (template["name"], template["language"]["code"]) == ("otp_code", "pt_BR")


def test_a_whatsapp_send_needs_its_template_code_and_sender(sim, client):
    for kwargs in ({}, {"template": "otp", "code": ""}, {"template": "otp", "from_": ""}):
        with pytest.raises(ValueError):
            client.send_whatsapp(**{"to": TO, "code": "482913", "from_": FROM, **kwargs})
    assert api_requests(sim, "/v2/messages/whatsapp") == []


def test_logs_hold_no_key_text_or_full_number(sim, client, caplog):
    caplog.set_level(logging.DEBUG)
    sent = client.send_message(to=TO, text=TEXT, from_=FROM)
    assert TO not in repr(sent)
    arm(sim, "opt_out")
    with pytest.raises(RecipientOptedOut):
        client.send_message(to=TO, text=TEXT, from_=FROM)
    requests.get(sim.url + "/sim/messages", params={"to": TO}, timeout=5)
    logged = caplog.text
    assert mask_number(TO) in logged
    for secret in (TO, TEXT, "482913", sim.api_key):
        assert secret not in logged


class TelnyxClientContext:
    """A client closed on exit (for one-off keys)."""

    def __init__(self, sim, *, api_key: str) -> None:
        self.client = TelnyxClient(api_key=api_key, base_url=sim.base_url, timeout=(1.0, 3.0))

    def __enter__(self) -> TelnyxClient:
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> requests.Response:
    """A requests.Response as the adapter builds it, for the pure classification function."""
    response = requests.Response()
    response.status_code, response._content = status, body
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (409, b'{"errors":[{"code":"40300","title":"Blocked due to STOP message"}]}', RecipientOptedOut),
        (
            400,
            b'{"errors":[{"code":"40300","title":"Bad request","detail":"Invalid media"}]}',
            Misconfigured,
        ),
        (
            400,
            b'{"errors":[{"code":"10016","title":"Phone number must be in +E.164 format"}]}',
            InvalidRecipient,
        ),
        (422, b'{"errors":[{"code":"10002","title":"Invalid phone number"}]}', InvalidRecipient),
        (403, b'{"errors":[{"code":"40333","title":"Spend limit reached"}]}', Misconfigured),
        (400, b'{"errors":[{"code":"40321","title":"No usable numbers"}]}', RouteRefused),
        (400, b'{"errors":[{"code":"10010","title":"Authorization failed"}]}', Misconfigured),
        (400, b'{"errors":[{"code":"40318","title":"Message queue full"}]}', ProviderUnavailable),
        (404, b"not json", Misconfigured),
        (503, b"", ProviderUnavailable),
        (302, b"", SendError),
        (401, b'{"code":"10009","title":"Authentication failed"}', Misconfigured),
    ],
)
def test_error_classification(status, body, expected):
    error = error_from_response(_response(status, body))
    assert type(error) is expected and error.http_status == status


@pytest.mark.parametrize("code, reason", [("40305", "invalid_sender"), ("40306", "alpha_sender_not_configured"),
                                          ("40312", "profile_disabled"), ("40321", "pool_empty")])
def test_a_refused_route_says_why_and_stays_a_configuration_error(code, reason):
    """Another route may take the text (routing.RoutedSender moves on); on the last route it is still a 502."""
    error = error_from_response(_response(400, b'{"errors":[{"code":"%s","title":"t"}]}' % code.encode()))
    assert isinstance(error, RouteRefused) and isinstance(error, Misconfigured)
    assert (error.reason, error.code, error.outcome) == (reason, code, "provider_error")


def test_retry_after_parsing():
    now = 1_700_000_000.0
    assert parse_retry_after({"x-ratelimit-reset": "12"}, now=now) == 12
    assert parse_retry_after({"x-ratelimit-reset": str(int(now) + 7)}, now=now) == 7
    assert parse_retry_after({"x-ratelimit-reset": str(int(now) - 7)}, now=now) == 1
    assert parse_retry_after({"Retry-After": "5", "x-ratelimit-reset": "60"}, now=now) == 5
    assert parse_retry_after({"Retry-After": "Tue, 14 Nov 2023 22:13:27 GMT"}, now=now) == 7
    assert parse_retry_after({"Retry-After": "soon"}, now=now) == 30
    assert parse_retry_after({"x-ratelimit-reset": "0"}, now=now) == 1
    assert parse_retry_after({}, now=now) == 30

"""Inbound messages: STOP-type keywords opt the sender out (nothing is sent to them again), START opts back in."""
from __future__ import annotations

import pytest

from tests.support.app import outbox, services
from tests.support.webhooks import inbound_event, post_signed

NUMBER = "+13125550150"


@pytest.fixture
def hook(app, clock, sim_signing_key):
    clock.freeze()
    test_client = app.test_client()

    def post(body):
        response = post_signed(test_client, body, sim_signing_key, timestamp=clock())
        assert response.status_code == 200, response.get_json()
        return response.get_json()["result"]
    return post


def request_status(client, number: str = NUMBER) -> int:
    response = client.post("/request-code", json={"phone_number": number})
    if response.status_code == 409:
        assert response.get_json()["error"]["code"] == "opted_out"
    return response.status_code


@pytest.mark.parametrize("text,autoresponse,stored", [
    ("STOP", None, "STOP"), ("stop", None, "STOP"), ("  Stop \n", None, "STOP"), ("STOPALL", None, "STOPALL"),
    ("STOP ALL", None, "STOP ALL"), ("stop   all", None, "STOP ALL"), ("unsubscribe", None, "UNSUBSCRIBE"),
    ("Cancel", None, "CANCEL"), ("END", None, "END"), ("quit ", None, "QUIT"),
    ("please stop texting me", "STOP", "STOP"), ("arrête", "stop", "STOP"),
])
def test_stop_keywords_opt_out(text, autoresponse, stored, client, hook, sim, app):
    assert hook(inbound_event(NUMBER, text, autoresponse_type=autoresponse)) == "opted_out"
    assert request_status(client) == 409
    assert outbox(sim, NUMBER) == []
    [record] = services(app).optouts.store.records(NUMBER)
    assert record["source"] == "inbound_stop" and record["keyword"] == stored
    assert record["messaging_profile_id"] == "4001767e-ce0f-4cae-9d5f-0d5e636e7809"


@pytest.mark.parametrize("text,autoresponse", [("hello", None), ("STOP NOW", None), ("HELP", "HELP"),
                                               ("stopp", None), ("", None), ("INFO", None)])
def test_other_texts_change_nothing(text, autoresponse, client, hook, sim):
    assert hook(inbound_event(NUMBER, text, autoresponse_type=autoresponse)) == "ignored"
    assert request_status(client) == 202


@pytest.mark.parametrize("word", ["START", "unstop", " Start "])
def test_start_removes_the_inbound_stop(word, client, hook, sim):
    hook(inbound_event(NUMBER, "STOP"))
    assert request_status(client) == 409
    assert hook(inbound_event(NUMBER, word)) == "opted_in"
    assert request_status(client) == 202
    assert len(outbox(sim, NUMBER)) == 1


def test_start_by_autoresponse_type(client, hook):
    hook(inbound_event(NUMBER, "STOP"))
    assert hook(inbound_event(NUMBER, "yes again", autoresponse_type="START")) == "opted_in"
    assert request_status(client) == 202


def test_start_leaves_other_sources_alone(client, hook, app, clock):
    services(app).optouts.store.add(NUMBER, "admin", now_ms=int(clock() * 1000))
    hook(inbound_event(NUMBER, "STOP"))
    hook(inbound_event(NUMBER, "START"))
    assert [r["source"] for r in services(app).optouts.store.records(NUMBER)] == ["admin"]
    assert request_status(client) == 409


def test_a_replayed_stop_after_start_changes_nothing(client, hook):
    stop = inbound_event(NUMBER, "STOP")
    hook(stop)
    hook(inbound_event(NUMBER, "START"))
    assert hook(stop) == "duplicate"  # the same signed bytes again, inside the 300 s window
    assert request_status(client) == 202


def test_every_spelling_of_the_number_is_blocked(make_app, clock, sim_signing_key, sim):
    from tests.support.app import CLIENT_KEY
    app = make_app(default_region="US")
    clock.freeze()
    post_signed(app.test_client(), inbound_event(NUMBER, "STOP"), sim_signing_key, timestamp=clock())
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    assert request_status(client, "(312) 555-0150") == 409
    assert outbox(sim, NUMBER) == []


def test_unusable_senders_are_acknowledged(hook, app):
    for sender in ("not a number", "+1312", "3125550150"):
        assert hook(inbound_event(sender, "STOP")) == "ignored"
    missing = inbound_event(NUMBER, "STOP")
    del missing["data"]["payload"]["from"]
    assert hook(missing) == "ignored"
    assert services(app).optouts.store.records(NUMBER) == []

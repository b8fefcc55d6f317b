"""Every word the service emits reaches /metrics under its own label: the real emitters (forged webhooks of
each kind, refused requests of each kind, a test number, each send failure, each verdict, each receipt) drive
the counters, and no label moves under `other`."""
from __future__ import annotations

import base64
import time

import nacl.signing
import phonenumbers
import pytest
import requests
from phonenumbers import PhoneNumberType
from prometheus_client.parser import text_string_to_metric_families

from otpservice import vocabulary
from otpservice.errors import InvalidSignature
from tests.support.app import CLIENT_KEY, code_from, outbox, services
from tests.support.webhooks import delivery_event, encode, envelope, inbound_event, post_signed

# Labels whose values are vocabulary words (route and status are patterns and numbers, not words).
WORD_LABELS = {"outcome", "reason", "policy", "endpoint", "result", "channel", "status", "kind", "keyword",
               "operation", "error", "change", "event", "rule", "mode", "cap"}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def authorised(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    return client


def ask(client, number: str, **body):
    return client.post("/request-code", json={"phone_number": number, **body})


@pytest.fixture
def settings_overrides():
    """The guard judges nothing here but in fraud_refusals: the other helpers text dozens of +1312555 numbers
    without entering their codes, which is what it blocks (it still counts them)."""
    return {"fraud_guard": "off"}


@pytest.fixture
def moved(app):
    """What moved on /metrics between the fixture and the call: {(name, labels): delta}."""
    before = samples(app.test_client().get("/metrics").get_data(as_text=True))

    def read() -> dict[tuple[str, tuple], float]:
        after = samples(app.test_client().get("/metrics").get_data(as_text=True))
        return {key: value - before.get(key, 0.0) for key, value in after.items()
                if value - before.get(key, 0.0) > 0 and not key[0].endswith(("_created", "_bucket", "_sum"))}
    return read


def forged_webhooks(app, make_app, clock, sim_signing_key) -> None:
    """One webhook refused for each signature failure the service can meet."""
    now = clock()
    body = encode(envelope("message.finalized", {"id": "m-1"}))
    client = app.test_client()
    good = post_signed  # signs with the simulator's key, which the app trusts

    def post(headers: dict, raw: bytes = body):
        return client.post("/webhooks/telnyx", data=raw, headers={"Content-Type": "application/json", **headers})

    signature = base64.b64encode(sim_signing_key.sign(f"{int(now)}|".encode() + body).signature).decode()
    cases = {
        "missing_header": post({"telnyx-timestamp": str(int(now))}),
        "bad_timestamp": post({"telnyx-timestamp": "soon", "telnyx-signature-ed25519": signature}),
        "stale": good(client, body, sim_signing_key, timestamp=now - 400),
        "future": good(client, body, sim_signing_key, timestamp=now + 400),
        "bad_base64": post({"telnyx-timestamp": str(int(now)), "telnyx-signature-ed25519": "!!not base64!!"}),
        "bad_length": post({"telnyx-timestamp": str(int(now)),
                            "telnyx-signature-ed25519": base64.b64encode(b"short").decode()}),
        "mismatch": good(client, body, nacl.signing.SigningKey.generate(), timestamp=now),
        "no_key": good(make_app(telnyx_public_key="").test_client(), body, sim_signing_key, timestamp=now),
        "bad_key": good(make_app(telnyx_public_key="bm90IGEga2V5").test_client(), body, sim_signing_key,
                        timestamp=now),
    }
    for reason, response in cases.items():
        assert response.status_code == 401, reason
    # Two spellings of one header cannot come over HTTP (the server joins them): the decoder's own input can.
    with pytest.raises(InvalidSignature):
        services(app).delivery.receive({"telnyx-timestamp": str(int(now)), "Telnyx-Timestamp": "1",
                                        "telnyx-signature-ed25519": signature}, body)


def refusals(make_app, sim) -> None:
    """One request refused for each reason, and a rate limit of each policy."""
    premium = phonenumbers.format_number(phonenumbers.example_number_for_type("US", PhoneNumberType.PREMIUM_RATE),
                                         phonenumbers.PhoneNumberFormat.E164)
    client = authorised(make_app(allowed_countries=("CA",)))
    assert ask(client, "+13125550101").status_code == 403
    client = authorised(make_app())
    assert ask(client, premium).status_code == 422
    app = make_app()
    services(app).optouts.store.add("+13125550102", "admin", now_ms=0)
    assert ask(authorised(app), "+13125550102").status_code == 409
    policies = {
        "resend_cooldown": ({}, ["+13125550103", "+13125550103"], {}),
        "phone_number": ({"resend_cooldown": 0, "limit_number": "1/10minutes"}, ["+13125550104"] * 2, {}),
        "phone_number_daily": ({"resend_cooldown": 0, "limit_number_daily": "1/day"}, ["+13125550105"] * 2, {}),
        "client_ip": ({"limit_ip": "1/hour"}, ["+13125550106", "+13125550107"], {"client_ip": "203.0.113.9"}),
        "number_prefix": ({"limit_prefix": "1/hour"}, ["+14155550108", "+14155550109"], {}),
        "country": ({"limit_country": "1/hour"}, ["+16175550110", "+12065550111"], {}),
        "global": ({"limit_global": "1/minute"}, ["+17185550112", "+13055550113"], {}),
    }
    for policy, (settings, numbers, extra) in policies.items():
        client = authorised(make_app(**settings))
        answers = [ask(client, number, **extra) for number in numbers]
        assert answers[-1].status_code == 429 and answers[-1].get_json()["error"]["limit"] == policy, policy
    # A number locked by its wrong codes gets no new code.
    locked = authorised(make_app(number_failures_per_day=1, resend_cooldown=0))
    ask(locked, "+13125550114")
    locked.post("/verify", json={"phone_number": "+13125550114", "code": "000000"})
    answer = ask(locked, "+13125550114")
    assert answer.status_code == 429 and answer.get_json()["error"]["limit"] == "phone_number_failures"
    # A client past its wrong codes is refused on /verify; an address past its failed admin logins on /admin.
    guessing = authorised(make_app(limit_verify_failures_ip="1/hour"))
    for _ in range(2):
        answer = guessing.post("/verify", json={"phone_number": "+13125550115", "code": "000000",
                                                "client_ip": "198.51.100.7"})
    ask(guessing, "+13125550115")
    for _ in range(2):
        answer = guessing.post("/verify", json={"phone_number": "+13125550115", "code": "000000",
                                                "client_ip": "198.51.100.7"})
    assert answer.status_code == 429 and answer.get_json()["error"]["limit"] == "verify_client_ip"
    admin = make_app(limit_admin_failures="1/minute").test_client()
    answers = [admin.get("/admin/opt-outs", headers={"Authorization": "Bearer wrong"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [401, 429]


def fraud_refusals(make_app, sim) -> None:
    """A block of each rule (enforced, and one in shadow mode), and each spend cap, on numbers of countries the
    other helpers leave alone."""
    def blocked(answer, rule: str) -> None:
        assert answer.status_code == 403, answer.get_json()
        assert answer.get_json()["error"]["reason"]["rule"] == rule
    client = authorised(make_app(fraud_guard="enforce", fraud_min_sends_prefix=2))
    ask(client, "+4915123456701"), ask(client, "+4915123456702")
    blocked(ask(client, "+4915123456703"), "prefix_conversion")
    client = authorised(make_app(fraud_guard="enforce", fraud_min_sends_country=2, fraud_min_sends_prefix=100))
    ask(client, "+33612345678"), ask(client, "+33623456789")
    blocked(ask(client, "+33634567890"), "country_conversion")
    # The other helpers' texts on `primary` went unverified: its first request is refused.
    client = authorised(make_app(fraud_guard="enforce", fraud_min_sends_route=2))
    blocked(ask(client, "+4791234567"), "route_conversion")
    for signal, limit in (("device", "limit_device"), ("user", "limit_user")):
        client = authorised(make_app(fraud_guard="enforce", **{limit: "1/hour"}))
        numbers = ("+447400123456", "+447400123457") if signal == "device" else ("+447400223456", "+447400223457")
        assert ask(client, numbers[0], **{f"{signal}_id": "the-same"}).status_code == 202
        blocked(ask(client, numbers[1], **{f"{signal}_id": "the-same"}), f"{signal}_velocity")
    client = authorised(make_app(fraud_guard="shadow", limit_device="1/hour"))
    for number in ("+353851234567", "+353851234568"):  # the second would be refused: shadow sends it
        assert ask(client, number, device_id="in-shadow").status_code == 202
    client = authorised(make_app(spend_limit_daily=0.004))  # texts so far cost more than that
    answer = ask(client, "+31612345678")
    assert answer.status_code == 403 and answer.get_json()["error"]["reason"]["scope"] == "spend:total"
    client = authorised(make_app(spend_limit_country={"ES": "0.004"}))
    assert ask(client, "+34612345678").status_code == 202  # costs 0.004 (the simulator's price of a part)
    answer = ask(client, "+34612345679")
    assert answer.status_code == 403 and answer.get_json()["error"]["reason"]["scope"] == "spend:ES"


def send_failures(client, make_app, sim) -> None:
    """One send failure of each kind the provider can answer, and a send that got no answer in its deadline."""
    for index, mode in enumerate(("http_500", "opt_out", "invalid_to", "auth_failed")):
        requests.post(f"{sim.url}/sim/faults", json={"mode": mode, "count": 3}, timeout=5).raise_for_status()
        assert ask(client, f"+1312555012{index}").status_code in (409, 422, 502, 503), mode
        requests.delete(f"{sim.url}/sim/faults", timeout=5)
    slow = authorised(make_app(telnyx_timeout=0.3, telnyx_send_deadline=0.6))
    requests.post(f"{sim.url}/sim/faults", json={"mode": "timeout", "count": 3, "sleep": 1.0}, timeout=5)
    assert ask(slow, "+13125550124").get_json()["delivery"]["status"] == "unknown"
    requests.delete(f"{sim.url}/sim/faults", timeout=5)


ROUTES = """\
GB:
  - {name: uk-alpha, endpoint: messages, from: ACME, messaging_profile_id: 7a1b2c3d-0000-4000-8000-00000000000b}
  - {name: uk-pool, endpoint: number_pool, messaging_profile_id: 7a1b2c3d-0000-4000-8000-00000000000b}
default:
  - {name: long, endpoint: messages, from: '+13125550100'}
  - {name: wa, endpoint: whatsapp, from: '+13125550199'}
"""


def routes_and_channels(make_app, sim, clock, sim_signing_key, tmp_path) -> None:
    """A failover for each reason a route is left, and a code sent and checked over WhatsApp."""
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES, encoding="utf-8")
    app = make_app(routes_file=str(path), whatsapp_template="otp_code")
    client = authorised(app)
    for index, mode in enumerate(("invalid_from", "alpha_sender_not_configured", "profile_disabled", "pool_empty")):
        number = f"+4474001234{index:02d}"
        requests.post(f"{sim.url}/sim/faults", json={"mode": mode, "to": number}, timeout=5).raise_for_status()
        assert ask(client, number).status_code == 202, mode
    number = "+13125550140"
    sent = ask(client, number, channel="whatsapp").get_json()
    failed = delivery_event(sent["delivery"]["message_id"], "delivery_failed", to=number)
    post_signed(app.test_client(), failed, sim_signing_key, timestamp=clock())
    assert ask(client, number, channel="whatsapp").status_code == 202  # the only WhatsApp route: no failover
    assert ask(client, "+13125550141").status_code == 202
    sms = delivery_event(outbox(sim, "+13125550141")[0]["id"], "delivery_failed", to="+13125550141")
    post_signed(app.test_client(), sms, sim_signing_key, timestamp=clock())
    assert ask(client, "+13125550141").status_code == 202  # long (failed) -> the default list has one SMS route
    code = code_from(outbox(sim, number)[0])
    assert client.post("/verify", json={"phone_number": number, "code": code, "channel": "whatsapp"}).status_code == 200
    # The delivery_failed reason: a country with two SMS routes.
    uk = "+447400123499"
    first = ask(client, uk).get_json()
    failed = delivery_event(first["delivery"]["message_id"], "delivery_failed", to=uk)
    post_signed(app.test_client(), failed, sim_signing_key, timestamp=clock())
    assert ask(client, uk).status_code == 202


def verdicts_and_receipts(app, make_app, client, sim, clock, sim_signing_key) -> None:
    """Each verdict of /verify, each result of a receipt and an inbound keyword, and a test number."""
    number = "+13125550130"
    sent = ask(client, number).get_json()
    code = code_from(outbox(sim, number)[0])
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/verify", json={"phone_number": number, "code": wrong}).get_json()["valid"] is False
    assert client.post("/verify", json={"phone_number": number, "code": code}).get_json()["valid"] is True
    assert client.post("/verify", json={"phone_number": number, "code": code}).status_code == 404
    other = "+13125550131"
    ask(client, other)
    for _ in range(5):
        client.post("/verify", json={"phone_number": other, "code": wrong})
    assert client.post("/verify", json={"phone_number": other, "code": wrong}).status_code == 429  # max_attempts
    locked_app = authorised(make_app(number_failures_per_day=1))
    ask(locked_app, "+13125550132")
    locked_app.post("/verify", json={"phone_number": "+13125550132", "code": wrong})
    assert locked_app.post("/verify", json={"phone_number": "+13125550132",
                                            "code": wrong}).status_code == 429  # number_locked
    tested = authorised(make_app(test_numbers={"+15005550006": "424242"}))
    assert ask(tested, "+15005550006").status_code == 202

    hooks, now = app.test_client(), clock()
    message_id = sent["delivery"]["message_id"]
    results = [
        post_signed(hooks, delivery_event(message_id, "delivered", to=number, event_id="e-1"), sim_signing_key,
                    timestamp=now),
        post_signed(hooks, delivery_event(message_id, "sent", to=number, event_id="e-2"), sim_signing_key,
                    timestamp=now),
        post_signed(hooks, delivery_event(message_id, "sent", to=number, event_id="e-2"), sim_signing_key,
                    timestamp=now),
        post_signed(hooks, delivery_event("not-ours", "delivered", to=number, event_id="e-3"), sim_signing_key,
                    timestamp=now),
        post_signed(hooks, delivery_event(message_id, "teleported", to=number, event_id="e-4"), sim_signing_key,
                    timestamp=now),
        post_signed(hooks, inbound_event("+13125550133", "STOP"), sim_signing_key, timestamp=now),
        post_signed(hooks, inbound_event("+13125550133", "START"), sim_signing_key, timestamp=now),
        post_signed(hooks, envelope("number_order.complete", {}), sim_signing_key, timestamp=now),
    ]
    assert [r.get_json()["result"] for r in results] == [
        "updated", "unchanged", "duplicate", "unknown_message", "ignored", "opted_out", "opted_in", "ignored"]


def test_every_emitted_word_has_its_own_label(app, make_app, sim, clock, sim_signing_key, moved, tmp_path):
    clock.freeze()
    client = authorised(app)
    forged_webhooks(app, make_app, clock, sim_signing_key)
    refusals(make_app, sim)
    send_failures(client, make_app, sim)
    routes_and_channels(make_app, sim, clock, sim_signing_key, tmp_path)
    verdicts_and_receipts(app, make_app, client, sim, clock, sim_signing_key)
    fraud_refusals(make_app, sim)
    time.sleep(0.05)  # nothing asynchronous is counted, but the simulator's own receipts may still be posting
    delta = moved()

    def labels(name: str, label: str) -> set[str]:
        return {dict(key[1])[label] for key in delta if key[0] == name and label in dict(key[1])}

    others = [key for key in delta if any(k in WORD_LABELS and v == "other" for k, v in key[1])]
    assert others == []
    assert labels("otp_webhook_signature_failures_total", "reason") == set(vocabulary.SIGNATURE_FAILURES)
    assert labels("otp_code_refusals_total", "reason") == set(vocabulary.REFUSAL_REASONS)
    assert labels("otp_rate_limited_total", "policy") == set(vocabulary.LIMIT_POLICIES)
    assert labels("otp_sends_total", "outcome") == set(vocabulary.SEND_OUTCOMES)
    assert labels("otp_verifications_total", "result") == set(vocabulary.VERIFY_RESULTS)
    assert labels("otp_webhooks_total", "result") == set(vocabulary.WEBHOOK_RESULTS)
    assert labels("otp_webhooks_total", "kind") == set(vocabulary.WEBHOOK_KINDS)
    assert labels("otp_inbound_keywords_total", "keyword") == set(vocabulary.KEYWORDS)
    assert labels("otp_route_failovers_total", "reason") == set(vocabulary.FAILOVER_REASONS)
    assert labels("otp_route_sends_total", "outcome") == set(vocabulary.SEND_OUTCOMES)
    assert labels("otp_route_sends_total", "route") == {"primary", "uk-alpha", "uk-pool", "long", "wa"}
    assert labels("otp_route_failovers_total", "route") == {"uk-alpha"}  # the route each failover left
    assert labels("otp_sends_total", "endpoint") == set(vocabulary.ENDPOINTS)
    assert labels("otp_verifications_total", "channel") == set(vocabulary.CHANNELS) - {vocabulary.TOTP}
    assert labels("otp_fraud_decisions_total", "rule") == set(vocabulary.FRAUD_RULES)
    assert labels("otp_fraud_decisions_total", "mode") == {vocabulary.ENFORCE, vocabulary.SHADOW}
    assert labels("otp_fraud_blocks_total", "rule") == set(vocabulary.FRAUD_RULES)
    assert labels("otp_fraud_events_total", "event") == set(vocabulary.FRAUD_EVENTS)
    assert {"DE", "FR", "GB", "IE", "ES", "US"} <= labels("otp_fraud_events_total", "country")
    assert labels("otp_spend_refusals_total", "cap") == set(vocabulary.SPEND_SCOPES)
    assert labels("otp_spend_total", "country") >= {"US", "ES"}
    assert delta[("otp_test_number_uses_total", ())] == 1
    assert delta[("otp_delivery_status_total", (("status", "delivered"),))] == 1

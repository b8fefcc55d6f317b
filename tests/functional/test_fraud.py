"""The fraud guard and the spend caps, through the real app, the suite's redis-server and the simulator: each rule
trips at its figures and sends nothing, a block is a record an operator lists and lifts, the allow list,
shadow mode, refunds of the fixed budgets, velocity per device and user, the spend caps from the send answer and
message.finalized, non-geographic numbers, and bad input. tests/system/test_pumping.py runs the attack."""
from __future__ import annotations

import json

import pytest
import redis

from otpservice.storage import keys
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, code_from, outbox
from tests.support.webhooks import delivery_event, post_signed

PREFIX = "+44740012"  # 10,000 UK mobiles: "+447400120000" ... "+447400129999"


def number(i: int, prefix: str = PREFIX) -> str:
    return f"{prefix}{i:04d}"


@pytest.fixture
def start(make_app, clock):
    """An app with the given settings, its client and admin clients, at a frozen time."""
    def build(**settings):
        clock.freeze()
        app = make_app(**settings)
        client, admin = app.test_client(), app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
        admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
        return app, client, admin
    return build


def ask(client, phone: str, **body):
    return client.post("/request-code", json={"phone_number": phone, **body})


def blocked(answer, rule: str, scope: str) -> dict:
    assert answer.status_code == 403, answer.get_json()
    error = answer.get_json()["error"]
    assert error["code"] == "verification_blocked"
    assert (error["reason"]["rule"], error["reason"]["scope"]) == (rule, scope)
    return error["reason"]


def verify(client, sim, phone: str) -> None:
    code = code_from(outbox(sim, phone)[0])
    assert client.post("/verify", json={"phone_number": phone, "code": code}).get_json()["valid"] is True


def test_a_prefix_whose_codes_nobody_enters_is_blocked_listed_and_lifted(start, sim, clock):
    app, client, admin = start(fraud_min_sends_prefix=5)
    for i in range(5):
        assert ask(client, number(i)).status_code == 202
    reason = blocked(ask(client, number(5)), "prefix_conversion", f"prefix:{PREFIX}")
    assert reason["figures"] | {"sent": 5, "approved": 0, "failed": 0, "conversion": 0.0, "threshold": 0.3,
                                "min_sends": 5} == reason["figures"]
    assert reason["mode"] == "enforce" and reason["until"] > reason["since"]
    assert len(outbox(sim)) == 5  # nothing sent for the refused one
    listed = admin.get("/admin/fraud/blocks").get_json()
    assert listed["mode"] == "enforce" and [b["scope"] for b in listed["data"]] == [f"prefix:{PREFIX}"]
    assert listed["data"][0]["figures"] == reason["figures"]
    lifted = admin.delete(f"/admin/fraud/blocks/prefix:%2B{PREFIX[1:]}")
    assert lifted.status_code == 200
    assert lifted.get_json()["rule"] == "prefix_conversion" and lifted.get_json()["exempt_until"] > reason["since"]
    assert admin.get("/admin/fraud/blocks").get_json()["data"] == []
    clock.advance(1)
    assert ask(client, number(6)).status_code == 202  # the next request goes through, and the ones after it
    assert ask(client, number(7)).status_code == 202
    assert admin.delete(f"/admin/fraud/blocks/prefix:%2B{PREFIX[1:]}").status_code == 404  # nothing left to lift


def test_a_prefix_whose_codes_are_entered_is_never_blocked(start, sim, clock):
    app, client, admin = start(fraud_min_sends_prefix=5)
    for i in range(20):
        assert ask(client, number(i)).status_code == 202
        if i % 4:  # three in four codes entered: 75 %
            verify(client, sim, number(i))
    counts = admin.get(f"/admin/fraud/conversion?scope=prefix:%2B{PREFIX[1:]}").get_json()
    assert counts["window"] == {"sent": 20, "approved": 15, "failed": 0, "conversion": 0.75}
    assert counts["history"]["approved"] == 15


def test_failed_deliveries_are_not_judged(start, sim, clock, sim_signing_key):
    app, client, admin = start(fraud_min_sends_prefix=5)
    for i in range(6):
        message_id = ask(client, number(i)).get_json()["delivery"]["message_id"]
        body = delivery_event(message_id, "delivery_failed", to=number(i))
        assert post_signed(app.test_client(), body, sim_signing_key, timestamp=clock()).get_json()["result"] == \
            "updated"
    assert ask(client, number(6)).status_code == 202  # six texts reached nobody: none of them is judged
    counts = admin.get(f"/admin/fraud/conversion?scope=prefix:%2B{PREFIX[1:]}").get_json()["window"]
    assert (counts["sent"], counts["failed"]) == (7, 6)


def test_a_blocked_country_still_sends_to_its_proven_prefixes(start, sim, clock):
    app, client, admin = start(fraud_min_sends_country=5, fraud_min_sends_prefix=100)
    proven = "+44790012"
    assert ask(client, number(0, proven)).status_code == 202
    verify(client, sim, number(0, proven))
    for i in range(4):  # four fresh prefixes, none verified: 1 of 5 converts
        assert ask(client, number(1234, f"+44750{i:03d}")).status_code == 202
    reason = blocked(ask(client, "+447560001234"), "country_conversion", "country:GB")
    assert reason["figures"]["prefix"] | {"scope": "prefix:+44756000", "proven": False} == reason["figures"]["prefix"]
    assert ask(client, number(1, proven)).status_code == 202  # the country's real users keep their codes
    assert ask(client, "+13125550123").status_code == 202  # and other countries are untouched


def test_a_refused_request_gives_its_fixed_budgets_back(start, sim, clock):
    app, client, admin = start(fraud_min_sends_prefix=3, limit_country="6/hour")
    for i in range(3):
        assert ask(client, number(i)).status_code == 202
    for i in range(3, 13):  # ten refusals by the guard: none of them spends the country's budget
        assert ask(client, number(i)).status_code == 403
    for i in range(3):  # another prefix of the country: three more texts fit the budget of 6
        assert ask(client, number(i, "+44740099")).status_code == 202
    assert ask(client, number(5, "+44740088")).get_json()["error"]["limit"] == "country"


def test_shadow_mode_records_and_counts_what_it_would_refuse_and_sends(start, sim, clock):
    app, client, admin = start(fraud_guard="shadow", fraud_min_sends_prefix=3)
    decisions = 'otp_fraud_decisions_total{mode="shadow",rule="prefix_conversion"}'

    def decided() -> float:  # the process's metrics outlive one app: count this test's decisions
        lines = app.test_client().get("/metrics").get_data(as_text=True).splitlines()
        return next((float(line.split()[-1]) for line in lines if line.startswith(decisions + " ")), 0.0)
    before = decided()
    for i in range(6):
        assert ask(client, number(i)).status_code == 202
    assert len(outbox(sim)) == 6
    listed = admin.get("/admin/fraud/blocks").get_json()
    assert listed["mode"] == "shadow" and [(b["scope"], b["rule"], b["mode"]) for b in listed["data"]] == \
        [(f"prefix:{PREFIX}", "prefix_conversion", "shadow")]
    assert decided() - before == 3


def test_the_allow_list_is_never_blocked(start, sim, clock):
    app, client, admin = start(fraud_min_sends_prefix=3)
    for i in range(3):
        ask(client, number(i))
    blocked(ask(client, number(3)), "prefix_conversion", f"prefix:{PREFIX}")
    answer = admin.put(f"/admin/fraud/allow/%2B{PREFIX[1:-1]}", json={"note": "QA phones"})
    assert answer.status_code == 200 and answer.get_json()["entry"] == PREFIX[:-1]
    assert ask(client, number(4)).status_code == 202
    assert admin.get("/admin/fraud/allow").get_json()["data"][0]["note"] == "QA phones"
    assert admin.delete(f"/admin/fraud/allow/%2B{PREFIX[1:-1]}").status_code == 200
    blocked(ask(client, number(5)), "prefix_conversion", f"prefix:{PREFIX}")
    for bad in ("3712000", "+0123", "+12", "+3712000x"):
        answer = admin.put(f"/admin/fraud/allow/{bad.replace('+', '%2B')}")
        assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "entry"
    assert admin.delete("/admin/fraud/allow/%2B4470").status_code == 404


@pytest.mark.parametrize("signal", ["device_id", "user_id"])
def test_velocity_per_device_and_user_names_the_signal(start, sim, clock, redis_url, signal):
    limit = "limit_device" if signal == "device_id" else "limit_user"
    app, client, admin = start(**{limit: "2/hour"})
    secret_id = "alice@example.com"
    for i in range(2):
        assert ask(client, number(i, "+44740055"), **{signal: secret_id}).status_code == 202
    answer = ask(client, number(2, "+44740055"), **{signal: secret_id})
    reason = answer.get_json()["error"]["reason"]
    assert answer.status_code == 403 and reason["rule"] == f"{signal.split('_')[0]}_velocity"
    assert reason["figures"] == {"signal": signal, "limit": "2/hour"}
    assert ask(client, number(3, "+44740055"), **{signal: "someone-else"}).status_code == 202
    # The caller's id is nowhere in Redis: keys and block records hold its digest.
    store = redis.Redis.from_url(redis_url)
    assert not any(secret_id.encode() in key for key in store.keys("*"))
    assert secret_id not in json.dumps(admin.get("/admin/fraud/blocks").get_json())


@pytest.mark.parametrize("body", [{"device_id": ""}, {"device_id": 7}, {"user_id": "x" * 129},
                                  {"user_id": "a\nb"}])
def test_bad_signals_are_refused_and_change_nothing(start, sim, redis_url, body):
    app, client, admin = start()
    answer = ask(client, number(0), **body)
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] in body
    assert outbox(sim) == []
    assert redis.Redis.from_url(redis_url).keys("otp:*") == []


def test_the_daily_spend_cap_counts_send_answers_and_finalized_costs(start, sim, clock, sim_signing_key):
    app, client, admin = start(spend_limit_daily=0.01, spend_limit_country={"US": "0.1"})
    sent = [ask(client, number(i)).get_json() for i in range(3)]  # 0.004 each, per the simulator's answer
    assert all(s["status"] == "pending" for s in sent)
    refused = ask(client, number(3))
    assert refused.status_code == 403
    error = refused.get_json()["error"]
    assert error["code"] == "spend_limit_reached"
    assert error["reason"] | {"scope": "spend:total", "limit": 0.01, "spent": 0.012, "currency": "USD"} == \
        error["reason"]
    assert error["reason"]["resets_at"].endswith("T00:00:00Z") and len(outbox(sim)) == 3
    spend = admin.get("/admin/fraud/spend").get_json()
    assert (spend["total"], spend["limit"], spend["countries"]["GB"]) == (0.012, 0.01, {"spent": 0.012, "limit": None})
    # Telnyx's final cost replaces the answer's: 0.001 instead of 0.004 for the first text.
    body = delivery_event(sent[0]["delivery"]["message_id"], "delivered", to=number(0))
    body["data"]["payload"]["cost"] = {"amount": "0.0010", "currency": "USD"}
    assert post_signed(app.test_client(), body, sim_signing_key, timestamp=clock()).get_json()["result"] == "updated"
    assert admin.get("/admin/fraud/spend").get_json()["total"] == 0.009
    assert ask(client, number(3)).status_code == 202  # under the cap again


def test_a_countrys_spend_cap_refuses_that_country_only(start, sim):
    app, client, admin = start(spend_limit_country={"GB": "0.004"})
    assert ask(client, number(0)).status_code == 202
    answer = ask(client, number(1))
    assert answer.status_code == 403 and answer.get_json()["error"]["reason"]["scope"] == "spend:GB"
    assert ask(client, "+13125550123").status_code == 202


@pytest.mark.parametrize("phone", ["+881612345678", "+8823421234", "+870301234567"])
def test_non_geographic_numbers_are_refused_unless_allowed(start, sim, phone):
    app, client, admin = start()
    answer = ask(client, phone)
    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "country_not_allowed"
    assert "OTP_ALLOW_NON_GEOGRAPHIC" in answer.get_json()["error"]["message"]
    assert outbox(sim) == []
    app, client, admin = start(allow_non_geographic=True)
    assert ask(client, phone).status_code == 202


def test_the_guard_off_judges_nothing_but_still_counts(start, sim):
    app, client, admin = start(fraud_guard="off", fraud_min_sends_prefix=2)
    for i in range(5):
        assert ask(client, number(i)).status_code == 202
    assert admin.get(f"/admin/fraud/conversion?scope=prefix:%2B{PREFIX[1:]}").get_json()["window"]["sent"] == 5
    assert admin.get("/admin/fraud/blocks").get_json() == {"mode": "off", "data": []}


@pytest.mark.parametrize("scope", ["prefix", "planet:XX", "country:", "device:" + "a" * 65])
def test_bad_scopes_are_refused(start, scope):
    app, client, admin = start()
    assert admin.delete(f"/admin/fraud/blocks/{scope}").status_code == 400
    assert admin.get(f"/admin/fraud/conversion?scope={scope}").status_code == 400


def test_keys_hold_no_number(start, sim, redis_url):
    app, client, admin = start(fraud_min_sends_prefix=2)
    for i in range(3):
        ask(client, number(i))
    names = redis.Redis.from_url(redis_url).keys("otp:*fr*")
    assert names and not any(PREFIX[1:].encode() in name for name in names)
    assert keys.FRAUD_GUARD.encode() in names

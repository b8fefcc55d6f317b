"""Rules that hold in every state: the cooldown whatever became of the last code, per-client budgets on /verify
and /admin, a log line for every refusal, no-store answers, JSON bodies only, Redis that keeps what it holds."""
from __future__ import annotations

import logging

import pytest
import redis

from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, code_from, outbox, services

NUMBER = "+13125550160"


def authorised(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    return client


def ask(client, number: str = NUMBER, **body):
    return client.post("/request-code", json={"phone_number": number, **body})


def limited(response, policy: str) -> dict:
    assert response.status_code == 429, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "rate_limited" and error["limit"] == policy
    assert int(response.headers["Retry-After"]) == error["retry_after"] >= 1
    return error


# -- the cooldown, whatever became of the last code -----------------------------------------------------
@pytest.mark.parametrize("ending", ["approved", "canceled", "max_attempts_reached"])
def test_the_cooldown_holds_after_the_last_code_ended(ending, client, sim, clock):
    clock.freeze()
    sent = ask(client).get_json()
    code = code_from(outbox(sim, NUMBER)[0])
    if ending == "approved":
        assert client.post("/verify", json={"phone_number": NUMBER, "code": code}).get_json()["valid"] is True
    elif ending == "canceled":
        assert client.delete(f"/verifications/{sent['verification_id']}").status_code == 200
    else:
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(5):
            client.post("/verify", json={"phone_number": NUMBER, "code": wrong})
    clock.advance(10)
    assert limited(ask(client), "resend_cooldown")["retry_after"] == 20
    assert len(outbox(sim, NUMBER)) == 1  # nothing more was sent
    clock.advance(20)
    assert ask(client).status_code == 202


def test_three_quick_requests_after_approvals_send_one_text(client, sim, clock):
    """The finding: request, approve, request again at once: 3 texts in 134 ms. Now one per cooldown."""
    clock.freeze()
    for _ in range(3):
        answer = ask(client)
        if answer.status_code == 202:
            code = code_from(outbox(sim, NUMBER)[0])
            client.post("/verify", json={"phone_number": NUMBER, "code": code})
        clock.advance(0.05)
    assert len(outbox(sim, NUMBER)) == 1


# -- per-client budgets ---------------------------------------------------------------------------------
def test_verify_refuses_a_client_past_its_wrong_codes(make_app, sim, clock, caplog):
    clock.freeze()
    client = authorised(make_app(limit_verify_failures_ip="3/hour"))
    ask(client)
    code = code_from(outbox(sim, NUMBER)[0])
    wrong = "000000" if code != "000000" else "111111"
    ask(client, "+13125550161")
    for _ in range(3):  # spread over two numbers: the budget is the client's, not a code's
        client.post("/verify", json={"phone_number": "+13125550161", "code": wrong, "client_ip": "203.0.113.5"})
    with caplog.at_level(logging.WARNING, logger="otpservice.core.throttle"):
        refused = client.post("/verify", json={"phone_number": NUMBER, "code": code, "client_ip": "203.0.113.5"})
    assert limited(refused, "verify_client_ip")["retry_after"] == 3600
    assert [r.policy for r in caplog.records if hasattr(r, "policy")] == ["verify_client_ip"]
    # Refused unchecked: the right code was not spent, and another client may still use it.
    other = client.post("/verify", json={"phone_number": NUMBER, "code": code, "client_ip": "198.51.100.1"})
    assert other.get_json()["valid"] is True


def test_verify_counts_the_trusted_proxy_header_only_when_configured(make_app, sim, clock):
    clock.freeze()
    proxied = authorised(make_app(limit_verify_failures_ip="1/hour", trusted_proxy_header="X-Real-IP"))
    ask(proxied)
    header = {"X-Real-IP": "203.0.113.6"}
    proxied.post("/verify", json={"phone_number": NUMBER, "code": "000000"}, headers=header)
    limited(proxied.post("/verify", json={"phone_number": NUMBER, "code": "000000"}, headers=header),
            "verify_client_ip")
    plain = authorised(make_app(limit_verify_failures_ip="1/hour"))
    ask(plain, "+13125550162")
    for _ in range(2):  # without the setting the header is anyone's to forge: no per-client budget
        answer = plain.post("/verify", json={"phone_number": "+13125550162", "code": "000000"}, headers=header)
    assert answer.status_code == 200


def test_failed_admin_logins_are_throttled_per_address_and_logged(make_app, caplog):
    app = make_app(limit_admin_failures="3/minute", trusted_proxy_header="X-Real-IP")
    admin = app.test_client()
    guesser = {"X-Real-IP": "203.0.113.7"}
    with caplog.at_level(logging.WARNING, logger="otpservice.web.http"):
        answers = [admin.get("/admin/opt-outs", headers={**guesser, "Authorization": f"Bearer guess-{n}"})
                   for n in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]
    limited(answers[-1], "admin_client_ip")
    failures = [r for r in caplog.records if r.getMessage() == "admin authentication failed"]
    assert len(failures) == 3 and {r.client for r in failures} == {"203.0.113.7"}
    assert not any("guess-" in r.getMessage() or "guess-" in str(vars(r)) for r in caplog.records)
    # Even the right token waits now from that address; another address is not held up.
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert admin.get("/admin/opt-outs", headers={**guesser, **right}).status_code == 429
    assert admin.get("/admin/opt-outs", headers={"X-Real-IP": "198.51.100.2", **right}).status_code == 200


# -- every refusal explains itself ----------------------------------------------------------------------
def test_every_refusal_writes_one_line_with_the_masked_number_and_reason(make_app, sim, clock, caplog):
    clock.freeze()
    client = authorised(make_app(allowed_countries=("US",), number_failures_per_day=1))
    services_ = services(client.application)
    services_.optouts.store.add("+13125550163", "admin", now_ms=0)
    ask(client, "+13125550164")
    client.post("/verify", json={"phone_number": "+13125550164", "code": "000000"})
    clock.advance(60)
    cases = {
        "country_not_allowed": ("+447400123456", 403),
        "unsupported_number_type": ("+19005550123", 422),
        "opted_out": ("+13125550163", 409),
        "rate_limited": ("+13125550164", 429),  # locked by its failures
    }
    with caplog.at_level(logging.INFO, logger="otpservice.core.sendgate"):
        for reason, (number, status) in cases.items():
            assert ask(client, number).status_code == status, reason
        ask(client, "+13125550165")
        assert ask(client, "+13125550165").status_code == 429  # the cooldown
    lines = [r for r in caplog.records if r.getMessage() == "send refused"]
    assert [r.reason for r in lines] == [*cases, "rate_limited"]
    assert [r.policy for r in lines][-2:] == ["phone_number_failures", "resend_cooldown"]
    assert all(r.phone.startswith("+") and "*" in r.phone for r in lines)
    assert not any(number in caplog.text for number, _ in cases.values())


# -- transport ------------------------------------------------------------------------------------------
def test_every_answer_says_no_store(client, app):
    answers = [client.post("/request-code", json={"phone_number": NUMBER}), client.get("/healthz"),
               client.get("/readyz"), client.get("/no-such-route"), client.post("/verify", data=b"{"),
               app.test_client().get("/admin/opt-outs"), client.get("/openapi.json")]
    assert [a.headers.get("Cache-Control") for a in answers] == ["no-store"] * len(answers)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_that_is_not_json_is_415_and_changes_nothing(client, sim, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.post("/request-code", data=b'{"phone_number": "+13125550160"}', headers=headers)
    assert answer.status_code == 415 and answer.get_json()["error"]["code"] == "unsupported_media_type"
    assert outbox(sim) == []


# -- Redis that keeps what it is given ------------------------------------------------------------------
def test_an_evicting_redis_fails_readiness_naming_the_setting(app, redis_url):
    direct = redis.Redis.from_url(redis_url)
    direct.config_set("maxmemory-policy", "volatile-lru")
    try:
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["redis_eviction"] == \
            "maxmemory-policy is volatile-lru: set maxmemory-policy noeviction"
    finally:
        direct.config_set("maxmemory-policy", "noeviction")
    assert app.test_client().get("/readyz").status_code == 200


def test_production_refuses_to_serve_on_an_evicting_redis(redis_url):
    from otpservice import wiring
    from otpservice.config import ConfigError, Settings
    secrets = dict(env="production", telnyx_api_key="k", telnyx_public_key="p", code_secret="s" * 32,
                   api_keys=("c" * 32,), admin_token="a" * 32, redis_url=redis_url, webhook_url="https://x",
                   telnyx_from="+13125550100", totp_enabled=False)
    direct = redis.Redis.from_url(redis_url)
    wiring.refuse_unsafe_redis(Settings(**secrets))  # noeviction: fine
    direct.config_set("maxmemory-policy", "allkeys-lru")
    try:
        with pytest.raises(ConfigError, match="maxmemory-policy is allkeys-lru: set maxmemory-policy noeviction"):
            wiring.refuse_unsafe_redis(Settings(**secrets))
    finally:
        direct.config_set("maxmemory-policy", "noeviction")

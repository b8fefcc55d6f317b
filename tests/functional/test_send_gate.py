"""The checks before every send: their order, each limit's trip point and Retry-After, refunds, test numbers."""
from __future__ import annotations

import phonenumbers
import pytest
import redis
from phonenumbers import PhoneNumberType

from tests.support.app import code_from, outbox, services

NUMBER = "+13125550123"


def example(region: str, kind) -> str:
    return phonenumbers.format_number(phonenumbers.example_number_for_type(region, kind),
                                      phonenumbers.PhoneNumberFormat.E164)


def ask(client, number: str = NUMBER, **body):
    return client.post("/request-code", json={"phone_number": number, **body})


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code
    return error


def limited(response, policy: str, retry_after: int) -> None:
    error = refused(response, 429, "rate_limited")
    assert error["limit"] == policy
    assert error["retry_after"] == retry_after
    assert response.headers["Retry-After"] == str(retry_after)


def keys(redis_url: str, pattern: str) -> list[bytes]:
    return redis.Redis.from_url(redis_url).keys(pattern)


def test_disallowed_country_sends_nothing(make_app, sim):
    client = make_app(allowed_countries=("US",)).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    refused(ask(client, "+447400123456"), 403, "country_not_allowed")
    refused(ask(client, "+16135550123"), 403, "country_not_allowed")  # +1 but Canada
    assert outbox(sim) == []
    assert ask(client).status_code == 202


@pytest.mark.parametrize("region,kind", [("US", PhoneNumberType.PREMIUM_RATE), ("GB", PhoneNumberType.PREMIUM_RATE),
                                         ("FR", PhoneNumberType.SHARED_COST)])
def test_premium_rate_and_shared_cost_numbers_send_nothing(client, sim, region, kind):
    refused(ask(client, example(region, kind)), 422, "unsupported_number_type")
    assert outbox(sim) == []


def test_blocked_number_types_adds_to_the_list(make_app, sim):
    client = make_app(blocked_number_types=("toll_free",)).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    refused(ask(client, "+18005550199"), 422, "unsupported_number_type")
    assert outbox(sim) == []


def test_unknown_blocked_number_type_is_refused_at_start(make_app):
    from otpservice.config import ConfigError
    with pytest.raises(ConfigError, match="OTP_BLOCKED_NUMBER_TYPES"):
        make_app(blocked_number_types=("premium",))


def test_opted_out_number_is_refused_before_send(app, client, sim):
    services(app).optouts.store.add(NUMBER, "admin", now_ms=0)
    refused(ask(client), 409, "opted_out")
    assert outbox(sim) == []


def test_checks_run_in_the_contract_order(make_app, sim, redis_url):
    """A request failing several checks reports the earliest one, and spends no later budget."""
    app = make_app(allowed_countries=("GB",), limit_global="1/minute")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    premium_us = example("US", PhoneNumberType.PREMIUM_RATE)
    services(app).optouts.store.add(premium_us, "admin", now_ms=0)
    services(app).optouts.store.add("+447400123456", "admin", now_ms=0)
    refused(ask(client, "bogus"), 422, "invalid_phone_number")          # input first
    refused(ask(client, premium_us), 403, "country_not_allowed")        # country before type and opt-out
    premium_gb = example("GB", PhoneNumberType.PREMIUM_RATE)
    services(app).optouts.store.add(premium_gb, "admin", now_ms=0)
    refused(ask(client, premium_gb), 422, "unsupported_number_type")    # type before opt-out
    refused(ask(client, "+447400123456"), 409, "opted_out")             # opt-out before limits
    assert keys(redis_url, "otp:rl:*") == []                            # no budget was spent
    assert ask(client, "+447400123457").status_code == 202               # the one global send is still there
    limited(ask(client, "+447400123458"), "global", 60)
    # With the global budget gone, an opted-out number still answers opted_out (the earlier check).
    refused(ask(client, "+447400123456"), 409, "opted_out")
    assert len(outbox(sim)) == 1


def test_per_number_limits_trip_at_their_number_with_exact_retry_after(client, clock, sim):
    clock.freeze()
    start = clock.now
    for _ in range(3):
        assert ask(client).status_code == 202
        clock.advance(31)
    # 3 sends at t=0, 31, 62; now t=93: the 10-minute budget frees when the first leaves, at t=600.
    limited(ask(client), "phone_number", 600 - 93)
    clock.now = start + 599.5
    limited(ask(client), "phone_number", 1)
    clock.now = start + 600
    assert ask(client).status_code == 202
    assert len(outbox(sim, NUMBER)) == 4


def test_daily_number_limit_and_longest_wait_wins(make_app, clock, sim):
    clock.freeze()
    client = make_app(limit_number="3/10minutes", limit_number_daily="4/day").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    for _ in range(4):
        assert ask(client).status_code == 202
        clock.advance(601)
    # Four sends in the last 2404 s: the day budget (86400 - 2404 s) outlasts the cooldown and the short one.
    limited(ask(client), "phone_number_daily", 86400 - 4 * 601)


def test_every_spelling_of_a_number_shares_its_limits(make_app, clock, sim):
    clock.freeze()
    client = make_app(default_region="US").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    spellings = ["+13125550123", "(312) 555-0123", "312.555.0123", "+1 312 555 0123"]
    for spelling in spellings[:3]:
        assert ask(client, spelling, purpose=f"p{len(outbox(sim))}").status_code == 202
        clock.advance(31)
    limited(ask(client, spellings[3], purpose="other"), "phone_number", 600 - 93)


def test_ip_limit_uses_body_client_ip_and_ipv6_slash_64(make_app, clock, sim):
    clock.freeze()
    client = make_app(limit_ip="2/hour").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    assert ask(client, "+13125550101", client_ip="2001:db8:1:2::1").status_code == 202
    assert ask(client, "+13125550102", client_ip="2001:db8:1:2::ffff").status_code == 202
    limited(ask(client, "+13125550103", client_ip="2001:db8:1:2:aaaa::9"), "client_ip", 3600)
    assert ask(client, "+13125550104", client_ip="2001:db8:1:3::1").status_code == 202   # another /64
    assert ask(client, "+13125550105").status_code == 202                             # no IP: no IP limit
    refused(ask(client, "+13125550106", client_ip="not-an-ip"), 400, "invalid_request")


def test_proxy_header_counts_only_when_configured(make_app, clock, sim):
    clock.freeze()
    plain = make_app(limit_ip="1/hour").test_client()
    plain.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    spoofed = {"X-Real-IP": "198.51.100.7"}
    assert plain.post("/request-code", json={"phone_number": "+13125550111"}, headers=spoofed).status_code == 202
    assert plain.post("/request-code", json={"phone_number": "+13125550112"}, headers=spoofed).status_code == 202
    proxied = make_app(limit_ip="1/hour", trusted_proxy_header="X-Real-IP").test_client()
    proxied.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    assert proxied.post("/request-code", json={"phone_number": "+13125550113"}, headers=spoofed).status_code == 202
    limited(proxied.post("/request-code", json={"phone_number": "+13125550114"}, headers=spoofed), "client_ip", 3600)


def test_prefix_and_country_limits(make_app, clock, sim):
    clock.freeze()
    client = make_app(limit_prefix="2/hour", limit_country="3/hour").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    assert ask(client, "+13125550001").status_code == 202
    assert ask(client, "+13125550002").status_code == 202
    limited(ask(client, "+13125550003"), "number_prefix", 3600)   # same +1 312555 block
    assert ask(client, "+13125560004").status_code == 202          # the next block
    clock.advance(10)
    limited(ask(client, "+14155550123"), "country", 3590)         # US: 3 sends this hour
    assert ask(client, "+447400123456").status_code == 202         # GB has its own budget


def test_a_block_of_a_short_numbering_plan_is_one_prefix(make_app, clock, sim):
    """Latvia's numbers have 8 digits: 100 sequential ones are one block (the number without its last 4
    digits), so the prefix budget stops them at its amount (country code + 6 digits made them 100 prefixes)."""
    clock.freeze()
    client = make_app(limit_prefix="3/hour").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    answers = [ask(client, f"+3712000{n:04d}").status_code for n in range(1000, 1100)]
    assert answers.count(202) == 3 and answers.count(429) == 97
    assert len(outbox(sim)) == 3


def test_refusal_by_the_number_refunds_the_earlier_budgets(make_app, clock, sim, redis_url):
    clock.freeze()
    client = make_app(limit_global="2/minute").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    assert ask(client).status_code == 202
    for _ in range(5):
        limited(ask(client), "resend_cooldown", 30)       # each took a global send, then gave it back
    assert ask(client, "+13125550124").status_code == 202  # so the second global send is still there
    limited(ask(client, "+13125550125"), "global", 60)


def test_refusal_by_a_later_budget_refunds_the_others(make_app, clock, sim):
    clock.freeze()
    client = make_app(limit_prefix="1/hour", limit_global="2/minute").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    assert ask(client, "+13125550001").status_code == 202
    for _ in range(3):
        limited(ask(client, "+13125550002"), "number_prefix", 3600)
    assert ask(client, "+14155550123").status_code == 202   # global still had its second send


def test_store_down_sends_nothing(make_app, sim):
    from tests.support.redis_server import free_port
    client = make_app(redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout=0.2).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    refused(ask(client), 503, "store_unavailable")
    assert outbox(sim) == []


def test_limits_out_of_the_security_bar_are_refused():
    from otpservice.config import ConfigError, Settings
    with pytest.raises(ConfigError, match="OTP_LIMIT_NUMBER "):
        Settings(limit_number="4/10minutes")
    with pytest.raises(ConfigError, match="OTP_LIMIT_NUMBER "):
        Settings(limit_number="1/minute")          # 10 in 10 minutes
    with pytest.raises(ConfigError, match="OTP_LIMIT_NUMBER_DAILY"):
        Settings(limit_number_daily="11/day")
    with pytest.raises(ConfigError, match="OTP_LIMIT_IP"):
        Settings(limit_ip="lots")
    assert Settings(limit_number="2/hour", limit_number_daily="5/day").limit_number == "2/hour"


def test_test_number_never_reaches_telnyx_and_obeys_attempts_and_expiry(make_app, clock, sim, caplog):
    clock.freeze()
    test_number = "+13125550199"
    client = make_app(test_numbers={"(312) 555-0199": "424242"}, default_region="US",
                      limit_number_daily="1/day").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    caplog.set_level("INFO")
    first = ask(client, test_number)
    assert first.status_code == 202 and first.get_json()["delivery"]["message_id"] is None
    assert outbox(sim) == []
    assert "test number used" in caplog.text and test_number not in caplog.text
    verify = lambda code: client.post("/verify", json={"phone_number": test_number, "code": code})  # noqa: E731
    assert verify("424242").get_json()["valid"] is True
    clock.advance(31)
    assert ask(client, test_number).status_code == 202           # send budgets do not apply
    for _ in range(5):
        assert verify("000000").get_json()["valid"] is False
    assert verify("424242").status_code == 429                   # attempts used up
    clock.advance(31)
    assert ask(client, test_number).status_code == 202
    clock.advance(601)
    assert verify("424242").status_code == 404                   # expired
    assert outbox(sim) == []


def test_test_numbers_refused_in_production_without_allow():
    from otpservice.config import ConfigError, Settings
    secrets = dict(env="production", telnyx_api_key="k", telnyx_public_key="p", code_secret="s" * 32,
                   api_keys=("c" * 32,), admin_token="a" * 32, redis_url="redis://x", webhook_url="https://x",
                   telnyx_from="+13125550100", totp_enabled=False)
    with pytest.raises(ConfigError, match="OTP_ALLOW_TEST_NUMBERS"):
        Settings(test_numbers={"+13125550199": "424242"}, **secrets)
    assert Settings(test_numbers={"+13125550199": "424242"}, allow_test_numbers=True, **secrets)


def test_number_failures_cap_is_a_sliding_24h_window(make_app, clock, sim):
    clock.freeze()
    client = make_app(number_failures_per_day=3).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    start = clock.now
    for attempt in range(3):
        assert ask(client).status_code == 202
        code = code_from(outbox(sim, NUMBER)[0])
        wrong = "000000" if code != "000000" else "111111"
        assert client.post("/verify", json={"phone_number": NUMBER, "code": wrong}).status_code == 200
        if attempt < 2:
            clock.advance(601)
    # Three failures in 24 h (at 0, 601 and 1202 s): even the live code's right answer is refused now.
    locked = client.post("/verify", json={"phone_number": NUMBER, "code": code})
    assert locked.status_code == 429 and locked.get_json()["error"]["code"] == "max_attempts_reached"
    assert locked.headers["Retry-After"] == str(86400 - 2 * 601)
    # And no new code is sent until the lock ends: it could never verify.
    clock.advance(601)
    limited(ask(client), "phone_number_failures", 86400 - 3 * 601)
    assert len(outbox(sim, NUMBER)) == 3
    clock.now = start + 86400
    assert ask(client).status_code == 202
    code = code_from(outbox(sim, NUMBER)[0])
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/verify", json={"phone_number": NUMBER, "code": wrong}).status_code == 200
    # The failures at t=601 and t=1202 still count: one more failure locks again, not a fresh budget of 3.
    assert client.post("/verify", json={"phone_number": NUMBER, "code": wrong}).status_code == 429

"""Authenticator-app factors through the real app and a real redis-server, with time frozen by `clock`."""
from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import redis
import requests
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from otpservice.config import ConfigError, Settings
from otpservice.core.totp import Sealer, matching_step
from otpservice.storage import keys
from tests.support.app import CLIENT_KEY, RecordingMetrics, services

USER = "alice@example.com"
KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(1, 33))).decode()
T0 = 1_800_000_000.0  # a step boundary (divisible by 30), so `clock.advance(30 * n)` moves exactly n steps

# RFC 6238 appendix B: the SHA-1 seed, and (time, 8-digit code) pairs.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
               (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]


@pytest.fixture
def totp_app(make_app, clock):
    clock.now, clock.frozen = T0, True
    return make_app(totp_key=KEY_A, app_name="Example Co")


@pytest.fixture
def tc(totp_app):
    client = totp_app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    return client


def enroll(tc, user=USER, **body) -> dict:
    response = tc.post("/totp/enroll", json={"user_id": user, "label": user, **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def code_at(secret: str, clock, steps: int = 0) -> str:
    """The app's code for the step `steps` away from the frozen now."""
    return pyotp.TOTP(secret).at(clock.now + 30 * steps)


def wrong_code(secret: str, clock) -> str:
    """A code that no step of the drift window produces."""
    window = {code_at(secret, clock, steps) for steps in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in window)


def enrolled_and_confirmed(tc, clock, user=USER) -> str:
    secret = enroll(tc, user)["secret"]
    confirmed = tc.post("/totp/confirm", json={"user_id": user, "code": code_at(secret, clock)})
    assert confirmed.get_json() == {"valid": True, "user_id": user, "status": "confirmed"}
    clock.advance(300)  # later logins happen in later steps
    return secret


def verify(tc, code, user=USER):
    return tc.post("/verify", json={"user_id": user, "channel": "totp", "code": code})


def redis_dump(url: str) -> list[bytes]:
    """Every key name and every value in the database, as bytes."""
    client = redis.Redis.from_url(url)
    found = []
    for key in client.scan_iter(count=1000):
        found.append(key)
        kind = client.type(key)
        if kind == b"string":
            found.append(client.get(key))
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                found += [field, value]
        elif kind == b"zset":
            found += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind in (b"set", b"list"):
            found += list(client.smembers(key) if kind == b"set" else client.lrange(key, 0, -1))
        found.append(client.dump(key))
    return found


# -- RFC 6238 -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("at,expected", RFC_VECTORS)
def test_rfc6238_sha1_vectors(at, expected):
    assert pyotp.TOTP(RFC_SECRET, digits=8).at(at) == expected
    # The service's 6-digit codes are the same truncation modulo 10**6: its matcher finds the RFC step.
    assert matching_step(RFC_SECRET, expected[-6:], at) == at // 30


def test_rfc6238_vectors_through_confirm_and_verify(totp_app, tc, clock):
    """The RFC seed, sealed into the store as an enrollment would, checked over HTTP at the RFC's times."""
    service = services(totp_app).totp
    service.store.enroll("rfc", sealed=service.sealer.seal("rfc", RFC_SECRET), enrollment="e1", label="rfc",
                         now_ms=int(clock.now * 1000), ttl_ms=900_000)
    clock.now = 1234567890
    assert tc.post("/totp/confirm", json={"user_id": "rfc", "code": "005924"}).get_json()["valid"] is True
    clock.now = 2000000000
    assert verify(tc, "279037", "rfc").get_json()["valid"] is True
    clock.now = 20000000000
    assert verify(tc, "353131", "rfc").get_json()["valid"] is False
    assert verify(tc, "353130", "rfc").get_json() == {"valid": True, "status": "approved", "user_id": "rfc",
                                                      "channel": "totp"}


# -- enrollment ---------------------------------------------------------------------------------------------
def test_enroll_gives_a_uri_an_authenticator_accepts(tc, clock):
    body = enroll(tc)
    assert body["status"] == "unconfirmed" and body["user_id"] == USER
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")
    assert body["expires_at"] == "2027-01-15T08:15:00Z"  # T0 + OTP_TOTP_ENROLL_TTL (900 s)
    parsed = pyotp.parse_uri(body["provisioning_uri"])
    assert isinstance(parsed, pyotp.TOTP) and parsed.secret == body["secret"]
    assert parsed.issuer == "Example Co" and parsed.name == USER
    assert parsed.digits == 6 and parsed.interval == 30
    assert parse_qs(urlparse(body["provisioning_uri"]).query)["issuer"] == ["Example Co"]
    assert len(base64.b32decode(body["secret"])) == 20  # 160 bits, RFC 4226's recommendation
    for steps in (-1, 0, 5):
        assert parsed.at(clock.now + 30 * steps) == code_at(body["secret"], clock, steps)
    # Scan-equivalent: the code from the parsed URI confirms the factor.
    confirmed = tc.post("/totp/confirm", json={"user_id": USER, "code": parsed.at(clock.now)})
    assert confirmed.status_code == 200 and confirmed.get_json()["status"] == "confirmed"


def test_get_shows_state_never_the_secret(tc, clock):
    secret = enroll(tc)["secret"]
    pending = tc.get(f"/totp/{USER}")
    assert pending.status_code == 200
    state = pending.get_json()
    assert state["status"] == "unconfirmed" and state["label"] == USER and state["confirmed_at"] is None
    assert state["expires_at"] is not None and state["attempts_remaining"] == 5 and state["locked_until"] is None
    tc.post("/totp/confirm", json={"user_id": USER, "code": code_at(secret, clock)})
    state = tc.get(f"/totp/{USER}").get_json()
    assert state["status"] == "confirmed" and state["expires_at"] is None
    assert state["confirmed_at"] == "2027-01-15T08:00:00Z" == state["last_used_at"]
    text = tc.get(f"/totp/{USER}").get_data(as_text=True)
    assert secret not in text and "secret" not in state and "provisioning_uri" not in state


def test_confirmed_factor_is_kept_without_expiry_and_an_enrollment_expires(totp_app, tc, clock, redis_url):
    client = redis.Redis.from_url(redis_url)
    factor_key, fail_key, day_key = keys.totp(USER)
    secret = enroll(tc)["secret"]
    assert 0 < client.pttl(factor_key) <= 900_000
    tc.post("/totp/confirm", json={"user_id": USER, "code": wrong_code(secret, clock)})
    assert 0 < client.pttl(fail_key) <= 900_000 and 0 < client.pttl(day_key) <= 86_400_000
    tc.post("/totp/confirm", json={"user_id": USER, "code": code_at(secret, clock)})
    assert client.pttl(factor_key) == -1  # a confirmed factor is a long-lived credential
    assert client.exists(fail_key) == 0  # consecutive failures reset by a right code
    # No key holds the user id in clear: it is hashed into the key name.
    assert not any(USER.encode() in key for key in client.keys("*"))
    # Every other key has an expiry.
    assert all(client.pttl(key) > 0 for key in client.keys("*") if key != factor_key.encode())


def test_re_enrolling_an_unconfirmed_factor_replaces_its_secret(tc, clock):
    old = enroll(tc)["secret"]
    new = enroll(tc)["secret"]
    assert old != new
    if code_at(old, clock) != code_at(new, clock):
        stale = tc.post("/totp/confirm", json={"user_id": USER, "code": code_at(old, clock)})
        assert stale.get_json()["valid"] is False
    assert tc.post("/totp/confirm", json={"user_id": USER, "code": code_at(new, clock)}).get_json()["valid"]


def test_a_confirmed_factor_must_be_deleted_before_enrolling_again(tc, clock):
    enrolled_and_confirmed(tc, clock)
    again = tc.post("/totp/enroll", json={"user_id": USER})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "totp_exists"
    confirm_again = tc.post("/totp/confirm", json={"user_id": USER, "code": "123456"})
    assert confirm_again.status_code == 409 and confirm_again.get_json()["error"]["code"] == "totp_exists"
    deleted = tc.delete(f"/totp/{USER}")
    assert deleted.status_code == 200 and deleted.get_json() == {"user_id": USER, "status": "deleted"}
    assert tc.delete(f"/totp/{USER}").get_json()["error"]["code"] == "totp_not_found"
    assert tc.get(f"/totp/{USER}").status_code == 404
    assert enroll(tc)["status"] == "unconfirmed"


def test_confirm_without_enrollment_is_404(tc):
    response = tc.post("/totp/confirm", json={"user_id": "nobody", "code": "123456"})
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "totp_not_found"


# -- verification -----------------------------------------------------------------------------------------
def test_verify_approves_once_and_refuses_a_replay_inside_the_window(tc, clock):
    secret = enrolled_and_confirmed(tc, clock)
    code = code_at(secret, clock)
    assert verify(tc, code).get_json() == {"valid": True, "status": "approved", "user_id": USER,
                                           "channel": "totp"}
    replay = verify(tc, code)
    assert replay.status_code == 200
    assert replay.get_json() == {"valid": False, "status": "pending", "attempts_remaining": 4, "user_id": USER,
                                 "channel": "totp"}
    clock.advance(30)  # the code's step is now "one behind": inside the drift window, still refused
    assert matching_step(secret, code, clock.now) is not None
    assert verify(tc, code).get_json()["valid"] is False
    assert verify(tc, code_at(secret, clock)).get_json()["valid"] is True


def test_drift_of_one_step_is_accepted_and_two_refused(tc, clock):
    secret = enrolled_and_confirmed(tc, clock)
    assert verify(tc, code_at(secret, clock, -1)).get_json()["valid"] is True
    assert verify(tc, code_at(secret, clock, +1)).get_json()["valid"] is True
    clock.advance(300)
    for steps in (-2, +2):
        code = code_at(secret, clock, steps)
        if code in {code_at(secret, clock, s) for s in (-1, 0, 1)}:
            continue  # a one-in-a-million collision with a code of the window
        assert verify(tc, code).get_json()["valid"] is False
    assert verify(tc, code_at(secret, clock)).get_json()["valid"] is True


def test_a_code_older_than_the_last_accepted_step_is_refused(tc, clock):
    secret = enrolled_and_confirmed(tc, clock)
    assert verify(tc, code_at(secret, clock, +1)).get_json()["valid"] is True
    # The current step's code is inside the window but before the step just used.
    assert verify(tc, code_at(secret, clock)).get_json()["valid"] is False


def test_wrong_codes_lock_the_factor(tc, clock):
    secret = enrolled_and_confirmed(tc, clock)
    right, wrong = code_at(secret, clock), wrong_code(secret, clock)
    for remaining in (4, 3, 2, 1):
        body = verify(tc, wrong).get_json()
        assert body["valid"] is False and body["attempts_remaining"] == remaining and body["status"] == "pending"
    assert verify(tc, wrong).get_json() == {"valid": False, "status": "max_attempts_reached",
                                            "attempts_remaining": 0, "user_id": USER, "channel": "totp"}
    locked = verify(tc, right)
    assert locked.status_code == 429 and locked.get_json()["error"]["code"] == "max_attempts_reached"
    assert 890 <= int(locked.headers["Retry-After"]) <= 900
    state = tc.get(f"/totp/{USER}").get_json()
    assert state["attempts_remaining"] == 0 and state["locked_until"] is not None
    confirm_state = tc.post("/totp/enroll", json={"user_id": USER})
    assert confirm_state.status_code == 409  # the lock cannot be dodged by re-enrolling a confirmed factor


def test_lock_expiry_lets_the_right_code_through(tc, clock, redis_url):
    secret = enrolled_and_confirmed(tc, clock)
    right, wrong = code_at(secret, clock), wrong_code(secret, clock)
    for _ in range(5):
        verify(tc, wrong)
    assert verify(tc, right).status_code == 429
    redis.Redis.from_url(redis_url).delete(keys.totp(USER)[1])  # the lockout window has passed
    assert verify(tc, right).get_json()["valid"] is True


def test_daily_failure_cap_spans_lockout_windows(make_app, clock, redis_url):
    clock.now, clock.frozen = T0, True
    tc = make_app(totp_key=KEY_A, number_failures_per_day=7).test_client()
    tc.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    secret = enrolled_and_confirmed(tc, clock)
    right, wrong = code_at(secret, clock), wrong_code(secret, clock)
    for _ in range(5):
        verify(tc, wrong)
    redis.Redis.from_url(redis_url).delete(keys.totp(USER)[1])  # the 15-minute lock has passed
    verify(tc, wrong), verify(tc, wrong)
    capped = verify(tc, right)
    assert capped.status_code == 429 and int(capped.headers["Retry-After"]) > 900


def test_verify_needs_a_confirmed_factor(tc, clock):
    assert verify(tc, "123456", "nobody").get_json()["error"]["code"] == "verification_not_found"
    secret = enroll(tc)["secret"]
    unconfirmed = verify(tc, code_at(secret, clock))
    assert unconfirmed.status_code == 404 and unconfirmed.get_json()["error"]["code"] == "verification_not_found"
    tc.post("/totp/confirm", json={"user_id": USER, "code": code_at(secret, clock)})
    clock.advance(60)
    tc.delete(f"/totp/{USER}")
    assert verify(tc, code_at(secret, clock)).status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"user_id": "a" * 129, "code": "123456"}, "user_id"), ({"user_id": "a/b", "code": "123456"}, "user_id"),
    ({"user_id": "", "code": "123456"}, "user_id"), ({"user_id": 7, "code": "123456"}, "user_id"),
    ({"user_id": USER, "code": "12345"}, "code"), ({"user_id": USER, "code": "１２３４５６"}, "code"),
    ({"user_id": USER, "code": 123456}, "code")])
def test_bad_input_is_400_and_uses_no_attempt(tc, clock, body, field):
    enrolled_and_confirmed(tc, clock)
    for path, extra in (("/verify", {"channel": "totp"}), ("/totp/confirm", {})):
        response = tc.post(path, json={**body, **extra})
        assert response.status_code == 400 and response.get_json()["error"]["field"] == field
    assert tc.get(f"/totp/{USER}").get_json()["attempts_remaining"] == 5


def test_bad_enroll_input_changes_nothing(tc, redis_url):
    for body in ({"user_id": "a b"}, {"user_id": USER, "label": "Example:alice"}, {"user_id": USER, "label": ""},
                 {"label": "x"}):
        assert tc.post("/totp/enroll", json=body).status_code == 400
    assert tc.get("/totp/a%20b").status_code == 400
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_unknown_channel_is_refused(tc):
    response = tc.post("/verify", json={"user_id": USER, "channel": "voice", "code": "123456"})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "channel"


def test_client_key_is_required(totp_app):
    anonymous = totp_app.test_client()
    for response in (anonymous.post("/totp/enroll", json={"user_id": USER}), anonymous.get(f"/totp/{USER}"),
                     anonymous.delete(f"/totp/{USER}"),
                     anonymous.post("/totp/confirm", json={"user_id": USER, "code": "123456"})):
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_concurrent_right_codes_give_exactly_one_approval(totp_app, tc, clock):
    from tests.support.app import LiveServer
    secret = enrolled_and_confirmed(tc, clock)
    server = LiveServer(totp_app)
    try:
        body = {"user_id": USER, "channel": "totp", "code": code_at(secret, clock)}
        with ThreadPoolExecutor(10) as pool:
            results = list(pool.map(lambda _: requests.post(
                f"{server.url}/verify", json=body, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=30),
                range(10)))
    finally:
        server.stop()
    assert [r.status_code == 200 and r.json()["valid"] for r in results].count(True) == 1
    assert all(r.status_code in (200, 429) for r in results)


def test_events_report_totp_verifications(totp_app, tc, clock):
    recorded = services(totp_app).totp.metrics = RecordingMetrics()
    secret = enrolled_and_confirmed(tc, clock)
    verify(tc, code_at(secret, clock))
    assert recorded.calls == [("verification", ("approved", "totp"), {})]


# -- secrets at rest --------------------------------------------------------------------------------------
def test_sealed_record_cannot_be_read_without_the_key(tc, clock, redis_url):
    secret = enrolled_and_confirmed(tc, clock)
    sealed = redis.Redis.from_url(redis_url).hget(keys.totp(USER)[0], "sb")
    assert secret.encode() not in sealed and base64.b32decode(secret) not in sealed
    with pytest.raises(CryptoError):
        SecretBox(base64.b64decode(KEY_B)).decrypt(sealed)
    assert Sealer(base64.b64decode(KEY_A)).open(USER, sealed) == secret
    with pytest.raises(CryptoError):
        Sealer(base64.b64decode(KEY_A)).open("mallory", sealed)  # bound to its user
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CryptoError):
        SecretBox(base64.b64decode(KEY_A)).decrypt(tampered)


def test_a_service_with_another_key_fails_closed(make_app, tc, clock):
    secret = enrolled_and_confirmed(tc, clock)
    other = make_app(totp_key=KEY_B).test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    response = verify(other, code_at(secret, clock))
    assert response.status_code == 500 and response.get_json()["error"]["code"] == "internal_error"


def test_redis_dump_holds_no_readable_secret(tc, clock, redis_url):
    secrets_seen = []
    for user in (USER, "bob", "carol"):
        secret = enrolled_and_confirmed(tc, clock, user)
        verify(tc, code_at(secret, clock), user)
        verify(tc, wrong_code(secret, clock), user)
        secrets_seen.append(secret)
    secrets_seen.append(enroll(tc, "dave")["secret"])  # an unconfirmed one too
    dump = redis_dump(redis_url)
    assert len(dump) > 10
    for secret in secrets_seen:
        raw = base64.b32decode(secret)
        for item in dump:
            assert secret.encode() not in item.upper() and raw not in item
            assert base64.b64encode(raw) not in item and raw.hex().encode() not in item


# -- configuration ----------------------------------------------------------------------------------------
PRODUCTION = {"OTP_ENV": "production", "OTP_TELNYX_API_KEY": "KEY", "OTP_TELNYX_PUBLIC_KEY": "pk",
              "OTP_CODE_SECRET": "s" * 40, "OTP_API_KEYS": "a" * 32, "OTP_ADMIN_TOKEN": "t" * 32,
              "OTP_REDIS_URL": "redis://127.0.0.1:1/0", "OTP_WEBHOOK_URL": "https://x/webhooks/telnyx",
              "OTP_TELNYX_FROM": "+13125550100"}


def test_production_needs_the_totp_key_unless_totp_is_off():
    with pytest.raises(ConfigError, match="OTP_TOTP_KEY"):
        Settings.from_env(PRODUCTION)
    assert Settings.from_env({**PRODUCTION, "OTP_TOTP_KEY": KEY_A}).totp_enabled
    assert not Settings.from_env({**PRODUCTION, "OTP_TOTP_ENABLED": "false"}).totp_enabled


@pytest.mark.parametrize("value", ["short", base64.b64encode(b"x" * 31).decode(), "not base64!!"])
def test_a_malformed_totp_key_is_refused(value):
    with pytest.raises(ConfigError, match="OTP_TOTP_KEY"):
        Settings.from_env({"OTP_TOTP_KEY": value})


def test_sandbox_without_a_key_derives_one_from_the_code_secret(make_app, clock, caplog):
    clock.now, clock.frozen = T0, True
    first = make_app().test_client()
    first.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    assert "OTP_TOTP_KEY is unset" in caplog.text
    secret = enrolled_and_confirmed(first, clock)
    second = make_app().test_client()  # another process with the same settings opens the same records
    second.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    assert verify(second, code_at(secret, clock)).get_json()["valid"] is True


def test_totp_can_be_switched_off(make_app):
    client = make_app(totp_enabled=False).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    assert client.post("/totp/enroll", json={"user_id": USER}).status_code == 404
    off = client.post("/verify", json={"user_id": USER, "channel": "totp", "code": "123456"})
    assert off.status_code == 400 and off.get_json()["error"]["field"] == "channel"


def test_redis_down_fails_closed(make_app, clock):
    clock.now, clock.frozen = T0, True
    client = make_app(totp_key=KEY_A, redis_url="redis://127.0.0.1:1/0", redis_timeout=0.2).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    for response in (client.post("/totp/enroll", json={"user_id": USER}), verify(client, "123456"),
                     client.post("/totp/confirm", json={"user_id": USER, "code": "123456"}),
                     client.get(f"/totp/{USER}"), client.delete(f"/totp/{USER}")):
        assert response.status_code == 503 and response.get_json()["error"]["code"] == "store_unavailable"


# -- the contract -----------------------------------------------------------------------------------------
def test_totp_responses_conform_to_the_openapi_document(totp_app, tc, clock):
    from tests.support.openapi_check import DocumentChecker

    check = DocumentChecker(totp_app)
    document = tc.get("/openapi.json").get_json()
    assert {"/totp/enroll", "/totp/confirm", "/totp/{user_id}"} <= set(document["paths"])
    assert check(tc, "post", "/totp/enroll", json={"user_id": USER, "label": "Alice"}).status_code == 201
    secret = check(tc, "post", "/totp/enroll", json={"user_id": USER}).get_json()["secret"]
    assert check(tc, "get", f"/totp/{USER}").status_code == 200
    wrong = check(tc, "post", "/totp/confirm", json={"user_id": USER, "code": wrong_code(secret, clock)})
    assert wrong.status_code == 200 and wrong.get_json()["valid"] is False
    right = check(tc, "post", "/totp/confirm", json={"user_id": USER, "code": code_at(secret, clock)})
    assert right.status_code == 200 and right.get_json()["status"] == "confirmed"
    assert check(tc, "post", "/totp/confirm", json={"user_id": USER, "code": "123456"}).status_code == 409
    assert check(tc, "post", "/totp/enroll", json={"user_id": USER}).status_code == 409
    assert check(tc, "get", f"/totp/{USER}").status_code == 200
    clock.advance(60)
    body = {"user_id": USER, "channel": "totp"}
    assert check(tc, "post", "/verify", json={**body, "code": code_at(secret, clock)}).get_json()["valid"] is True
    for _ in range(5):
        assert check(tc, "post", "/verify", json={**body, "code": wrong_code(secret, clock)}).status_code == 200
    assert check(tc, "post", "/verify", json={**body, "code": code_at(secret, clock, 1)}).status_code == 429
    assert check(tc, "post", "/verify", json={**body, "code": "12"}).status_code == 400
    assert check(tc, "get", "/totp/a%20b").status_code == 400
    assert check(tc, "post", "/totp/enroll", json={"user_id": "x", "label": "a:b"}).status_code == 400
    assert check(tc, "delete", f"/totp/{USER}").status_code == 200
    assert check(tc, "delete", f"/totp/{USER}").status_code == 404
    assert check(tc, "get", f"/totp/{USER}").status_code == 404
    assert check(tc, "post", "/totp/confirm", json={"user_id": USER, "code": "123456"}).status_code == 404
    assert check(tc, "post", "/verify", json={**body, "user_id": "nobody", "code": "123456"}).status_code == 404
    assert check(totp_app.test_client(), "post", "/totp/enroll", json={"user_id": USER}).status_code == 401
    assert check.checked == 24


def test_embedded_store_runs_the_totp_scripts(sim):
    """fakeredis (the sandbox's store) runs the same enroll and check scripts as a real server."""
    from otpservice import create_app
    from tests.support.app import Clock

    clock = Clock(T0)
    app = create_app(Settings(api_keys=(CLIENT_KEY,), telnyx_api_key="KEYtest", telnyx_base_url=sim.base_url,
                              telnyx_from="+13125550100"), clock=clock)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    user = "embedded-" + base64.b32encode(bytes(range(5))).decode()  # the embedded store outlives the test
    secret = enrolled_and_confirmed(client, clock, user)
    assert verify(client, code_at(secret, clock), user).get_json()["valid"] is True
    assert verify(client, code_at(secret, clock), user).get_json()["valid"] is False
    assert client.delete(f"/totp/{user}").status_code == 200

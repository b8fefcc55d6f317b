"""Every failure answers in the contract's JSON shape; production refuses to start without its secrets."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

from otpservice.config import ConfigError, Settings
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/json; charset=utf-8"
    body = response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


def test_unknown_route_wrong_method_and_bad_json(client):
    assert_json_error(client.get("/nope"), 404, "not_found")
    response = client.get("/request-code")
    assert_json_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_json_error(client.post("/request-code", data="{not json", content_type="application/json"), 400,
                      "invalid_request")
    assert_json_error(client.post("/request-code", json=["a", "list"]), 400, "invalid_request")
    assert_json_error(client.post("/request-code", data=b"\xff\xfe", content_type="application/json"), 400,
                      "invalid_request")


def test_oversized_body_is_413(client, sim):
    big = {"phone_number": "+13125550123", "padding": "x" * 70000}
    assert_json_error(client.post("/request-code", json=big), 413, "payload_too_large")


@pytest.mark.parametrize("terminated", [False, True])
def test_bodies_are_read_whole_with_or_without_a_content_length(client, terminated):
    """web.raw_body reads Content-Length bytes, or (a chunked upload: no length) everything, up to the limit.

    `wsgi.input_terminated` is what gunicorn sets; the body is parsed when the error names the code field.
    """
    body = b'{"phone_number": "+13125550123", "code": "12"}'
    extra = {"wsgi.input_terminated": True} if terminated else {}
    with_length = client.post("/verify", data=body, content_type="application/json", environ_overrides=extra)
    assert with_length.get_json()["error"]["field"] == "code"
    chunked = client.post("/verify", input_stream=io.BytesIO(body), content_type="application/json",
                          headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert chunked.get_json()["error"]["field"] == "code"
    big = io.BytesIO(b'{"phone_number": "+13125550123", "pad": "' + b"x" * 70000 + b'"}')
    assert_json_error(client.post("/verify", input_stream=big, content_type="application/json",
                                  headers={"Transfer-Encoding": "chunked"},
                                  environ_overrides={"wsgi.input_terminated": True}), 413, "payload_too_large")


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic dGVzdA==", f"Bearer {ADMIN_TOKEN}", "Bearer"])
def test_client_routes_need_a_client_key(app, sim, header):
    client = app.test_client()
    headers = {"Authorization": header} if header else {}
    for method, path in (("post", "/request-code"), ("post", "/verify"),
                         ("get", "/verifications/6f1c0000-0000-4000-8000-000000000000")):
        response = getattr(client, method)(path, json={"phone_number": "+13125550123"}, headers=headers)
        assert_json_error(response, 401, "unauthorized")


def test_unexpected_exception_is_a_json_500_without_traceback(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    body = assert_json_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True) and "Traceback" not in str(body)


def test_request_id_is_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"}).headers["X-Request-ID"]
    assert made and " " not in made and made != "bad id; <script>"


def test_production_without_secrets_names_every_missing_one():
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"OTP_ENV": "production"})
    for name in ("OTP_TELNYX_API_KEY", "OTP_TELNYX_PUBLIC_KEY", "OTP_CODE_SECRET", "OTP_API_KEYS",
                 "OTP_ADMIN_TOKEN", "OTP_REDIS_URL"):
        assert name in str(err.value)


def test_production_with_secrets_starts_and_a_short_secret_is_refused():
    env = {"OTP_ENV": "production", "OTP_TELNYX_API_KEY": "KEY", "OTP_TELNYX_PUBLIC_KEY": "pk",
           "OTP_CODE_SECRET": "s" * 40, "OTP_API_KEYS": f"{'a' * 32},{'b' * 32}", "OTP_ADMIN_TOKEN": "t" * 32,
           "OTP_REDIS_URL": "redis://127.0.0.1:1/0", "OTP_WEBHOOK_URL": "https://x/webhooks/telnyx",
           "OTP_TELNYX_FROM": "+13125550100", "OTP_TOTP_KEY": "A" * 43 + "="}
    settings = Settings.from_env(env)
    assert settings.api_keys == ("a" * 32, "b" * 32) and settings.production
    with pytest.raises(ConfigError, match="OTP_CODE_SECRET"):
        Settings.from_env({**env, "OTP_CODE_SECRET": "short"})
    # A guessable admin token or client key is refused too (the security bar: 32 characters or more).
    with pytest.raises(ConfigError, match="OTP_ADMIN_TOKEN must be at least 32"):
        Settings.from_env({**env, "OTP_ADMIN_TOKEN": "x"})
    with pytest.raises(ConfigError, match="OTP_API_KEYS must be at least 32"):
        Settings.from_env({**env, "OTP_API_KEYS": f"{'a' * 32},short"})
    with pytest.raises(ConfigError, match="OTP_TELNYX_MESSAGING_PROFILE_ID"):
        Settings.from_env({**env, "OTP_SEND_ENDPOINT": "number_pool"})


@pytest.mark.parametrize("name,value", [("OTP_CODE_DIGITS", "5"), ("OTP_CODE_DIGITS", "11"),
                                        ("OTP_CODE_TTL", "601"), ("OTP_MAX_ATTEMPTS", "6"),
                                        ("OTP_NUMBER_FAILURES_PER_DAY", "101"), ("OTP_PORT", "eighty"),
                                        ("OTP_SEND_ENDPOINT", "carrier_pigeon"), ("OTP_ENV", "staging")])
def test_values_outside_the_security_bar_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_cli_refuses_to_serve_in_production_without_secrets(tmp_path):
    env = {"OTP_ENV": "production", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "otpservice.cli", "serve"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "OTP_TELNYX_API_KEY" in result.stderr and "OTP_CODE_SECRET" in result.stderr


def test_embedded_store_serves_a_whole_loop_without_redis(sim, sim_signing_key):
    """fakeredis (the sandbox's embedded store) runs the same Lua scripts as a real server."""
    import time

    from otpservice import create_app
    from otpservice.sending.telnyx.signatures import public_key_b64
    from tests.support.app import SIM_API_KEY, code_from, outbox
    from tests.support.webhooks import delivery_event, post_signed

    settings = Settings(api_keys=(CLIENT_KEY,), telnyx_from="+13125550100", telnyx_base_url=sim.base_url,
                        telnyx_public_key=public_key_b64(sim_signing_key), telnyx_api_key=SIM_API_KEY)
    app = create_app(settings)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    sent = client.post("/request-code", json={"phone_number": "+13125550150"})
    assert sent.status_code == 202
    code = code_from(outbox(sim, "+13125550150")[0])
    assert client.post("/verify", json={"phone_number": "+13125550150", "code": code}).get_json()["valid"] is True
    event = delivery_event(sent.get_json()["delivery"]["message_id"], "delivered", to="+13125550150")
    assert post_signed(client, event, sim_signing_key, timestamp=time.time()).get_json()["result"] == "updated"

"""Property tests: whatever a caller sends, the answer is JSON, never a 5xx, and a refusal changes nothing."""
from __future__ import annotations

import json

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otpservice.core import codes
from tests.support.app import outbox

FIXTURES_OK = settings(max_examples=120, deadline=None, derandomize=True,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
phone_like = st.text(alphabet="+0123456789 ()-.٠١٢３４x*?[", max_size=24) | st.text(max_size=30)
digits_like = st.text(alphabet="0123456789０１２３٠١٢३४ \t\n", min_size=0, max_size=12)


def snapshot(redis_url: str, sim) -> tuple[int, int]:
    return redis.Redis.from_url(redis_url).dbsize(), len(outbox(sim))


def assert_error_shape(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.content_type == "application/json; charset=utf-8"
    body = response.get_json()
    if response.status_code >= 400:
        assert set(body) == {"error"} and isinstance(body["error"]["code"], str) and body["error"]["message"]


@FIXTURES_OK
@given(body=st.dictionaries(st.sampled_from(["phone_number", "purpose", "locale", "client_ip", "extra"]),
                            json_values, max_size=5))
def test_request_code_with_arbitrary_json_fields(client, sim, redis_url, body):
    before = snapshot(redis_url, sim)
    response = client.post("/request-code", json=body)
    assert_error_shape(response)
    if response.status_code != 202:
        assert snapshot(redis_url, sim) == before


@FIXTURES_OK
@given(number=phone_like, purpose=st.one_of(st.none(), st.text(max_size=40)))
def test_request_code_with_arbitrary_numbers_and_purposes(client, sim, redis_url, number, purpose):
    before = snapshot(redis_url, sim)
    body = {"phone_number": number} if purpose is None else {"phone_number": number, "purpose": purpose}
    response = client.post("/request-code", json=body)
    assert_error_shape(response)
    if response.status_code != 202:
        assert snapshot(redis_url, sim) == before


@FIXTURES_OK
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_break_a_route(client, sim, redis_url, raw):
    before = snapshot(redis_url, sim)
    for path in ("/request-code", "/verify"):
        response = client.post(path, data=raw, content_type="application/json")
        assert_error_shape(response)
    assert snapshot(redis_url, sim) == before


@FIXTURES_OK
@given(code=digits_like)
def test_only_exactly_six_ascii_digits_are_a_code(client, sim, redis_url, code):
    response = client.post("/verify", json={"phone_number": "+13125550123", "code": code})
    assert_error_shape(response)
    if codes.is_well_formed(code, 6):
        assert response.status_code == 404  # well formed, but nothing was issued
    else:
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_request"
    assert redis.Redis.from_url(redis_url).dbsize() == 0  # no attempt was counted anywhere


@FIXTURES_OK
@given(header=st.text(max_size=60), idem=st.text(min_size=0, max_size=200))
def test_arbitrary_header_values(app, sim, redis_url, header, idem):
    client = app.test_client()
    headers = {"Authorization": header}
    try:
        headers["Idempotency-Key"] = idem
        json.dumps(headers).encode("latin-1")
    except UnicodeEncodeError:
        return  # not representable as an HTTP header at all
    if any(ch in header + idem for ch in "\r\n\x00"):
        return
    before = snapshot(redis_url, sim)
    response = client.post("/request-code", json={"phone_number": "+13125550123"}, headers=headers)
    assert_error_shape(response)
    assert response.status_code == 401 and snapshot(redis_url, sim) == before


@given(digits=st.integers(min_value=6, max_value=10))
@settings(max_examples=20, derandomize=True)
def test_generated_codes_are_well_formed(digits):
    for _ in range(200):
        assert codes.is_well_formed(codes.generate_code(digits), digits)

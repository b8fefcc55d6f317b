"""POST /webhooks/telnyx, the signature layer: SDK-derived vectors, the 300 s window, malformed headers, garbage."""
from __future__ import annotations

import base64
import json
import logging
import uuid

import pytest
import redis

from otpservice.sending.telnyx.signatures import sign_webhook
from tests.support import telnyx_data
from tests.support.app import RecordingMetrics, services
from tests.support.openapi_check import DocumentChecker
from tests.support.webhooks import PATH, encode, envelope, post_signed

VECTOR_NOW = 1_700_000_000
DELIVERY_TYPES = ("message.sent", "message.finalized")


def vector_params(kind: str) -> list:
    """Every vector of one kind, from the project's copy (tests/support/telnyx)."""
    vectors = telnyx_data.vectors()["derived_vectors"][kind]
    return [pytest.param(v, id=v["name"]) for v in vectors]


def expected_verdict(payload: str) -> tuple[int, str | None]:
    """Our decision for a validly signed vector: none of them is a Telnyx event about one of our messages."""
    data = json.loads(payload).get("data")
    if not isinstance(data, dict) or not isinstance(data.get("event_type"), str):
        return 400, None
    return 200, "unknown_message" if data["event_type"] in DELIVERY_TYPES else "ignored"


def frozen_at(clock, when: float):
    clock.now, clock.frozen = when, True
    return clock


def stored_keys(redis_url: str) -> list[str]:
    """Every key of the suite's Redis (names, so a failure says what was written)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return sorted(key.decode() for key in client.keys("*"))
    finally:
        client.close()


def some_event(event_type: str = "call.initiated") -> dict:
    return envelope(event_type, {"id": str(uuid.uuid4())})


@pytest.mark.parametrize("vector", vector_params("valid"))
def test_valid_vector_through_the_endpoint(vector, make_app, clock, redis_url):
    frozen_at(clock, VECTOR_NOW)
    app = make_app(telnyx_public_key=vector["public_key_b64"])
    response = app.test_client().post(PATH, data=vector["payload"].encode(), headers={
        "telnyx-signature-ed25519": vector["signature_b64"], "telnyx-timestamp": vector["timestamp"],
        "Content-Type": "application/json"})
    status, result = expected_verdict(vector["payload"])
    assert response.status_code == status, response.get_json()
    if status == 200:
        assert response.get_json()["result"] == result
    else:
        assert response.get_json()["error"]["code"] == "invalid_payload"
    assert stored_keys(redis_url) == []  # nothing of ours was mentioned: nothing was written


@pytest.mark.parametrize("vector", vector_params("invalid"))
def test_invalid_vector_is_401_and_changes_nothing(vector, make_app, clock, redis_url):
    frozen_at(clock, VECTOR_NOW)
    app = make_app(telnyx_public_key=vector["public_key_b64"])
    response = app.test_client().post(PATH, data=vector["payload"].encode(), headers={
        "telnyx-signature-ed25519": vector["signature_b64"], "telnyx-timestamp": vector["timestamp"]})
    assert response.status_code == 401
    assert response.get_json() == {"error": {"code": "invalid_signature",
                                             "message": "The webhook signature is not valid."}}
    assert stored_keys(redis_url) == []


def test_vectors_fail_outside_their_window(make_app, clock):
    """The valid vectors are only valid near 1700000000: a clock 301 s later refuses them."""
    [vector] = [p.values[0] for p in vector_params("valid")[:1]]
    if vector is None:
        pytest.skip("vectors absent")
    frozen_at(clock, VECTOR_NOW + 301)
    app = make_app(telnyx_public_key=vector["public_key_b64"])
    response = app.test_client().post(PATH, data=vector["payload"].encode(), headers={
        "telnyx-signature-ed25519": vector["signature_b64"], "telnyx-timestamp": vector["timestamp"]})
    assert response.status_code == 401


@pytest.mark.parametrize("offset,status", [(-301, 401), (-300, 200), (-299, 200), (0, 200),
                                           (299, 200), (300, 200), (301, 401)])
def test_timestamp_window_edges(offset, status, app, clock, sim_signing_key):
    now = frozen_at(clock, 1_800_000_000).now
    response = post_signed(app.test_client(), some_event(), sim_signing_key, timestamp=now + offset)
    assert response.status_code == status


def test_header_names_are_case_insensitive(app, clock, sim_signing_key):
    clock.freeze()
    raw = encode(some_event())
    headers = {k.upper(): v for k, v in sign_webhook(sim_signing_key, raw, timestamp=int(clock())).items()}
    assert app.test_client().post(PATH, data=raw, headers=headers).status_code == 200


def malformed_headers(signed: dict) -> dict[str, dict]:
    sig, ts = signed["telnyx-signature-ed25519"], signed["telnyx-timestamp"]
    raw_sig = base64.b64decode(sig)
    return {
        "no headers": {},
        "no signature": {"telnyx-timestamp": ts},
        "no timestamp": {"telnyx-signature-ed25519": sig},
        "empty signature": {"telnyx-signature-ed25519": "", "telnyx-timestamp": ts},
        "not base64": {"telnyx-signature-ed25519": "!!" + sig[2:], "telnyx-timestamp": ts},
        "unpadded base64": {"telnyx-signature-ed25519": sig.rstrip("="), "telnyx-timestamp": ts},
        "63 bytes": {"telnyx-signature-ed25519": base64.b64encode(raw_sig[:63]).decode(), "telnyx-timestamp": ts},
        "65 bytes": {"telnyx-signature-ed25519": base64.b64encode(raw_sig + b"\0").decode(), "telnyx-timestamp": ts},
        "flipped bit": {"telnyx-signature-ed25519": base64.b64encode(bytes([raw_sig[0] ^ 1]) + raw_sig[1:]).decode(),
                        "telnyx-timestamp": ts},
        "timestamp with sign": {"telnyx-signature-ed25519": sig, "telnyx-timestamp": "+" + ts},
        "timestamp with space": {"telnyx-signature-ed25519": sig, "telnyx-timestamp": ts + " "},
        "timestamp in ms": {"telnyx-signature-ed25519": sig, "telnyx-timestamp": ts + "000"},
        "timestamp not a number": {"telnyx-signature-ed25519": sig, "telnyx-timestamp": "yesterday"},
    }


@pytest.mark.parametrize("case", list(malformed_headers({"telnyx-signature-ed25519": "AA==",
                                                          "telnyx-timestamp": "1"})))
def test_missing_or_malformed_headers_are_401(case, app, clock, sim_signing_key, redis_url):
    clock.freeze()
    raw = encode(some_event())
    headers = malformed_headers(sign_webhook(sim_signing_key, raw, timestamp=int(clock())))[case]
    response = app.test_client().post(PATH, data=raw, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert stored_keys(redis_url) == []


def test_reserialised_json_and_other_keys_are_refused(app, clock, sim_signing_key):
    import nacl.signing
    clock.freeze()
    document = some_event()
    raw = encode(document)
    signed = sign_webhook(sim_signing_key, raw, timestamp=int(clock()))
    client = app.test_client()
    assert client.post(PATH, data=json.dumps(document).encode(), headers=signed).status_code == 401  # spaces
    assert client.post(PATH, json=document, headers=signed).status_code == 401
    assert client.post(PATH, data=raw + b"\n", headers=signed).status_code == 401
    stranger = nacl.signing.SigningKey.generate()
    assert post_signed(client, raw, stranger, timestamp=clock()).status_code == 401
    assert client.post(PATH, data=raw, headers=signed).status_code == 200  # the untouched original passes


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b"[]", b"null", b'"data"', b"{}",
                                 b'{"data": []}', b'{"data": {}}', b'{"data": {"event_type": 7}}',
                                 b'{"data": {"event_type": ""}}', b'{"event_type": "message.finalized"}'])
def test_signed_garbage_is_400_invalid_payload(raw, app, clock, sim_signing_key, redis_url):
    clock.freeze()
    response = post_signed(app.test_client(), raw, sim_signing_key, timestamp=clock())
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_payload"
    assert stored_keys(redis_url) == []


def test_unknown_event_types_are_acknowledged(app, clock, sim_signing_key, redis_url):
    clock.freeze()
    for event_type in ("call.initiated", "message.queued", "fax.received"):
        response = post_signed(app.test_client(), some_event(event_type), sim_signing_key, timestamp=clock())
        assert response.status_code == 200
        assert response.get_json() == {"result": "ignored", "event_type": event_type}
    assert stored_keys(redis_url) == []


def test_failure_reason_goes_to_logs_and_events_only(app, clock, sim_signing_key, caplog):
    recorded = services(app).delivery.metrics = RecordingMetrics()
    now = frozen_at(clock, 1_800_000_000).now
    with caplog.at_level(logging.WARNING, logger="otpservice.core.delivery"):
        response = post_signed(app.test_client(), some_event(), sim_signing_key, timestamp=now - 400)
    assert response.status_code == 401 and b"stale" not in response.data
    assert ("signature_failure", ("stale",), {}) in recorded.calls
    assert [r.reason for r in caplog.records if hasattr(r, "reason")] == ["stale"]


def test_no_public_key_refuses_every_webhook(make_app, clock, sim_signing_key):
    clock.freeze()
    app = make_app(telnyx_public_key="")
    assert post_signed(app.test_client(), some_event(), sim_signing_key, timestamp=clock()).status_code == 401


def test_responses_conform_to_the_document(app, clock, sim_signing_key):
    clock.freeze()
    check = DocumentChecker(app)
    client = app.test_client()
    raw = encode(some_event())
    signed = {**sign_webhook(sim_signing_key, raw, timestamp=int(clock())), "Content-Type": "application/json"}
    assert check(client, "post", PATH, data=raw, headers=signed).status_code == 200
    garbage = b'{"data": {}}'
    bad = {**sign_webhook(sim_signing_key, garbage, timestamp=int(clock())), "Content-Type": "application/json"}
    assert check(client, "post", PATH, data=garbage, headers=bad).status_code == 400
    assert check(client, "post", PATH, data=raw, headers={"Content-Type": "application/json"}).status_code == 401
    assert client.get(PATH).get_json()["error"]["code"] == "method_not_allowed"
    document = client.get("/openapi.json").get_json()
    assert document["paths"][PATH]["post"]["security"] == []

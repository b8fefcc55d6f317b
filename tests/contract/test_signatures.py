"""Ed25519 webhook signatures: SDK-derived known answers, the 300 s window, malformed input, tampering."""

from __future__ import annotations

import base64

import nacl.signing
import pytest

from tests.support import telnyx_data
from otpservice.sending.telnyx.signatures import (
    TOLERANCE_SECONDS,
    SignatureError,
    load_verify_key,
    public_key_b64,
    sign_webhook,
    signing_key_from_seed_b64,
    verify_webhook,
)

VECTOR_NOW = 1_700_000_000
BODY = b'{"data":{"event_type":"message.received","id":"test-123"}}'


def _vectors() -> dict:
    """The project's copy of the vectors (tests/support/telnyx)."""
    return telnyx_data.vectors()


def _vector_params(kind: str) -> list:
    """Vector names for parametrisation."""
    return [pytest.param(v["name"], id=v["name"]) for v in _vectors()["derived_vectors"][kind]]


def _vector(kind: str, name: str) -> dict:
    """One derived vector by name."""
    return next(v for v in _vectors()["derived_vectors"][kind] if v["name"] == name)


def _headers(signature_b64: str, timestamp: str) -> dict[str, str]:
    """Telnyx's two headers."""
    return {"telnyx-signature-ed25519": signature_b64, "telnyx-timestamp": timestamp}


def _reason(verify_key, headers, body, now) -> str:
    """The SignatureError reason for a verification expected to fail."""
    with pytest.raises(SignatureError) as info:
        verify_webhook(verify_key, headers, body, now=now)
    return info.value.reason


@pytest.fixture(scope="module")
def key() -> nacl.signing.SigningKey:
    """A fresh real Ed25519 key for round trips."""
    return nacl.signing.SigningKey.generate()


@pytest.mark.parametrize("name", _vector_params("valid"))
def test_valid_vectors_verify(name):
    vector = _vector("valid", name)
    assert vector["expect_signature_valid"] is True
    verify_webhook(
        load_verify_key(vector["public_key_b64"]),
        _headers(vector["signature_b64"], vector["timestamp"]),
        vector["payload"].encode("utf-8"),
        now=VECTOR_NOW,
    )  # raises if wrong


@pytest.mark.parametrize("name", _vector_params("valid"))
def test_valid_vectors_are_reproduced_by_signing_with_the_sdk_private_keys(name):
    vectors = _vectors()
    vector = _vector("valid", name)
    pairs = {
        "telnyx-php": vectors["sdk_fixtures_copied_verbatim"]["keypairs"][0],
        "telnyx-java": vectors["sdk_fixtures_copied_verbatim"]["keypairs"][1],
    }
    pair = pairs[vector["keypair"]]
    secret = (
        pair.get("private_key_b64_raw_32_byte_seed")
        or pair["secret_key_b64_libsodium_64_bytes_seed_plus_public"]
    )
    signing_key = signing_key_from_seed_b64(secret)
    assert public_key_b64(signing_key) == vector["public_key_b64"]
    headers = sign_webhook(signing_key, vector["payload"].encode("utf-8"), timestamp=int(vector["timestamp"]))
    assert headers == _headers(vector["signature_b64"], vector["timestamp"])


@pytest.mark.parametrize("name", _vector_params("invalid"))
def test_invalid_vectors_are_rejected_as_mismatch(name):
    vector = _vector("invalid", name)
    assert vector["expect_signature_valid"] is False
    reason = _reason(
        load_verify_key(vector["public_key_b64"]),
        _headers(vector["signature_b64"], vector["timestamp"]),
        vector["payload"].encode("utf-8"),
        VECTOR_NOW,
    )
    assert reason == "mismatch"


def test_vectors_are_stale_with_the_real_clock():
    vector = _vector("valid", "php_key_message_received_minimal")
    reason = _reason(
        vector["public_key_b64"],
        _headers(vector["signature_b64"], vector["timestamp"]),
        vector["payload"].encode(),
        VECTOR_NOW + 10 * 365 * 86400,
    )
    assert reason == "stale"


def test_sdk_invalid_inputs():
    sdk = _vectors()["sdk_fixtures_copied_verbatim"]
    bad = sdk["invalid_inputs_used_in_sdk_tests"]
    php_key = sdk["keypairs"][0]["public_key_b64"]
    ts = str(VECTOR_NOW)
    assert _reason(php_key, _headers(bad["zero_signature_b64_64_bytes"], ts), BODY, VECTOR_NOW) == "mismatch"
    assert (
        _reason(php_key, _headers(bad["java_wrong_size_signature_b64"], ts), BODY, VECTOR_NOW) == "bad_length"
    )
    # A 32-byte key that is not the signer's (the Java SDK's dummy key) never verifies a real signature.
    valid = _vector("valid", "php_key_message_received_minimal")
    dummy = bad["java_valid_size_dummy_key_b64_32_bytes"]
    assert (
        _reason(dummy, _headers(valid["signature_b64"], ts), valid["payload"].encode(), VECTOR_NOW)
        == "mismatch"
    )
    with pytest.raises(ValueError):
        load_verify_key(bad["java_invalid_key_b64_4_bytes"])
    assert (
        _reason(
            bad["java_invalid_key_b64_4_bytes"],
            _headers(valid["signature_b64"], ts),
            valid["payload"].encode(),
            VECTOR_NOW,
        )
        == "bad_key"
    )
    expired = bad["expired_timestamp_used_in_sdk_tests"]
    assert _reason(php_key, _headers(valid["signature_b64"], expired), BODY, VECTOR_NOW) == "stale"


@pytest.mark.parametrize(
    "offset, expected",
    [
        (TOLERANCE_SECONDS - 1, None),
        (TOLERANCE_SECONDS, None),
        (TOLERANCE_SECONDS + 1, "stale"),
        (-(TOLERANCE_SECONDS - 1), None),
        (-TOLERANCE_SECONDS, None),
        (-(TOLERANCE_SECONDS + 1), "future"),
    ],
)
def test_window_edges(key, offset, expected):
    """now - timestamp = offset: 300 s either way passes, 301 s fails."""
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    if expected is None:
        verify_webhook(key.verify_key, headers, BODY, now=VECTOR_NOW + offset)
    else:
        assert _reason(key.verify_key, headers, BODY, VECTOR_NOW + offset) == expected


def test_fractional_now_just_past_the_window_fails(key):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW + 300.5) == "stale"


@pytest.mark.parametrize("drop", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_missing_headers(key, drop):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    del headers[drop]
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW) == "missing_header"
    headers[drop] = ""
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW) == "missing_header"


@pytest.mark.parametrize(
    "timestamp", ["abc", "-5", "1700000000.0", " 1700000000", "1e9", "１７００００００００"]
)
def test_malformed_timestamps(key, timestamp):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    headers["telnyx-timestamp"] = timestamp
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW) == "bad_timestamp"


@pytest.mark.parametrize("signature", ["not base64!", "AAAA=AAA", "tMXRZyBL2gkwrgKp6CTDXTO"])
def test_malformed_signatures(key, signature):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    headers["telnyx-signature-ed25519"] = signature
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW) == "bad_base64"


def test_signature_of_wrong_length(key):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    signature = base64.b64decode(headers["telnyx-signature-ed25519"])
    headers["telnyx-signature-ed25519"] = base64.b64encode(signature + b"\0").decode()
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW) == "bad_length"


def test_headers_are_matched_case_insensitively(key):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    mixed = {
        "Telnyx-Signature-Ed25519": headers["telnyx-signature-ed25519"],
        "TELNYX-TIMESTAMP": headers["telnyx-timestamp"],
    }
    verify_webhook(key.verify_key, mixed, BODY, now=VECTOR_NOW)


def test_two_different_values_for_one_header_are_refused(key):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    headers["Telnyx-Timestamp"] = str(VECTOR_NOW + 1)
    assert _reason(key.verify_key, headers, BODY, VECTOR_NOW) == "duplicate_header"


def test_round_trip_and_every_tampered_byte(key):
    body = b'{"data":{"event_type":"message.finalized","id":"e1","payload":{"to":[{"status":"delivered"}]}}}'
    headers = sign_webhook(key, body, timestamp=VECTOR_NOW)
    verify_webhook(key.verify_key, headers, body, now=VECTOR_NOW)
    verify_webhook(public_key_b64(key), headers, body, now=VECTOR_NOW)  # the portal's base64 form works too
    for index in range(len(body)):
        tampered = bytearray(body)
        tampered[index] ^= 0x01
        assert _reason(key.verify_key, headers, bytes(tampered), VECTOR_NOW) == "mismatch"
    signature = bytearray(base64.b64decode(headers["telnyx-signature-ed25519"]))
    signature[10] ^= 0x80
    forged = {**headers, "telnyx-signature-ed25519": base64.b64encode(signature).decode()}
    assert _reason(key.verify_key, forged, body, VECTOR_NOW) == "mismatch"


def test_other_key_does_not_verify(key):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    other = nacl.signing.SigningKey.generate()
    assert _reason(other.verify_key, headers, BODY, VECTOR_NOW) == "mismatch"


def test_body_must_be_raw_bytes(key):
    headers = sign_webhook(key, BODY, timestamp=VECTOR_NOW)
    with pytest.raises(TypeError):
        verify_webhook(key.verify_key, headers, BODY.decode(), now=VECTOR_NOW)


@pytest.mark.parametrize("bad", ["", "   ", "not base64", "dGVzdA==", base64.b64encode(b"x" * 33).decode()])
def test_load_verify_key_rejects_bad_keys(bad):
    with pytest.raises(ValueError):
        load_verify_key(bad)


def test_signing_keys_from_seeds():
    seed = base64.b64encode(bytes(range(32))).decode()
    first, second = signing_key_from_seed_b64(seed), signing_key_from_seed_b64(seed)
    assert public_key_b64(first) == public_key_b64(second)
    assert public_key_b64(signing_key_from_seed_b64(None)) != public_key_b64(signing_key_from_seed_b64(None))
    assert len(base64.b64decode(public_key_b64(first))) == 32
    for bad in ("", "dGVzdA==", "###", base64.b64encode(bytes(64)).decode()):
        with pytest.raises(ValueError):
            signing_key_from_seed_b64(bad)


def test_sign_webhook_rejects_non_integer_timestamps(key):
    for bad in (1.5, "1700000000", True, -1):
        with pytest.raises(ValueError):
            sign_webhook(key, BODY, timestamp=bad)

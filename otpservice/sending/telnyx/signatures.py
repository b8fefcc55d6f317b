"""Ed25519 signing and verification of Telnyx webhooks: pure functions over raw bytes, time passed in.

The reasons a signature is refused are vocabulary.SIGNATURE_FAILURES (logs and metrics only)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

import nacl.exceptions
import nacl.signing

from otpservice.sending.base import WebhookSignatureError

TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
SIGNATURE_BYTES = 64
KEY_BYTES = 32
# Unix seconds as plain ASCII digits: anything else (signs, spaces, unicode digits) is refused, because the
# header value is part of the signed bytes and must be taken exactly as sent.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")


class SignatureError(WebhookSignatureError):
    """A Telnyx webhook failed verification; `reason` is a short machine word for logs and metrics only."""


def _b64decode(value: str) -> bytes:
    """Strict standard base64 (padding required, no stray characters)."""
    return base64.b64decode(value, validate=True)


def load_verify_key(public_key_b64: str) -> nacl.signing.VerifyKey:
    """The VerifyKey for a base64 raw 32-byte Ed25519 public key; ValueError if it is not one."""
    if not isinstance(public_key_b64, str) or not public_key_b64.strip():
        raise ValueError("public key must be a non-empty base64 string")
    try:
        raw = _b64decode(public_key_b64.strip())
    except (binascii.Error, ValueError) as exc:
        raise ValueError("public key is not valid base64") from exc
    if len(raw) != KEY_BYTES:
        raise ValueError(f"public key must be {KEY_BYTES} bytes, got {len(raw)}")
    return nacl.signing.VerifyKey(raw)


def _header(headers: Mapping[str, str], name: str) -> str:
    """One header's value, matched case-insensitively; two different values for it are refused."""
    found: str | None = None
    for key, value in headers.items():
        if key.lower() != name:
            continue
        if found is not None and value != found:
            # A dict can hold "Telnyx-Timestamp" and "telnyx-timestamp" at once: never guess which one counts.
            raise SignatureError("duplicate_header")
        found = value
    if found is None or found == "":
        raise SignatureError("missing_header")
    return found


def verify_webhook(
    verify_key: nacl.signing.VerifyKey | str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
) -> None:
    """Raise SignatureError unless `body` carries a valid, fresh Telnyx Ed25519 signature."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        # Re-serialised JSON never verifies, so only the raw request bytes are accepted.
        raise TypeError("body must be the raw request bytes")
    if isinstance(verify_key, str):
        try:
            verify_key = load_verify_key(verify_key)
        except ValueError as exc:
            raise SignatureError("bad_key") from exc
    signature_b64 = _header(headers, SIGNATURE_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError("bad_timestamp")
    age = now - int(timestamp)
    if age > TOLERANCE_SECONDS:
        raise SignatureError("stale")
    if age < -TOLERANCE_SECONDS:
        raise SignatureError("future")
    try:
        signature = _b64decode(signature_b64)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("bad_base64") from exc
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError("bad_length")
    signed = timestamp.encode("ascii") + b"|" + bytes(body)
    try:
        verify_key.verify(signed, signature)  # libsodium: constant-time
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError) as exc:
        raise SignatureError("mismatch") from exc


def sign_webhook(signing_key: nacl.signing.SigningKey, body: bytes, *, timestamp: int) -> dict[str, str]:
    """The two Telnyx signature headers for `body` sent at `timestamp` (Unix seconds)."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int")
    stamp = str(timestamp)
    signature = signing_key.sign(stamp.encode("ascii") + b"|" + bytes(body)).signature
    return {SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"), TIMESTAMP_HEADER: stamp}


def signing_key_from_seed_b64(seed_b64: str | None) -> nacl.signing.SigningKey:
    """A SigningKey from a base64 32-byte seed (or libsodium's 64-byte secret); None: a fresh one."""
    if seed_b64 is None:
        return nacl.signing.SigningKey.generate()
    try:
        raw = _b64decode(seed_b64.strip())
    except (binascii.Error, ValueError, AttributeError) as exc:
        raise ValueError("signing key seed is not valid base64") from exc
    if len(raw) == 2 * KEY_BYTES:
        key = nacl.signing.SigningKey(raw[:KEY_BYTES])
        if bytes(key.verify_key) != raw[KEY_BYTES:]:
            raise ValueError("64-byte secret key: its public half does not match its seed")
        return key
    if len(raw) != KEY_BYTES:
        raise ValueError(f"signing key seed must be {KEY_BYTES} bytes, got {len(raw)}")
    return nacl.signing.SigningKey(raw)


def public_key_b64(signing_key: nacl.signing.SigningKey) -> str:
    """The base64 raw public key of `signing_key`, as the Telnyx portal shows it."""
    return base64.b64encode(bytes(signing_key.verify_key)).decode("ascii")

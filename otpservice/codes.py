"""Code generation and hashing: pure functions, no I/O.

Codes come from the OS CSPRNG, uniform over every value of the configured length. Redis only ever
sees `code_hash()`, an HMAC under a server secret that is not in Redis, so a dump reveals no code.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

HASH_BYTES = 16  # a truncated HMAC-SHA256: 128 bits is far beyond any guessing budget, and halves memory


def generate_code(digits: int) -> str:
    """A uniformly random code of exactly `digits` decimal digits (leading zeros kept)."""
    return str(secrets.randbelow(10 ** digits)).zfill(digits)


def is_well_formed(code: object, digits: int) -> bool:
    """True for exactly `digits` ASCII digits: fullwidth or other Unicode digits are refused.

    `isdigit` alone admits other scripts' digits (and superscripts); with `isascii` it means exactly 0-9.
    """
    return isinstance(code, str) and len(code) == digits and code.isascii() and code.isdigit()


def code_hash(secret: bytes, phone: str, purpose: str, code: str) -> bytes:
    """HMAC binding a code to its number and purpose: the only form in which a code is stored."""
    mac = _keyed(secret).copy()  # keyed once per secret: a copy skips OpenSSL's digest lookup and key setup
    mac.update(f"code\x00{phone}\x00{purpose}\x00{code}".encode())
    return mac.digest()[:HASH_BYTES]


@functools.lru_cache(maxsize=8)  # one secret per service (tests make a few)
def _keyed(secret: bytes) -> hmac.HMAC:
    return hmac.new(secret, digestmod=hashlib.sha256)


def number_digest(phone: str) -> str:
    """A stable pseudonym for a phone number in Redis key names, so no caller text becomes a key or pattern.

    Unkeyed on purpose: the record beside it holds the number anyway, and opt-outs (kept until removed)
    must survive a rotation of OTP_CODE_SECRET.
    """
    return hashlib.sha256(f"number\x00{phone}".encode()).hexdigest()[:32]


def bucket(phone: str) -> str:
    """The Redis Cluster hash tag of a number: 4 hex digits (65,536 buckets spread over the 16,384 slots).

    Every key of one number (its verifications, cooldown, failure counter) carries this tag, so one Lua
    script can touch them together on a cluster; the same 4 digits lead the verification id, so a
    lookup by id finds the slot without another round trip. They are the digest's first 4: one hash per
    request gives both (store.Store.number_keys).
    """
    return number_digest(phone)[:4]


def new_verification_id(bucket_tag: str) -> str:
    """A random UUID (version 4 layout) whose first 4 hex digits are the number's bucket."""
    raw = bytearray(secrets.token_bytes(16))
    raw[0:2] = bytes.fromhex(bucket_tag)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"

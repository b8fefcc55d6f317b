"""Code generation and hashing: pure functions, no I/O.

Codes come from the OS CSPRNG, uniform over every value of the configured length. Redis only ever
sees `code_hash()`, an HMAC under a server secret that is not in Redis, so a dump reveals no code.
"""
from __future__ import annotations

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
    message = f"code\x00{phone}\x00{purpose}\x00{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:HASH_BYTES]

"""Authenticator-app factors (TOTP, RFC 6238): enroll, confirm, verify, read and delete. No Flask here.

A factor's secret (160 bits from `secrets`, via pyotp) is shown once, at enrollment, as an otpauth:// URI,
base32 text and a QR code; after that it exists only sealed with SecretBox under OTP_TOTP_KEY, a key Redis
never sees. Codes are 6 digits, SHA-1, 30 s steps: what every authenticator app speaks. A code is accepted
for the step before, at or after now (±30 s of clock drift) and each step at most once: the factor keeps
the last step it accepted, and the store accepts only a later one, in the same atomic step that counts
wrong attempts. OTP_MAX_ATTEMPTS wrong codes lock the factor for OTP_TOTP_LOCKOUT.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pyotp
import segno
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from otpservice import vocabulary
from otpservice.config import Settings, totp_key_bytes
from otpservice.core import codes
from otpservice.errors import InternalError, InvalidRequest, MaxAttemptsReached, TotpExists, TotpNotFound, \
    VerificationNotFound
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.storage.totp import CheckResult, Factor, TotpStore

log = logging.getLogger(__name__)

DIGITS = 6
PERIOD = 30
DRIFT_STEPS = 1
DAY_MS = 86_400_000
USER_ID_RE = re.compile(r"^[A-Za-z0-9._@+=:-]{1,128}$")
LABEL_MAX = 128
SEAL_CONTEXT = b"otpservice-totp-v1"


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC, or None."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_user_id(value: object) -> str:
    """A user id: 1-128 characters of letters, digits and `. _ - @ + = :`; InvalidRequest otherwise."""
    if not isinstance(value, str) or not USER_ID_RE.match(value):
        raise InvalidRequest("user_id must be 1-128 characters of A-Z, a-z, 0-9 and . _ - @ + = :",
                             field="user_id")
    return value


def parse_label(value: object, default: str) -> str:
    """The account name the app shows; the Key URI format forbids a colon in it."""
    if value is None:
        return default
    if (not isinstance(value, str) or not 1 <= len(value) <= LABEL_MAX or ":" in value
            or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)):
        raise InvalidRequest(f"label must be 1-{LABEL_MAX} printable characters without a colon.", field="label")
    return value


def parse_code(value: object) -> str:
    """Exactly 6 ASCII digits, else InvalidRequest (and no attempt is used)."""
    if not codes.is_well_formed(value, DIGITS):
        raise InvalidRequest(f"code must be exactly {DIGITS} digits 0-9.", field="code")
    return value  # type: ignore[return-value]


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The latest time step within ±DRIFT_STEPS of `now` whose code is `code`, or None."""
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = int(now // PERIOD)
    found = None
    # Every candidate is compared (no early exit), newest first so a collision picks the latest step.
    for step in range(current + DRIFT_STEPS, current - DRIFT_STEPS - 1, -1):
        if hmac.compare_digest(otp.generate_otp(step), code) and found is None:
            found = step
    return found


def qr_svg(uri: str) -> str:
    """The URI as a standalone SVG QR code (no XML declaration, so it can also be inlined in HTML)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, nl=False)
    return buffer.getvalue().decode()


class Sealer:
    """SecretBox sealing bound to the user: a sealed secret copied onto another user's record never opens."""

    def __init__(self, key: bytes) -> None:
        self.box = SecretBox(key)

    def seal(self, user_id: str, secret: str) -> bytes:
        """Encrypt and authenticate a secret (random nonce prepended)."""
        return bytes(self.box.encrypt(self._plaintext(user_id, secret)))

    def open(self, user_id: str, sealed: bytes) -> str:
        """The secret, or CryptoError (wrong key, tampered, or sealed for another user)."""
        plain = self.box.decrypt(sealed)
        prefix = self._plaintext(user_id, "")
        if not hmac.compare_digest(plain[:len(prefix)], prefix):
            raise CryptoError("sealed for another user")
        return plain[len(prefix):].decode()

    @staticmethod
    def _plaintext(user_id: str, secret: str) -> bytes:
        return SEAL_CONTEXT + b"\x00" + user_id.encode() + b"\x00" + secret.encode()


def sealing_key(settings: Settings) -> bytes:
    """OTP_TOTP_KEY, or in a sandbox without one a key derived from OTP_CODE_SECRET (with a warning)."""
    if settings.totp_key:
        return totp_key_bytes(settings.totp_key)
    # Production refuses to start without OTP_TOTP_KEY (Settings.validate); this is a sandbox convenience,
    # stable across restarts and processes as long as OTP_CODE_SECRET is.
    log.warning("OTP_TOTP_KEY is unset: sealing TOTP secrets with a key derived from OTP_CODE_SECRET "
                "(sandbox only)")
    return hashlib.sha256(b"otpservice totp key\x00" + settings.code_secret.encode()).digest()


class TotpService:
    """Enroll, confirm, verify, read and delete authenticator factors over a TotpStore."""

    def __init__(self, *, settings: Settings, store: TotpStore, key: bytes,
                 clock: Callable[[], float] = time.time, metrics: Metrics | NullMetrics | None = None) -> None:
        self.settings = settings
        self.store = store
        self.sealer = Sealer(key)
        self.clock = clock
        self.metrics = metrics or NullMetrics()

    def enroll(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a new secret for a user and return it, once, with its URI and QR code."""
        user_id = parse_user_id(body.get("user_id"))
        label = parse_label(body.get("label"), user_id)
        secret = pyotp.random_base32()
        now_ms = int(self.clock() * 1000)
        ttl_ms = self.settings.totp_enroll_ttl * 1000
        if not self.store.enroll(user_id, sealed=self.sealer.seal(user_id, secret),
                                 enrollment=secrets.token_hex(8), label=label, now_ms=now_ms, ttl_ms=ttl_ms):
            raise TotpExists()
        uri = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
            name=label, issuer_name=self.settings.app_name)
        log.info("totp enrolled", extra={"user": user_digest_for_logs(user_id)})
        return {"user_id": user_id, "status": "unconfirmed", "provisioning_uri": uri, "secret": secret,
                "qr_svg": qr_svg(uri), "expires_at": iso(now_ms + ttl_ms)}

    def confirm(self, body: dict[str, Any]) -> dict[str, Any]:
        """Confirm an enrollment with a code from the app; a wrong code answers `valid: false`."""
        user_id = parse_user_id(body.get("user_id"))
        code = parse_code(body.get("code"))
        factor = self.store.get(user_id)
        if factor is not None and factor.status == "confirmed":
            raise TotpExists("This factor is already confirmed.")
        result = self._check(user_id, code, factor, want="unconfirmed")
        if result.outcome == "not_found":
            raise TotpNotFound("No enrollment is waiting for confirmation: enroll first (it may have expired).")
        if result.outcome == "max_attempts":
            raise locked(result)
        if result.outcome == "approved":
            return {"valid": True, "user_id": user_id, "status": "confirmed"}
        return {"valid": False, "user_id": user_id, "status": "unconfirmed",
                "attempts_remaining": self._remaining(result)}

    def verify(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /verify` with channel totp: the same shapes and errors as an SMS code."""
        user_id = parse_user_id(body.get("user_id"))
        code = parse_code(body.get("code"))
        result = self._check(user_id, code, self.store.get(user_id), want="confirmed")
        self.metrics.verification(result.outcome, vocabulary.TOTP)
        log.info("verify", extra={"user": user_digest_for_logs(user_id), "channel": "totp",
                                  "result": result.outcome})
        if result.outcome == "not_found":
            raise VerificationNotFound("No confirmed authenticator factor for this user.")
        if result.outcome == "max_attempts":
            raise locked(result)
        answer = {"user_id": user_id, "channel": "totp"}
        if result.outcome == "approved":
            return {"valid": True, "status": "approved", **answer}
        remaining = self._remaining(result)
        return {"valid": False, "status": "pending" if remaining else "max_attempts_reached",
                "attempts_remaining": remaining, **answer}

    def get(self, user_id: str) -> dict[str, Any]:
        """The factor's state, never its secret."""
        user_id = parse_user_id(user_id)
        factor = self.store.get(user_id)
        if factor is None:
            raise TotpNotFound()
        return self.render(user_id, factor)

    def delete(self, user_id: str) -> dict[str, Any]:
        """Remove the factor: its codes stop verifying at once."""
        user_id = parse_user_id(user_id)
        if not self.store.delete(user_id):
            raise TotpNotFound()
        log.info("totp deleted", extra={"user": user_digest_for_logs(user_id)})
        return {"user_id": user_id, "status": "deleted"}

    def render(self, user_id: str, factor: Factor) -> dict[str, Any]:
        """A factor as the API shows it."""
        locked = factor.failures >= self.settings.max_attempts
        now_ms = int(self.clock() * 1000)
        return {"user_id": user_id, "status": factor.status, "label": factor.label,
                "created_at": iso(factor.created_at_ms), "expires_at": iso(factor.expires_at_ms),
                "confirmed_at": iso(factor.confirmed_at_ms), "last_used_at": iso(factor.last_used_at_ms),
                "attempts_remaining": max(0, self.settings.max_attempts - factor.failures),
                "locked_until": iso(now_ms + factor.locked_for_ms) if locked else None}

    # -- the check shared by confirm and verify --------------------------------------------------------
    def _check(self, user_id: str, code: str, factor: Factor | None, *, want: str) -> CheckResult:
        """Match the code against the unsealed secret, then let the store accept its step once, atomically."""
        s = self.settings
        if factor is None or factor.status != want:
            return CheckResult("not_found")
        now = self.clock()
        try:
            secret = self.sealer.open(user_id, factor.sealed)
        except CryptoError:
            # Fail closed: a record that does not open (OTP_TOTP_KEY changed, or tampered) never verifies.
            log.error("totp secret cannot be opened: wrong OTP_TOTP_KEY or a tampered record",
                      extra={"user": user_digest_for_logs(user_id)})
            raise InternalError() from None
        return self.store.check(
            user_id, want=want, enrollment=factor.enrollment, step=matching_step(secret, code, now),
            now_ms=int(now * 1000), max_attempts=s.max_attempts, lockout_ms=s.totp_lockout * 1000,
            daily_cap=s.number_failures_per_day, daily_window_ms=DAY_MS)

    def _remaining(self, result: CheckResult) -> int:
        return max(0, self.settings.max_attempts - result.failures)


def locked(result: CheckResult) -> MaxAttemptsReached:
    """The 429 for a locked factor, with Retry-After rounded up to whole seconds."""
    return MaxAttemptsReached("Too many wrong codes for this authenticator: try again later.",
                              headers={"Retry-After": str(max(1, -(-result.locked_for_ms // 1000)))})


def user_digest_for_logs(user_id: str) -> str:
    """A short pseudonym of a user id for logs (ids may be e-mail addresses)."""
    return base64.b32encode(hashlib.sha256(f"log\x00{user_id}".encode()).digest()[:5]).decode().lower()

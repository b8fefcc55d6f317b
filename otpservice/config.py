"""Every setting of the service: its default, its OTP_* variable, and the checks made at start-up.

This is the only module that reads the environment. Everything else receives a `Settings`.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec: OTP_APP_NAME is counted in GSM-7 septets)

from otpservice.vocabulary import FRAUD_MODES, SMS_ENDPOINTS, TELNYX_GSM7

ENVIRONMENTS = ("sandbox", "production")
WORKER_CLASSES = ("gevent", "gthread")
MIN_DIGITS, MAX_DIGITS = 6, 10
MIN_CODE_TTL, MAX_CODE_TTL = 30, 600  # NIST SP 800-63B: an out-of-band code lives at most 10 minutes
MAX_ATTEMPTS_CEILING = 5  # security bar: at most 5 wrong attempts per code
MAX_NUMBER_FAILURES_CEILING = 100  # NIST ceiling: failed attempts per number per 24 h
NUMBER_SENDS_PER_10_MINUTES, NUMBER_SENDS_PER_DAY = 3, 10  # security bar: sends to one number
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
TOTP_KEY_BYTES = 32  # PyNaCl SecretBox.KEY_SIZE
MIN_SECRET_LENGTH = 32  # security bar: tokens and keys of production
REPLICATED_SCHEMES = ("redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")
# Every shipped text fits one SMS segment with an app name of this many GSM-7 septets, a 10-digit code and its
# longest lifetime wording (tests/unit/core/test_messages.py); an extension-table character counts two.
APP_NAME_MAX_SEPTETS = 20
HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
WEBOTP_DOMAIN_RE = re.compile(rf"^(?=.{{1,253}}$){HOST_LABEL}(?:\.{HOST_LABEL})+$")
ANDROID_APP_HASH_RE = re.compile(r"^[A-Za-z0-9+/]{11}$")  # the first 11 base64 characters of the app's SHA-256
CONFIG_ERROR_STATUS = 2  # the exit status of a refused configuration, as argparse's for a bad command line
# Variables the sandbox launcher reads besides the settings (`otpservice run`, `otpservice sim`).
LAUNCHER_VARIABLES = {"OTP_SIM_PORT": "the simulator's port (otpservice run, otpservice sim)",
                      "OTP_SIM_SIGNING_KEY": "the simulator's webhook signing seed (otpservice run, otpservice sim)"}
WHATSAPP_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")  # Meta's template languages: en, en_US, zh_CN


class ConfigError(ValueError):
    """The configuration is incomplete or out of bounds; the message names the setting."""


def parse_rate(text: str) -> tuple[int, int]:
    """Parse a limit like `3/10minutes` or `10/day` into (amount, window seconds)."""
    match = RATE_RE.match(text or "")
    if not match:
        raise ConfigError(f"rate limit {text!r} is not of the form N/[M]unit, e.g. 3/10minutes")
    amount, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    if amount < 1 or multiple < 1:
        raise ConfigError(f"rate limit {text!r} must have a positive amount and window")
    return amount, multiple * UNIT_SECONDS[unit]


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _mapping(value: str) -> dict[str, str]:
    """Parse `key=value,key2=value2` (used for OTP_TEST_NUMBERS)."""
    pairs = {}
    for item in _csv(value):
        key, sep, val = item.partition("=")
        if not sep:
            raise ConfigError(f"expected key=value, got {item!r}")
        pairs[key.strip()] = val.strip()
    return pairs


def totp_key_bytes(value: str) -> bytes:
    """Decode OTP_TOTP_KEY (standard base64 of 32 bytes); ConfigError names the variable otherwise."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != TOTP_KEY_BYTES:
        raise ConfigError(f"OTP_TOTP_KEY must be the base64 of {TOTP_KEY_BYTES} random bytes")
    return key


def setting(env: str, default: Any, doc: str, *, secret: bool = False, parse=None) -> Any:
    """Declare one setting: the dataclass field carries its variable name, parser and documentation."""
    meta = {"env": env, "doc": doc, "secret": secret, "parse": parse}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Build it with `Settings.from_env()` or `Settings(**overrides)`."""

    env: str = setting("OTP_ENV", "sandbox", "`sandbox` (embedded store, simulator defaults) or `production`")
    host: str = setting("OTP_HOST", "127.0.0.1", "address the service listens on")
    port: int = setting("OTP_PORT", 8080, "port the service listens on", parse=int)
    redis_url: str = setting(
        "OTP_REDIS_URL", "",
        "redis://, rediss://, redis+sentinel://host:port,host:port/master_name/db, redis+cluster://host:port,...; "
        "unset in sandbox: the embedded fakeredis store")
    redis_timeout: float = setting("OTP_REDIS_TIMEOUT", 1.0, "seconds to wait for Redis per call", parse=float)
    redis_wait_replicas: str = setting(
        "OTP_REDIS_WAIT_REPLICAS", "auto",
        "replicas that must hold a reservation, a spend or a cancel before it is answered (Redis WAIT; none "
        "acknowledging in time is a 503); auto: 1 for redis+sentinel:// and redis+cluster:// URLs, 0 otherwise")
    redis_wait_timeout: float = setting("OTP_REDIS_WAIT_TIMEOUT", 0.5,
                                        "seconds a write waits for its replicas (OTP_REDIS_WAIT_REPLICAS)",
                                        parse=float)
    api_keys: tuple = setting("OTP_API_KEYS", (), "comma-separated client API keys", secret=True, parse=_csv)
    admin_token: str = setting("OTP_ADMIN_TOKEN", "", "bearer token for /admin routes", secret=True)
    code_secret: str = setting("OTP_CODE_SECRET", "", "HMAC key for stored code hashes (not kept in Redis)",
                               secret=True)
    code_digits: int = setting("OTP_CODE_DIGITS", 6, "digits per code (6-10)", parse=int)
    code_ttl: int = setting("OTP_CODE_TTL", 600, "seconds a code stays valid (at most 600)", parse=int)
    max_attempts: int = setting("OTP_MAX_ATTEMPTS", 5, "wrong attempts allowed per code (at most 5)", parse=int)
    resend_cooldown: int = setting("OTP_RESEND_COOLDOWN", 30, "seconds between two sends to one number and purpose",
                                   parse=int)
    record_retention: int = setting("OTP_RECORD_RETENTION", 86400,
                                    "seconds a verification record stays readable after creation", parse=int)
    idempotency_ttl: int = setting("OTP_IDEMPOTENCY_TTL", 86400, "seconds an Idempotency-Key is remembered",
                                   parse=int)
    number_failures_per_day: int = setting("OTP_NUMBER_FAILURES_PER_DAY", 20,
                                           "failed attempts per number per 24 h, all codes (at most 100)", parse=int)
    telnyx_api_key: str = setting("OTP_TELNYX_API_KEY", "", "Telnyx API v2 key", secret=True)
    telnyx_base_url: str = setting("OTP_TELNYX_BASE_URL", "https://api.telnyx.com/v2", "Telnyx API base URL")
    telnyx_public_key: str = setting("OTP_TELNYX_PUBLIC_KEY", "",
                                     "base64 Ed25519 public key that signs Telnyx webhooks")
    telnyx_timeout: float = setting("OTP_TELNYX_TIMEOUT", 2.5,
                                    "seconds to wait for Telnyx's answer to one attempt of a send", parse=float)
    telnyx_send_deadline: float = setting(
        "OTP_TELNYX_SEND_DEADLINE", 6.0,
        "seconds a send may take, retries included (a timeout, a 5xx or a 429 is retried with the same "
        "Idempotency-Key and bytes, at most 3 attempts); past it the answer says the text may still arrive",
        parse=float)
    send_endpoint: str = setting("OTP_SEND_ENDPOINT", "messages",
                                 "`messages` (from OTP_TELNYX_FROM) or `number_pool` (messaging profile)")
    failover_endpoint: str = setting("OTP_FAILOVER_ENDPOINT", "",
                                     "a second route of the settings (`number_pool`): a send refused on the first "
                                     "for its sender or profile, and a resend after a failed delivery, go there")
    telnyx_from: str = setting("OTP_TELNYX_FROM", "", "sending number, short code or alphanumeric sender ID")
    telnyx_messaging_profile_id: str = setting("OTP_TELNYX_MESSAGING_PROFILE_ID", "",
                                               "messaging profile (number pool, alphanumeric sender, opt-out sync)")
    routes_file: str = setting("OTP_ROUTES_FILE", "",
                               "YAML or JSON file of routes per country (endpoint, sender, profile), tried in order; "
                               "empty: the route of OTP_SEND_ENDPOINT for every number")
    whatsapp_template: str = setting("OTP_WHATSAPP_TEMPLATE", "",
                                     "name of the WhatsApp authentication template (copy-code button) that WhatsApp "
                                     "routes send")
    whatsapp_language: str = setting("OTP_WHATSAPP_LANGUAGE", "en_US",
                                     "language code of that template, as approved by Meta (e.g. en_US, pt_BR)")
    webhook_url: str = setting("OTP_WEBHOOK_URL", "", "public URL of this service's /webhooks/telnyx")
    webhook_failover_url: str = setting(
        "OTP_WEBHOOK_FAILOVER_URL", "",
        "a second URL of /webhooks/telnyx (another host or region) Telnyx tries when the first fails its retries")
    reconcile_after: int = setting(
        "OTP_RECONCILE_AFTER", 900,
        "seconds after which a send with no final delivery status is looked up with Telnyx (GET /messages/{id}); "
        "0: never", parse=int)
    webhook_event_ttl: int = setting("OTP_WEBHOOK_EVENT_TTL", 86400,
                                     "seconds a webhook event id is remembered: its retries and replays are no-ops "
                                     "(at least 600)", parse=int)
    default_region: str = setting("OTP_DEFAULT_REGION", "",
                                  "ISO region for numbers written without +country code (e.g. US); empty: E.164 only")
    app_name: str = setting("OTP_APP_NAME", "otpservice",
                            f"name shown in the text message and TOTP issuer (at most {APP_NAME_MAX_SEPTETS} "
                            "GSM-7 characters)")
    messages_file: str = setting("OTP_MESSAGES_FILE", "",
                                 "JSON file of texts by locale that replace or add to the shipped ones")
    webotp_domain: str = setting("OTP_WEBOTP_DOMAIN", "",
                                 "host name for the WebOTP last line `@host #code`, e.g. login.example.com")
    android_app_hash: str = setting("OTP_ANDROID_APP_HASH", "",
                                    "11-character app hash for Android's SMS Retriever, on a line of its own")
    max_body_bytes: int = setting("OTP_MAX_BODY_BYTES", 65536, "largest request body accepted", parse=int)
    log_level: str = setting("OTP_LOG_LEVEL", "INFO", "log level")
    workers: int = setting("OTP_WORKERS", 0,
                           "gunicorn worker processes; 0: 2 x the CPUs it may use (a container's CPU limit "
                           "counts) + 1, or 1 with the embedded store", parse=int)
    worker_class: str = setting(
        "OTP_WORKER_CLASS", "gevent",
        "gunicorn worker: `gevent` (a greenlet per request: a slow Telnyx holds no other request) or `gthread`")
    worker_connections: int = setting("OTP_WORKER_CONNECTIONS", 1000,
                                      "requests a gevent worker serves at once", parse=int)
    threads: int = setting("OTP_THREADS", 4, "threads per gthread worker", parse=int)
    send_concurrency: int = setting(
        "OTP_SEND_CONCURRENCY", 50,
        "sends to Telnyx in flight at once per process; past it /request-code answers 503 provider_unavailable "
        "at once, reserving nothing", parse=int)
    worker_timeout: int = setting("OTP_WORKER_TIMEOUT", 30,
                                  "seconds a request may take before gunicorn restarts its worker", parse=int)
    metrics_dir: str = setting("OTP_METRICS_DIR", "",
                               "directory for prometheus_client's multiprocess files (gunicorn.conf.py makes a "
                               "fresh temp dir when unset); empty outside gunicorn: one process's metrics")
    test_numbers: dict = setting("OTP_TEST_NUMBERS", {}, "number=code pairs that never reach Telnyx",
                                 parse=_mapping)
    allow_test_numbers: bool = setting("OTP_ALLOW_TEST_NUMBERS", False, "allow OTP_TEST_NUMBERS in production",
                                       parse=_bool)
    totp_enabled: bool = setting("OTP_TOTP_ENABLED", True,
                                 "offer authenticator-app factors (/totp routes, /verify channel totp)", parse=_bool)
    totp_key: str = setting("OTP_TOTP_KEY", "",
                            "base64 32-byte key sealing TOTP secrets at rest (SecretBox; not kept in Redis)",
                            secret=True)
    totp_enroll_ttl: int = setting("OTP_TOTP_ENROLL_TTL", 900,
                                   "seconds an unconfirmed TOTP enrollment waits for /totp/confirm", parse=int)
    totp_lockout: int = setting("OTP_TOTP_LOCKOUT", 900,
                                "seconds a TOTP factor stays locked after OTP_MAX_ATTEMPTS wrong codes", parse=int)
    allowed_countries: tuple = setting("OTP_ALLOWED_COUNTRIES", (),
                                       "comma-separated ISO region codes may be sent to (e.g. US,CA); empty: all",
                                       parse=lambda v: tuple(c.upper() for c in _csv(v)))
    blocked_number_types: tuple = setting("OTP_BLOCKED_NUMBER_TYPES", (),
                                          "number types refused besides premium_rate and shared_cost "
                                          "(e.g. voip,toll_free)", parse=_csv)
    limit_number: str = setting("OTP_LIMIT_NUMBER", "3/10minutes",
                                "sends per number (at most 3 in any 10 minutes)")
    limit_number_daily: str = setting("OTP_LIMIT_NUMBER_DAILY", "10/day", "sends per number (at most 10 a day)")
    limit_ip: str = setting("OTP_LIMIT_IP", "10/hour", "sends per client IP (IPv6: per /64), when one is given")
    limit_prefix: str = setting("OTP_LIMIT_PREFIX", "30/hour",
                                "sends per number prefix (the E.164 number without its last 4 digits)")
    limit_country: str = setting("OTP_LIMIT_COUNTRY", "1000/hour", "sends per country")
    limit_global: str = setting("OTP_LIMIT_GLOBAL", "100/minute", "sends in all (the global ceiling)")
    limit_verify_failures_ip: str = setting("OTP_LIMIT_VERIFY_FAILURES_IP", "30/hour",
                                            "wrong codes on /verify per client IP (IPv6: per /64), when one is "
                                            "given; past it /verify answers 429 without checking")
    limit_admin_failures: str = setting("OTP_LIMIT_ADMIN_FAILURES", "10/minute",
                                        "failed admin authentications per client address; past it /admin "
                                        "answers 429 without checking")
    limit_device: str = setting("OTP_LIMIT_DEVICE", "5/hour",
                                "code requests per `device_id` the caller sends; past it the fraud guard blocks "
                                "the device (rule device_velocity)")
    limit_user: str = setting("OTP_LIMIT_USER", "5/hour",
                              "code requests per `user_id` the caller sends; past it the fraud guard blocks the "
                              "user (rule user_velocity)")
    fraud_guard: str = setting("OTP_FRAUD_GUARD", "enforce",
                               "the fraud guard: `enforce` refuses blocked scopes (403 verification_blocked), "
                               "`shadow` logs, counts and records what it would refuse and sends anyway, `off`")
    fraud_min_conversion: float = setting("OTP_FRAUD_MIN_CONVERSION", 0.3,
                                          "share of texts whose code was approved (failed deliveries left out) "
                                          "under which a scope with enough sends is blocked", parse=float)
    fraud_window: int = setting("OTP_FRAUD_WINDOW", 600,
                                "seconds of sends a scope's conversion is judged over (short: a country's real "
                                "traffic does not hide a fast attack for long)", parse=int)
    fraud_history: int = setting("OTP_FRAUD_HISTORY", 86400,
                                 "seconds of sends judged too (a slow attack), and that make a prefix proven (an "
                                 "approved code, conversion above the threshold): a blocked country still sends to "
                                 "its proven prefixes", parse=int)
    fraud_min_sends_prefix: int = setting("OTP_FRAUD_MIN_SENDS_PREFIX", 10,
                                          "texts to one prefix in the window before its conversion is judged",
                                          parse=int)
    fraud_min_sends_country: int = setting("OTP_FRAUD_MIN_SENDS_COUNTRY", 50,
                                           "texts to one country in the window before its conversion is judged",
                                           parse=int)
    fraud_min_sends_route: int = setting("OTP_FRAUD_MIN_SENDS_ROUTE", 0,
                                         "texts on one route in the window before its conversion is judged; 0: "
                                         "routes are counted, never blocked (a route serves many countries)",
                                         parse=int)
    fraud_block_seconds: int = setting("OTP_FRAUD_BLOCK_SECONDS", 3600,
                                       "seconds a block lasts after the latest request it refused; a lifted "
                                       "block exempts its scope as long", parse=int)
    allow_non_geographic: bool = setting("OTP_ALLOW_NON_GEOGRAPHIC", False,
                                         "send to non-geographic numbers (+800, +808, +870, +878, +881, +882, "
                                         "+883, +888, +979: satellite and international networks)", parse=_bool)
    spend_limit_daily: float = setting("OTP_SPEND_LIMIT_DAILY", 0.0,
                                       "most the texts of one UTC day may cost, in OTP_SPEND_CURRENCY (the send "
                                       "answers' and message.finalized's cost); 0: no cap", parse=float)
    spend_limit_country: dict = setting("OTP_SPEND_LIMIT_COUNTRY", {},
                                        "per-country daily caps, e.g. LV=5,GB=20 (ISO region=amount)",
                                        parse=lambda v: {k.upper(): val for k, val in _mapping(v).items()})
    spend_currency: str = setting("OTP_SPEND_CURRENCY", "USD",
                                  "the currency of the spend caps; costs in another are logged, not summed")
    trusted_proxy_header: str = setting("OTP_TRUSTED_PROXY_HEADER", "",
                                        "header your proxy sets to the end user's IP (e.g. X-Real-IP); empty: "
                                        "only the body's client_ip counts")
    optout_sync_interval: int = setting("OTP_OPTOUT_SYNC_INTERVAL", 3600,
                                        "seconds between syncs of Telnyx's opt-out list (one process at a "
                                        "time, by Redis lock); 0: off", parse=int)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read every OTP_* variable (unset ones keep their default), then apply overrides."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = environ.get(spec.metadata["env"])
            if raw is None:
                continue
            parse = spec.metadata["parse"]
            try:
                values[spec.name] = parse(raw) if parse else raw
            except (ValueError, ConfigError) as exc:
                raise ConfigError(f"{spec.metadata['env']}: {exc}") from None
        values.update(overrides)
        return cls(**values)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def wait_replicas(self) -> int:
        """How many replicas must acknowledge a single-use write (OTP_REDIS_WAIT_REPLICAS resolved)."""
        if self.redis_wait_replicas.strip().lower() != "auto":
            return int(self.redis_wait_replicas)
        return 1 if self.redis_url.split("://", 1)[0].lower() in REPLICATED_SCHEMES else 0

    def missing_secrets(self) -> list[str]:
        """Names of the variables production needs and does not have."""
        required = {
            "OTP_TELNYX_API_KEY": self.telnyx_api_key,
            "OTP_TELNYX_PUBLIC_KEY": self.telnyx_public_key,
            "OTP_CODE_SECRET": self.code_secret,
            "OTP_API_KEYS": self.api_keys,
            "OTP_ADMIN_TOKEN": self.admin_token,
            "OTP_REDIS_URL": self.redis_url,
            "OTP_WEBHOOK_URL": self.webhook_url,
        }
        # A routes file names its own senders and profiles (sending/routes_file.py checks them).
        if self.send_endpoint == "messages" and not self.routes_file:
            required["OTP_TELNYX_FROM"] = self.telnyx_from
        if "number_pool" in (self.send_endpoint, self.failover_endpoint) and not self.routes_file:
            required["OTP_TELNYX_MESSAGING_PROFILE_ID"] = self.telnyx_messaging_profile_id
        if self.totp_enabled:
            required["OTP_TOTP_KEY"] = self.totp_key
        return [name for name, value in required.items() if not value]

    def validate(self) -> None:
        """Refuse values outside the security bar, and a production configuration with secrets missing."""
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"OTP_ENV must be one of {ENVIRONMENTS}, not {self.env!r}")
        if not MIN_DIGITS <= self.code_digits <= MAX_DIGITS:
            raise ConfigError(f"OTP_CODE_DIGITS must be {MIN_DIGITS}-{MAX_DIGITS}")
        if not MIN_CODE_TTL <= self.code_ttl <= MAX_CODE_TTL:
            raise ConfigError(f"OTP_CODE_TTL must be {MIN_CODE_TTL}-{MAX_CODE_TTL} seconds")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_CEILING:
            raise ConfigError(f"OTP_MAX_ATTEMPTS must be 1-{MAX_ATTEMPTS_CEILING}")
        if not 1 <= self.number_failures_per_day <= MAX_NUMBER_FAILURES_CEILING:
            raise ConfigError(f"OTP_NUMBER_FAILURES_PER_DAY must be 1-{MAX_NUMBER_FAILURES_CEILING}")
        if self.resend_cooldown < 0 or self.record_retention < self.code_ttl:
            raise ConfigError("OTP_RESEND_COOLDOWN must be >= 0 and OTP_RECORD_RETENTION >= OTP_CODE_TTL")
        value = self.redis_wait_replicas.strip().lower()
        if value != "auto" and not (value.isdigit() and int(value) <= 16):
            raise ConfigError("OTP_REDIS_WAIT_REPLICAS must be auto or a number of replicas 0-16")
        if value != "auto" and int(value) and not self.redis_url:
            raise ConfigError("OTP_REDIS_WAIT_REPLICAS needs OTP_REDIS_URL: the embedded store has no replicas")
        if not 0 < self.redis_wait_timeout <= 10:
            raise ConfigError("OTP_REDIS_WAIT_TIMEOUT must be above 0 and at most 10 seconds")
        if self.reconcile_after < 0 or self.reconcile_after > 86400:
            raise ConfigError("OTP_RECONCILE_AFTER must be 0 (off) to 86400 seconds: Telnyx keeps a message "
                              "10 days, the service a send as long as its record")
        if self.webhook_event_ttl < 600:  # a replay can come within ±300 s of the signed timestamp
            raise ConfigError("OTP_WEBHOOK_EVENT_TTL must be at least 600 seconds")
        if self.workers < 0 or self.threads < 1 or self.worker_timeout <= self.telnyx_send_deadline:
            raise ConfigError("OTP_WORKERS must be >= 0, OTP_THREADS >= 1 and OTP_WORKER_TIMEOUT above "
                              "OTP_TELNYX_SEND_DEADLINE")
        if self.worker_class not in WORKER_CLASSES:
            raise ConfigError(f"OTP_WORKER_CLASS must be one of {WORKER_CLASSES}, not {self.worker_class!r}")
        if self.worker_connections < 1 or self.send_concurrency < 1:
            raise ConfigError("OTP_WORKER_CONNECTIONS and OTP_SEND_CONCURRENCY must be at least 1")
        if not 0 < self.telnyx_timeout <= self.telnyx_send_deadline <= 30:
            raise ConfigError("OTP_TELNYX_TIMEOUT must be above 0 and at most OTP_TELNYX_SEND_DEADLINE, itself at "
                              "most 30 seconds")
        check_workers(self, self.workers)
        for name, value in (("OTP_SEND_ENDPOINT", self.send_endpoint),
                            ("OTP_FAILOVER_ENDPOINT", self.failover_endpoint or "messages")):
            if value not in SMS_ENDPOINTS:
                raise ConfigError(f"{name} must be one of {SMS_ENDPOINTS}, not {value!r} (a WhatsApp route goes in "
                                  "OTP_ROUTES_FILE)")
        if not WHATSAPP_LANGUAGE_RE.match(self.whatsapp_language):
            raise ConfigError("OTP_WHATSAPP_LANGUAGE must be a template language code such as en, en_US or pt_BR")
        if self.totp_key:
            totp_key_bytes(self.totp_key)
        if not 60 <= self.totp_enroll_ttl <= 3600 or not 60 <= self.totp_lockout <= 86400:
            raise ConfigError("OTP_TOTP_ENROLL_TTL must be 60-3600 and OTP_TOTP_LOCKOUT 60-86400 seconds")
        self.validate_limits()
        self.validate_texts()
        if self.production:
            missing = self.missing_secrets()
            if missing:
                raise ConfigError("production configuration is missing: " + ", ".join(missing))
            for name, values in (("OTP_CODE_SECRET", [self.code_secret]), ("OTP_ADMIN_TOKEN", [self.admin_token]),
                                 ("OTP_API_KEYS", list(self.api_keys))):
                if any(len(value) < MIN_SECRET_LENGTH for value in values):
                    raise ConfigError(f"{name} must be at least {MIN_SECRET_LENGTH} characters in production "
                                      "(each key, for OTP_API_KEYS): a short one can be guessed")
            if self.test_numbers and not self.allow_test_numbers:
                raise ConfigError("OTP_TEST_NUMBERS is set in production without OTP_ALLOW_TEST_NUMBERS")

    def validate_limits(self) -> None:
        """Every limit parses, and the per-number ones stay within the security bar (3 per 10 min, 10 a day)."""
        for name in ("limit_number", "limit_number_daily", "limit_ip", "limit_prefix", "limit_country",
                     "limit_global", "limit_verify_failures_ip", "limit_admin_failures"):
            env = self.__dataclass_fields__[name].metadata["env"]
            try:
                parse_rate(getattr(self, name))
            except ConfigError as exc:
                raise ConfigError(f"{env}: {exc}") from None
        for name, span, ceiling in (("limit_number", 600, NUMBER_SENDS_PER_10_MINUTES),
                                    ("limit_number_daily", 86400, NUMBER_SENDS_PER_DAY)):
            amount, window = parse_rate(getattr(self, name))
            if amount * -(-span // window) > ceiling:
                env = self.__dataclass_fields__[name].metadata["env"]
                raise ConfigError(f"{env} allows more than {ceiling} sends to one number in {span} seconds")
        if self.optout_sync_interval < 0:
            raise ConfigError("OTP_OPTOUT_SYNC_INTERVAL must be >= 0 seconds")
        self.validate_fraud()

    def validate_fraud(self) -> None:
        """The fraud guard's and the spend caps' settings are in range."""
        for name in ("limit_device", "limit_user"):
            try:
                parse_rate(getattr(self, name))
            except ConfigError as exc:
                raise ConfigError(f"{self.__dataclass_fields__[name].metadata['env']}: {exc}") from None
        if self.fraud_guard not in FRAUD_MODES:
            raise ConfigError(f"OTP_FRAUD_GUARD must be one of {FRAUD_MODES}, not {self.fraud_guard!r}")
        if not 0 <= self.fraud_min_conversion <= 1:
            raise ConfigError("OTP_FRAUD_MIN_CONVERSION must be 0-1 (a share of texts)")
        if not 60 <= self.fraud_window <= self.fraud_history <= 7 * 86400:
            raise ConfigError("OTP_FRAUD_WINDOW must be at least 60 seconds and at most OTP_FRAUD_HISTORY, itself "
                              "at most 7 days")
        if min(self.fraud_min_sends_prefix, self.fraud_min_sends_country) < 1 or self.fraud_min_sends_route < 0:
            raise ConfigError("OTP_FRAUD_MIN_SENDS_PREFIX and OTP_FRAUD_MIN_SENDS_COUNTRY must be at least 1, "
                              "OTP_FRAUD_MIN_SENDS_ROUTE at least 0 (0: routes are never blocked)")
        if not 60 <= self.fraud_block_seconds <= 7 * 86400:
            raise ConfigError("OTP_FRAUD_BLOCK_SECONDS must be 60 seconds to 7 days")
        if self.spend_limit_daily < 0:
            raise ConfigError("OTP_SPEND_LIMIT_DAILY must be >= 0 (0: no cap)")
        if not re.fullmatch(r"[A-Z]{3}", self.spend_currency):
            raise ConfigError("OTP_SPEND_CURRENCY must be an ISO 4217 code such as USD")
        for region, amount in self.spend_limit_country.items():
            try:
                value = float(amount)
            except ValueError:
                value = -1.0
            if not re.fullmatch(r"[A-Z]{2}", region) or value <= 0:
                raise ConfigError(f"OTP_SPEND_LIMIT_COUNTRY: {region}={amount} must be an ISO region and a "
                                  "positive amount, e.g. LV=5")

    def validate_texts(self) -> None:
        """The app name, WebOTP host and Android hash that go into every text (core/messages.py fits them)."""
        gsm7 = all(ch in TELNYX_GSM7 for ch in self.app_name)
        if not self.app_name.strip() or not gsm7 or len(self.app_name.encode("gsm03.38")) > APP_NAME_MAX_SEPTETS:
            outside = "".join(dict.fromkeys(ch for ch in self.app_name if ch not in TELNYX_GSM7))
            raise ConfigError(f"OTP_APP_NAME must be 1-{APP_NAME_MAX_SEPTETS} characters Telnyx sends as GSM-7 "
                              "(letters, digits, ASCII punctuation, some Latin accented letters; one of "
                              "[ ] { } ~ ^ | \\ counts two), so that every text fits one SMS segment"
                              + (f"; not {outside!r}" if outside else ""))
        if self.webotp_domain and not WEBOTP_DOMAIN_RE.match(self.webotp_domain):
            raise ConfigError("OTP_WEBOTP_DOMAIN must be a lower-case host name such as login.example.com (no "
                              "scheme, port or path; an international name in its xn-- form)")
        if self.android_app_hash and not ANDROID_APP_HASH_RE.match(self.android_app_hash):
            raise ConfigError("OTP_ANDROID_APP_HASH must be the 11 characters (letters, digits, + and /) Android's "
                              "SMS Retriever computes for your app")

    def describe(self) -> list[dict[str, Any]]:
        """Every setting with its variable, default and documentation (for the README and `otpservice config`)."""
        rows = []
        for spec in dataclasses.fields(self):
            default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
            rows.append({"env": spec.metadata["env"], "default": default, "doc": spec.metadata["doc"],
                         "secret": spec.metadata["secret"]})
        return rows


def check_workers(settings: Settings, workers: int) -> None:
    """ConfigError when `workers` processes cannot share the configured store (the embedded one is per process)."""
    if workers > 1 and not settings.redis_url:
        raise ConfigError(f"{workers} workers need OTP_REDIS_URL: the embedded store lives inside one process, so "
                          "each worker would hold codes the others cannot verify (set OTP_WORKERS=1, or a Redis)")


def error_line(exc: ConfigError) -> str:
    """The one line a refused configuration prints, whichever entry point refused it."""
    return f"otpservice: configuration error: {exc}"


@contextlib.contextmanager
def or_exit(status: int = CONFIG_ERROR_STATUS) -> Iterator[None]:
    """A ConfigError inside becomes its one line on stderr and SystemExit(status).

    For the entry points gunicorn runs (its config file, the WSGI module), where an exception would be printed
    as a traceback: gunicorn passes SystemExit through untouched.
    """
    try:
        yield
    except ConfigError as exc:
        print(error_line(exc), file=sys.stderr, flush=True)
        raise SystemExit(status) from None


def read_env_file(path: str, *, required: bool = False) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blanks skipped); {} when it is absent, unless `required`."""
    values: dict[str, str] = {}
    if not os.path.exists(path):
        if required:
            raise ConfigError(f"--env-file {path}: no such file")
        return values
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def otp_environ() -> dict[str, str]:
    """Every OTP_* variable set in the environment (the sandbox launcher layers its defaults under them)."""
    return {key: value for key, value in os.environ.items() if key.startswith("OTP_")}


def port_from(environ: Mapping[str, str], name: str, default: int) -> int:
    """A port number from one variable (the launcher's OTP_PORT, OTP_SIM_PORT); ConfigError naming it."""
    raw = environ.get(name)
    try:
        port = default if raw is None else int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be a port number 0-65535, not {raw!r}")
    return port


def shown_default(default: Any) -> str:
    """A default as one would write it in the environment; `(unset)` for an empty one."""
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, (tuple, list)):
        default = ",".join(default)
    elif isinstance(default, dict):
        default = ",".join(f"{key}={value}" for key, value in default.items())
    return "(unset)" if default == "" else str(default)


def masked(env: str, raw: str, *, secret: bool) -> str:
    """A value fit to print: a secret as its length only, a URL without its password."""
    if secret:
        count = len(_csv(raw)) if env == "OTP_API_KEYS" else 0
        return f"(set: {count} keys)" if count > 1 else f"(set: {len(raw)} characters)" if raw else "(empty)"
    if "://" not in raw:
        return raw if raw else "(empty)"
    parts = urlsplit(raw)
    if parts.password is not None:
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}")
    # A Sentinel URL may carry the sentinels' password in its query (?sentinel_password=).
    query = re.sub(r"((?:^|&)[^=&]*password=)[^&]*", r"\1***", parts.query)
    return urlunsplit(parts._replace(query=query))


def effective(environ: Mapping[str, str], file_values: Mapping[str, str] | None = None,
              file_name: str = "") -> list[dict[str, str]]:
    """Every setting's value as the service would see it, masked, and where it comes from: `default`,
    `environment` or `env file NAME` (the environment wins over the file). Then the launcher's variables that are
    set, and any other OTP_* variable, so that a misspelt one shows (its value never: it may be a secret)."""
    file_values = file_values or {}

    def source_of(env: str) -> str | None:
        return "environment" if env in environ else f"env file {file_name}" if env in file_values else None

    rows = []
    for spec in dataclasses.fields(Settings):
        env, source = spec.metadata["env"], source_of(spec.metadata["env"])
        if source is None:
            default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
            rows.append({"env": env, "value": shown_default(default), "source": "default"})
        else:
            raw = environ.get(env, file_values.get(env, ""))
            rows.append({"env": env, "value": masked(env, raw, secret=spec.metadata["secret"]), "source": source})
    settings = {row["env"] for row in rows}
    for env, doc in LAUNCHER_VARIABLES.items():
        if (source := source_of(env)) is not None:
            raw = environ.get(env, file_values.get(env, ""))
            rows.append({"env": env, "value": masked(env, raw, secret=env == "OTP_SIM_SIGNING_KEY"),
                         "source": f"{source}; {doc}"})
    for env in sorted((set(environ) | set(file_values)) - settings - set(LAUNCHER_VARIABLES)):
        if env.startswith("OTP_"):
            rows.append({"env": env, "value": "(not shown)", "source": f"{source_of(env)}; not a setting: misspelt?"})
    return rows

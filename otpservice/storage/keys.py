"""Every Redis key the service uses, and every hash field: what it holds and when it expires. The only place
that names one.

{B} is a number's bucket, the first 4 hex digits of its digest (storage/keys.number_digest): one hash tag for
all keys of a number, so every script that touches them together runs on Redis Cluster unchanged; a
verification id starts with the same 4 digits, so an id finds its slot alone. No key name contains a phone
number, a user id or anything else a caller typed: those become digests.

  otp:{B}:v:<id>                 hash    one verification (RECORD_FIELDS, and SEND_FIELDS for each send k)
                                         expires: OTP_RECORD_RETENTION after creation
  otp:{B}:n:<digest>             hash    the number (NUMBER_FIELDS): its verification per purpose, its earlier
                                         ones, its send and failure time logs
                                         expires: the longest of the retention, the longest per-number limit
                                         window, and code ttl + 24 h + 1 min, from its latest send
  otp:{B}:oo:<digest>            hash    the number's opt-out records, source -> JSON; never expires (kept
                                         until removed)
  otp:{B}:ev:<event digest>      string  a delivery receipt's event id, applied to a send of {B}
                                         expires: OTP_WEBHOOK_EVENT_TTL
  otp:ev:<event digest>          string  an inbound message's event id, applied; expires: OTP_WEBHOOK_EVENT_TTL
  otp:oo:index                   zset    every opted-out number (score 0: E.164 order, the admin list's cursor);
                                         never expires (members leave with their last record)
  otp:oo:src:<source>            zset    the numbers holding a record of that source; never expires (likewise)
  otp:oo:sync:lock               string  the process running this interval's opt-out sync
                                         expires: OTP_OPTOUT_SYNC_INTERVAL
  otp:recon:pending              zset    sends Telnyx took whose final status has not come: "<E.164> <message id>"
                                         scored by send time; members leave when final (receipt or lookup),
                                         or past the record's retention; expires: the retention, from the
                                         latest send listed
  otp:recon:lock                 string  the process running this turn of the reconciler; expires: its interval
  otp:rl:{<scope>:<digest>}      zset    one send budget (client IP, prefix, country, global; the fraud guard's
                                         device and user velocity, of their digests): request tokens scored by
                                         send time; expires: the budget's window
  otp:fr:{<scope>:<digest>}      hash    one fraud-guard scope's conversion (prefix, country, route): FRAUD_WINDOWS
                                         letter, bucket and event per field; a write that opens a bucket drops
                                         the fields past their window; expires: OTP_FRAUD_HISTORY after its
                                         latest text
  otp:{fr}:guard                 hash    the guard's decisions, BLOCK_FIELDS: "b:<scope>" -> the block record
                                         (JSON), "x:<scope>" -> a lifted block's exemption end, ms
  otp:{fr}:until                 zset    the same fields scored by their end: past ones are dropped on each
                                         write (both never expire; they hold at most the live blocks)
  otp:{fr}:allow                 hash    the allow list: an E.164 number or prefix -> JSON {note, added_at};
                                         never expires (kept until removed)
  otp:spend:<YYYY-MM-DD>         hash    one UTC day's spend in millionths of OTP_SPEND_CURRENCY: "total",
                                         "c:<region>"; expires: 8 days after the day began
  otp:idem:<client>:<key digest> string  the first answer to an Idempotency-Key (JSON); expires: OTP_IDEMPOTENCY_TTL
  otp:{t<T>}:totp:f:<digest>     hash    one authenticator factor (FACTOR_FIELDS)
                                         expires: OTP_TOTP_ENROLL_TTL until confirmed, then never
  otp:{t<T>}:totp:fail:<digest>  string  wrong TOTP codes in the current lockout window; expires: OTP_TOTP_LOCKOUT
  otp:{t<T>}:totp:day:<digest>   string  wrong TOTP codes in the current 24 h; expires: 24 h
"""
from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "otp"
ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# The fields of a verification record. A field equal to its default is not written (a pending verification
# costs about 430 bytes of Redis: bench/RESULTS.md); readers supply the default (storage/verifications.py).
RECORD_FIELDS = {
    "p": ("the E.164 number", None),
    "u": ("the purpose", None),
    "ch": ("the channel", "sms"),
    "s": ("the status (vocabulary.VERIFICATION_STATUSES; expired is derived from x)", "pending"),
    "c": ("created at, ms", None),
    "x": ("the live code expires at, ms", None),
    "h": ("the live code's HMAC; emptied or removed when the record closes", None),
    "a": ("wrong attempts, all codes of the verification", "0"),
    "n": ("sends reserved", None),
    "ls": ("the latest send's time, ms (the cooldown's start)", "c"),
    "pls": ("the send time before it, restored when a send surely failed", "0"),
    "ld": ('"1" while the latest send failed (a resend may skip the cooldown)', None),
    "va": ("approved at, ms", None),
    "cx": ("canceled at, ms", None),
}
# The fields of send k (1, 2, ...) on its verification record.
SEND_FIELDS = {
    "m": ("the provider's message id; present (maybe empty) once the send's result is recorded", None),
    "e": ("the endpoint (vocabulary.ENDPOINTS)", "messages"),
    "r": ("the route's name (the routes file's, or the settings' `primary`)", "primary"),
    "t": ("sent at, ms", "c"),
    "d": ("the delivery status (vocabulary.DELIVERY_STATUSES)", "queued"),
    "du": ("the delivery status's time, ms", "t"),
    "er": ("the provider's errors, JSON [{code, title}]", "[]"),
    "co": ("the cost the send's answer gave, millionths of OTP_SPEND_CURRENCY (message.finalized corrects it)",
           None),
}
# The fields of a number's hash.
NUMBER_FIELDS = {
    "<purpose>": ("the id of the purpose's latest verification (live while that record is pending)", None),
    "<id>": ('"": an earlier verification, still retained (the admin list; receipts search these too)', None),
    ".s": ("the number's sends, a time log (lua/timelog.lua): the per-number limits", None),
    ".f": ("the number's failed attempts, all codes, a time log: the daily failure cap", None),
}
LOG_MARK = "."  # number hash fields starting with it are time logs, not verifications
SEND_LOG, FAILURE_LOG = ".s", ".f"
# The fields of a fraud-guard scope's hash, per bucket <i> (the bucket's start / its length): "<w><i>:<event>",
# w = "s" for the judging window's buckets, "h" for the history's, event one of vocabulary.FRAUD_EVENTS.
FRAUD_WINDOWS = ("s", "h")
# The guard hash's field kinds: a block record, a lifted block's exemption.
BLOCK_FIELDS = {"b": "the block record of a scope (JSON)", "x": "the end of a lifted block's exemption, ms"}
# The fields of a TOTP factor.
FACTOR_FIELDS = {
    "s": ("unconfirmed | confirmed", None),
    "sb": ("the secret, sealed with OTP_TOTP_KEY (SecretBox)", None),
    "e": ("the enrollment id the secret belongs to", None),
    "l": ("the label the app shows", None),
    "c": ("enrolled at, ms", None),
    "x": ("an unconfirmed enrollment expires at, ms", None),
    "cf": ("confirmed at, ms", None),
    "ls": ("the last time step accepted (each step verifies once)", None),
    "lu": ("last used at, ms", None),
}


def digest(kind: str, value: str, length: int = 32) -> str:
    """A stable pseudonym of a caller's value for key names (unkeyed: opt-outs and factors must outlive a
    rotation of OTP_CODE_SECRET, and the records beside them hold the value anyway)."""
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()[:length]


def _plain(value: str, length: int) -> str:
    """The digest of ids that are not personal (event ids, idempotency keys and client keys)."""
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def number_digest(phone: str) -> str:
    return digest("number", phone)


def number_tag(phone: str) -> tuple[str, str]:
    """(`otp:{B}`, digest) for a number: its hash-tagged key prefix and its pseudonym."""
    number = number_digest(phone)
    return f"{PREFIX}:{{{number[:4]}}}", number


def bucket(phone: str) -> str:
    """A number's hash tag: 4 hex digits (65,536 buckets over Redis Cluster's 16,384 slots)."""
    return number_digest(phone)[:4]


def valid_id(verification_id: object) -> bool:
    """True for ids of the form this service issues; anything else never becomes part of a key."""
    return isinstance(verification_id, str) and bool(ID_RE.match(verification_id))


def new_verification_id(phone: str) -> str:
    """A random UUID (version 4 layout) whose first 4 hex digits are the number's bucket."""
    raw = bytearray(secrets.token_bytes(16))
    raw[0:2] = bytes.fromhex(bucket(phone))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def number_and_records(phone: str) -> tuple[str, str]:
    """(the number's key, the prefix of its records' keys): what the number's scripts are given."""
    base, number_id = number_tag(phone)
    return f"{base}:n:{number_id}", base + ":v:"


def record_prefix(phone: str) -> str:
    """What a verification id is appended to for its record key (the scripts build record keys from it)."""
    return number_tag(phone)[0] + ":v:"


def record(verification_id: str) -> str:
    return f"{PREFIX}:{{{verification_id[:4]}}}:v:{verification_id}"


def number(phone: str) -> str:
    base, number_id = number_tag(phone)
    return f"{base}:n:{number_id}"


def optouts(phone: str) -> str:
    base, number_id = number_tag(phone)
    return f"{base}:oo:{number_id}"


def delivery_event(phone: str, event_id: str) -> str:
    return f"{number_tag(phone)[0]}:ev:{_plain(event_id, 32)}"


def inbound_event(event_id: str) -> str:
    return f"{PREFIX}:ev:{_plain(event_id, 32)}"


OPTOUT_INDEX = f"{PREFIX}:oo:index"
RECONCILE_INDEX = f"{PREFIX}:recon:pending"
RECONCILE_LOCK = f"{PREFIX}:recon:lock"


def pending_send(phone: str, message_id: str) -> str:
    """A member of RECONCILE_INDEX: the recipient (receipts are found through it) and the message id."""
    return f"{phone} {message_id}"
OPTOUT_SYNC_LOCK = f"{PREFIX}:oo:sync:lock"


def optout_source(source: str) -> str:
    return f"{PREFIX}:oo:src:{source}"


def budget(scope: str, value: str) -> str:
    """One budget's key, with its own hash tag (budgets are taken together, each atomically on its own)."""
    return f"{PREFIX}:rl:{{{scope}:{digest(scope, value, 24)}}}"


def fraud_scope(kind: str, value: str) -> str:
    """A fraud-guard scope's counters, with its own hash tag (each script touches one scope)."""
    return f"{PREFIX}:fr:{{{kind}:{digest(kind, value, 24)}}}"


FRAUD_GUARD = f"{PREFIX}:{{fr}}:guard"
FRAUD_UNTIL = f"{PREFIX}:{{fr}}:until"
FRAUD_ALLOW = f"{PREFIX}:{{fr}}:allow"


def spend(day: str) -> str:
    """One UTC day's spend (`day` as YYYY-MM-DD)."""
    return f"{PREFIX}:spend:{day}"


def idempotency(client_key: str, key: str) -> str:
    return f"{PREFIX}:idem:{_plain(client_key, 16)}:{_plain(key, 64)}"


def totp(user_id: str) -> tuple[str, str, str]:
    """(factor, failures, daily failures) of a user: one hash tag, so the check script runs on a cluster."""
    user = digest("totp-user", user_id)
    base = f"{PREFIX}:{{t{user[:4]}}}:totp"
    return f"{base}:f:{user}", f"{base}:fail:{user}", f"{base}:day:{user}"

"""Each shared word is defined once (otpservice/vocabulary.py) and every place that spells one uses it: the Lua
scripts write and answer only declared words, the send errors and signature failures name vocabulary words,
and the key layout is the one the data in Redis already has."""
from __future__ import annotations

import hashlib
import inspect
import re
from importlib import resources

from otpservice import vocabulary
from otpservice.sending import base
from otpservice.sending.telnyx import signatures
from otpservice.storage import keys
from otpservice.storage.totp import ENROLL_OUTCOMES
from otpservice.storage.verifications import RESERVATION_OUTCOMES

LUA_LITERAL = re.compile(r'"([a-z_.][a-z0-9_.]*)"')


def vocabulary_words() -> set[str]:
    words: set[str] = set()
    for name, value in vars(vocabulary).items():
        if name.isupper() and isinstance(value, (tuple, dict, str)):
            words |= {value} if isinstance(value, str) else set(value)
    return words


def declared_fields() -> set[str]:
    fields = set(keys.RECORD_FIELDS) | set(keys.FACTOR_FIELDS) | {keys.SEND_LOG, keys.FAILURE_LOG, keys.LOG_MARK}
    return fields | set(keys.SEND_FIELDS) | {f"{name}1" for name in keys.SEND_FIELDS}  # send k's, and send 1's


def test_every_word_a_lua_script_writes_or_answers_is_declared():
    allowed = vocabulary_words() | declared_fields() | set(RESERVATION_OUTCOMES) | set(ENROLL_OUTCOMES)
    lua = resources.files("otpservice.storage").joinpath("lua")
    found = {}
    for script in lua.iterdir():
        if script.name.endswith(".lua"):
            found[script.name] = set(LUA_LITERAL.findall(script.read_text())) - allowed
    assert {name: words for name, words in found.items() if words} == {}


def test_send_errors_and_signature_failures_name_vocabulary_words():
    errors = [cls for cls in vars(base).values() if inspect.isclass(cls) and issubclass(cls, base.SendError)]
    assert {cls.outcome for cls in errors} <= set(vocabulary.SEND_OUTCOMES)
    raised = set(re.findall(r'SignatureError\("([a-z_]+)"\)', inspect.getsource(signatures)))
    assert raised and raised <= set(vocabulary.SIGNATURE_FAILURES)


def test_every_status_a_receipt_can_carry_has_a_rank():
    assert set(vocabulary.DELIVERY_RANK) == set(vocabulary.DELIVERY_STATUSES) - {vocabulary.UNKNOWN_STATUS}
    assert set(vocabulary.FAILED_DELIVERY_STATUSES) <= set(vocabulary.TERMINAL_STATUSES)


def test_key_names_are_the_layout_already_in_redis():
    """Moving the key builders into one module changed no key: these are the formulas data was written with."""
    phone, event, client_key = "+13125550123", "evt-1", "client-key"
    number = hashlib.sha256(f"number\x00{phone}".encode()).hexdigest()[:32]
    tag = f"otp:{{{number[:4]}}}"
    assert keys.number(phone) == f"{tag}:n:{number}"
    assert keys.optouts(phone) == f"{tag}:oo:{number}"
    assert keys.record_prefix(phone) == f"{tag}:v:"
    assert keys.record(f"{number[:4]}abcd-0000-4000-8000-000000000000") == \
        f"{tag}:v:{number[:4]}abcd-0000-4000-8000-000000000000"
    assert keys.delivery_event(phone, event) == f"{tag}:ev:{hashlib.sha256(event.encode()).hexdigest()[:32]}"
    assert keys.inbound_event(event) == f"otp:ev:{hashlib.sha256(event.encode()).hexdigest()[:32]}"
    budget = hashlib.sha256(b"ip\x00203.0.113.9").hexdigest()[:24]
    assert keys.budget("ip", "203.0.113.9") == f"otp:rl:{{ip:{budget}}}"
    assert keys.idempotency(client_key, "k") == (f"otp:idem:{hashlib.sha256(client_key.encode()).hexdigest()[:16]}:"
                                                 f"{hashlib.sha256(b'k').hexdigest()}")
    user = hashlib.sha256(b"totp-user\x00u-1").hexdigest()[:32]
    assert keys.totp("u-1") == tuple(f"otp:{{t{user[:4]}}}:totp:{kind}:{user}" for kind in ("f", "fail", "day"))
    assert (keys.OPTOUT_INDEX, keys.optout_source("admin"), keys.OPTOUT_SYNC_LOCK) == \
        ("otp:oo:index", "otp:oo:src:admin", "otp:oo:sync:lock")
    vid = keys.new_verification_id(phone)
    assert keys.valid_id(vid) and vid[:4] == number[:4]

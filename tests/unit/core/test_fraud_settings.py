"""The fraud guard's settings refuse what would make it judge nonsense, naming the variable; and its parsers."""
from __future__ import annotations

import pytest

from otpservice.config import ConfigError, Settings
from otpservice.core.fraud import allow_entry, micros, parse_signals
from otpservice.errors import InvalidRequest


@pytest.mark.parametrize("env,value,named", [
    ("OTP_FRAUD_GUARD", "block", "OTP_FRAUD_GUARD"),
    ("OTP_FRAUD_MIN_CONVERSION", "1.5", "OTP_FRAUD_MIN_CONVERSION"),
    ("OTP_FRAUD_WINDOW", "30", "OTP_FRAUD_WINDOW"),
    ("OTP_FRAUD_WINDOW", "90000", "OTP_FRAUD_WINDOW"),  # longer than the history
    ("OTP_FRAUD_MIN_SENDS_PREFIX", "0", "OTP_FRAUD_MIN_SENDS_PREFIX"),
    ("OTP_FRAUD_BLOCK_SECONDS", "10", "OTP_FRAUD_BLOCK_SECONDS"),
    ("OTP_LIMIT_DEVICE", "often", "OTP_LIMIT_DEVICE"),
    ("OTP_SPEND_LIMIT_DAILY", "-1", "OTP_SPEND_LIMIT_DAILY"),
    ("OTP_SPEND_LIMIT_COUNTRY", "Latvia=5", "OTP_SPEND_LIMIT_COUNTRY"),
    ("OTP_SPEND_LIMIT_COUNTRY", "LV=free", "OTP_SPEND_LIMIT_COUNTRY"),
    ("OTP_SPEND_CURRENCY", "dollars", "OTP_SPEND_CURRENCY"),
])
def test_out_of_range_settings_are_refused_by_name(env, value, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({env: value}).validate()


def test_the_defaults_and_a_full_configuration_pass():
    Settings().validate()
    Settings.from_env({"OTP_FRAUD_GUARD": "shadow", "OTP_SPEND_LIMIT_DAILY": "25", "OTP_SPEND_LIMIT_COUNTRY":
                       "lv=5,GB=20.5", "OTP_ALLOW_NON_GEOGRAPHIC": "true"}).validate()
    assert Settings.from_env({"OTP_SPEND_LIMIT_COUNTRY": "lv=5"}).spend_limit_country == {"LV": "5"}


def test_costs_are_counted_in_millionths_exactly():
    assert micros("0.0040") == 4000 and micros("0.1") == 100_000 and micros(0.0051) == 5100
    assert micros(None) is None and micros("n/a") is None and micros("-1") is None and micros("NaN") is None


def test_signals_become_digests_and_allow_entries_are_e164_prefixes():
    signals = parse_signals({"device_id": "phone-1", "user_id": "alice@example.com"})
    assert len(signals.device) == 16 and "alice" not in signals.user and signals.device != signals.user
    assert parse_signals({}).device is None
    assert allow_entry("+3712000") == "+3712000"
    for bad in ("3712000", "+37", "+0371", "+3712000123456789", 3712000):
        with pytest.raises(InvalidRequest):
            allow_entry(bad)

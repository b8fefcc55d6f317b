"""Test numbers (OTP_TEST_NUMBERS): numbers with a fixed code, for app-store review and end-to-end tests.

A test number never reaches Telnyx; its code still expires and still has its attempts. Production refuses
them unless OTP_ALLOW_TEST_NUMBERS is set (config.py); every use is logged with the number masked.
"""
from __future__ import annotations

from otpservice.core import codes, phones
from otpservice.config import ConfigError, Settings
from otpservice.errors import ServiceError


def load_test_numbers(settings: Settings) -> dict[str, str]:
    """E.164 number → fixed code, checked at start-up (every spelling of a number maps to the same code)."""
    numbers: dict[str, str] = {}
    for raw, code in settings.test_numbers.items():
        try:
            e164 = phones.normalize(raw, settings.default_region).e164
        except ServiceError:
            raise ConfigError(f"OTP_TEST_NUMBERS: {phones.mask(raw)} is not a valid phone number") from None
        if not codes.is_well_formed(code, settings.code_digits):
            raise ConfigError(f"OTP_TEST_NUMBERS: the code of {phones.mask(e164)} must be "
                              f"{settings.code_digits} digits")
        numbers[e164] = code
    return numbers

"""Number parsing: the E.164 shortcut of /verify must agree with phonenumbers wherever it answers.

`phones.canonical_as_written` skips the full parse for input already in canonical E.164. If it ever says
"canonical" for a string phonenumbers would rewrite (or refuse), /verify would look up the wrong number,
so every claim it makes is checked here against phonenumbers itself.
"""
from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberType

from otpservice.core import phones
from otpservice.errors import InvalidPhoneNumber


def full_parse(raw: str) -> str | None:
    """What phonenumbers makes of `raw` as E.164, or None when it refuses it."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(raw, None), phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return None


def example_numbers() -> list[str]:
    """Every example number phonenumbers ships, for every region and number type, as E.164."""
    found = set()
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            for kind in PhoneNumberType.values():
                if region == "001":
                    number = phonenumbers.example_number_for_non_geo_entity(code)
                else:
                    number = phonenumbers.example_number_for_type(region, kind)
                if number is not None:
                    found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return sorted(found)


EXAMPLES = example_numbers()


def test_every_shipped_example_number_agrees_and_most_take_the_shortcut():
    shortcut = 0
    for e164 in EXAMPLES:
        if phones.canonical_as_written(e164):
            shortcut += 1
            assert full_parse(e164) == e164, e164
        assert phones.to_e164(e164) == full_parse(e164) == e164
    # The shortcut is worth having only if canonical numbers take it: all but the leading-zero ones do.
    assert len(EXAMPLES) > 1000 and shortcut / len(EXAMPLES) > 0.9


@pytest.mark.parametrize("written, canonical", [
    ("+113125550123", "+13125550123"),      # US: the trunk 1 after the country code is stripped
    ("+4407911123456", "+447911123456"),    # UK: the trunk 0
    ("+390612345678", "+390612345678"),     # Italy: a leading zero that stays (full parse decides)
])
def test_numbers_written_with_a_national_prefix_go_through_the_full_parse(written, canonical):
    assert not phones.canonical_as_written(written)
    assert phones.to_e164(written) == canonical == full_parse(written)


def test_the_national_prefix_case_is_really_rewritten_by_phonenumbers():
    # The reason the shortcut exists at all must stay true: without the check, these would be misread.
    rewritten = [e for e in ("+113125550123", "+4407911123456") if full_parse(e) != e]
    assert len(rewritten) == 2


def test_the_shortcut_never_accepts_what_the_full_parse_refuses():
    for raw in ("+0123456789", "+9991234567", "+1234", "+1312555012345678", "+1 312 555 0123", "+1312555O123"):
        if phones.canonical_as_written(raw):
            assert full_parse(raw) == raw
    with pytest.raises(InvalidPhoneNumber):
        phones.to_e164("+9991234567")  # 999 is no country code


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(code=st.sampled_from(sorted(COUNTRY_CODE_TO_REGION_CODE)),
       national=st.text(alphabet="0123456789", min_size=1, max_size=14))
def test_any_plus_and_digits_the_shortcut_accepts_is_what_phonenumbers_says(code, national):
    raw = f"+{code}{national}"
    if phones.canonical_as_written(raw):
        assert full_parse(raw) == raw


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(digits=st.text(alphabet="0123456789", min_size=7, max_size=16))
def test_random_digit_strings_agree(digits):
    raw = "+" + digits
    if phones.canonical_as_written(raw):
        assert full_parse(raw) == raw

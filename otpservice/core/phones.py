"""Phone numbers: parse any spelling to E.164 with `phonenumbers`, describe, and mask for logs."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberType

from otpservice.errors import InvalidPhoneNumber, InvalidRequest
from otpservice.observability.logs import mask_number as mask

MAX_INPUT = 64  # longer than any human spelling of a number; refuse before parsing
# The "region" of +800, +808, +870, +878, +881, +882, +883, +888 and +979: satellite and international networks.
NON_GEOGRAPHIC = phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
PLAIN_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line", PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile", PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate", PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip", PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager", PhoneNumberType.UAN: "uan", PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class PhoneNumber:
    """A valid number in E.164 with what the checks before a send need to know about it."""

    e164: str
    region: str
    country_code: int
    number_type: str

    @property
    def masked(self) -> str:
        return mask(self.e164)

    @property
    def non_geographic(self) -> bool:
        return self.region == NON_GEOGRAPHIC

    @property
    def country(self) -> str:
        """The country a budget or a fraud-guard scope counts it in: its ISO region, or for a non-geographic
        number its country code (+882 is many networks, none of them a country)."""
        return str(self.country_code) if self.non_geographic or not self.region else self.region


def parse(raw: object, default_region: str = "") -> phonenumbers.PhoneNumber:
    """Parse a caller's number (E.164, or national format of `default_region`) or raise a 4xx error."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequest("phone_number is required and must be a string.", field="phone_number")
    if len(raw) > MAX_INPUT:
        raise InvalidPhoneNumber("phone_number is too long.")
    try:
        return phonenumbers.parse(raw, default_region.upper() or None)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber(
            "phone_number must be in E.164 format (+13125550123)"
            + (f" or a national {default_region.upper()} number." if default_region else ".")) from None


def normalize(raw: object, default_region: str = "") -> PhoneNumber:
    """A valid number with what the checks before a send need: E.164, region, country code, type."""
    parsed = parse(raw, default_region)
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("phone_number is not a valid, assigned number range.")
    return PhoneNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        region=phonenumbers.region_code_for_number(parsed) or "",
        country_code=parsed.country_code,
        number_type=TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown"),
    )


def country_of(e164: str) -> str:
    """PhoneNumber.country of a number already checked when its code was requested: a parse and a region lookup,
    under half of `normalize` (the fraud guard counts every approved code by it)."""
    parsed = parse(e164)
    region = phonenumbers.region_code_for_number(parsed) or ""
    return str(parsed.country_code) if region in (NON_GEOGRAPHIC, "") else region


def to_e164(raw: object, default_region: str = "") -> str:
    """Only the canonical E.164 form, for looking up what was issued (/verify): a third of normalize's cost.

    Validity and number type were checked when the code was requested; a number that parses but was never
    valid has no verification, so it simply finds none. Input already written as canonical E.164 (what
    /request-code answers) is recognised without a full parse (see `canonical_as_written`).
    """
    if isinstance(raw, str) and canonical_as_written(raw):
        return raw
    return phonenumbers.format_number(parse(raw, default_region), phonenumbers.PhoneNumberFormat.E164)


def canonical_as_written(raw: str) -> bool:
    """True when `phonenumbers` would parse `raw` and format it back as E.164 unchanged (False: not sure).

    `phonenumbers.parse` of `+<country code><national number>` changes the digits in one case only: the
    country's national prefix (a trunk `0` or `1`, or a carrier code) written after the country code is
    stripped. So a string of `+` and 8-15 digits is already canonical when its country code is known, its
    national number has no leading zero (those are kept through an Italian-leading-zero flag, not checked
    here), and the country's national-prefix pattern does not match at its start. About a tenth of a full
    parse; tests/test_phones.py checks it against phonenumbers for every country code.
    """
    if not PLAIN_E164.fullmatch(raw):
        return False
    length, known, prefix = _lead(raw[1:4])  # 8 digits or more: always three
    national = raw[1 + length:]
    return known and national[0] != "0" and (prefix is None or prefix.match(national) is None)


@functools.lru_cache(maxsize=None)  # one entry per three leading digits (at most 900): a lookup per /verify
def _lead(digits: str) -> tuple[int, bool, re.Pattern | None]:
    """(country code length, _national_prefix(code)) for a number's first three digits, or (0, False, None)
    when none of their prefixes is a country code."""
    for length in (1, 2, 3):  # as phonenumbers extracts it: the shortest prefix that is a country code
        code = int(digits[:length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return (length, *_national_prefix(code))
    return 0, False, None


@functools.lru_cache(maxsize=None)  # one entry per country code (about 250)
def _national_prefix(code: int) -> tuple[bool, re.Pattern | None]:
    """(metadata found, its compiled national-prefix-for-parsing pattern or None) for a country code."""
    region = phonenumbers.region_code_for_country_code(code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return False, None
    pattern = metadata.national_prefix_for_parsing
    return True, (re.compile(pattern) if pattern else None)

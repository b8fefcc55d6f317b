"""Counting what one SMS segment holds: GSM-7 septets (extension-table characters count two), else UCS-2 units."""
from __future__ import annotations

import pytest

from otpservice.core import segments
from otpservice.core.messages import Texts
from otpservice.sandbox.payloads import encoding_and_parts


@pytest.mark.parametrize("text,encoding,length", [
    ("a" * 160, "GSM-7", 160),
    ("é" * 160, "GSM-7", 160),           # in the GSM 03.38 basic set: one septet each
    ("€" * 80, "GSM-7", 160),            # extension table: escape + character, two septets each
    ("[x]{y}~^|\\", "GSM-7", 18),
    ("Ç" + "a" * 69, "GSM-7", 70),       # capital C cedilla is in the basic set...
    ("ç" + "a" * 69, "UCS-2", 70),       # ...small c cedilla is not, so the whole text goes UCS-2
    ("ó" + "a" * 69, "UCS-2", 70),
    ("Δ" + "a" * 9, "GSM-7", 10),        # the Greek capitals that do not look Latin are GSM-7
    ("α" + "a" * 9, "UCS-2", 10),
    ("😀" * 35, "UCS-2", 70),            # outside the BMP: a surrogate pair, two units
])
def test_cost_counts_the_encoding_units(text, encoding, length):
    cost = segments.cost(text)
    assert (cost.encoding, cost.length) == (encoding, length)
    assert cost.fits


@pytest.mark.parametrize("text", ["a" * 161, "€" * 80 + "a", "ç" + "a" * 70, "😀" * 35 + "a", "ж" * 71])
def test_one_unit_past_the_limit_does_not_fit(text):
    cost = segments.cost(text)
    assert cost.length == cost.limit + 1 and not cost.fits


def test_the_count_agrees_with_the_simulators_own_gsm_table():
    """The simulator models Telnyx with a hand-written GSM 03.38 table; the codec library must agree with it on
    every shipped text, so a text we call one segment is one part at the provider."""
    texts = Texts(app_name="Acme [Login] €", code_digits=8, ttl_seconds=600)
    for tag in texts.templates:
        sent = texts.compose(tag, "12345678", warning=texts.warned[tag])
        assert segments.cost(sent).fits and encoding_and_parts(sent) == (segments.cost(sent).encoding, 1), tag
        longest = texts.compose(tag, "12345678", warning=True)
        assert encoding_and_parts(longest)[0] == segments.cost(longest).encoding, tag

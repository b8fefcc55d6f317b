"""Counting what one SMS segment holds at Telnyx: GSM-7 septets (extension-table characters count two) when Telnyx
sends the text as GSM-7, else UCS-2 units."""
from __future__ import annotations

import pytest

from otpservice.core import segments
from otpservice.core.messages import Texts
from otpservice.sandbox.payloads import encoding_and_parts
from otpservice.vocabulary import TELNYX_GSM7


@pytest.mark.parametrize("text,encoding,length", [
    ("a" * 160, "GSM-7", 160),
    ("é" * 160, "GSM-7", 160),           # in the GSM 03.38 basic set and Telnyx's: one septet each
    ("[" * 80, "GSM-7", 160),            # extension table: escape + character, two septets each
    ("[x]{y}~^|\\", "GSM-7", 18),
    ("ç" + "a" * 69, "UCS-2", 70),       # not GSM-7 anywhere: the whole text goes UCS-2
    ("ó" + "a" * 69, "UCS-2", 70),
    ("α" + "a" * 9, "UCS-2", 10),
    # GSM 03.38 has these, Telnyx's GSM-7 does not: the capital C cedilla, the Greek capitals, the euro sign
    ("Ç" + "a" * 69, "UCS-2", 70),
    ("Δ" + "a" * 9, "UCS-2", 10),
    ("€" + "a" * 9, "UCS-2", 10),
    ("😀" * 35, "UCS-2", 70),            # outside the BMP: a surrogate pair, two units
])
def test_cost_counts_the_encoding_units(text, encoding, length):
    cost = segments.cost(text)
    assert (cost.encoding, cost.length) == (encoding, length)
    assert cost.fits


@pytest.mark.parametrize("text", ["a" * 161, "[" * 80 + "a", "ç" + "a" * 70, "😀" * 35 + "a", "ж" * 71])
def test_one_unit_past_the_limit_does_not_fit(text):
    cost = segments.cost(text)
    assert cost.length == cost.limit + 1 and not cost.fits


def test_telnyxs_gsm7_is_within_gsm_03_38_and_narrower():
    """Every character Telnyx sends as GSM-7 has a GSM 03.38 code (so the codec counts its septets), and the
    letters GSM 03.38 adds are exactly the ones Telnyx leaves out."""
    import gsm0338  # noqa: F401
    assert all(len(ch.encode("gsm03.38")) in (1, 2) for ch in TELNYX_GSM7)
    standard = {ch for ch in map(chr, range(0x10000)) if _gsm(ch)}
    assert standard - TELNYX_GSM7 == set("ÇΔΦΓΛΩΠΨΣΘΞ¤§€\f\x1b")


def _gsm(ch: str) -> bool:
    try:
        ch.encode("gsm03.38")
        return True
    except UnicodeEncodeError:
        return False


@pytest.mark.parametrize("app_name", ["Acme [Login]", "Ørsted Bank", "Café Müller"])
def test_every_shipped_text_is_one_part_at_the_simulator_as_counted(app_name):
    """The simulator bills parts as Telnyx does; every shipped text we call one segment is one part there."""
    texts = Texts(app_name=app_name, code_digits=8, ttl_seconds=600)
    for tag in texts.templates:
        sent = texts.compose(tag, "12345678", warning=texts.warned[tag])
        assert segments.cost(sent).fits and encoding_and_parts(sent) == (segments.cost(sent).encoding, 1), tag


def test_parts_past_one_segment_are_153_septets_or_67_units():
    assert encoding_and_parts("a" * 306) == ("GSM-7", 2) and encoding_and_parts("a" * 307) == ("GSM-7", 3)
    assert encoding_and_parts("ж" * 134) == ("UCS-2", 2) and encoding_and_parts("ж" * 135) == ("UCS-2", 3)
    assert encoding_and_parts("a" * 10, "ucs2") == ("UCS-2", 1)

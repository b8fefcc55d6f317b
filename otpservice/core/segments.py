"""What one SMS segment holds at Telnyx: 160 GSM-7 septets when Telnyx sends the text as GSM-7, else 70 UCS-2
units."""
from __future__ import annotations

import math
from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from otpservice.vocabulary import TELNYX_GSM7

GSM7, UCS2 = "GSM-7", "UCS-2"
LIMITS = {GSM7: 160, UCS2: 70}  # one segment
PART_LIMITS = {GSM7: 153, UCS2: 67}  # a longer text is split into parts this long (the rest is their header)
GSM7_CODEC = "gsm03.38"  # counts the septets: a character of the extension table ([ ] { } ~ ^ | \\) takes two


@dataclass(frozen=True)
class Cost:
    """The encoding a text needs and its length in that encoding's units."""

    encoding: str
    length: int

    @property
    def limit(self) -> int:
        return LIMITS[self.encoding]

    @property
    def fits(self) -> bool:
        """True when the text goes as one segment."""
        return self.length <= self.limit

    @property
    def parts(self) -> int:
        """The SMS parts the text is sent (and billed) as."""
        return 1 if self.fits else math.ceil(self.length / PART_LIMITS[self.encoding])

    def __str__(self) -> str:
        unit = "septets" if self.encoding == GSM7 else "units"
        return f"{self.length} {self.encoding} {unit} of {self.limit}"


def outside_gsm7(text: str) -> list[str]:
    """The characters of `text` Telnyx cannot send as GSM-7, each once, in order."""
    return list(dict.fromkeys(ch for ch in text if ch not in TELNYX_GSM7))


def cost(text: str, encoding: str = "auto") -> Cost:
    """GSM-7 septets if Telnyx can send the text as GSM-7 (and `encoding`, Telnyx's request field, is not
    "ucs2"), else UCS-2 code units (an emoji takes two)."""
    if encoding != "ucs2" and not outside_gsm7(text):
        return Cost(GSM7, len(text.encode(GSM7_CODEC)))
    return Cost(UCS2, len(text.encode("utf-16-le", "surrogatepass")) // 2)

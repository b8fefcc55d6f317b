"""What one SMS segment holds: 160 GSM-7 septets when every character is in GSM 03.38, else 70 UCS-2 units."""
from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7, UCS2 = "GSM-7", "UCS-2"
LIMITS = {GSM7: 160, UCS2: 70}  # one segment; a longer text is split into parts of 153 / 67 and billed per part
GSM7_CODEC = "gsm03.38"  # a character of the extension table ([ ] { } ~ € ...) encodes as two septets


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

    def __str__(self) -> str:
        unit = "septets" if self.encoding == GSM7 else "units"
        return f"{self.length} {self.encoding} {unit} of {self.limit}"


def cost(text: str) -> Cost:
    """GSM-7 septets if the GSM 03.38 alphabet can write the text, else UCS-2 code units (an emoji takes two)."""
    try:
        return Cost(GSM7, len(text.encode(GSM7_CODEC)))
    except UnicodeEncodeError:
        return Cost(UCS2, len(text.encode("utf-16-le", "surrogatepass")) // 2)

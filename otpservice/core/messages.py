"""The text of the message that carries a code: a per-locale template naming the app, code and lifetime."""
from __future__ import annotations

import functools
import json
import re
from importlib import resources

FALLBACK = "en"
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")  # BCP 47, leniently
# The language most of a country's subscribers read, for a request that names no locale.
REGION_LANGUAGE = {
    **dict.fromkeys("ES MX AR CO CL PE VE EC GT CU BO DO HN PY SV NI CR PA UY".split(), "es"),
    **dict.fromkeys("FR BE LU MC SN CI".split(), "fr"),
    **dict.fromkeys("DE AT LI".split(), "de"),
    **dict.fromkeys("BR PT AO MZ".split(), "pt"),
}


@functools.cache
def templates() -> dict[str, str]:
    """Every template shipped in otpservice/core/templates/messages.json, by language."""
    text = resources.files("otpservice.core").joinpath("templates", "messages.json").read_text(encoding="utf-8")
    return json.loads(text)


def valid_locale(locale: object) -> bool:
    return isinstance(locale, str) and len(locale) <= 35 and bool(LOCALE_RE.match(locale))


def choose_language(locale: str | None, region: str) -> str:
    """The requested locale's language if we have it, else the number's country language, else English."""
    available = templates()
    if locale:
        language = re.split(r"[-_]", locale)[0].lower()
        if language in available:
            return language
    language = REGION_LANGUAGE.get(region.upper(), FALLBACK)
    return language if language in available else FALLBACK


def render(*, code: str, app_name: str, ttl_seconds: int, locale: str | None, region: str) -> str:
    """The message text for one code."""
    template = templates()[choose_language(locale, region)]
    return template.format(app=app_name, code=code, minutes=max(1, ttl_seconds // 60))

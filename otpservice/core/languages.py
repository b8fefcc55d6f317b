"""Which of the texts' locales a reader gets: the caller's BCP 47 locale when one matches, else the language of
the number's country (CLDR's likely language, then its official ones by speakers), else English.

The country data are CLDR's, through Babel: no table of ours to keep up to date.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources

from babel import Locale, UnknownLocaleError
from babel.core import get_global, parse_locale
from babel.languages import get_territory_language_info
from babel.plural import PluralRule

FALLBACK = "en"
OFFICIAL = ("official", "de_facto_official")  # not "official_regional": a region's language is not the country's
# CLDR keeps Norwegian (no) apart from Bokmål (nb), the written standard of most Norwegians.
MACROLANGUAGES = {"no": "nb"}

Subtags = tuple[str, "str | None", "str | None"]  # language, script, territory


def maximize(language: str, script: str | None, territory: str | None) -> Subtags:
    """Fill in the script the language is written in (zh-TW: Hant, zh: Hans, sr: Cyrl) from CLDR's likely subtags."""
    if not script:
        likely = get_global("likely_subtags")
        for key in ([f"{language}_{territory}"] if territory else []) + [language]:
            if key in likely:
                script = parse_locale(likely[key])[2]
                break
    return language, script, territory


@functools.lru_cache(maxsize=1024)
def subtags(tag: str) -> Subtags | None:
    """The language, script and territory of a BCP 47 tag (CLDR's aliases applied), or None for a language CLDR
    does not know. Subtags Babel cannot read (variants, extensions) are dropped from the end."""
    parts = tag.replace("_", "-").split("-")
    while parts:
        try:
            locale = Locale.parse("-".join(parts), sep="-")
        except (ValueError, TypeError, UnknownLocaleError):
            parts.pop()
            continue
        return maximize(MACROLANGUAGES.get(locale.language, locale.language), locale.script, locale.territory)
    return None


@functools.lru_cache(maxsize=512)
def region_languages(region: str) -> tuple[tuple[str, "str | None"], ...]:
    """(language, script) a country's texts are best written in, most likely first."""
    found = []
    likely = get_global("likely_subtags").get(f"und_{region}")
    if likely:
        found.append(likely)
    info = get_territory_language_info(region)
    found += [tag for tag, data in sorted(info.items(), key=lambda item: -item[1]["population_percent"])
              if data.get("official_status") in OFFICIAL]
    return tuple(maximize(lang, script, region)[:2] for lang, _, script, *_ in map(parse_locale, found))


def match(available: dict[str, Subtags], language: str, script: str | None, territory: str | None) -> str | None:
    """The available locale of that language and script: the territory's own, else the plain one, else any."""
    ranked = [(0 if terr == territory else 1 if terr is None else 2, tag)
              for tag, (lang, scr, terr) in available.items() if (lang, scr) == (language, script)]
    return min(ranked)[1] if ranked else None


def choose(available: dict[str, Subtags], locale: str | None, region: str | None) -> str:
    """The locale a text is written in, from the available ones (tag -> its subtags); English as the last resort."""
    region = (region or "").upper()
    if locale and (wanted := subtags(locale)):
        language, script, territory = wanted
        if found := match(available, language, script, territory or region):
            return found
    for language, script in region_languages(region):
        if found := match(available, language, script, region):
            return found
    return FALLBACK


def index(tags: Iterable[str]) -> dict[str, Subtags]:
    """The subtags of each available locale tag, for `choose`."""
    return {tag: subtags(tag) for tag in tags}


@functools.cache
def shipped_plural_rules() -> dict[str, dict[str, str]]:
    """CLDR's plural rules of the shipped locales' languages, as Babel has them (templates/plural_rules.json,
    which unit/test_languages.py holds equal to Babel's). Why a copy: Babel reads a locale's whole CLDR data
    (about 45 ms each) to give its plural rule, which made start-up take seconds for 35 locales."""
    text = resources.files("otpservice.core").joinpath("templates", "plural_rules.json").read_text(encoding="utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=None)
def plural_rule(tag: str) -> PluralRule:
    """The CLDR plural rule of an available locale (Babel's PluralRule): the shipped copy for a shipped locale,
    Babel's own for a locale an operator adds (by its whole tag: pt-PT counts unlike pt)."""
    rules = shipped_plural_rules().get(tag)
    return PluralRule(rules) if rules is not None else Locale.parse(tag, sep="-").plural_form


def plural_categories(tag: str) -> frozenset[str]:
    """The CLDR plural categories a language's numbers take (always including "other")."""
    return plural_rule(tag).tags | {"other"}


def plural_category(tag: str, n: int) -> str:
    """The CLDR plural category of `n` in the locale's language (one, few, many, other ...)."""
    return plural_rule(tag)(n)

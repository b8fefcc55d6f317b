"""The text that carries a code: in the reader's language, and always one SMS segment.

Each locale of templates/messages.json (and of an operator's OTP_MESSAGES_FILE, which replaces or adds locales)
has a `text` with {app}, {code} and {ttl}, a `warning` sentence added when the segment has room for it, and the
lifetime's words for `minutes` and `seconds` ({n}) in every CLDR plural category of its language. `Texts` puts
them together for one configuration at start-up, and refuses one that would not fit a segment.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import string
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, Mapping

from babel import Locale, UnknownLocaleError

from otpservice.config import ConfigError, Settings
from otpservice.core import languages, segments

log = logging.getLogger(__name__)

FALLBACK = languages.FALLBACK
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")  # BCP 47, leniently
SHIPPED = "otpservice/core/templates/messages.json"
PLACEHOLDERS = {"text": {"app", "code", "ttl"}, "warning": set(), "minutes": {"n"}, "seconds": {"n"}}
REQUIRED = ("text", "minutes", "seconds")  # a new locale's fields; `warning` may be left out


@dataclass(frozen=True)
class Template:
    """One locale's words, and where they came from (for error messages)."""

    tag: str
    text: str
    warning: str
    minutes: Mapping[str, str]
    seconds: Mapping[str, str]
    source: str

    def lifetime(self, ttl_seconds: int) -> str:
        """The code's lifetime in words: seconds under a minute, else whole minutes rounded down (never longer
        than the code lives)."""
        forms, n = (self.seconds, ttl_seconds) if ttl_seconds < 60 else (self.minutes, ttl_seconds // 60)
        return forms[languages.plural_category(self.tag, n)].format(n=n)


def valid_locale(locale: object) -> bool:
    """Whether a caller's `locale` is shaped like a BCP 47 tag (whether we have its language is another matter)."""
    return isinstance(locale, str) and len(locale) <= 35 and bool(LOCALE_RE.match(locale))


def check_format(where: str, field: str, value: object, allowed: set[str], required: tuple[str, ...] = ()) -> str:
    """A template string using only the allowed placeholders, bare (no attribute, index, spec or conversion)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {field} must be a non-empty string")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: {field}: {exc} (write {{{{ and }}}} for a literal brace)") from None
    for name, spec, conv in fields:
        if name not in allowed or spec or conv:
            shown = ", ".join(f"{{{p}}}" for p in sorted(allowed)) or "none"
            raise ConfigError(f"{where}: {field} has the unknown placeholder {{{name}}}; it may use {shown}")
    for name in required:
        if name not in {f[0] for f in fields}:
            raise ConfigError(f"{where}: {field} must contain {{{name}}}")
    return value


def check_forms(where: str, field: str, tag: str, value: object) -> Mapping[str, str]:
    """One word form per plural category of the language, and no category it does not have."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {field} must be an object of plural category -> words")
    categories = languages.plural_categories(tag)
    missing, extra = categories - set(value), set(value) - categories
    if missing or extra:
        raise ConfigError(f"{where}: {field} needs exactly the plural categories of its language "
                          f"({', '.join(sorted(categories))}); missing {sorted(missing)}, unknown {sorted(extra)}")
    return MappingProxyType({category: check_format(where, f"{field}.{category}", form, PLACEHOLDERS[field])
                             for category, form in value.items()})


def canonical(where: str, tag: str) -> str:
    """A locale tag CLDR knows, written as CLDR writes it (zh-Hant, pt-PT, fil)."""
    try:
        written = str(Locale.parse(tag, sep="-")).replace("_", "-")
    except (ValueError, TypeError, UnknownLocaleError):
        raise ConfigError(f"{where}: not a locale CLDR knows (e.g. en, pt-PT, zh-Hant)") from None
    if written != tag:
        raise ConfigError(f"{where}: write it {written!r}")
    return tag


def parse_catalog(data: object, source: str, base: Mapping[str, Template] | None = None) -> dict[str, Template]:
    """Templates by locale from a JSON object. Over a `base`, a locale's fields replace its own (a new locale's,
    its parent's: pt-PT's those of pt), and null removes a locale (its countries then get the next language that
    matches, at worst English)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a JSON object of locale -> template")
    catalog = dict(base or {})
    for tag, entry in data.items():
        where = f"{source}: locale {tag!r}"
        canonical(where, tag)
        if entry is None and base is not None and tag != FALLBACK:
            catalog.pop(tag, None)
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be an object with {', '.join(PLACEHOLDERS)}"
                              + ("" if base is None else f", or null to leave it out (never {FALLBACK})"))
        unknown = set(entry) - set(PLACEHOLDERS)
        if unknown:
            raise ConfigError(f"{where}: unknown fields {sorted(unknown)}; a template has {', '.join(PLACEHOLDERS)}")
        parent = tag  # a new pt-PT starts from pt, zh-Hant-HK from zh-Hant
        while parent not in catalog and "-" in parent:
            parent = parent.rsplit("-", 1)[0]
        fields: dict[str, Any] = dict(vars(catalog[parent])) if parent in catalog else {"warning": ""}
        fields.update(entry)
        missing = [name for name in REQUIRED if name not in fields]
        if missing:
            raise ConfigError(f"{where}: a new locale needs {', '.join(missing)} (or a shipped parent locale)")
        warning = fields["warning"]
        catalog[tag] = Template(
            tag=tag, source=source,
            text=check_format(where, "text", fields["text"], PLACEHOLDERS["text"], required=("code",)),
            warning=check_format(where, "warning", warning, PLACEHOLDERS["warning"]) if warning != "" else "",
            minutes=check_forms(where, "minutes", tag, fields["minutes"]),
            seconds=check_forms(where, "seconds", tag, fields["seconds"]))
    return catalog


@functools.cache
def shipped() -> Mapping[str, Template]:
    """The templates shipped in otpservice/core/templates/messages.json."""
    text = resources.files("otpservice.core").joinpath("templates", "messages.json").read_text(encoding="utf-8")
    return MappingProxyType(parse_catalog(json.loads(text), SHIPPED))


def load(path: str, base: Mapping[str, Template] | None = None) -> dict[str, Template]:
    """The shipped templates with an operator's file over them (OTP_MESSAGES_FILE)."""
    source = f"OTP_MESSAGES_FILE {path}"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: is not UTF-8 JSON ({exc})") from None
    return parse_catalog(data, source, shipped() if base is None else base)


class Texts:
    """Every locale's text for one configuration, each checked at start-up to fit one SMS segment."""

    def __init__(self, *, app_name: str, code_digits: int, ttl_seconds: int, webotp_domain: str = "",
                 android_app_hash: str = "", templates: Mapping[str, Template] | None = None) -> None:
        self.templates = shipped() if templates is None else templates
        self.app_name = app_name
        self.webotp_domain = webotp_domain
        self.android_app_hash = android_app_hash
        self.available = languages.index(self.templates)
        self.lifetimes = {tag: t.lifetime(ttl_seconds) for tag, t in self.templates.items()}
        sample = "0" * code_digits
        too_long = {tag: cost for tag in self.templates
                    if not (cost := segments.cost(self.compose(tag, sample, warning=False))).fits}
        if too_long:
            raise ConfigError(self.too_long(too_long, code_digits))
        self.warned = {tag: bool(t.warning) and segments.cost(self.compose(tag, sample, warning=True)).fits
                       for tag, t in self.templates.items()}
        left_out = sorted(tag for tag, warned in self.warned.items() if not warned and self.templates[tag].warning)
        if left_out:
            log.info("texts without their warning sentence, for want of room in one segment",
                     extra={"locales": left_out})

    @classmethod
    def from_settings(cls, settings: Settings) -> "Texts":
        templates = load(settings.messages_file) if settings.messages_file else None
        return cls(app_name=settings.app_name, code_digits=settings.code_digits, ttl_seconds=settings.code_ttl,
                   webotp_domain=settings.webotp_domain, android_app_hash=settings.android_app_hash,
                   templates=templates)

    def too_long(self, costs: Mapping[str, segments.Cost], code_digits: int) -> str:
        """The start-up refusal: each text past one segment, where it comes from, and what would shorten it."""
        names = ["OTP_APP_NAME"] + [name for name, value in (("OTP_WEBOTP_DOMAIN", self.webotp_domain),
                                                             ("OTP_ANDROID_APP_HASH", self.android_app_hash)) if value]
        sources: dict[str, list[str]] = {}
        for tag, cost in costs.items():
            sources.setdefault(self.templates[tag].source, []).append(f"{tag!r} ({cost})")
        texts = "; ".join(f"{source}: locale {', '.join(tags)}" for source, tags in sources.items())
        return (f"with this {', '.join(names)} and {code_digits}-digit codes, these texts would take more than one "
                f"SMS segment: {texts}. Shorten {' or '.join(names)}, or give those locales shorter texts in "
                "OTP_MESSAGES_FILE (null leaves a locale out)")

    def compose(self, tag: str, code: str, *, warning: bool) -> str:
        """The locale's text for one code: sentence, warning, then the Android hash and the WebOTP line, which
        must be the last."""
        template = self.templates[tag]
        text = template.text.format(app=self.app_name, code=code, ttl=self.lifetimes[tag])
        if warning:
            text += template.warning
        if self.android_app_hash:
            text += "\n" + self.android_app_hash
        if self.webotp_domain:
            text += f"\n@{self.webotp_domain} #{code}"
        return text

    def language(self, locale: str | None, region: str | None) -> str:
        """The locale a text for this request is written in."""
        return languages.choose(self.available, locale, region)

    def render(self, *, code: str, locale: str | None, region: str | None) -> str:
        """The text of one code, for the caller's locale or else the number's region."""
        tag = self.language(locale, region)
        return self.compose(tag, code, warning=self.warned[tag])

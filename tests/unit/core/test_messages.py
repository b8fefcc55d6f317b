"""The texts: every locale one SMS segment at its longest, plural forms, the override file, WebOTP and Android lines.

Segments are counted here on their own terms (the GSM 03.38 codec, else UTF-16 units), not with
core/segments.py, so a mistake there cannot hide a text that is too long.
"""
from __future__ import annotations

import json
import re

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pytest

from otpservice.config import APP_NAME_MAX_SEPTETS, MAX_CODE_TTL, MAX_DIGITS, MIN_CODE_TTL, ConfigError, Settings
from otpservice.core import languages, messages
from otpservice.core.messages import Texts

TEMPLATES = messages.shipped()
# Scripts GSM 03.38 cannot write; every other locale must be written in GSM-7.
UCS2_LOCALES = {"ru", "uk", "bg", "el", "ar", "he", "hi", "bn", "th", "zh-Hans", "zh-Hant", "ja", "ko"}
BIG_MARKETS = {"en", "es", "pt", "fr", "de", "it", "nl", "pl", "ru", "uk", "tr", "ar", "hi", "id", "ms", "vi", "th",
               "zh-Hans", "zh-Hant", "ja", "ko", "sv", "da", "nb", "fi", "cs", "ro", "hu", "el", "he", "bn", "fil"}
HASH = "FA+9qCX9VSu"


def one_segment(text: str) -> tuple[str, int, bool]:
    """(encoding, length, fits): 160 GSM-7 septets, else 70 UTF-16 units."""
    try:
        septets = len(text.encode("gsm03.38"))
        return "GSM-7", septets, septets <= 160
    except UnicodeEncodeError:
        units = len(text.encode("utf-16-le")) // 2
        return "UCS-2", units, units <= 70


def texts(**settings) -> Texts:
    return Texts.from_settings(Settings(**settings))


def render(texts_: Texts, locale: str, code: str = "123456", region: str = "US") -> str:
    return texts_.render(code=code, locale=locale, region=region)


# -- every locale, one segment ------------------------------------------------------------------------------
def test_at_least_thirty_locales_cover_the_big_markets():
    assert len(TEMPLATES) >= 30 and BIG_MARKETS <= set(TEMPLATES)


def test_every_locale_fits_one_segment_with_the_longest_name_code_and_lifetime():
    """Every lifetime the settings allow, a 10-digit code and an app name at the cap: each text is one segment,
    in GSM-7 wherever the language's script allows it."""
    app_name = "W" * APP_NAME_MAX_SEPTETS  # one septet, and one UTF-16 unit, per character: the longest name
    code = "9" * MAX_DIGITS
    by_wording = {}  # one TTL for each different set of lifetime words (61 s and 119 s both say "1 minute")
    for ttl in range(MIN_CODE_TTL, MAX_CODE_TTL + 1):
        by_wording.setdefault(tuple(t.lifetime(ttl) for t in TEMPLATES.values()), ttl)
    assert len(by_wording) == 40  # 30-59 seconds, 1-10 minutes
    for ttl in by_wording.values():
        built = Texts(app_name=app_name, code_digits=MAX_DIGITS, ttl_seconds=ttl)
        for tag in TEMPLATES:
            text = render(built, tag, code)
            encoding, length, fits = one_segment(text)
            assert fits, f"{tag} at {ttl} s: {length} {encoding} units: {text!r}"
            assert encoding == ("UCS-2" if tag in UCS2_LOCALES else "GSM-7"), (tag, text)
            assert app_name in text and code in text and built.lifetimes[tag] in text


def test_the_default_settings_leave_every_warning_in():
    built = texts()
    for tag, template in TEMPLATES.items():
        assert render(built, tag).endswith(template.warning), tag


def test_a_long_name_leaves_the_warning_out_rather_than_take_a_second_segment():
    built = Texts(app_name="W" * APP_NAME_MAX_SEPTETS, code_digits=MAX_DIGITS, ttl_seconds=600)
    russian = render(built, "ru", "9" * MAX_DIGITS)
    assert TEMPLATES["ru"].warning.strip() not in russian and one_segment(russian)[2]
    english = render(built, "en", "9" * MAX_DIGITS)
    assert english.endswith(TEMPLATES["en"].warning)


REGENERATE = ("python -c 'import json; from babel import Locale; "
              "tags = sorted(json.load(open(\"otpservice/core/templates/messages.json\"))); "
              "print(json.dumps({t: Locale.parse(t, sep=\"-\").plural_form.rules for t in tags}, "
              "indent=1, sort_keys=True, ensure_ascii=False))' > otpservice/core/templates/plural_rules.json")


# -- plural forms -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tag,ttl,words", [
    ("en", 30, "30 seconds"), ("en", 59, "59 seconds"), ("en", 60, "1 minute."), ("en", 119, "1 minute."),
    ("en", 120, "2 minutes"), ("en", 600, "10 minutes"),
    ("ru", 31, "31 секунду"), ("ru", 32, "32 секунды"), ("ru", 35, "35 секунд"), ("ru", 60, "1 минуту"),
    ("ru", 180, "3 минуты"), ("ru", 300, "5 минут"),
    ("uk", 41, "41 секунду"), ("uk", 44, "44 секунди"), ("uk", 600, "10 хвилин"),
    ("pl", 60, "1 minute"), ("pl", 180, "3 minuty"), ("pl", 300, "5 minut"), ("pl", 31, "31 sekund"),
    ("pl", 32, "32 sekundy"),
    ("cs", 60, "1 minutu"), ("cs", 120, "2 minuty"), ("cs", 300, "5 minut"),
    ("hr", 60, "1 minutu"), ("hr", 120, "2 minute"), ("hr", 300, "5 minuta"), ("hr", 31, "31 sekundu"),
    ("ro", 60, "1 minut"), ("ro", 120, "2 minute"), ("ro", 30, "30 de secunde"),
    ("fi", 60, "1 minuutin"), ("fi", 120, "2 minuuttia"),
    ("ar", 60, "دقيقة واحدة"), ("ar", 120, "دقيقتين"), ("ar", 180, "3 دقائق"), ("ar", 600, "10 دقائق"),
    ("ar", 30, "30 ثانية"),
    ("he", 60, "לדקה אחת"), ("he", 120, "לשתי דקות"), ("he", 300, "ל-5 דקות"),
    ("ja", 300, "5分"), ("fr", 60, "1 minute."), ("fr", 120, "2 minutes."),
])
def test_the_lifetime_takes_the_plural_form_of_its_number(tag, ttl, words):
    assert words in render(texts(code_ttl=ttl), tag)


def test_the_english_lifetime_is_never_longer_than_the_code_lives():
    """Seconds under a minute, else whole minutes rounded down; "1 minutes" never."""
    english = {"en": TEMPLATES["en"]}
    for ttl in range(MIN_CODE_TTL, MAX_CODE_TTL + 1):
        text = render(Texts(app_name="otpservice", code_digits=6, ttl_seconds=ttl, templates=english), "en")
        n, unit, plural = re.search(r"expires in (\d+) (second|minute)(s?)\.", text).groups()
        seconds = int(n) * (1 if unit == "second" else 60)
        assert seconds <= ttl < seconds + (1 if unit == "second" else 60), text
        assert (plural == "") == (n == "1"), text


def test_every_locale_has_a_form_for_each_plural_category_of_its_language():
    arabic = languages.plural_categories("ar")
    assert arabic == {"zero", "one", "two", "few", "many", "other"}  # the language with the most
    for tag, template in TEMPLATES.items():
        assert set(template.minutes) == set(template.seconds) == languages.plural_categories(tag), tag


def test_the_shipped_plural_rules_are_babels():
    """templates/plural_rules.json is Babel's CLDR data for exactly the shipped locales (a copy only for speed)."""
    from babel import Locale
    babels = {tag: Locale.parse(tag, sep="-").plural_form.rules for tag in sorted(TEMPLATES)}
    assert languages.shipped_plural_rules() == babels, f"regenerate it: {REGENERATE}"


def test_an_operators_locale_gets_babels_rule_for_its_whole_tag():
    """pt-PT counts unlike pt (0 is "other" there, "one" in pt): a locale not shipped is never given its
    language's shipped rule."""
    assert languages.plural_category("pt", 0) == "one"
    assert languages.plural_category("pt-PT", 0) == "other"


# -- choosing the language ----------------------------------------------------------------------------------
@pytest.mark.parametrize("region,tag", [
    ("US", "en"), ("GB", "en"), ("CA", "en"), ("AU", "en"), ("NG", "en"), ("SG", "en"), ("ZA", "en"),
    ("MX", "es"), ("ES", "es"), ("AR", "es"), ("CO", "es"), ("BR", "pt"), ("PT", "pt"), ("AO", "pt"),
    ("FR", "fr"), ("LU", "fr"), ("SN", "fr"), ("DE", "de"), ("AT", "de"), ("CH", "de"), ("BE", "nl"),
    ("NL", "nl"), ("IT", "it"), ("PL", "pl"), ("RU", "ru"), ("BY", "ru"), ("KZ", "ru"), ("UA", "uk"),
    ("TR", "tr"), ("EG", "ar"), ("SA", "ar"), ("MA", "ar"), ("AE", "ar"), ("IN", "hi"), ("BD", "bn"),
    ("ID", "id"), ("MY", "ms"), ("VN", "vi"), ("TH", "th"), ("CN", "zh-Hans"), ("TW", "zh-Hant"),
    ("HK", "zh-Hant"), ("MO", "zh-Hant"), ("JP", "ja"), ("KR", "ko"), ("SE", "sv"), ("DK", "da"), ("NO", "nb"),
    ("FI", "fi"), ("CZ", "cs"), ("SK", "sk"), ("RO", "ro"), ("MD", "ro"), ("HU", "hu"), ("GR", "el"),
    ("CY", "el"), ("IL", "he"), ("PH", "fil"), ("HR", "hr"), ("BG", "bg"),
    ("PK", "en"), ("KE", "en"),  # Urdu and Swahili are not shipped: the official language next in line
    ("IR", "en"), ("ZZ", "en"), ("", "en"), (None, "en"),  # nothing shipped, or no country: English
])
def test_the_numbers_country_picks_its_majority_language(region, tag):
    assert texts().language(None, region) == tag


def test_every_country_a_number_can_have_gets_a_shipped_locale():
    import phonenumbers
    built = texts()
    assert {built.language(None, region) for region in phonenumbers.SUPPORTED_REGIONS} <= set(TEMPLATES)


@pytest.mark.parametrize("locale,region,tag", [
    ("es-MX", "US", "es"), ("de", "BR", "de"), ("pt-BR", "US", "pt"), ("EN-gb", "FR", "en"),
    ("zh", "US", "zh-Hans"), ("zh-CN", "US", "zh-Hans"), ("zh-SG", "US", "zh-Hans"), ("zh-TW", "CN", "zh-Hant"),
    ("zh-Hant", "CN", "zh-Hant"), ("zh-Hant-HK", "CN", "zh-Hant"), ("zh-HK", "CN", "zh-Hant"),
    ("tl", "US", "fil"), ("no", "US", "nb"), ("iw", "US", "he"), ("in", "US", "id"),
    ("en-GB-oxendict", "FR", "en"), ("sr-Latn", "BR", "pt"), ("xx", "BR", "pt"), ("xx", "ZZ", "en"),
])
def test_the_callers_locale_wins_when_it_is_shipped(locale, region, tag):
    assert texts().language(locale, region) == tag


def test_a_countrys_own_variant_beats_the_plain_language(tmp_path):
    path = tmp_path / "texts.json"
    path.write_text(json.dumps({"pt-PT": {"text": "{app}: o seu codigo é {code}. Expira em {ttl}."}}))
    built = texts(messages_file=str(path))
    assert built.language(None, "PT") == "pt-PT" and built.language(None, "BR") == "pt"
    assert built.language("pt", "PT") == "pt-PT" and built.language("pt-BR", "PT") == "pt"
    assert "o seu codigo" in render(built, "pt", region="PT")


# -- an operator's file -------------------------------------------------------------------------------------
def write(tmp_path, content) -> str:
    path = tmp_path / "texts.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False))
    return str(path)


def test_an_override_replaces_a_text_and_keeps_the_shipped_forms(tmp_path):
    built = texts(messages_file=write(tmp_path, {"en": {"text": "{code} is your {app} code, good for {ttl}."}}),
                  code_ttl=60)
    assert render(built, "en") == "123456 is your otpservice code, good for 1 minute." + TEMPLATES["en"].warning
    assert render(built, "de") == render(texts(code_ttl=60), "de")  # other locales untouched


def test_an_override_can_add_a_locale_that_its_countries_then_get(tmp_path):
    swahili = {"text": "{app}: msimbo wako ni {code}. Unatumika kwa {ttl}.", "warning": "",
               "minutes": {"one": "dakika {n}", "other": "dakika {n}"},
               "seconds": {"one": "sekunde {n}", "other": "sekunde {n}"}}
    built = texts(messages_file=write(tmp_path, {"sw": swahili}))
    assert built.language(None, "KE") == "sw" and built.language(None, "TZ") == "sw"
    assert render(built, None, region="KE") == "otpservice: msimbo wako ni 123456. Unatumika kwa dakika 10."


def test_null_leaves_a_locale_out(tmp_path):
    built = texts(messages_file=write(tmp_path, {"bn": None}))
    assert "bn" not in built.templates and built.language(None, "BD") == "en"


@pytest.mark.parametrize("content,says", [
    ({"en": {"text": "{app}: {code} for {name}"}}, "locale 'en': text has the unknown placeholder {name}"),
    ({"en": {"text": "{app}: code valid for {ttl}"}}, "locale 'en': text must contain {code}"),
    ({"en": {"text": "{code.real}"}}, "unknown placeholder {code.real}"),
    ({"en": {"text": "{code!r}"}}, "unknown placeholder {code}"),
    ({"en": {"text": "{code:>10}"}}, "unknown placeholder {code}"),
    ({"en": {"text": "{code"}}, "locale 'en': text: expected '}'"),
    ({"en": {"warning": "Call {app}"}}, "locale 'en': warning has the unknown placeholder {app}; it may use none"),
    ({"en": {"seconds": {"one": "{n} {code}", "other": "{n}"}}}, "seconds.one has the unknown placeholder {code}"),
    ({"ru": {"minutes": {"one": "{n} минуту", "other": "{n} минуты"}}}, "missing ['few', 'many']"),
    ({"en": {"minutes": {"one": "{n} minute", "few": "{n}", "other": "{n} minutes"}}}, "unknown ['few']"),
    ({"en": {"text": 42}}, "locale 'en': text must be a non-empty string"),
    ({"en": {"body": "{code}"}}, "locale 'en': unknown fields ['body']"),
    ({"en": None}, "null to leave it out (never en)"),
    ({"xx": {"text": "{code}"}}, "locale 'xx': not a locale CLDR knows"),
    ({"tl": {"text": "{code}"}}, "locale 'tl': write it"),
    ({"sw": {"text": "{code}"}}, "locale 'sw': a new locale needs minutes, seconds"),
    (["en"], "must be a JSON object of locale -> template"),
    ("{", "is not UTF-8 JSON"),
    ({"en": {"text": "{app}: {code}. " + "x" * 150}}, "texts.json: locale 'en' (170 GSM-7 septets of 160)"),
    ({"ja": {"text": "{app}：" + "認" * 55 + "{code}"}}, "texts.json: locale 'ja' (72 UCS-2 units of 70)"),
])
def test_a_bad_file_stops_start_up_naming_the_file_and_the_locale(tmp_path, content, says):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as refused:
        texts(messages_file=path)
    assert f"OTP_MESSAGES_FILE {path}" in str(refused.value) and says in str(refused.value)


def test_every_text_too_long_is_named_at_once(tmp_path):
    path = write(tmp_path, {"en": {"text": "{app}: {code}. " + "x" * 150},
                            "ja": {"text": "{app}：" + "認" * 55 + "{code}"}})
    with pytest.raises(ConfigError) as refused:
        texts(messages_file=path)
    assert f"{path}: locale 'en' (170 GSM-7 septets of 160), 'ja' (72 UCS-2 units of 70)." in str(refused.value)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"OTP_MESSAGES_FILE .*absent\.json: cannot be read"):
        texts(messages_file=str(tmp_path / "absent.json"))


# -- WebOTP and Android's SMS Retriever ---------------------------------------------------------------------
def test_the_webotp_line_comes_last_and_the_android_hash_just_before():
    built = Texts(app_name="otpservice", code_digits=6, ttl_seconds=600, webotp_domain="example.com",
                  android_app_hash=HASH, templates={"en": TEMPLATES["en"]})
    lines = render(built, "en").split("\n")
    assert lines[-1] == "@example.com #123456" and lines[-2] == HASH
    assert lines[0].startswith("otpservice: your verification code is 123456.")
    only_hash = Texts(app_name="otpservice", code_digits=6, ttl_seconds=600, android_app_hash=HASH)
    assert render(only_hash, "en").endswith("\n" + HASH)


@pytest.mark.parametrize("extra", [{"webotp_domain": "example.com"}, {"android_app_hash": HASH}])
def test_with_the_default_settings_the_webotp_line_or_the_hash_still_fits_every_locale(extra):
    built = texts(**extra)
    for tag in TEMPLATES:
        text = render(built, tag)
        assert one_segment(text)[2], (tag, text)
        assert text.endswith("\n@example.com #123456" if "webotp_domain" in extra else "\n" + HASH), tag


def test_lines_that_do_not_fit_are_refused_naming_the_settings_and_locales():
    with pytest.raises(ConfigError) as refused:
        texts(app_name="W" * APP_NAME_MAX_SEPTETS, code_digits=10, webotp_domain="login.example.com",
              android_app_hash=HASH)
    message = str(refused.value)
    assert "OTP_APP_NAME, OTP_WEBOTP_DOMAIN, OTP_ANDROID_APP_HASH and 10-digit codes" in message
    assert "otpservice/core/templates/messages.json: locale 'ru' (" in message and "'en' (" not in message


@pytest.mark.parametrize("settings,says", [
    ({"app_name": "W" * (APP_NAME_MAX_SEPTETS + 1)}, "OTP_APP_NAME must be 1-20 characters Telnyx sends as GSM-7"),
    ({"app_name": "Façade €"}, "not 'ç€'"),  # ç was never GSM-7; € is GSM 03.38's but not Telnyx's
    ({"app_name": "[" * 11}, "OTP_APP_NAME"),  # 22 septets: the extension table counts two
    ({"app_name": "Łódź"}, "OTP_APP_NAME"),
    ({"app_name": " "}, "OTP_APP_NAME"),
    ({"webotp_domain": "https://example.com"}, "OTP_WEBOTP_DOMAIN must be a lower-case host name"),
    ({"webotp_domain": "example.com/login"}, "OTP_WEBOTP_DOMAIN"),
    ({"webotp_domain": "Example.com"}, "OTP_WEBOTP_DOMAIN"),
    ({"webotp_domain": "bücher.example"}, "OTP_WEBOTP_DOMAIN"),
    ({"android_app_hash": "FA+9qCX9VS"}, "OTP_ANDROID_APP_HASH must be the 11 characters"),
    ({"android_app_hash": "FA+9qCX9VS-"}, "OTP_ANDROID_APP_HASH"),
])
def test_the_settings_that_go_into_every_text_are_checked(settings, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        Settings(**settings)


def test_names_at_the_cap_are_accepted():
    assert Settings(app_name="W" * APP_NAME_MAX_SEPTETS).app_name
    assert Settings(app_name="[" * (APP_NAME_MAX_SEPTETS // 2)).app_name
    assert Settings(app_name="Société Générale").app_name  # é is in the GSM 03.38 basic set
    assert Settings(webotp_domain="xn--bcher-kva.example", android_app_hash=HASH).webotp_domain

"""The text a phone receives, through the real app and the real simulator: its country's language, one segment
(as the simulator's own GSM 03.38 model of Telnyx counts it), the caller's locale first, the WebOTP line."""
from __future__ import annotations

import phonenumbers
import pytest

from otpservice.config import ConfigError
from otpservice.sandbox.payloads import encoding_and_parts
from tests.support.app import code_from, outbox


def mobile_number(region: str) -> str:
    """phonenumbers' own example mobile number of a country, in E.164."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize("region,words,encoding", [
    ("BR", "seu codigo de verificacao é", "GSM-7"),
    ("MX", "tu codigo de verificacion es", "GSM-7"),
    ("DE", "Ihr Bestätigungscode lautet", "GSM-7"),
    ("PL", "Jest wazny przez 10 minut.", "GSM-7"),
    ("VN", "ma xac thuc cua ban la", "GSM-7"),
    ("RU", "Действует 10 минут.", "UCS-2"),
    ("EG", "صالح لمدة 10 دقائق.", "UCS-2"),
    ("JP", "認証コードは", "UCS-2"),
    ("TW", "驗證碼", "UCS-2"),
])
def test_a_number_gets_its_countrys_language_in_one_segment(client, sim, region, words, encoding):
    number = mobile_number(region)
    response = client.post("/request-code", json={"phone_number": number})
    assert response.status_code == 202, response.get_json()
    message = outbox(sim, number)[0]
    assert words in message["text"]
    assert encoding_and_parts(message["text"]) == (encoding, 1)
    verified = client.post("/verify", json={"phone_number": number, "code": code_from(message)})
    assert verified.get_json()["valid"] is True


def test_the_callers_locale_comes_before_the_country(client, sim):
    number = mobile_number("BR")
    client.post("/request-code", json={"phone_number": number, "locale": "ja-JP"})
    assert "認証コードは" in outbox(sim, number)[0]["text"]


def test_the_webotp_line_carries_the_code_that_verifies(make_app, sim):
    client = make_app(webotp_domain="example.com").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    number = mobile_number("KR")
    assert client.post("/request-code", json={"phone_number": number}).status_code == 202
    text = outbox(sim, number)[0]["text"]
    lines = text.split("\n")
    domain, code = lines[-1].split(" #")
    assert domain == "@example.com" and code in lines[0] and "인증번호" in lines[0]
    assert encoding_and_parts(text) == ("UCS-2", 1)
    assert client.post("/verify", json={"phone_number": number, "code": code}).get_json()["valid"] is True


def test_an_operators_text_is_sent_and_a_bad_one_stops_the_app(make_app, sim, tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"de": {"text": "{app}-Code: {code} (gilt {ttl})", "warning": ""}}', encoding="utf-8")
    client = make_app(messages_file=str(good), app_name="Beispiel").test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer test-client-key"
    number = mobile_number("AT")
    client.post("/request-code", json={"phone_number": number})
    assert outbox(sim, number)[0]["text"].startswith("Beispiel-Code: ") and "(gilt 10 Minuten)" in \
        outbox(sim, number)[0]["text"]

    bad = tmp_path / "bad.json"
    bad.write_text('{"de": {"text": "{app}: {code} für {user}"}}', encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"OTP_MESSAGES_FILE {bad}: locale 'de': text has the unknown "
                                          r"placeholder \{user\}"):
        make_app(messages_file=str(bad))

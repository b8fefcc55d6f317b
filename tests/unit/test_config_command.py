"""`otpservice config`: every setting's effective value, where it came from, secrets masked, then the check."""
from __future__ import annotations

import pytest

from otpservice.cli import main

SECRETS = {"OTP_API_KEYS": "client-key-one-0123456789abcdef0123,client-key-two-0123456789abcdef0123",
           "OTP_TELNYX_API_KEY": "KEYtelnyx-secret-value", "OTP_CODE_SECRET": "code-secret-0123456789abcdef0123456789"}


@pytest.fixture
def environment(monkeypatch):
    """A clean OTP_* environment that the test fills."""
    import os

    for name in [n for n in os.environ if n.startswith("OTP_")]:
        monkeypatch.delenv(name)

    def set_all(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_all


def table(out: str) -> dict[str, tuple[str, str]]:
    """The printed rows: variable -> (value, source)."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("OTP_"):
            name, rest = line.split(None, 1)
            value, _, source = rest.partition("  ")
            rows[name] = (value.strip(), source.strip())
    return rows


def test_values_sources_and_masks(environment, tmp_path, capsys):
    env_file = tmp_path / "site.env"
    env_file.write_text("# ours\nOTP_PORT=9000\nOTP_ADMIN_TOKEN=admin-token-from-the-file-0123456789\n"
                        "OTP_APP_NAME=Acme\nOTP_SIM_PORT=9001\n")
    environment({**SECRETS, "OTP_PORT": "9100", "OTP_TELNYX_FROM": "+13125550100",
                 "OTP_REDIS_URL": "redis://app:hunter2@redis.internal:6379/0", "OTP_TELNYX_FORM": "+1312"})
    assert main(["config", "--env-file", str(env_file)]) == 0
    out = capsys.readouterr().out
    rows = table(out)
    assert rows["OTP_PORT"] == ("9100", "environment")  # the environment wins over the file
    assert rows["OTP_APP_NAME"] == ("Acme", f"env file {env_file}")
    assert rows["OTP_ADMIN_TOKEN"] == ("(set: 36 characters)", f"env file {env_file}")
    assert rows["OTP_API_KEYS"] == ("(set: 2 keys)", "environment")
    assert rows["OTP_REDIS_URL"][0] == "redis://app:***@redis.internal:6379/0"
    # Defaults as one would write them in the environment, not as Python values.
    assert rows["OTP_ALLOW_TEST_NUMBERS"] == ("false", "default")
    assert rows["OTP_TEST_NUMBERS"] == ("(unset)", "default")
    assert rows["OTP_LIMIT_NUMBER"] == ("3/10minutes", "default")
    assert rows["OTP_SIM_PORT"][1].startswith(f"env file {env_file}; the simulator's port")
    assert rows["OTP_TELNYX_FORM"] == ("(not shown)", "environment; not a setting: misspelt?")
    for secret in (*SECRETS.values(), "admin-token-from-the-file", "hunter2", "client-key-one"):
        assert secret not in out
    assert "Valid for `otpservice serve` (OTP_ENV=sandbox)." in out


def test_a_configuration_serve_would_refuse_is_one_line_and_status_2(environment, capsys):
    environment({**SECRETS, "OTP_ENV": "production", "OTP_TELNYX_FROM": "+13125550100"})
    assert main(["config"]) == 2
    captured = capsys.readouterr()
    assert table(captured.out)["OTP_ENV"] == ("production", "environment")
    [line] = captured.err.splitlines()
    assert line.startswith("otpservice: configuration error: production configuration is missing: ")
    for name in ("OTP_TELNYX_PUBLIC_KEY", "OTP_ADMIN_TOKEN", "OTP_REDIS_URL", "OTP_WEBHOOK_URL", "OTP_TOTP_KEY"):
        assert name in line
    environment({"OTP_ENV": "sandbox", "OTP_TELNYX_FROM": ""})
    assert main(["config"]) == 2  # what `serve` checks beyond the settings: a sender for the texts
    assert "OTP_TELNYX_FROM is required" in capsys.readouterr().err


def test_masks_keep_no_password_of_a_sentinel_url():
    from otpservice.config import masked

    url = "redis+sentinel://:pw1@s1:26379,s2:26379/mymaster/0?sentinel_password=pw2&ssl=true"
    assert masked("OTP_REDIS_URL", url, secret=False) == \
        "redis+sentinel://:***@s1:26379,s2:26379/mymaster/0?sentinel_password=***&ssl=true"
    assert masked("OTP_ADMIN_TOKEN", "", secret=True) == "(empty)"

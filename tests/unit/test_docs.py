"""The README documents the settings the code has: every OTP_* variable of config.Settings has a row in the
README's configuration table, with its default, and the table names no variable the code does not read."""
from __future__ import annotations

import re
from pathlib import Path

from otpservice.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(OTP_[A-Z0-9_]+)` \| (.*?) \|", re.MULTILINE)


def shown(default: object) -> str:
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if default in ("", (), {}):
        return "(unset)"
    return f"`{default}`"


def test_the_configuration_table_matches_the_settings():
    table = {name: default for name, default in ROW.findall(README.read_text())}
    settings = {row["env"]: row["default"] for row in Settings().describe()}
    assert set(table) == set(settings)
    assert {name: table[name] for name in settings} == {name: shown(d) for name, d in settings.items()}

"""The project's copy of Telnyx's data is the workplace's, byte for byte, wherever both exist."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import telnyx_data

SHARED = Path(__file__).resolve().parents[3] / "shared" / "telnyx"


@pytest.mark.parametrize("name", ["messaging.openapi.json", "webhook-vectors.json"])
def test_the_copy_matches_its_source(name):
    copy = telnyx_data.DATA / name
    assert copy.stat().st_size > 1000 and copy.read_bytes().lstrip().startswith(b"{")
    source = SHARED / name
    if not source.exists():
        pytest.skip(f"{source} is absent (a user's clone): only the project's copy is checked")
    assert copy.read_bytes() == source.read_bytes()

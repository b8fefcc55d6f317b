"""The project's copy of Telnyx's data is the workplace's wherever both exist: the vectors byte for byte, and the
spec subset as the workplace's with the operations the routes, WhatsApp and doctor work added (README.md there)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import telnyx_data

SHARED = Path(__file__).resolve().parents[3] / "shared" / "telnyx"
ADDED_PATHS = {"/messages/whatsapp", "/messaging_profiles/{id}", "/phone_numbers/messaging",
               "/phone_numbers/{id}/messaging"}


def shared_copy(name: str) -> Path:
    source = SHARED / name
    if not source.exists():
        pytest.skip(f"{source} is absent (a user's clone): only the project's copy is checked")
    return source


@pytest.mark.parametrize("name", ["messaging.openapi.json", "webhook-vectors.json"])
def test_the_copy_is_telnyx_json(name):
    copy = telnyx_data.DATA / name
    assert copy.stat().st_size > 1000 and copy.read_bytes().lstrip().startswith(b"{")


def test_the_vectors_match_their_source():
    assert telnyx_data.VECTORS_FILE.read_bytes() == shared_copy("webhook-vectors.json").read_bytes()


def test_the_spec_holds_the_workplaces_subset_unchanged_and_adds_only_the_listed_paths():
    shared = json.loads(shared_copy("messaging.openapi.json").read_text())
    copy = telnyx_data.spec()
    for section in ("paths", "webhooks"):
        assert {name: copy[section].get(name) for name in shared[section]} == shared[section]
    for kind, items in shared["components"].items():
        assert {name: copy["components"][kind].get(name) for name in items} == items
    assert set(copy["paths"]) - set(shared["paths"]) == ADDED_PATHS
    assert set(copy["webhooks"]) == set(shared["webhooks"])

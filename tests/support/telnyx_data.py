"""Where the project's copy of Telnyx's data lives (tests/support/telnyx/README.md says where it comes from)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "telnyx"
SPEC_FILE = DATA / "messaging.openapi.json"
VECTORS_FILE = DATA / "webhook-vectors.json"


def spec() -> dict[str, Any]:
    """Telnyx's OpenAPI subset."""
    return json.loads(SPEC_FILE.read_text())


def vectors() -> dict[str, Any]:
    """The Ed25519 webhook vectors."""
    return json.loads(VECTORS_FILE.read_text())

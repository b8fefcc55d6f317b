"""The project's copy of Telnyx's data is the workplace's: the vectors byte for byte, and the spec subset as the
workplace's with the operations the routes, WhatsApp and doctor work added (README.md there).

Each source's SHA-256 is recorded here, so a user's clone (which has no workplace folder beside it) checks its
copy against the source too; where the workplace folder exists, it is checked against the same digests, so a
changed source fails here rather than drifting unnoticed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support import telnyx_data

SHARED = Path(__file__).resolve().parents[3] / "shared" / "telnyx"
VECTORS_SHA256 = "b81c4f901a64c3564e7dfd9d2ee5c92b52117ee48cb71520f97316310be8e712"
# The workplace subset's operations and components, and the SHA-256 of their canonical JSON (sorted keys).
SUBSET_NAMES = {
    "paths": ["/messages", "/messages/number_pool", "/messages/{id}", "/messaging_optouts"],
    "webhooks": ["deliveryUpdate", "inboundMessage"],
    "components": {
        "parameters": ["PageConsolidated"],
        "responses": ["messaging_GenericErrorResponse"],
        "schemas": ["CreateMessageRequest", "CreateNumberPoolMessageRequest", "InboundMessage",
                    "InboundMessageEvent", "InboundMessagePayload", "OptOutItem", "OptOutListResponse",
                    "OutboundMessage", "OutboundMessageEvent", "OutboundMessagePayload", "ToNumber",
                    "messaging_Error", "messaging_Errors", "messaging_PaginationMeta"],
        "securitySchemes": ["bearerAuth"],
    },
}
SUBSET_SHA256 = "13b3c6c3d27f586ea02c9b874c971a3b04940813c0a05043abbf563653a3269c"
ADDED_PATHS = {"/messages/whatsapp", "/messaging_profiles/{id}", "/phone_numbers/messaging",
               "/phone_numbers/{id}/messaging"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def subset_digest(spec: dict) -> str:
    """The digest of `spec` cut down to the workplace subset's names (a missing name counts as null)."""
    cut = {section: {name: spec[section].get(name) for name in SUBSET_NAMES[section]}
           for section in ("paths", "webhooks")}
    cut["components"] = {kind: {name: spec["components"].get(kind, {}).get(name) for name in names}
                         for kind, names in SUBSET_NAMES["components"].items()}
    return sha256(json.dumps(cut, sort_keys=True, separators=(",", ":")).encode())


def test_the_vectors_are_their_source_byte_for_byte():
    assert sha256(telnyx_data.VECTORS_FILE.read_bytes()) == VECTORS_SHA256
    if (SHARED / "webhook-vectors.json").exists():
        assert sha256((SHARED / "webhook-vectors.json").read_bytes()) == VECTORS_SHA256


def test_the_spec_holds_the_workplaces_subset_unchanged():
    assert subset_digest(telnyx_data.spec()) == SUBSET_SHA256
    if (SHARED / "messaging.openapi.json").exists():
        shared = json.loads((SHARED / "messaging.openapi.json").read_text())
        assert subset_digest(shared) == SUBSET_SHA256
        assert set(shared["paths"]) == set(SUBSET_NAMES["paths"])  # the recorded names are all of it


def test_the_spec_adds_only_the_listed_paths():
    copy = telnyx_data.spec()
    assert set(copy["paths"]) - set(SUBSET_NAMES["paths"]) == ADDED_PATHS
    assert set(copy["webhooks"]) == set(SUBSET_NAMES["webhooks"])

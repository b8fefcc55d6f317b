"""Cut messaging.openapi.json out of Telnyx's whole spec: the operations below, the webhooks, and every component
they reference, each as Telnyx wrote it (only the operations not listed are left out of a path).

    python tests/support/telnyx/extract_subset.py spec3.yml <commit> > tests/support/telnyx/messaging.openapi.json

`spec3.yml` is `openapi/spec3.yml` of github.com/team-telnyx/openapi at `<commit>`. Needs PyYAML. Run with the
commit the README names, it rebuilds the project's copy byte for byte.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import yaml

OPERATIONS = {
    "/messages": ["post"],
    "/messages/number_pool": ["post"],
    "/messages/whatsapp": ["post"],
    "/messages/{id}": ["get"],
    "/messaging_optouts": ["get"],
    "/messaging_profiles/{id}": ["get"],
    "/phone_numbers/messaging": ["get"],
    "/phone_numbers/{id}/messaging": ["get"],
}
WEBHOOKS = ["deliveryUpdate", "inboundMessage"]
SECURITY_SCHEMES = ["bearerAuth"]
TITLE = ("Telnyx API v2 - Messaging subset (SMS send, number pool, WhatsApp send, message retrieve, opt-outs, "
         "messaging numbers and profiles, delivery webhooks)")


def referenced(node: Any, components: dict[str, Any], found: set[tuple[str, str]]) -> None:
    """Every (kind, name) of components/ that `node` references, directly or through other components."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            kind, name = ref.split("/", 3)[2:]
            if (kind, name) not in found:
                found.add((kind, name))
                referenced(components[kind][name], components, found)
        for value in node.values():
            referenced(value, components, found)
    elif isinstance(node, list):
        for value in node:
            referenced(value, components, found)


def subset(spec: dict[str, Any], commit: str) -> dict[str, Any]:
    paths = {path: {method: item[method] for method in item if method in OPERATIONS[path]}
             for path, item in spec["paths"].items() if path in OPERATIONS}
    webhooks = {name: spec["webhooks"][name] for name in spec["webhooks"] if name in WEBHOOKS}
    found: set[tuple[str, str]] = {("securitySchemes", name) for name in SECURITY_SCHEMES}
    referenced(paths, spec["components"], found)
    referenced(webhooks, spec["components"], found)
    components = {kind: {name: value for name, value in items.items() if (kind, name) in found}
                  for kind, items in spec["components"].items()}
    tags = {tag for item in [*paths.values(), *webhooks.values()] for op in item.values() for tag in op.get("tags", [])}
    return {
        "openapi": spec["openapi"],
        "info": {"title": TITLE, "version": spec["info"]["version"],
                 "description": f"Verbatim subset extracted from team-telnyx/openapi openapi/spec3.yml (commit "
                                f"{commit}). Only the listed paths/webhooks and the components they reference are "
                                "kept; content is otherwise unmodified.",
                 "contact": spec["info"]["contact"]},
        "servers": spec["servers"], "security": spec["security"], "paths": paths, "webhooks": webhooks,
        "components": {kind: items for kind, items in components.items() if items},
        "tags": [tag for tag in spec["tags"] if tag["name"] in tags],
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        full = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    sys.stdout.write(json.dumps(subset(full, sys.argv[2]), indent=2))

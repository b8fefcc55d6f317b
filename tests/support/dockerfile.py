"""Reading the project's Dockerfile and docker-compose.yml as Docker would, for tests that have no Docker engine."""
from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"


def instructions(stage: str = "build") -> list[tuple[str, str]]:
    """The instructions of one stage (`build`, or `runtime` for the last, unnamed one): (name, arguments), with
    continuation lines joined and runs of blanks made one."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, args = line.partition(" ")
        if name == "FROM":
            current = args.split(" AS ")[-1] if " AS " in args else "runtime"
        if current == stage:
            found.append((name, " ".join(args.split())))
    return found


def image_env() -> dict[str, str]:
    """The runtime image's ENV lines (KEY=VALUE pairs), as a container starts with them."""
    env: dict[str, str] = {}
    for name, args in instructions("runtime"):
        if name == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env

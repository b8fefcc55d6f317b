"""The lock files in requirements/ are what setup.cfg and pyproject.toml ask for, pinned and hashed.

`make run`, `make test` (so CI) and the Docker image install from them with pip's --require-hashes, so a
dependency added to setup.cfg without `make lock` would be missing from every install: this test says so first.
"""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"


def locked(name: str) -> dict[str, list[tuple[Requirement, list[str]]]]:
    """A lock file's entries by canonical name: each (requirement with its marker, its hashes)."""
    text = (LOCKS / name).read_text()
    entries: dict[str, list[tuple[Requirement, list[str]]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        lines = [line for line in block.splitlines() if not line.strip().startswith("#")]
        joined = " ".join(line.strip().rstrip("\\") for line in lines).strip()
        if not joined:
            continue
        hashes = re.findall(r"--hash=(\S+)", joined)
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", joined))
        entries.setdefault(canonicalize_name(requirement.name), []).append((requirement, hashes))
    return entries


def declared(section: str, key: str) -> list[Requirement]:
    """Requirements listed under one key of setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return [Requirement(line) for line in parser[section][key].splitlines() if line.strip()]


def build_requires() -> list[Requirement]:
    """pyproject.toml's [build-system] requires."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return [Requirement(r) for r in tomllib.load(handle)["build-system"]["requires"]]


def assert_covers(lock: dict, wanted: list[Requirement], lock_name: str) -> None:
    """Each wanted requirement is locked, and every locked version of it satisfies its specifier."""
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement} is not in requirements/{lock_name}: run `make lock`"
        for entry, _ in lock[name]:
            version = str(entry.specifier).removeprefix("==")
            assert requirement.specifier.contains(version, prereleases=True), (
                f"requirements/{lock_name} pins {entry.name}=={version}, outside {requirement}: run `make lock`")


@pytest.mark.parametrize("name", ["build.txt", "service.txt", "test.txt"])
def test_every_entry_is_an_exact_version_with_hashes(name):
    lock = locked(name)
    assert lock
    for entries in lock.values():
        for requirement, hashes in entries:
            [spec] = requirement.specifier
            assert spec.operator == "==", requirement
            assert hashes and all(h.startswith("sha256:") for h in hashes), requirement


def test_the_service_lock_holds_install_requires_and_no_test_tool():
    service = locked("service.txt")
    assert_covers(service, declared("options", "install_requires"), "service.txt")
    runtime = {canonicalize_name(r.name) for r in declared("options", "install_requires")}
    test_only = {canonicalize_name(r.name) for r in declared("options.extras_require", "test")} - runtime
    assert not test_only & set(service), "the service's lock carries test tools"


def test_the_test_lock_adds_the_test_tools_and_keeps_the_service_versions():
    service, test = locked("service.txt"), locked("test.txt")
    assert_covers(test, declared("options.extras_require", "test"), "test.txt")
    # Installed over the service's lock, the test lock must change none of its versions.
    for name, entries in service.items():
        assert name in test, f"{name} is in service.txt only"
        assert {str(r.specifier) for r, _ in entries} == {str(r.specifier) for r, _ in test[name]}, name


def test_the_build_lock_holds_the_build_backend():
    assert_covers(locked("build.txt"), build_requires(), "build.txt")

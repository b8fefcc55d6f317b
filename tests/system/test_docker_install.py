"""The Docker image's install steps, run here (no Docker engine needed): docker/install.sh into a fresh venv.

The test replays the build stage's own COPY and RUN lines in their order (the service's lock alone, its
dependencies, then the package), so a lock pip refuses, a missing package file or a console script that fails
surfaces in `make test`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.dockerfile import DOCKERFILE, ROOT, instructions

SCRIPT = ROOT / "docker" / "install.sh"

FROM_EXACT = re.compile(r"^FROM python:\d+\.\d+\.\d+-slim-[a-z]+( AS \w+)?$")


def replay_build_stage(src: Path, venv: Path, run: dict) -> None:
    """The build stage's COPY and RUN lines, in their order, with /build as `src` and /opt/venv as `venv`."""
    for name, args in instructions():
        if name == "COPY":
            *sources, dest = args.split()
            inside = src / Path(dest).relative_to("/build")
            for source in sources:
                target = inside / Path(source).name if dest.endswith("/") else inside
                target.parent.mkdir(parents=True, exist_ok=True)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(ROOT / source, target)
        elif name == "RUN":
            argv = [str(venv) if a == "/opt/venv" else str(src) if a == "/build" else a for a in args.split()]
            assert argv[:2] == ["sh", "/build/docker/install.sh"], args
            done = subprocess.run(["sh", str(SCRIPT), *argv[2:]], **run)
            assert done.returncode == 0, f"{args}:\n{done.stderr[-3000:]}"


def test_dockerfile_installs_the_lock_first_from_exact_images_as_a_non_root_user():
    build = instructions()
    runs = [args for name, args in build if name == "RUN"]
    assert runs == ["sh /build/docker/install.sh deps /opt/venv /build",
                    "sh /build/docker/install.sh app /opt/venv /build"]
    # Until the dependencies are installed, only the script and the service's lock are in the build context:
    # a change to the code or to setup.cfg's metadata keeps the dependency layer cached.
    deps_at, app_at = build.index(("RUN", runs[0])), build.index(("RUN", runs[1]))
    assert [args for name, args in build[:deps_at] if name == "COPY"] == [
        "docker/install.sh /build/docker/install.sh", "requirements/service.txt /build/requirements/service.txt"]
    assert ("COPY", "otpservice /build/otpservice") in build[deps_at:app_at]
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) == 2 and all(FROM_EXACT.match(line) for line in froms), froms
    assert len({line.split()[1] for line in froms}) == 1  # the runtime's interpreter is the build stage's
    assert "USER otp" in lines and ("USER", "otp") in instructions("runtime")
    assert re.search(r"HEALTHCHECK .*\n.*/healthz", text)
    # One comment per layer: every instruction has a comment right above it.
    for i, line in enumerate(lines):
        continued = i > 0 and lines[i - 1].endswith("\\")
        if re.match(r"^(FROM|RUN|COPY|ENV|WORKDIR|USER|EXPOSE|HEALTHCHECK|CMD)\b", line) and not continued:
            assert lines[i - 1].startswith("#"), f"no comment above {line!r}"


@pytest.mark.slow
def test_install_script_builds_a_working_venv(tmp_path):
    src, venv = tmp_path / "build", tmp_path / "venv"
    src.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_", "VIRTUAL_ENV"))}
    env["PIP_NO_COMPILE"] = "1"  # the image compiles bytecode; this throwaway venv need not (half the time)
    run = {"env": env, "capture_output": True, "text": True, "timeout": 540, "check": False}
    replay_build_stage(src, venv, run)
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert "otpservice" in installed and not installed & {"setuptools", "wheel", "pip", "pytest"}, installed

    python = venv / "bin" / "python"
    helped = subprocess.run([str(venv / "bin" / "otpservice"), "--help"], **run)
    assert helped.returncode == 0 and "serve" in helped.stdout
    # The installed copy, not this checkout, serves: gunicorn's entry point imports and answers /healthz, and
    # the API page finds its own files and Swagger UI's in the installed packages.
    probe = ("import otpservice, otpservice.wsgi as w; assert '/site-packages/' in otpservice.__file__; "
             "c = w.app.test_client(); assert c.get('/healthz').status_code == 200; "
             "assert c.get('/metrics').status_code == 200; from otpservice.web.docs import ASSETS; "
             "assert all(c.get(p).status_code == 200 for p in ['/docs', *('/docs/' + n for n in ASSETS)])")
    serving = {**env, "OTP_TELNYX_API_KEY": "KEYinstall-test", "OTP_TELNYX_FROM": "+13125550100"}
    imported = subprocess.run([str(python), "-c", probe], cwd=tmp_path, **{**run, "env": serving})
    assert imported.returncode == 0, imported.stderr[-3000:]
    checked = subprocess.run([str(venv / "bin" / "gunicorn"), "--check-config", "--config",
                              str(ROOT / "config" / "gunicorn.conf.py"), "otpservice.wsgi:app"], cwd=tmp_path,
                             **{**run, "env": serving})
    assert checked.returncode == 0, checked.stderr[-3000:]

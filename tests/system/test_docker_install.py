"""The Docker image's install steps, run here (no Docker engine needed): docker/install.sh into a fresh venv.

The Dockerfile runs the same script in the same order (deps with only setup.cfg, then the package), so a
broken dependency list, a missing package file or a console script that fails surfaces in `make test`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docker" / "install.sh"


def copy_like_the_dockerfile(dest: Path, *names: str) -> None:
    """COPY these paths of the project into `dest`, as the Dockerfile's COPY lines do."""
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)


def test_dockerfile_runs_the_script_deps_first_as_a_non_root_user():
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    deps = lines.index("RUN sh /build/docker/install.sh deps /opt/venv /build")
    assert lines.index("COPY otpservice /build/otpservice") > deps  # the source comes after the dependencies
    assert lines.index("RUN sh /build/docker/install.sh app /opt/venv /build") > deps
    assert text.count("FROM python:3.11-slim") == 2 and "USER otp" in lines
    assert re.search(r"HEALTHCHECK .*\n.*/healthz", text)
    # One comment per layer: every instruction after the first stage's FROM has a comment right above it.
    for i, line in enumerate(lines):
        continued = i > 0 and lines[i - 1].endswith("\\")
        if re.match(r"^(RUN|COPY|ENV|WORKDIR|USER|EXPOSE|HEALTHCHECK|CMD)\b", line) and not continued:
            assert lines[i - 1].startswith("#"), f"no comment above {line!r}"


@pytest.mark.slow
def test_install_script_builds_a_working_venv(tmp_path):
    src, venv = tmp_path / "build", tmp_path / "venv"
    src.mkdir()
    copy_like_the_dockerfile(src, "setup.cfg", "pyproject.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_", "VIRTUAL_ENV"))}
    env["PIP_NO_COMPILE"] = "1"  # the image compiles bytecode; this throwaway venv need not (half the time)
    run = {"env": env, "capture_output": True, "text": True, "timeout": 540, "check": False}
    deps = subprocess.run(["sh", str(SCRIPT), "deps", str(venv), str(src)], **run)
    assert deps.returncode == 0, deps.stderr[-3000:]
    copy_like_the_dockerfile(src, "README.md", "otpservice")
    app = subprocess.run(["sh", str(SCRIPT), "app", str(venv), str(src)], **run)
    assert app.returncode == 0, app.stderr[-3000:]

    python = venv / "bin" / "python"
    helped = subprocess.run([str(venv / "bin" / "otpservice"), "--help"], **run)
    assert helped.returncode == 0 and "serve" in helped.stdout
    # The installed copy, not this checkout, serves: gunicorn's entry point imports and answers /healthz, and
    # the API page finds its own files and Swagger UI's in the installed packages.
    probe = ("import otpservice, otpservice.wsgi as w; assert '/site-packages/' in otpservice.__file__; "
             "c = w.app.test_client(); assert c.get('/healthz').status_code == 200; "
             "assert c.get('/metrics').status_code == 200; from otpservice.web.docs import ASSETS; "
             "assert all(c.get(p).status_code == 200 for p in ['/docs', *('/docs/' + n for n in ASSETS)])")
    imported = subprocess.run([str(python), "-c", probe], cwd=tmp_path,
                              **{**run, "env": {**env, "OTP_TELNYX_API_KEY": "KEYinstall-test"}})
    assert imported.returncode == 0, imported.stderr[-3000:]
    checked = subprocess.run([str(venv / "bin" / "gunicorn"), "--check-config", "--config",
                              str(ROOT / "config" / "gunicorn.conf.py"), "otpservice.wsgi:app"], cwd=tmp_path,
                             **{**run, "env": {**env, "OTP_TELNYX_API_KEY": "KEYinstall-test"}})
    assert checked.returncode == 0, checked.stderr[-3000:]

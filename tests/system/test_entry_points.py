"""A refused configuration is one line naming each setting, from every way the service starts: `otpservice
serve`, `run`, `sim`, `config`, and gunicorn loading `otpservice.wsgi:app` (with or without the project's config
file, preloading or not). Never a traceback, never a server that starts and then answers 500."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dockerfile import ROOT
from tests.support.gunicorn_server import GUNICORN_CONF, OTPSERVICE
from tests.support.redis_server import free_port

GUNICORN = Path(sys.executable).with_name("gunicorn")
PREFIX = "otpservice: configuration error: "
# Sandbox settings that would serve: each case spoils one thing.
SERVABLE = {"OTP_TELNYX_API_KEY": "KEYentry-points", "OTP_TELNYX_FROM": "+13125550100", "OTP_LOG_LEVEL": "ERROR"}


def run(argv: list, env: dict[str, str], *, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A command with only these OTP_* variables (none of this shell's), its output captured."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    ports = {"OTP_HOST": "127.0.0.1", "OTP_PORT": str(free_port()), "OTP_SIM_PORT": str(free_port())}
    return subprocess.run([str(a) for a in argv], env={**base, **ports, **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def refusal(result: subprocess.CompletedProcess) -> str:
    """The one configuration line of a command that refused to start; fails on a traceback or a zero status."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0].removeprefix(PREFIX)


@pytest.mark.parametrize("argv", [
    [OTPSERVICE, "serve"],
    [OTPSERVICE, "run"],
    [OTPSERVICE, "config"],
    [GUNICORN, "--bind", "127.0.0.1:0", "otpservice.wsgi:app"],               # the workers load the app
    [GUNICORN, "--preload", "--bind", "127.0.0.1:0", "otpservice.wsgi:app"],  # the master does
    [GUNICORN, "--config", GUNICORN_CONF, "otpservice.wsgi:app"],             # the project's config file reads it
], ids=["serve", "run", "config", "wsgi-workers", "wsgi-preload", "gunicorn-conf"])
def test_every_entry_point_names_each_bad_setting_in_one_line(argv, tmp_path):
    line = refusal(run(argv, {**SERVABLE, "OTP_CODE_DIGITS": "5"}, cwd=tmp_path))
    assert "OTP_CODE_DIGITS" in line


@pytest.mark.parametrize("argv", [[OTPSERVICE, "serve"], [GUNICORN, "--bind", "127.0.0.1:0", "otpservice.wsgi:app"]],
                         ids=["serve", "wsgi"])
def test_serving_the_sandbox_defaults_names_what_sending_needs(argv, tmp_path):
    # No Telnyx key and no sender: both are named, in the one line.
    line = refusal(run(argv, {"OTP_LOG_LEVEL": "ERROR"}, cwd=tmp_path))
    assert "OTP_TELNYX_API_KEY" in line and "OTP_TELNYX_FROM" in line
    # A key but no sender used to start, then answer every /request-code with a 500 after reserving its send.
    line = refusal(run(argv, {**SERVABLE, "OTP_TELNYX_FROM": ""}, cwd=tmp_path))
    assert "OTP_TELNYX_FROM" in line and "OTP_TELNYX_API_KEY" not in line
    line = refusal(run(argv, {**SERVABLE, "OTP_SEND_ENDPOINT": "number_pool"}, cwd=tmp_path))
    assert "OTP_TELNYX_MESSAGING_PROFILE_ID is required with OTP_SEND_ENDPOINT=number_pool" in line
    line = refusal(run(argv, {**SERVABLE, "OTP_TELNYX_FROM": "Acme"}, cwd=tmp_path))  # Telnyx would refuse: 40306
    assert "OTP_TELNYX_MESSAGING_PROFILE_ID is required with an alphanumeric OTP_TELNYX_FROM" in line


@pytest.mark.parametrize("argv, env", [
    ([OTPSERVICE, "serve"], {"OTP_WORKERS": "3"}),
    ([OTPSERVICE, "serve", "--", "--workers", "3"], {}),  # gunicorn's own flag: refused before any fork
], ids=["OTP_WORKERS", "gunicorn-flag"])
def test_the_embedded_store_refuses_more_than_one_worker(argv, env, tmp_path):
    line = refusal(run(argv, {**SERVABLE, **env}, cwd=tmp_path))
    assert "3 workers need OTP_REDIS_URL" in line


def test_the_simulator_names_its_bad_settings(tmp_path):
    assert "OTP_SIM_SIGNING_KEY" in refusal(run([OTPSERVICE, "sim"], {"OTP_SIM_SIGNING_KEY": "not base64!"}))
    assert "OTP_SIM_PORT" in refusal(run([OTPSERVICE, "sim"], {"OTP_SIM_PORT": "eighty"}))
    assert "OTP_SIM_PORT" in refusal(run([OTPSERVICE, "run"], {"OTP_SIM_PORT": "eighty"}, cwd=tmp_path))


def test_an_env_file_named_but_missing_is_an_error(tmp_path):
    for command in ("run", "config"):
        line = refusal(run([OTPSERVICE, command, "--env-file", tmp_path / "nope.env"], SERVABLE, cwd=tmp_path))
        assert "nope.env: no such file" in line


@pytest.mark.parametrize("taken, named", [("OTP_PORT", "the service's port"),
                                          ("OTP_SIM_PORT", "the simulator's port")])
def test_a_port_in_use_says_which_server_it_is(taken, named, tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        line = refusal(run([OTPSERVICE, "run"], {taken: str(port)}, cwd=tmp_path))
        assert line.startswith(f"{taken}: 127.0.0.1:{port}, {named}, is in use")
        if taken == "OTP_SIM_PORT":
            line = refusal(run([OTPSERVICE, "sim"], {taken: str(port)}))
            assert f"127.0.0.1:{port}, the simulator's port, is in use" in line


def banner_of(argv: list, env: dict[str, str], cwd: Path, until: str) -> tuple[str, str]:
    """What a server prints on stdout up to the line containing `until`, and on stderr meanwhile; then it is
    stopped (SIGTERM)."""
    import signal
    import tempfile
    import threading

    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen([str(a) for a in argv], env={**base, **env}, cwd=cwd, stdout=subprocess.PIPE,
                                stderr=errors, text=True, start_new_session=True)
        timer = threading.Timer(60, proc.kill)  # a server that never prints the line fails the test, not the suite
        timer.start()
        lines = []
        try:
            for line in proc.stdout:
                lines.append(line)
                if until in line:
                    break
        finally:
            timer.cancel()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        errors.seek(0)
        return "".join(lines), errors.read()


def test_the_banners_give_the_sdk_base_url_and_api_key():
    port, sim_port = free_port(), free_port()
    env = {"OTP_HOST": "127.0.0.1", "OTP_PORT": str(port), "OTP_SIM_PORT": str(sim_port)}
    # From the checkout, with its config/sandbox.env, as `make run` starts it: and with no warning logged.
    shown, logged = banner_of([OTPSERVICE, "run"], env, ROOT, "Press Ctrl+C")
    assert f"simulator  http://127.0.0.1:{sim_port}/v2 " in shown and "API key     KEYsandbox" in shown
    assert f"outbox http://127.0.0.1:{sim_port}/sim/messages" in shown
    assert '"level": "WARNING"' not in logged and "Traceback" not in logged, logged
    alone, _ = banner_of([OTPSERVICE, "sim"], {**env, "OTP_TELNYX_API_KEY": "KEYmine"}, ROOT, "Telnyx simulator")
    assert f"API http://127.0.0.1:{sim_port}/v2 (API key KEYmine;" in alone

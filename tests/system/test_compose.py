"""docker-compose.yml starts: each service's environment, over the image's own ENV lines, passes the checks that
service runs at start-up, and the three services agree with one another (no Docker engine needed).

`docker compose up` gives every container the Dockerfile's ENV, then the service's `environment:` on top, and runs
its `command:` (or the image's CMD). The same layering here feeds otpservice's own checks: Settings.from_env and
what `otpservice serve` checks before gunicorn starts, the simulator's options, the command line's parser, and
the production check of Redis's eviction policy against a real redis-server started with the compose command.
The last test runs the three as processes on loopback and goes through the README's first verification.
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

from otpservice import cli, wiring
from otpservice.config import Settings
from otpservice.sending.telnyx.signatures import public_key_b64
from tests.support.dockerfile import COMPOSE_FILE, ROOT, image_env, instructions
from tests.support.gunicorn_server import conf_workers
from tests.support.redis_server import RedisServer

COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())  # PyYAML resolves the `<<: *telnyx` merge keys
SERVICES = COMPOSE["services"]
BUILT = [name for name, service in SERVICES.items() if service.get("build") == "."]


def environment(name: str) -> dict[str, str]:
    """What the container of `name` starts with: the image's ENV, then the compose environment."""
    env = {key: str(value) for key, value in SERVICES[name].get("environment", {}).items()}
    return {**image_env(), **env}


def command(name: str) -> list[str]:
    """The command the container runs: its compose `command:`, else the image's CMD."""
    if "command" in SERVICES[name]:
        return [str(part) for part in SERVICES[name]["command"]]
    [cmd] = [args for instruction, args in instructions("runtime") if instruction == "CMD"]
    return json.loads(cmd)


def published(name: str) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    return [(addr, int(host), int(inner)) for addr, host, inner in (p.split(":") for p in SERVICES[name]["ports"])]


def test_the_file_builds_two_services_from_this_project_and_pins_redis():
    assert BUILT == ["simulator", "otpservice"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine\d+\.\d+", SERVICES["redis"]["image"])
    for name in BUILT:
        assert all(addr == "127.0.0.1" for addr, _, _ in published(name))  # demo secrets: loopback only


@pytest.mark.parametrize("name", ["simulator", "otpservice"])
def test_each_command_parses(name):
    args = cli.build_parser().parse_args(command(name)[1:])
    assert command(name)[0] == "otpservice"
    assert args.func is {"simulator": cli.cmd_sim, "otpservice": cli.cmd_serve}[name]


def test_the_service_environment_passes_every_start_up_check():
    settings = Settings.from_env(environment("otpservice"))
    cli.check_serving(settings)
    assert settings.production and settings.totp_enabled and settings.host == "0.0.0.0"
    assert settings.port == published("otpservice")[0][2]


def test_the_simulator_environment_passes_its_checks():
    env = environment("simulator")
    Settings.from_env(env)  # the image's ENV says production; the compose file makes it a sandbox
    options = cli.simulator_options(env)
    args = cli.build_parser().parse_args(command("simulator")[1:])
    assert (args.host, args.port) == ("0.0.0.0", published("simulator")[0][2])
    assert options["api_key"] == environment("otpservice")["OTP_TELNYX_API_KEY"]


def test_the_services_point_at_one_another():
    service, simulator = environment("otpservice"), environment("simulator")
    sim_args = cli.build_parser().parse_args(command("simulator")[1:])
    base = urlsplit(service["OTP_TELNYX_BASE_URL"])
    assert (base.hostname, base.port, base.path) == ("simulator", sim_args.port, "/v2")
    # The service verifies the webhooks the simulator signs.
    signing_key = cli.simulator_options(simulator)["signing_key"]
    assert service["OTP_TELNYX_PUBLIC_KEY"] == public_key_b64(signing_key)
    # The simulator's webhooks reach the service's container port.
    for env in (service, simulator):
        hook = urlsplit(env["OTP_WEBHOOK_URL"])
        assert (hook.hostname, hook.port, hook.path) == ("otpservice", Settings.from_env(service).port,
                                                         "/webhooks/telnyx")
    redis_url = urlsplit(service["OTP_REDIS_URL"])
    assert redis_url.hostname == "redis" and "redis" in SERVICES["otpservice"]["depends_on"]


def test_the_compose_redis_is_one_production_accepts(tmp_path):
    # The compose file's own redis-server flags, on a real redis-server: production checks its eviction policy.
    server = RedisServer(*command("redis")[1:], directory=str(tmp_path)).start()
    try:
        settings = Settings.from_env({**environment("otpservice"), "OTP_REDIS_URL": server.url})
        wiring.refuse_unsafe_redis(settings)
    finally:
        server.cleanup()


def test_the_worker_count_follows_the_service_cpu_limit(tmp_path):
    # Docker writes `cpus: N` as cgroup v2's cpu.max "N*100000 100000".
    cpus = float(SERVICES["otpservice"]["cpus"])
    (tmp_path / "cpu.max").write_text(f"{int(cpus * 100000)} 100000\n")
    env = environment("otpservice")
    assert conf_workers({k: v for k, v in env.items() if k.startswith("OTP_")}, tmp_path) == [2 * int(cpus) + 1]


def test_the_readme_gives_the_compose_client_key():
    readme = (ROOT / "README.md").read_text()
    assert f"`{environment('otpservice')['OTP_API_KEYS']}`" in readme.split("**Docker.**", 1)[1].split("\n\n")[0]


@pytest.mark.slow
def test_the_compose_stack_as_processes_serves_the_readme_session(tmp_path):
    """The three services as the compose file starts them, without Docker: redis-server with its flags,
    `otpservice sim` and `otpservice serve` (production, 3 workers: its CPU limit) with their environments,
    the container hostnames swapped for loopback ports. Then the README's first verification, with the compose
    client key, and the signed delivery report reaching the service."""
    import os
    import signal
    import subprocess
    import time

    import requests

    from tests.support.gunicorn_server import OTPSERVICE, GunicornServer
    from tests.support.redis_server import free_port

    redis_server = RedisServer(*command("redis")[1:], directory=str(tmp_path)).start()
    sim_port = free_port()
    service = GunicornServer({}, workers=2 * int(SERVICES["otpservice"]["cpus"]) + 1)
    loopback = {"http://simulator:8081": f"http://127.0.0.1:{sim_port}", "http://otpservice:8080": service.url,
                "redis://redis:6379": f"redis://127.0.0.1:{redis_server.port}"}

    def on_loopback(env: dict[str, str]) -> dict[str, str]:
        swapped = {}
        for key, value in env.items():
            for inside, outside in loopback.items():
                value = value.replace(inside, outside)
            swapped[key] = value
        return {k: v for k, v in swapped.items() if k.startswith("OTP_")}

    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    assert command("simulator")[:2] == ["otpservice", "sim"]
    simulator = subprocess.Popen([str(OTPSERVICE), "sim", "--host", "127.0.0.1", "--port", str(sim_port)],
                                 env={**base, **on_loopback(environment("simulator"))}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
    service.env.update({k: v for k, v in on_loopback(environment("otpservice")).items()
                        if k not in ("OTP_HOST", "OTP_PORT")})
    key = {"Authorization": f"Bearer {environment('otpservice')['OTP_API_KEYS']}"}
    number = "+13125550123"
    try:
        deadline = time.monotonic() + 30
        while True:  # compose starts the service once the simulator has started; so does this
            try:
                requests.get(f"http://127.0.0.1:{sim_port}/sim/public-key", timeout=1).raise_for_status()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and simulator.poll() is None
                time.sleep(0.1)
        service.start()
        sent = requests.post(service.url + "/request-code", json={"phone_number": number}, headers=key, timeout=10)
        assert sent.status_code == 202, sent.text
        outbox = requests.get(f"http://127.0.0.1:{sim_port}/sim/messages", params={"to": number}, timeout=5).json()
        code = re.search(r"\b(\d{6})\b", outbox["data"][0]["text"]).group(1)
        verified = requests.post(service.url + "/verify", json={"phone_number": number, "code": code}, headers=key,
                                 timeout=10)
        assert verified.json()["valid"] is True
        deadline = time.monotonic() + 10
        url = service.url + f"/verifications/{sent.json()['verification_id']}"
        while (record := requests.get(url, headers=key, timeout=5).json())["sends"][0]["delivery_status"] \
                != "delivered":
            assert time.monotonic() < deadline, record
            time.sleep(0.1)
    finally:
        service.cleanup()
        os.killpg(simulator.pid, signal.SIGTERM)
        simulator.wait(10)
        redis_server.cleanup()

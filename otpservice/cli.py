"""The `otpservice` command: run the sandbox, the simulator, or the service under gunicorn."""
from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from otpservice import config
from otpservice.config import ConfigError
from otpservice.observability import logs

SANDBOX_CLIENT_KEY = "sandbox-client-key"
SANDBOX_ADMIN_TOKEN = "sandbox-admin-token"
SANDBOX_TELNYX_KEY = "KEYsandbox"
DEFAULT_ENV_FILE = "config/sandbox.env"


def refuse_busy_port(what: str, variable: str, host: str, port: int) -> None:
    """ConfigError naming the server and its variable when host:port is taken.

    Probed before the server binds: werkzeug's own bind failure prints a generic line and exits, without saying
    which of the sandbox's two servers it was.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(f"{variable}: {host}:{port}, the {what}'s port, is in use by another program "
                              f"(another sandbox?): choose a free one") from None


def simulator_options(env: Mapping[str, str]) -> dict:
    """The simulator's API key and signing key from OTP_* variables, as `otpservice run` and `otpservice sim`
    read them; ConfigError naming a bad one."""
    from otpservice.sending.telnyx.signatures import signing_key_from_seed_b64

    try:
        signing_key = signing_key_from_seed_b64(env.get("OTP_SIM_SIGNING_KEY") or None)
    except ValueError as exc:
        raise ConfigError(f"OTP_SIM_SIGNING_KEY: {exc}") from None
    return {"api_key": env.get("OTP_TELNYX_API_KEY") or SANDBOX_TELNYX_KEY, "signing_key": signing_key}


def banner(settings: config.Settings, public_url: str, sim) -> str:
    """What `otpservice run` prints once both servers listen: where each is and the keys to use."""
    store = "Redis at " + config.masked("OTP_REDIS_URL", settings.redis_url, secret=False) if settings.redis_url \
        else "embedded store: one process, forgotten at exit; OTP_REDIS_URL for a Redis"
    client_key = settings.api_keys[0] if settings.api_keys else "(none)"
    return f"""
otpservice sandbox ({store})
  service    {public_url:<28} client key  {client_key}
  {'':<39} admin token {settings.admin_token or '(none)'}
  simulator  {sim.base_url:<28} API key     {sim.api_key}   (a Telnyx SDK's base_url and api_key)
             outbox {sim.url}/sim/messages   webhook public key {sim.public_key_b64}
  send mode  {settings.send_endpoint}   (OTP_SEND_ENDPOINT=number_pool for the number pool)
Press Ctrl+C to stop.
"""


def cmd_run(args: argparse.Namespace) -> int:
    """The one-command sandbox: simulator and service in one process, wired together, embedded store."""
    from werkzeug.serving import make_server

    from otpservice import create_app, start_background
    from otpservice.sandbox import SimulatorServer
    from otpservice.sandbox.account import inventory_for
    from otpservice.sandbox.simulator import DEFAULT_FROM_NUMBER, DEFAULT_PROFILE_ID
    from otpservice.sending.routing import Router
    from otpservice.sending.telnyx.signatures import public_key_b64
    from otpservice.storage.connect import embedded_client

    # Layers, last wins: built-in sandbox defaults, the env file (config/sandbox.env), then the environment.
    file_values = config.read_env_file(args.env_file or DEFAULT_ENV_FILE, required=args.env_file is not None)
    env = {**file_values, **config.otp_environ()}
    host = env.get("OTP_HOST", "127.0.0.1")
    port, sim_port = config.port_from(env, "OTP_PORT", 8080), config.port_from(env, "OTP_SIM_PORT", 8081)
    if port == sim_port:
        raise ConfigError(f"OTP_PORT and OTP_SIM_PORT are both {port}: the service and the simulator need a port each")
    sim_options = simulator_options(env)
    public_url = f"http://{host}:{port}"
    defaults = {
        "OTP_TELNYX_BASE_URL": f"http://{host}:{sim_port}/v2",
        "OTP_TELNYX_API_KEY": sim_options["api_key"],
        "OTP_TELNYX_PUBLIC_KEY": public_key_b64(sim_options["signing_key"]),
        "OTP_WEBHOOK_URL": f"{public_url}/webhooks/telnyx",
        "OTP_API_KEYS": SANDBOX_CLIENT_KEY,
        "OTP_ADMIN_TOKEN": SANDBOX_ADMIN_TOKEN,
        "OTP_TELNYX_FROM": "+13125550100",
        "OTP_TELNYX_MESSAGING_PROFILE_ID": "4001767e-ce0f-4cae-9d5f-0d5e636e7809",
    }
    environ = {**defaults, **{k: v for k, v in env.items() if k not in config.LAUNCHER_VARIABLES}}
    settings = config.Settings.from_env(environ)
    logs.configure(settings.log_level)
    # The embedded store chosen here rather than by wiring: the banner says what it is, with no warning, which
    # stays for `serve`, where an embedded store is a mistake more often than a choice.
    app = create_app(settings, redis_client=None if settings.redis_url else embedded_client())
    refuse_busy_port("service", "OTP_PORT", host, port)
    refuse_busy_port("simulator", "OTP_SIM_PORT", host, sim_port)
    sim = SimulatorServer(host=host, port=sim_port, default_webhook_url=settings.webhook_url, **sim_options)
    # The simulator plays an account set up as this configuration needs, so `otpservice doctor` passes on it.
    inventory = inventory_for(Router.from_settings(settings).countries(),
                              profile_id=settings.telnyx_messaging_profile_id or DEFAULT_PROFILE_ID,
                              from_number=DEFAULT_FROM_NUMBER, webhook_url=settings.webhook_url)
    sim.app.extensions["telnyx_sim"].state.set_inventory(inventory, default=True)
    server = make_server(host, port, app, threaded=True)
    sim.start()
    start_background(app)  # this process serves: the opt-out sync runs from now, not from the first request
    print(banner(settings, public_url, sim), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sim.stop()
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """The Telnyx simulator alone."""
    from otpservice.sandbox import SimulatorServer

    env = config.otp_environ()
    logs.configure(env.get("OTP_LOG_LEVEL", "INFO"))
    host = args.host or env.get("OTP_HOST", "127.0.0.1")
    port = args.port if args.port is not None else config.port_from(env, "OTP_SIM_PORT", 8081)
    options = simulator_options(env)
    refuse_busy_port("simulator", "--port / OTP_SIM_PORT", host, port)
    sim = SimulatorServer(host=host, port=port, default_webhook_url=env.get("OTP_WEBHOOK_URL") or None, **options)
    print(f"Telnyx simulator: API {sim.base_url} (API key {sim.api_key}; Telnyx SDKs take it as base_url), "
          f"control routes {sim.url}/sim/..., webhook public key {sim.public_key_b64}", flush=True)
    sim.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()
    return 0


def check_serving(settings: config.Settings) -> None:
    """What serving needs besides valid settings (wiring.require_sending), without touching the network."""
    from otpservice import wiring

    wiring.require_sending(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    """The service under gunicorn with config/gunicorn.conf.py."""
    conf = Path(args.config) if args.config else Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"
    argv = ["gunicorn", "otpservice.wsgi:app"]
    settings = config.Settings.from_env()
    if conf.exists():
        argv += ["--config", str(conf)]
    else:
        argv += ["--bind", f"{settings.host}:{settings.port}"]
    # `otpservice serve -- --workers 8`: argparse keeps the `--` that lets gunicorn's flags through.
    argv += args.gunicorn_args[1:] if args.gunicorn_args[:1] == ["--"] else args.gunicorn_args
    from otpservice import wiring

    # Refuse to start (naming what is missing or unsafe) before forking any worker.
    check_serving(settings)
    wiring.refuse_unsafe_redis(settings)
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print every setting's effective value (secrets masked) and its source; then check them as `serve` would."""
    file_values = config.read_env_file(args.env_file, required=True) if args.env_file else {}
    environ = config.otp_environ()
    rows = config.effective(environ, file_values, args.env_file or "")
    width = max(len(row["env"]) for row in rows)
    value_width = min(48, max(len(row["value"]) for row in rows))
    for row in rows:
        print(f"{row['env']:<{width}}  {row['value']:<{value_width}}  {row['source']}")
    settings = config.Settings.from_env({**file_values, **environ})
    check_serving(settings)
    print(f"\nValid for `otpservice serve` (OTP_ENV={settings.env}).")
    return 0


def cmd_optouts(args: argparse.Namespace) -> int:
    """`optouts sync` pulls Telnyx's list; `optouts show NUMBER` prints the admin lookup (JSON)."""
    import json

    from otpservice import errors, wiring

    settings = config.Settings.from_env()
    logs.configure(settings.log_level)
    optouts = wiring.build(settings, sends_texts=False).optouts
    try:
        if args.action == "sync":
            result = optouts.sync()
        else:
            e164 = optouts.number(args.number).e164
            result = optouts.refresh(e164) if args.refresh else optouts.lookup(e164)
    except errors.ServiceError as exc:
        print(f"otpservice: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Ask Telnyx whether the account is set up as the configuration needs: one line per check, exit 1 on a
    failed one."""
    from otpservice import wiring

    settings = config.Settings.from_env()
    logs.configure("WARNING")
    checks = wiring.doctor(settings)
    for check in checks:
        print(check.line())
    failed = sum(not check.ok for check in checks)
    print(f"{len(checks) - failed} of {len(checks)} checks passed" + (f"; {failed} to fix" if failed else ""))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otpservice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="sandbox: service + Telnyx simulator, embedded store")
    run.add_argument("--env-file", help=f"settings under the environment's (default {DEFAULT_ENV_FILE} if present)")
    run.set_defaults(func=cmd_run)
    sim = sub.add_parser("sim", help="run the Telnyx simulator alone")
    sim.add_argument("--host", help="address to listen on (default OTP_HOST, else 127.0.0.1)")
    sim.add_argument("--port", type=int, help="port (default OTP_SIM_PORT, else 8081)")
    sim.set_defaults(func=cmd_sim)
    serve = sub.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--config", help="gunicorn config file (default config/gunicorn.conf.py)")
    serve.add_argument("gunicorn_args", nargs=argparse.REMAINDER, help="-- then gunicorn flags, e.g. -- --workers 8")
    serve.set_defaults(func=cmd_serve)
    show = sub.add_parser("config", help="every setting's effective value and where it comes from, then a check")
    show.add_argument("--env-file", help="an env file under the environment, as `otpservice run --env-file` reads it")
    show.set_defaults(func=cmd_config)
    optouts = sub.add_parser("optouts", help="the opt-out registry (OTP_REDIS_URL, Telnyx settings)")
    actions = optouts.add_subparsers(dest="action", required=True)
    actions.add_parser("sync", help="pull Telnyx's whole opt-out list into the registry")
    show = actions.add_parser("show", help="a number's opt-out records")
    show.add_argument("number")
    show.add_argument("--refresh", action="store_true", help="ask Telnyx's list live first")
    optouts.set_defaults(func=cmd_optouts)
    sub.add_parser("doctor", help="check the Telnyx account against the configuration (senders, profiles, "
                                  "webhooks)").set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(config.error_line(exc), file=sys.stderr)
        return config.CONFIG_ERROR_STATUS


if __name__ == "__main__":
    sys.exit(main())

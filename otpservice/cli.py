"""The `otpservice` command: run the sandbox, the simulator, or the service under gunicorn."""
from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path

from otpservice import config
from otpservice.observability import logs

SANDBOX_CLIENT_KEY = "sandbox-client-key"
SANDBOX_ADMIN_TOKEN = "sandbox-admin-token"
SANDBOX_TELNYX_KEY = "KEYsandbox"


def cmd_run(args: argparse.Namespace) -> int:
    """The one-command sandbox: simulator and service in one process, wired together, embedded store."""
    from werkzeug.serving import make_server

    from otpservice import create_app, start_background
    from otpservice.sandbox import SimulatorServer
    from otpservice.sending.telnyx.signatures import public_key_b64, signing_key_from_seed_b64

    # Layers, last wins: built-in sandbox defaults, config/sandbox.env, then the environment.
    env = {**config.read_env_file(args.env_file), **config.otp_environ()}
    host = env.get("OTP_HOST", "127.0.0.1")
    port = int(env.get("OTP_PORT", "8080"))
    sim_port = int(env.get("OTP_SIM_PORT", "8081"))
    signing_key = signing_key_from_seed_b64(env.get("OTP_SIM_SIGNING_KEY") or None)
    telnyx_key = env.get("OTP_TELNYX_API_KEY") or SANDBOX_TELNYX_KEY
    public_url = f"http://{host}:{port}"
    defaults = {
        "OTP_TELNYX_BASE_URL": f"http://{host}:{sim_port}/v2",
        "OTP_TELNYX_API_KEY": telnyx_key,
        "OTP_TELNYX_PUBLIC_KEY": public_key_b64(signing_key),
        "OTP_WEBHOOK_URL": f"{public_url}/webhooks/telnyx",
        "OTP_API_KEYS": SANDBOX_CLIENT_KEY,
        "OTP_ADMIN_TOKEN": SANDBOX_ADMIN_TOKEN,
        "OTP_TELNYX_FROM": "+13125550100",
        "OTP_TELNYX_MESSAGING_PROFILE_ID": "4001767e-ce0f-4cae-9d5f-0d5e636e7809",
    }
    environ = {**defaults, **{k: v for k, v in env.items() if not k.startswith("OTP_SIM_")}}
    settings = config.Settings.from_env(environ)
    logs.configure(settings.log_level)
    sim = SimulatorServer(host=host, port=sim_port, api_key=telnyx_key, signing_key=signing_key,
                          default_webhook_url=settings.webhook_url).start()
    app = create_app(settings)
    start_background(app)  # this process serves: the opt-out sync runs from now, not from the first request
    server = make_server(host, port, app, threaded=True)
    print(f"""
otpservice sandbox ({'embedded store' if not settings.redis_url else 'Redis at ' + settings.redis_url})
  service    {public_url}        client key  {settings.api_keys[0] if settings.api_keys else '(none)'}
                                          admin token {settings.admin_token or '(none)'}
  simulator  {sim.url}  outbox {sim.url}/sim/messages   public key {public_key_b64(signing_key)}
  send mode  {settings.send_endpoint}   (OTP_SEND_ENDPOINT=number_pool for the number pool)
Press Ctrl+C to stop.
""", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown() if threading.current_thread() is not threading.main_thread() else None
        sim.stop()
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """The Telnyx simulator alone."""
    from otpservice.sandbox import SimulatorServer
    from otpservice.sending.telnyx.signatures import public_key_b64, signing_key_from_seed_b64

    env = config.otp_environ()
    logs.configure(env.get("OTP_LOG_LEVEL", "INFO"))
    signing_key = signing_key_from_seed_b64(config.environ_value("OTP_SIM_SIGNING_KEY") or None)
    api_key = env.get("OTP_TELNYX_API_KEY") or SANDBOX_TELNYX_KEY
    sim = SimulatorServer(host=args.host, port=args.port, api_key=api_key, signing_key=signing_key,
                          default_webhook_url=env.get("OTP_WEBHOOK_URL") or None)
    print(f"Telnyx simulator on {sim.url} (API key {api_key}); public key {public_key_b64(signing_key)}",
          flush=True)
    sim.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The service under gunicorn with config/gunicorn.conf.py."""
    conf = Path(args.config) if args.config else Path(__file__).resolve().parent.parent / "config" / "gunicorn.conf.py"
    argv = ["gunicorn", "otpservice.wsgi:app"]
    if conf.exists():
        argv += ["--config", str(conf)]
    else:
        settings = config.Settings.from_env()
        argv += ["--bind", f"{settings.host}:{settings.port}"]
    # `otpservice serve -- --workers 8`: argparse keeps the `--` that lets gunicorn's flags through.
    argv += args.gunicorn_args[1:] if args.gunicorn_args[:1] == ["--"] else args.gunicorn_args
    from otpservice import wiring

    # Refuse to start (naming what is missing or unsafe) before forking any worker.
    wiring.refuse_unsafe_redis(config.Settings.from_env())
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print every setting with its variable, default and meaning (markdown table)."""
    print("| variable | default | meaning |\n| --- | --- | --- |")
    for row in config.Settings().describe():
        default = row["default"]
        shown = ",".join(default) if isinstance(default, tuple) else default
        print(f"| `{row['env']}` | `{shown}` | {row['doc']} |")
    return 0


def cmd_optouts(args: argparse.Namespace) -> int:
    """`optouts sync` pulls Telnyx's list; `optouts show NUMBER` prints the admin lookup (JSON)."""
    import json

    from otpservice import errors, wiring

    settings = config.Settings.from_env()
    logs.configure(settings.log_level)
    optouts = wiring.build(settings).optouts
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otpservice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="sandbox: service + Telnyx simulator, embedded store")
    run.add_argument("--env-file", default="config/sandbox.env", help="defaults under the environment")
    run.set_defaults(func=cmd_run)
    sim = sub.add_parser("sim", help="run the Telnyx simulator alone")
    sim.add_argument("--host", default=config.environ_value("OTP_HOST", "127.0.0.1"))
    sim.add_argument("--port", type=int, default=int(config.environ_value("OTP_SIM_PORT", "8081")))
    sim.set_defaults(func=cmd_sim)
    serve = sub.add_parser("serve", help="run the service under gunicorn")
    serve.add_argument("--config", help="gunicorn config file (default config/gunicorn.conf.py)")
    serve.add_argument("gunicorn_args", nargs=argparse.REMAINDER, help="-- then gunicorn flags, e.g. -- --workers 8")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("config", help="list every setting").set_defaults(func=cmd_config)
    optouts = sub.add_parser("optouts", help="the opt-out registry (OTP_REDIS_URL, Telnyx settings)")
    actions = optouts.add_subparsers(dest="action", required=True)
    actions.add_parser("sync", help="pull Telnyx's whole opt-out list into the registry")
    show = actions.add_parser("show", help="a number's opt-out records")
    show.add_argument("number")
    show.add_argument("--refresh", action="store_true", help="ask Telnyx's list live first")
    optouts.set_defaults(func=cmd_optouts)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except config.ConfigError as exc:
        print(f"otpservice: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

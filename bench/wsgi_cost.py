"""Worker instructions per request, service against floor, counted by callgrind: where /verify's time goes.

Throughput on this shared machine moves by ±20% from one second to the next; instruction counts do not. For
each route this runs the service's WSGI app and the floor's (bench/floor.py), in process, under
`valgrind --tool=callgrind`, against a private redis-server (not under valgrind: its share is
bench/script_cost.py's), and counts only the requests: the loop runs inside `sum()`, the one function
callgrind is told to collect in (`--toggle-collect`), so start-up and the inputs made before it are not
counted. Per request = (a run of `--large` requests - a run of `--small`) / the difference.

    .venv/bin/python -m bench.wsgi_cost            # needs valgrind (Debian: apt-get install valgrind)

gunicorn's own work (accept, parse, write) is the same for both apps and is not in these figures.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.script_cost import callgrind_total

CLIENT_KEY = "bench-client-key"
CODE_SECRET = "bench-code-secret-" + "0" * 32
SEED = base64.b64encode(b"\x07" * 32).decode()
ROUTES = ("verify right code", "verify wrong code", "webhook deliveryUpdate")


def app_env(redis_url: str) -> dict[str, str]:
    from otpservice.sending.telnyx.signatures import public_key_b64, signing_key_from_seed_b64
    return {"OTP_ENV": "sandbox", "OTP_REDIS_URL": redis_url, "OTP_API_KEYS": CLIENT_KEY,
            "OTP_ADMIN_TOKEN": "bench-admin-token", "OTP_CODE_SECRET": CODE_SECRET,
            "OTP_TELNYX_BASE_URL": "http://127.0.0.1:9/v2", "OTP_TELNYX_API_KEY": "KEYbench",
            "OTP_TELNYX_PUBLIC_KEY": public_key_b64(signing_key_from_seed_b64(SEED)),
            "OTP_WEBHOOK_URL": "http://127.0.0.1:9/webhooks/telnyx", "OTP_TELNYX_FROM": "+13125550100",
            "OTP_LOG_LEVEL": "WARNING"}


# -- the child: one app, one route, n requests ----------------------------------------------------------------
def requests_for(side: str, route: str, n: int, serial: int) -> list[tuple[str, dict, bytes]]:
    """(path, headers, body) of n requests, with whatever the service needs stored first (pending codes, sends)."""
    import redis

    from otpservice.core import codes
    from otpservice.sandbox import payloads
    from otpservice.sending.telnyx.signatures import sign_webhook, signing_key_from_seed_b64
    from otpservice.storage.verifications import VerificationStore
    store = VerificationStore(redis.Redis.from_url(os.environ["OTP_REDIS_URL"]))
    auth = {"Authorization": f"Bearer {CLIENT_KEY}", "Content-Type": "application/json"}
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        phone = f"+4420{serial:03d}{i:05d}"
        res = store.begin_send(phone=phone, purpose="login", code_hash=codes.code_hash(CODE_SECRET.encode(), phone,
                                                                                      "login", "123456"),
                               now_ms=now, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=0,
                               skip_cooldown_after_failure=True)
        if route.startswith("verify"):
            code = "123456" if route == "verify right code" else "000000"
            out.append(("/verify", auth, json.dumps({"phone_number": phone, "code": code}).encode()))
            continue
        mid = f"40319{serial:03d}-{i:05d}-4f4c-9a7b-3a6b1bd0c1e2"
        store.record_send(res.verification_id, 1, outcome="sent", message_id=mid, endpoint="messages", now_ms=now,
                          delivery_status="queued")
        base = payloads.outbound_payload(message_id=mid, to=phone, from_="+13125550100", text="x" * 96,
                                         profile_id="4001767e-ce0f-4cae-9d5f-0d5e636e7809", encoding="GSM-7",
                                         parts=1, webhook_url=None, failover_url=None, now=now / 1000)
        data = payloads.event("message.sent", payloads.advance(base, "sent", now=now / 1000), now=now / 1000)
        body = json.dumps({"data": data, "meta": {"attempt": 1, "delivered_to": "bench"}}, separators=(",", ":"))
        headers = sign_webhook(signing_key_from_seed_b64(SEED), body.encode(), timestamp=int(now / 1000))
        out.append(("/webhooks/telnyx", {**headers, "Content-Type": "application/json"}, body.encode()))
    return out


def child(side: str, route: str, n: int, serial: int) -> None:
    from werkzeug.test import EnvironBuilder
    if side == "service":
        from otpservice.wsgi import app
    else:
        from bench.floor import app
    inputs = requests_for(side, route, n + 20, serial)
    environs = []
    for path, headers, body in inputs:
        environ = EnvironBuilder(path=path, method="POST", headers=headers, data=body).get_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environs.append(environ)
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def one(environ) -> int:
        result = app(environ, start_response)
        try:
            return sum(len(chunk) for chunk in result) and 1
        finally:
            if hasattr(result, "close"):
                result.close()

    for environ in environs[:20]:  # first requests: lazy imports, connections, script loads
        one(environ)
    # The measured loop: callgrind collects only inside builtin sum() (--toggle-collect); `one`'s own sum()
    # calls nest inside it, and only the outermost call toggles.
    total = sum(map(one, environs[20:]))
    bad = [s for s in statuses if not s.startswith("200")]
    if bad or total != n:
        raise SystemExit(f"{side} {route}: {len(bad)} requests not 200 ({bad[:3]})")


# -- the parent ------------------------------------------------------------------------------------------------
def count(side: str, route: str, n: int, serial: int, env: dict, workdir: Path) -> int:
    out = workdir / f"cg.{side}.{serial}"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=builtin_sum",
         f"--callgrind-out-file={out}", sys.executable, "-m", "bench.wsgi_cost", "--child", side, route, str(n),
         str(serial)], env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{side} {route} failed:\n{proc.stderr[-3000:]}")
    return callgrind_total(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=250)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--sides", default="service,floor", help="service, floor or both (default)")
    parser.add_argument("--child", nargs=4, metavar=("SIDE", "ROUTE", "N", "SERIAL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side, route, n, serial = args.child
        child(side, route, int(n), int(serial))
        return 0
    if not shutil.which("valgrind"):
        print("wsgi_cost: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    from tests.support.redis_server import RedisServer
    server = RedisServer().start()
    serial = 0
    try:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTP_")}, **app_env(server.url)}
        print(f"worker instructions per request (callgrind, in process; ({args.large} - {args.small} requests) / "
              f"{args.large - args.small})")
        sides = args.sides.split(",")
        print("| route | " + " | ".join(sides) + (" | floor / service |" if len(sides) == 2 else " |"))
        print("|---" * (len(sides) + 1 + (len(sides) == 2)) + "|")
        with tempfile.TemporaryDirectory(prefix="otp-wsgi-cost-") as tmp:
            for route in args.routes.split(","):
                per = {}
                for side in sides:
                    totals = []
                    for n in (args.small, args.large):
                        serial += 1
                        totals.append(count(side, route, n, serial, env, Path(tmp)))
                    per[side] = (totals[1] - totals[0]) / (args.large - args.small)
                cells = [f"{per[side] / 1000:.0f}k" for side in sides]
                if len(sides) == 2:
                    cells.append(f"{per['floor'] / per['service']:.2f}")
                print(f"| {route} | " + " | ".join(cells) + " |", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m bench.pumping`: an SMS-pumping run against the fraud guard, with real users beside it.

The service (in process, on a real redis-server when one is installed, else the embedded store) texts through
the Telnyx simulator over HTTP. Time is simulated: the app's clock moves a few seconds per request, so an hour
of traffic takes seconds and every window, budget and block is exercised as in an hour.

The traffic, from one seed:
- warm-up: two hours of real users in Latvia, the UK and the US (each user a number of the country's usual
  prefixes, its own device, account and address), who enter 90 % of their codes. This is the history a running
  service has (a new install has none: shadow mode first builds it while refusing nothing);
- then an hour and a half of the same users mixed with a pumping run at Latvian numbers spread over 100 fresh
  prefixes (+37129xx....), from a new address and device each request, that never enters a code.

It prints, for the attack and for the real users of each country: requests, texts sent, requests refused and
by what; and the acceptance figures of issue 17 (the attack's texts refused after the guard saw its first 50,
real users refused, budgets, shadow mode's decisions). tests/system/test_pumping.py runs the same `play` and
holds the figures to their bounds.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import phonenumbers
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENT_KEY = "pumping-client-key-0123456789abcdef"
ADMIN_TOKEN = "pumping-admin-token-0123456789abcdef"
SIM_KEY = "KEYpumping"
PROFILE_ID = "4001767e-ce0f-4cae-9d5f-0d5e636e7809"
CODE_RE = re.compile(r"(?<!\d)(\d{6,10})(?!\d)")
ATTACKED = "LV"
# A country's real users come from the prefixes its operators hand out (a prefix: the E.164 number without its
# last 4 digits); the pumping run uses a block of ranges no real user of the service has (IPRN-style).
USER_PREFIXES = {
    "LV": [f"+3712{n:03d}" for n in range(0, 400, 20)],          # 20 prefixes of 8-digit mobiles (2xxxxxxx)
    "GB": [f"+4474{n:04d}" for n in range(0, 2000, 100)],        # 20 prefixes of 07xxx mobiles
    "US": [f"+1{npa}{nxx}" for npa in ("312", "415") for nxx in range(200, 1000, 80)],
}
ATTACK_PREFIXES = [f"+37129{n:02d}" for n in range(100)]
VERIFY_RATE = 0.9


@dataclass
class Side:
    """What one kind of traffic got."""

    requests: int = 0
    sent: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)  # by error code (and rule)

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def line(self, name: str) -> str:
        by = ", ".join(f"{k} {v}" for k, v in sorted(self.refused.items())) or "-"
        return f"{name:<22} {self.requests:>8} {self.sent:>8} {self.refused_total:>8}   {by}"


@dataclass
class Outcome:
    """One run: per side, each attack request's fate in order, and every refusal's reason."""

    mode: str
    attack: Side = field(default_factory=Side)
    users: dict[str, Side] = field(default_factory=lambda: collections.defaultdict(Side))
    attack_fates: list[bool] = field(default_factory=list)  # per attack request: refused (or would be, in shadow)
    user_fates: list[tuple[int, str, bool]] = field(default_factory=list)  # (index, country, refused)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    budget_refusals: collections.Counter = field(default_factory=collections.Counter)  # rate_limited, by policy
    decisions: list[int] = field(default_factory=list)  # indices of requests decided against (either mode)
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def after_first(self, seen: int = 50) -> float:
        """The share of the attack's requests after the guard saw its first `seen` that were refused."""
        later = self.attack_fates[seen:]
        return sum(later) / len(later) if later else 1.0

    def users_refused(self) -> float:
        total = sum(side.requests for side in self.users.values())
        return sum(side.refused_total for side in self.users.values()) / total if total else 0.0


class SimClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Decisions(logging.Handler):
    """Counts the guard's decisions as it logs them: a shadow decision answers 202, so the log is how a run
    learns which requests it would have refused."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("fraud guard (shadow)"):
            self.count += 1


def numbers_of(prefix: str, rng: random.Random) -> str:
    """A valid number of the prefix (phonenumbers' ranges), picked at random."""
    for _ in range(100):
        number = prefix + f"{rng.randrange(10_000):04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number
    raise ValueError(f"no valid number under {prefix}")


@dataclass(frozen=True)
class Request:
    kind: str  # "user" or "attack"
    country: str
    body: dict[str, Any]
    verifies: bool


def traffic(seed: int, *, warmup: int, users: int, attack: int) -> tuple[list[Request], list[Request]]:
    """(warm-up, mixed) requests: the same for any mode with the same seed."""
    rng = random.Random(seed)
    weights = {"LV": 1, "GB": 2, "US": 2}
    people: dict[str, list[dict[str, Any]]] = {}
    for country, prefixes in USER_PREFIXES.items():
        people[country] = [{"phone_number": numbers_of(rng.choice(prefixes), rng),
                            "device_id": f"device-{country}-{i}", "user_id": f"user-{country}-{i}",
                            "client_ip": f"198.51.{rng.randrange(256)}.{rng.randrange(256)}"}
                           for i in range(400)]

    last_seen: dict[str, int] = {}
    asked = iter(range(10**9))

    def user() -> Request:
        country = rng.choices(list(weights), weights=list(weights.values()))[0]
        now = next(asked)
        while True:  # a person asks again only some 100 requests later (never inside the resend cooldown)
            person = rng.choice(people[country])
            if now - last_seen.get(person["user_id"], -1000) > 100:
                break
        last_seen[person["user_id"]] = now
        return Request("user", country, dict(person), rng.random() < VERIFY_RATE)

    def pump(i: int) -> Request:
        return Request("attack", ATTACKED, {"phone_number": numbers_of(rng.choice(ATTACK_PREFIXES), rng),
                                            "device_id": f"pump-{i}", "client_ip": f"203.0.{i // 250}.{i % 250}"},
                       False)

    warm = [user() for _ in range(warmup)]
    mixed, pumped = [], 0
    while len(mixed) < users + attack:  # interleaved at random, in the order they are asked
        if rng.random() < (attack - pumped) / (users + attack - len(mixed)):
            mixed.append(pump(pumped))
            pumped += 1
        else:
            mixed.append(user())
    return warm, mixed


@contextlib.contextmanager
def stack(mode: str, redis_url: str | None = None) -> Iterator[tuple[Any, Any, SimClock]]:
    """The app (guard in `mode`), the simulator and the app's clock; a fresh store each time."""
    from otpservice import create_app
    from otpservice.config import Settings
    from otpservice.sandbox import SimulatorServer
    from otpservice.sending.telnyx.signatures import signing_key_from_seed_b64

    server = None
    if redis_url is None:
        import shutil

        from tests.support.redis_server import REDIS_SERVER, RedisServer
        if shutil.which(REDIS_SERVER):
            server = RedisServer().start()
            redis_url = server.url
    sim = SimulatorServer(host="127.0.0.1", port=0, api_key=SIM_KEY, signing_key=signing_key_from_seed_b64(None),
                          webhook_delay=0.0).start()
    # Midnight UTC today: every run's requests fall in the same buckets of the guard's windows, so two runs of
    # one seed see the same figures.
    clock = SimClock(time.time() // 86400 * 86400)
    try:
        if redis_url:
            import redis
            redis.Redis.from_url(redis_url).flushall()
        settings = Settings(redis_url=redis_url or "", api_keys=(CLIENT_KEY,), admin_token=ADMIN_TOKEN,
                            code_secret="pumping-code-secret-0123456789abcdef", telnyx_api_key=SIM_KEY,
                            telnyx_base_url=sim.base_url, telnyx_from="+13125550100",
                            telnyx_messaging_profile_id=PROFILE_ID, fraud_guard=mode, optout_sync_interval=0,
                            reconcile_after=0)
        app = create_app(settings, clock=clock)
        yield app, sim, clock
    finally:
        sim.stop()
        if server is not None:
            server.cleanup()


def play(mode: str, *, seed: int = 17, warmup: int = 600, users: int = 600, attack: int = 800,
         redis_url: str | None = None, progress: bool = False) -> Outcome:
    """One run in `mode` (enforce or shadow): the warm-up hour, then users and the attack mixed over 90 min."""
    warm, mixed = traffic(seed, warmup=warmup, users=users, attack=attack)
    outcome = Outcome(mode)
    handler = Decisions()
    guard_log = logging.getLogger("otpservice.core.fraud")
    guard_log.addHandler(handler)
    level = guard_log.level
    guard_log.setLevel(logging.INFO)
    try:
        with stack(mode, redis_url) as (app, sim, clock):
            client = app.test_client()
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
            session = requests.Session()
            for phase, batch, seconds in (("warm-up", warm, 7200), ("mixed", mixed, 5400)):
                step = seconds / max(1, len(batch))
                for index, req in enumerate(batch):
                    clock.now += step
                    before = handler.count
                    answer = client.post("/request-code", json=req.body)
                    refused = answer.status_code != 202
                    side = outcome.attack if req.kind == "attack" else outcome.users[req.country]
                    side.requests += 1
                    if refused:
                        error = answer.get_json()["error"]
                        rule = (error.get("reason") or {}).get("rule")
                        side.refused[f"{error['code']}{f' ({rule})' if rule else ''}"] += 1
                        if error["code"] == "rate_limited":
                            outcome.budget_refusals[error["limit"]] += 1
                        if error.get("reason"):
                            outcome.reasons.append(error["reason"])
                    else:
                        side.sent += 1
                    decided = refused or handler.count > before
                    if phase == "mixed":
                        if decided:
                            outcome.decisions.append(index)
                        if req.kind == "attack":
                            outcome.attack_fates.append(decided)
                        else:
                            outcome.user_fates.append((index, req.country, refused))
                    if not refused and req.verifies:
                        sent = session.get(f"{sim.url}/sim/messages", params={"to": req.body["phone_number"]},
                                           timeout=5).json()["data"]
                        code = CODE_RE.search(sent[0]["text"]).group(1)
                        clock.now += 1
                        client.post("/verify", json={"phone_number": req.body["phone_number"], "code": code})
                    if progress and (index + 1) % 200 == 0:
                        print(f"==> {mode} {phase}: {index + 1}/{len(batch)} requests", file=sys.stderr)
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            outcome.blocks = app.test_client().get("/admin/fraud/blocks", headers=admin).get_json()["data"]
    finally:
        guard_log.removeHandler(handler)
        guard_log.setLevel(level)
    return outcome


def report(outcome: Outcome) -> list[str]:
    lines = [f"## OTP_FRAUD_GUARD={outcome.mode}", "",
             f"{'traffic':<22} {'requests':>8} {'sent':>8} {'refused':>8}   refused by"]
    lines.append(outcome.attack.line("pumping (LV)"))
    for country in sorted(outcome.users):
        lines.append(outcome.users[country].line(f"real users ({country})"))
    attack_decided = sum(outcome.attack_fates)
    lines += ["",
              f"attack requests decided against after the guard saw its first 50: {outcome.after_first():.1%} "
              f"(target >= 95%); texts the attack got: {outcome.attack.sent} of {outcome.attack.requests}",
              f"real users refused: {outcome.users_refused():.2%} (target <= 1%); in countries the attack did not "
              f"touch: {sum(outcome.users[c].refused_total for c in outcome.users if c != ATTACKED)}",
              f"fixed budgets that refused anybody: {dict(outcome.budget_refusals) or 'none'}",
              f"requests decided against in the mixed 90 minutes: {len(outcome.decisions)} (attack {attack_decided})",
              f"block records: {len(outcome.blocks)} "
              f"({', '.join(sorted({b['scope'] + ' ' + b['rule'] for b in outcome.blocks})[:6])}"
              f"{', ...' if len(outcome.blocks) > 6 else ''})", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--attack", type=int, default=800, help="pumping requests in the mixed 90 minutes")
    parser.add_argument("--users", type=int, default=600, help="real users' requests in the mixed 90 minutes")
    parser.add_argument("--warmup", type=int, default=600, help="real users' requests in the warm-up 2 hours")
    parser.add_argument("--redis-url", default=None, help="a Redis to use (flushed!); default: one of its own")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:  # the guard's INFO lines feed `Decisions`, not the terminal
        handler.setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the simulator's access log
    started = time.perf_counter()
    runs = {}
    for mode in ("enforce", "shadow"):
        runs[mode] = play(mode, seed=args.seed, warmup=args.warmup, users=args.users, attack=args.attack,
                          redis_url=args.redis_url, progress=True)
        print("\n".join(report(runs[mode])))
    same = runs["enforce"].decisions == runs["shadow"].decisions
    print(f"shadow mode decided against the same requests as enforce: {same} "
          f"({len(runs['shadow'].decisions)} vs {len(runs['enforce'].decisions)}); it sent "
          f"{runs['shadow'].attack.sent + sum(s.sent for s in runs['shadow'].users.values())} of "
          f"{runs['shadow'].attack.requests + sum(s.requests for s in runs['shadow'].users.values())} requests")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Redis memory per pending verification, created through the service's own request path.

Each verification is made by `VerificationService.request_code` with its real SendGate (opt-out check,
the non-number budgets, the per-number budgets inside begin_send) and a stand-in Telnyx client that
accepts every message: the same Redis calls, keys and values as a real /request-code, without HTTP, so
10^5 verifications take seconds. Each is for a fresh number (the worst case: no key shared with another).
The per-number budgets keep their defaults (their bounds are fixed); the budgets shared by all numbers
(global, country, prefix) are set to GENEROUS_RATE so a run of fresh numbers is not refused; their logs
are shared keys, counted apart from the per-verification keys.

`python -m bench.memory [--sizes 1000,10000,100000]` measures memory alone on its own redis-server.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import redis

from otpservice import wiring
from otpservice.config import Settings
from otpservice.core.verification import VerificationService
from otpservice.sending.base import OutboundMessage, SentMessage

TTL_S, RETENTION_S, COOLDOWN_S = 600, 86_400, 30
GENEROUS_RATE = "1000000/second"
CODE_RE = re.compile(r"\b(\d{6,10})\b")


BLOCK = 20_000  # numbers per block: one run's worth at the default --max-requests (see run.Blocks)
BLOCKS = 400  # +1312 2000000 .. +1312 9999999: every one a valid US number (exchange 200-999)


def phone_for(block: int, i: int) -> str:
    """A valid, distinct US number (+1312 + 7 digits) for index `i` of number block `block` (see run.py).

    An index past BLOCK runs on into the next blocks: a caller needing more numbers holds several in a row.
    """
    return f"+1312{2_000_000 + block * BLOCK + i}"


class AcceptingSender:
    """Stands in for the Telnyx sender: accepts every message with a fresh id and keeps the last code texted."""

    def __init__(self) -> None:
        self.last_code = ""

    def send(self, message: OutboundMessage, *, deadline: float | None = None) -> SentMessage:
        self.last_code = CODE_RE.search(message.text).group(1)
        return SentMessage(message_id=str(uuid.uuid4()), status="queued")


def service_for(url: str, secret: bytes) -> tuple[VerificationService, redis.Redis, AcceptingSender]:
    """A VerificationService as the app builds it (wiring: real SendGate, real stores), on the benchmark's Redis."""
    settings = Settings(redis_url=url, code_secret=secret.decode(), code_ttl=TTL_S, record_retention=RETENTION_S,
                        resend_cooldown=COOLDOWN_S, limit_global=GENEROUS_RATE, limit_country=GENEROUS_RATE,
                        limit_prefix=GENEROUS_RATE, limit_ip=GENEROUS_RATE, optout_sync_interval=0,
                        fraud_guard="shadow",  # all of the guard's work (and keys), none of its refusals
                        totp_enabled=False, telnyx_public_key=base64.b64encode(bytes(32)).decode())
    client = redis.Redis.from_url(url)
    sender = AcceptingSender()
    return wiring.build(settings, redis_client=client, sender=sender).verifications, client, sender


def create(url: str, secret: bytes, block: int, start: int, stop: int) -> list[tuple[str, str]]:
    """Request a code for numbers start..stop-1 of `block` as /request-code does; returns (phone, code) pairs."""
    service, client, sender = service_for(url, secret)
    made = []
    for i in range(start, stop):
        phone = phone_for(block, i)
        service.request_code(service.parse_request({"phone_number": phone}))
        made.append((phone, sender.last_code))
    client.close()
    return made


def create_many(url: str, secret: bytes, block: int, count: int, processes: int = 4) -> list[tuple[str, str]]:
    """`create` split over a few processes (Redis round trips dominate, so this is nearly linear)."""
    if count < 2000:
        return create(url, secret, block, 0, count)
    step = -(-count // processes)
    with ProcessPoolExecutor(processes) as pool:
        parts = [pool.submit(create, url, secret, block, s, min(count, s + step)) for s in range(0, count, step)]
        return [pair for part in parts for pair in part.result()]


def kind_of(key: bytes) -> str:
    """The kind of a key (`v`, `n`, ...): the part after the hash tag, or after `otp:` when untagged."""
    parts = key.decode().split(":")
    if parts[1] == "rl":
        return "shared rl"  # otp:rl:{<scope>:<digest>}: a budget of all numbers, not of one verification
    if parts[1] in ("fr", "{fr}", "spend"):
        return "shared fraud"  # the guard's counts per prefix, country and route, its records, the day's spend
    return parts[2] if parts[1].startswith("{") else parts[1]


def keys_of_one(client: redis.Redis) -> dict[str, int]:
    """MEMORY USAGE of every key in the (otherwise empty) database, by key kind."""
    usage: dict[str, int] = {}
    for key in client.scan_iter(count=1000):
        kind = kind_of(key)
        usage[kind] = usage.get(kind, 0) + client.memory_usage(key, samples=0)
    return usage


def measure(url: str, secret: bytes, sizes: tuple[int, ...], block: int) -> dict:
    """Per-key usage of one verification, then used_memory growth for each size (database flushed between).

    Every measure uses numbers from `block` on (max(sizes) of them, so several blocks in a row): the database
    is flushed before each, so none finds another's keys. It is the benchmark's own redis-server: flushing is safe.
    """
    client = redis.Redis.from_url(url)
    client.flushall()
    create(url, secret, block, 0, 1)
    one = keys_of_one(client)
    shared = {k: v for k, v in one.items() if k.startswith("shared")}
    one = {k: v for k, v in one.items() if not k.startswith("shared")}
    growth = []
    for n in sizes:
        client.flushall()
        client.execute_command("MEMORY", "PURGE")
        time.sleep(0.2)
        before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        create_many(url, secret, block, n, processes=min(4, os.cpu_count() or 2))
        elapsed = time.perf_counter() - started
        # The shared budget logs hold this run's last second of sends (GENEROUS_RATE's window), not state of
        # any verification: in production they are bounded by their amounts. Measured, then dropped.
        # Likewise the fraud guard's counts (one hash per prefix of 10,000 numbers, per country, per route),
        # its records and the day's spend: bounded by their buckets, shared by every verification.
        shared_keys = [key for pattern in ("otp:rl:*", "otp:fr:*", "otp:{fr}:*", "otp:spend:*")
                       for key in client.scan_iter(match=pattern, count=1000)]
        dropped = sum(client.memory_usage(key, samples=0) for key in shared_keys)
        if shared_keys:
            client.delete(*shared_keys)
        after = client.info("memory")["used_memory"]
        keys = client.dbsize()
        growth.append({"n": n, "before": before, "after": after, "per_verification": (after - before) / n,
                       "keys": keys, "seconds": elapsed, "shared_dropped": dropped})
    client.flushall()
    return {"one": one, "one_total": sum(one.values()), "shared": shared, "growth": growth}


def main() -> None:
    """Memory alone, on its own redis-server: `python -m bench.memory --sizes 1000,10000`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="pending verifications per row")
    parser.add_argument("--json", help="also write the result as JSON here")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.support.redis_server import RedisServer
    server = RedisServer().start()
    try:
        result = measure(server.url, b"bench-code-secret-" + b"0" * 32,
                         tuple(int(n) for n in args.sizes.split(",") if n), block=0)
    finally:
        server.stop()
    print("MEMORY USAGE of one verification's keys: " +
          ", ".join(f"{k} {v} B" for k, v in sorted(result["one"].items())) + f" = {result['one_total']} B"
          + (f" (shared budget logs, not counted: {result['shared']})" if result["shared"] else ""))
    print("| pending verifications | used_memory before | after | per verification | keys | seconds |")
    print("|---|---|---|---|---|---|")
    for g in result["growth"]:
        print(f"| {g['n']:,} | {g['before']:,} | {g['after']:,} | {g['per_verification']:.0f} B | {g['keys']:,} "
              f"| {g['seconds']:.1f} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()

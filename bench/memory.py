"""Redis memory per pending verification, created through the store layer (Store.begin_send + record_send).

Going through the store rather than HTTP makes 10^5 verifications in seconds, and writes exactly the keys
a real /request-code writes: the record hash, the live-code pointer, the number's index and the
message-id map. Each verification is for a fresh number (the worst case: no key shared with another).
"""
from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import redis

from otpservice import codes
from otpservice.store import Store

TTL_MS, RETENTION_MS, COOLDOWN_MS = 600_000, 86_400_000, 30_000


def phone_for(block: int, i: int) -> str:
    """A valid, distinct US number (+1312 + 7 digits) for index `i` of number block `block` (see run.py)."""
    return f"+1312{2_000_000 + block * 200_000 + i}"


def create(url: str, secret: bytes, block: int, start: int, stop: int, code: str = "") -> list[tuple[str, str]]:
    """Create pending verifications for numbers start..stop-1 of `block`; returns (phone, code) pairs."""
    store = Store(redis.Redis.from_url(url), secret=secret)
    made = []
    now_ms = int(time.time() * 1000)
    for i in range(start, stop):
        phone = phone_for(block, i)
        the_code = code or codes.generate_code(6)
        res = store.begin_send(phone=phone, purpose="login",
                               code_hash=codes.code_hash(secret, phone, "login", the_code),
                               now_ms=now_ms, ttl_ms=TTL_MS, retention_ms=RETENTION_MS, cooldown_ms=COOLDOWN_MS,
                               skip_cooldown_after_failure=True)
        store.record_send(res.verification_id, res.send_count, outcome="sent", message_id=str(uuid.uuid4()),
                          endpoint="messages", now_ms=now_ms, delivery_status="queued",
                          retention_ms=RETENTION_MS)
        made.append((phone, the_code))
    store.redis.close()
    return made


def create_many(url: str, secret: bytes, block: int, count: int, processes: int = 4) -> list[tuple[str, str]]:
    """`create` split over a few processes (Redis round trips dominate, so this is nearly linear)."""
    if count < 2000:
        return create(url, secret, block, 0, count)
    step = -(-count // processes)
    with ProcessPoolExecutor(processes) as pool:
        parts = [pool.submit(create, url, secret, block, s, min(count, s + step)) for s in range(0, count, step)]
        return [pair for part in parts for pair in part.result()]


def keys_of_one(client: redis.Redis) -> dict[str, int]:
    """MEMORY USAGE of every key in the (otherwise empty) database, by key kind."""
    usage = {}
    for key in client.scan_iter(count=1000):
        kind = key.decode().split(":")[2] if key.startswith(b"otp:{") else key.decode().split(":")[1]
        usage[kind] = usage.get(kind, 0) + client.memory_usage(key, samples=0)
    return usage


def measure(url: str, secret: bytes, sizes: tuple[int, ...], block: int) -> dict:
    """Per-key usage of one verification, then used_memory growth for each size (database flushed between).

    The database is the benchmark's own redis-server: flushing it is safe.
    """
    client = redis.Redis.from_url(url)
    client.flushall()
    create(url, secret, block, 0, 1)
    one = keys_of_one(client)
    growth = []
    for n in sizes:
        client.flushall()
        client.execute_command("MEMORY", "PURGE")
        time.sleep(0.2)
        before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        create_many(url, secret, block + 1, n, processes=min(4, os.cpu_count() or 2))
        elapsed = time.perf_counter() - started
        after = client.info("memory")["used_memory"]
        keys = client.dbsize()
        growth.append({"n": n, "before": before, "after": after, "per_verification": (after - before) / n,
                       "keys": keys, "seconds": elapsed})
    client.flushall()
    return {"one": one, "one_total": sum(one.values()), "growth": growth}

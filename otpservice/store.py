"""The only module that builds Redis keys and runs Lua: verifications, sends and idempotency records.

Key layout (every key has an expiry):
  otp:{B}:v:<id>                 hash   one verification (status, code HMAC, attempts, sends    retention
                                        with their Telnyx message ids m<k>)
  otp:{B}:n:<digest>             hash   the number's small listpack: field <purpose> = id of the   retention,
                                        purpose's latest verification (live while that record is   or the longest
                                        pending and unexpired); field <id> = "" for its earlier     per-number
                                        verifications (the admin list; delivery webhooks search     limit window,
                                        them all for a message id); field .s = its sends for the    or code ttl +
                                        per-number limits, field .f = its failed attempts (all     24 h + 1 min,
                                        codes, for the daily cap): time logs (lua/timelog.lua)      from its latest
                                                                                                    send
  otp:{B}:oo:<digest>            hash   the number's opt-out records (optouts.py)               none
  otp:idem:<client>:<key hash>   string the first answer to an Idempotency-Key                  24 h
{B} is the number's bucket (codes.bucket): one hash tag for all keys of a number, so every script runs
on Redis Cluster unchanged. No key name contains a phone number or anything a caller typed.
Memory is the layout's reason (issue 6): a pending verification costs two keys (record, number hash), and
record fields equal to their defaults are not written (see the Lua scripts; the defaults are supplied by
Verification.from_hash). There is no message-id key: a delivery webhook names its recipient, whose hash
lists every retained verification, and each record keeps its sends' message ids (delivery_store.py).
Authenticator (TOTP) factors have their own keys and scripts in totp_store.py.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import redis

from otpservice import codes
from otpservice.errors import StoreUnavailable

log = logging.getLogger(__name__)

PREFIX = "otp"
ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError,
                redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
                redis.exceptions.ResponseError, redis.exceptions.RedisClusterException)
# A number's failed attempts, all codes, count against its daily cap for this long after each (security bar).
FAILURE_WINDOW_MS = 86_400_000
# Added to how long a number's hash outlives a send, for clocks of app servers a little apart (begin_send.lua).
CLOCK_SLACK_MS = 60_000
LOG_MARK = b"."  # fields of otp:{B}:n:<digest> starting with it are the number's time logs (.s sends, .f failures)
SCRIPTS = ("begin_send", "cancel", "send_result", "rate_hit")  # verify.lua: Store.verify_script
# Called with the error's class name on every Redis failure (metrics count them); process-wide, like the errors.
ERROR_LISTENERS: list[Callable[[str], None]] = []


def on_redis_error(listener: Callable[[str], None]) -> None:
    """Have `listener(error class name)` called on every Redis failure (added once however often called)."""
    if listener not in ERROR_LISTENERS:
        ERROR_LISTENERS.append(listener)


def unavailable(exc: Exception) -> StoreUnavailable:
    """Log and count a Redis failure; the StoreUnavailable to raise in its place."""
    log.warning("redis unavailable: %s", type(exc).__name__)
    for listener in ERROR_LISTENERS:
        listener(type(exc).__name__)
    return StoreUnavailable()


@contextlib.contextmanager
def available() -> Iterator[None]:
    """Turn any Redis failure into StoreUnavailable: callers fail closed (nothing sent, nothing approved)."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise unavailable(exc) from exc


def guarded(method):
    """`available()` for store methods, as a plain try: it wraps every Redis call of every request."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise unavailable(exc) from exc
    return wrapper


INCLUDE_RE = re.compile(r"^--! include (\w+)$", re.MULTILINE)
CONSTANT_RE = re.compile(r"\{\{(\w+)\}\}")


def load_script(name: str, **constants: int) -> str:
    """The text of a Lua script shipped in otpservice/lua, with each `--! include <lib>` line replaced by that
    file's text (Redis runs each script on its own: shared Lua functions travel inside the scripts), and each
    `{{name}}` by the integer given for it (a constant costs Redis nothing per call; an argument does)."""
    text = resources.files("otpservice").joinpath("lua", f"{name}.lua").read_text()
    text = INCLUDE_RE.sub(lambda m: load_script(m.group(1)).rstrip("\n"), text)

    def constant(match: re.Match) -> str:
        value = constants.get(match.group(1))
        if type(value) is not int:  # noqa: E721 -- not a bool, not text: only an integer is written into Lua
            raise ValueError(f"{name}.lua needs an integer {match.group(1)}")
        return str(value)
    return CONSTANT_RE.sub(constant, text)


class HeldConnections:
    """One connection per thread and process, for the scripts every request runs, spoken to directly.

    redis-py's execute_command spends ~150k instructions on one command, of which the exchange itself (pack,
    send, read, parse) is ~50k: the rest is the pool's checkout and return (with a readiness poll, a system
    call), its observability hooks and event dispatch, and retry wrappers (callgrind: bench/RESULTS.md, issue 6).
    Every /verify and every webhook is one script, so here a thread keeps a connection of the client's pool
    (same address, credentials, TLS, timeouts, health checks; Sentinel's finds the current master) and calls
    send_command/read_response on it. What the pool's checkout guards against is kept:
    - a connection is used only by the thread and the process that made it, never by a worker forked from a
      preloading master that made one;
    - anything that interrupts an exchange after it began (a timeout, a lost connection, a signal, an
      exception from the parser) disconnects it, so no reply is ever left unread for the next command; an
      error reply from Redis (NOSCRIPT, a script error) was read whole and leaves it in step;
    - errors propagate: callers fail closed and nothing is retried (a timed-out script may have run); the
      next call reconnects.
    Redis Cluster and single-connection clients go through execute_command (`for_client` gives None).
    """

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.local = threading.local()

    @staticmethod
    def for_client(client: Any) -> HeldConnections | None:
        try:
            return _HELD[client]
        except KeyError:
            pass
        except TypeError:  # not weakly referenceable: not a client this applies to
            return None
        eligible = (isinstance(client, redis.Redis) and not hasattr(client, "get_primaries")
                    and getattr(client, "connection", None) is None)
        held = _HELD[client] = HeldConnections(client.connection_pool) if eligible else None
        return held

    def execute(self, *args: Any) -> Any:
        local = self.local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            conn = local.conn = self.pool.make_connection()
            local.pid = os.getpid()
        try:
            conn.send_command(*args)
            return conn.read_response()
        except redis.exceptions.ResponseError:
            raise
        except BaseException:
            conn.disconnect()
            raise


_HELD: weakref.WeakKeyDictionary[Any, HeldConnections | None] = weakref.WeakKeyDictionary()


def run_script(client: redis.Redis, script: Any, keys: list, args: list) -> Any:
    """EVALSHA a registered script in one round trip, on the thread's held connection where the client allows
    one (HeldConnections); only when Redis answers NOSCRIPT (restart, SCRIPT FLUSH) is it run again through
    redis-py's Script, which loads it. /verify and the webhook (one script each) are measured against one bare
    Redis command (issue 6)."""
    held = HeldConnections.for_client(client)
    try:
        if held is not None:
            return held.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except redis.exceptions.NoScriptError:
        return script(keys=keys, args=args)


class ScriptPipeline:
    """A non-transactional pipeline whose scripts run by EVALSHA alone, so it costs one round trip.

    redis-py's own pipelined scripts first send SCRIPT EXISTS: one more round trip on every call. Here a
    script missing on the server (restart, SCRIPT FLUSH) fails with NOSCRIPT without running, and only that
    call is run again through the Script object, which loads it. On Redis Cluster the calls touch different
    slots and redis-py's cluster pipeline cannot carry scripts, so they run one by one, in order.
    """

    def __init__(self, client: redis.Redis, scripts: dict[str, Any]) -> None:
        self.client = client
        self.scripts = scripts
        cluster = hasattr(client, "get_primaries")
        self.pipe = None if cluster else client.pipeline(transaction=False)
        self.queued: list[tuple[str, tuple, dict]] = []  # (script name or command, args, options)
        self.calls: dict[int, tuple[str, list, list]] = {}

    def script(self, name: str, keys: list, args: list) -> None:
        self.calls[len(self.queued)] = (name, keys, args)
        self.queued.append((name, (keys, args), {}))
        if self.pipe is not None:
            self.pipe.evalsha(self.scripts[name].sha, len(keys), *keys, *args)

    def __getattr__(self, command: str) -> Any:
        def queue(*args, **options):  # plain commands (set, zrem, ...)
            self.queued.append((command, args, options))
            if self.pipe is not None:
                getattr(self.pipe, command)(*args, **options)
        return queue

    def execute(self) -> list[Any]:
        if self.pipe is None:
            results = []
            for index, (name, args, options) in enumerate(self.queued):
                if index in self.calls:
                    keys, argv = args
                    results.append(run_script(self.client, self.scripts[name], keys, argv))
                else:
                    results.append(getattr(self.client, name)(*args, **options))
            return results
        results = self.pipe.execute(raise_on_error=False)
        for index, result in enumerate(results):
            if isinstance(result, redis.exceptions.NoScriptError):
                name, keys, args = self.calls[index]
                results[index] = self.scripts[name](keys=keys, args=args)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results


@dataclass
class Send:
    """One text message sent (or tried) for a verification."""

    number: int
    message_id: str | None
    endpoint: str
    sent_at_ms: int
    delivery_status: str
    delivery_updated_at_ms: int
    errors: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Verification:
    """A verification record as stored, with its status derived at `now_ms`."""

    id: str
    phone: str
    purpose: str
    channel: str
    status: str
    created_at_ms: int
    expires_at_ms: int
    attempts: int
    send_count: int
    last_send_ms: int
    sends: list[Send]

    @classmethod
    def from_hash(cls, vid: str, raw: dict[bytes, bytes], now_ms: int) -> "Verification":
        """Decode HGETALL output; a pending record past its expiry reads as `expired`."""
        data = {k.decode(): v for k, v in raw.items()}
        text = {k: v.decode() for k, v in data.items() if k != "h"}
        status = text.get("s", "pending")
        expires = int(text.get("x", "0"))
        if status == "pending" and expires <= now_ms:
            status = "expired"
        created = text.get("c", "0")
        sends = []
        for n in range(1, int(text.get("n", "0")) + 1):
            if f"m{n}" not in text:  # reserved, never recorded
                continue
            sent_at = int(text.get(f"t{n}", created))
            sends.append(Send(number=n, message_id=text.get(f"m{n}") or None, endpoint=text.get(f"e{n}", "messages"),
                              sent_at_ms=sent_at, delivery_status=text.get(f"d{n}", "queued"),
                              delivery_updated_at_ms=int(text.get(f"du{n}", sent_at)),
                              errors=json.loads(text.get(f"er{n}") or "[]")))
        return cls(id=vid, phone=text.get("p", ""), purpose=text.get("u", ""), channel=text.get("ch", "sms"),
                   status=status, created_at_ms=int(text.get("c", "0")), expires_at_ms=expires,
                   attempts=int(text.get("a", "0")), send_count=int(text.get("n", "0")),
                   last_send_ms=int(text.get("ls", "0")), sends=sends)


@dataclass(frozen=True)
class Reservation:
    """What begin_send decided: a new verification, a resend of the live one, or a cooldown refusal."""

    outcome: str  # "new" | "resend" | "cooldown" | "opted_out" | "limited"
    verification_id: str
    limit: str = ""  # the per-number policy that refused ("limited")
    send_count: int = 0
    attempts: int = 0
    created_at_ms: int = 0
    expires_at_ms: int = 0
    cooldown_ms: int = 0
    after_failed_delivery: bool = False


class VerifyResult(NamedTuple):
    """What the verify script decided (a tuple: made on every /verify, at a fraction of a frozen dataclass's cost)."""

    outcome: str  # "approved" | "wrong" | "not_found" | "max_attempts" | "number_locked"
    verification_id: str | None = None
    attempts: int = 0
    locked_for_ms: int = 0


class Store:
    """Verification state in Redis, reached only through atomic scripts and single commands."""

    def __init__(self, client: redis.Redis, *, secret: bytes) -> None:
        self.redis = client
        self.secret = secret
        self.scripts = {name: client.register_script(load_script(name)) for name in SCRIPTS}
        self.verify_scripts: dict[tuple[int, int, int], Any] = {}

    def verify_script(self, max_attempts: int, failure_cap: int, failure_window_ms: int) -> Any:
        """verify.lua with these settings written in: one script per set, in practice the one the config gives."""
        key = (max_attempts, failure_cap, failure_window_ms)
        script = self.verify_scripts.get(key)
        if script is None:
            script = self.verify_scripts[key] = self.redis.register_script(load_script(
                "verify", max_attempts=max_attempts, failure_cap=failure_cap, failure_window_ms=failure_window_ms))
        return script

    # -- key names -----------------------------------------------------------------------------------
    @staticmethod
    def number_keys(phone: str) -> tuple[str, str]:
        """(`otp:{B}`, digest) for a number: its hash-tagged key prefix and pseudonym (see codes.bucket)."""
        digest = codes.number_digest(phone)
        return f"{PREFIX}:{{{digest[:4]}}}", digest  # digest[:4] is codes.bucket(phone)

    @staticmethod
    def record_key(verification_id: str) -> str:
        """The record key of a verification id (its first 4 hex digits are its bucket)."""
        return f"{PREFIX}:{{{verification_id[:4]}}}:v:{verification_id}"

    @staticmethod
    def valid_id(verification_id: str) -> bool:
        """True for ids of the form this service issues; anything else is never used in a key."""
        return isinstance(verification_id, str) and bool(ID_RE.match(verification_id))

    @classmethod
    def optout_key(cls, phone: str) -> str:
        """The hash of a number's opt-out records (read by begin_send, kept by optouts.py)."""
        base, digest = cls.number_keys(phone)
        return f"{base}:oo:{digest}"

    @classmethod
    def number_key(cls, phone: str) -> str:
        """The number's hash: its live verification per purpose, its earlier ones, its per-number sends."""
        base, digest = cls.number_keys(phone)
        return f"{base}:n:{digest}"

    # -- verifications -------------------------------------------------------------------------------
    @guarded
    def begin_send(self, *, phone: str, purpose: str, code_hash: bytes, now_ms: int, ttl_ms: int,
                   retention_ms: int, cooldown_ms: int, skip_cooldown_after_failure: bool,
                   channel: str = "sms", number_limits: Sequence[tuple[str, int, int]] = (),
                   token: str = "") -> Reservation:
        """Atomically reuse or create the live verification of (phone, purpose) and store a new code hash.

        In the same step: refuse an opted-out number, and take one send from each per-number limit
        (`number_limits`: (policy, amount, window ms)). `token` is accepted for the gate's sake: the
        per-number log keeps send times only.
        """
        base, digest = self.number_keys(phone)  # one hash for every key of the number
        new_id = codes.new_verification_id(digest[:4])
        limit_args: list[Any] = [len(number_limits)]
        for name, amount, window_ms in number_limits:
            limit_args += [name, amount, window_ms]
        out = self.run_script(
            "begin_send", [f"{base}:n:{digest}", f"{base}:oo:{digest}"],
            [f"{base}:v:", new_id, code_hash, phone, purpose, now_ms, ttl_ms, retention_ms, cooldown_ms,
             "1" if skip_cooldown_after_failure else "0", channel, ttl_ms + FAILURE_WINDOW_MS + CLOCK_SLACK_MS,
             *limit_args])
        outcome, vid = out[0].decode(), out[1].decode()
        if outcome == "cooldown":
            return Reservation("cooldown", vid, cooldown_ms=int(out[2]))
        if outcome == "opted_out":
            return Reservation("opted_out", "")
        if outcome == "limited":
            return Reservation("limited", "", limit=vid, cooldown_ms=int(out[2]))
        return Reservation(outcome, vid, send_count=int(out[2]), attempts=int(out[3]),
                           created_at_ms=int(out[4]), expires_at_ms=int(out[5]),
                           after_failed_delivery=out[6] == b"1")

    @guarded
    def record_send(self, verification_id: str, send_number: int, *, outcome: str, message_id: str | None,
                    endpoint: str, now_ms: int, delivery_status: str, errors: list[dict] | None = None) -> None:
        """Write a send's result on its record, with its message id (m<k>: delivery webhooks find the send by it,
        through the number's hash: delivery_update.lua). One round trip (run_script loads it on NOSCRIPT)."""
        self.run_script("send_result", [self.record_key(verification_id)],
                        [send_number, outcome, message_id or "", endpoint, now_ms, delivery_status,
                         json.dumps(errors or [])])

    def run_script(self, name: str, keys: list, args: list) -> Any:
        """One of this store's scripts by name, as every method here runs them (see the module's run_script)."""
        return run_script(self.redis, self.scripts[name], keys, args)

    @guarded
    def verify(self, *, phone: str, purpose: str, code_hash: bytes, now_ms: int, max_attempts: int,
               failure_cap: int, failure_window_ms: int = FAILURE_WINDOW_MS, expected_id: str = "") -> VerifyResult:
        """Run the check-and-spend script for the live verification of (phone, purpose).

        A failure counts for `failure_window_ms`; begin_send keeps the number's hash, which logs it, alive for
        FAILURE_WINDOW_MS after the code's expiry, so a longer window would outlive its log.
        """
        base, digest = self.number_keys(phone)
        out = run_script(self.redis, self.verify_script(max_attempts, failure_cap, failure_window_ms),
                         [f"{base}:n:{digest}"],
                         [f"{base}:v:", code_hash, now_ms, purpose, *((expected_id,) if expected_id else ())])
        outcome = out[0].decode()
        if len(out) == 1:
            return VerifyResult(outcome)
        if outcome == "number_locked":
            return VerifyResult(outcome, out[1].decode(), locked_for_ms=max(0, out[2]))
        return VerifyResult(outcome, out[1].decode(), attempts=int(out[2]) if len(out) > 2 else 0)

    @guarded
    def get(self, verification_id: str, *, now_ms: int) -> Verification | None:
        """The record of a verification, or None (unknown, malformed or past its retention)."""
        if not self.valid_id(verification_id):
            return None
        raw = self.redis.hgetall(self.record_key(verification_id))
        return Verification.from_hash(verification_id, raw, now_ms) if raw else None

    @guarded
    def cancel(self, verification_id: str, *, now_ms: int) -> bool:
        """Cancel a pending verification; False when there is none pending with that id."""
        if not self.valid_id(verification_id):
            return False
        return bool(self.run_script("cancel", [self.record_key(verification_id)], [now_ms]))

    @guarded
    def recent_for_number(self, phone: str, *, now_ms: int, retention_ms: int) -> list[Verification]:
        """The number's verifications still retained, newest first."""
        entries = self.redis.hgetall(self.number_key(phone))
        ids = sorted({(value or field).decode() for field, value in entries.items()
                      if not field.startswith(LOG_MARK)})
        ids = [vid for vid in ids if self.valid_id(vid)]
        pipe = self.redis.pipeline(transaction=False)
        for vid in ids:
            pipe.hgetall(self.record_key(vid))
        records = [Verification.from_hash(vid, raw, now_ms) for vid, raw in zip(ids, pipe.execute(), strict=True)
                   if raw]
        recent = [r for r in records if r.created_at_ms >= now_ms - retention_ms]
        return sorted(recent, key=lambda r: (r.created_at_ms, r.id), reverse=True)

    # -- idempotency ---------------------------------------------------------------------------------
    def idempotency_key(self, client: str, key: str) -> str:
        client_tag = hashlib.sha256(client.encode()).hexdigest()[:16]
        return f"{PREFIX}:idem:{client_tag}:{hashlib.sha256(key.encode()).hexdigest()}"

    @guarded
    def idempotency_claim(self, name: str, fingerprint: str, ttl_ms: int) -> dict[str, Any] | None:
        """Claim an Idempotency-Key (None: ours now), or return what is already stored under it."""
        claim = json.dumps({"state": "in_flight", "fingerprint": fingerprint})
        if self.redis.set(name, claim, nx=True, px=ttl_ms):
            return None
        stored = self.redis.get(name)
        return json.loads(stored) if stored else {"state": "in_flight", "fingerprint": fingerprint}

    @guarded
    def idempotency_store(self, name: str, fingerprint: str, status: int, body: dict, headers: dict,
                          ttl_ms: int) -> None:
        """Keep the first final answer to an Idempotency-Key."""
        value = {"state": "done", "fingerprint": fingerprint, "status": status, "body": body, "headers": headers}
        self.redis.set(name, json.dumps(value), px=ttl_ms)

    def idempotency_release(self, name: str) -> None:
        """Forget a claim whose request failed transiently, so a retry can run (best effort)."""
        with contextlib.suppress(*REDIS_ERRORS):
            self.redis.delete(name)

    @guarded
    def ping(self) -> bool:
        if hasattr(self.redis, "get_primaries"):
            # Redis Cluster: ready only when every master answers, since each serves a share of the numbers.
            return bool(self.redis.ping(target_nodes=self.redis.PRIMARIES))
        return bool(self.redis.ping())

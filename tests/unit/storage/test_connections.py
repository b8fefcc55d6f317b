"""The stores use redis-py's connection pool as designed: every command checks a connection out and gives it back.

What that must guarantee, under any WSGI server: no reply left unread for the next command, no connection
shared across a fork, connections given back after every command (a thread per request never exhausts the
pool) and `close()` reaching them all.
"""
from __future__ import annotations

import os
import threading
import time

import redis

from otpservice.core import codes
from otpservice.storage.connect import connect
from otpservice.storage.verifications import VerificationStore

SECRET = b"h" * 40


def issue(store: VerificationStore, phone: str, code: str = "123456") -> str:
    return store.begin_send(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                            now_ms=1_000, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=30_000,
                            skip_cooldown_after_failure=True).verification_id


def check(store: VerificationStore, phone: str, code: str):
    return store.verify(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                        now_ms=2_000, max_attempts=5, failure_cap=10)


def client_id(client: redis.Redis) -> int:
    return client.execute_command("CLIENT", "ID")


def test_an_interrupted_exchange_leaves_no_reply_for_the_next_call(redis_url, monkeypatch):
    """A reply left unread would answer the next command: here another number's `wrong` would reach a right
    code's check. The interruption (a signal, a worker timeout) must drop the connection instead. It is
    injected, by making the real connection's parser raise once the command was sent: no test can time a
    real signal to that instant."""
    client = redis.Redis.from_url(redis_url)
    store = VerificationStore(client)
    issue(store, "+13125550161")
    right_id = issue(store, "+13125550162")
    first = client_id(client)
    [conn] = client.connection_pool._available_connections  # the one connection made so far
    original = conn._parser.read_response

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(conn._parser, "read_response", interrupted)
    try:
        check(store, "+13125550161", "000000")  # sent, its reply never read
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interruption did not propagate")
    conn._parser.read_response = original
    result = check(store, "+13125550162", "123456")
    assert (result.outcome, result.verification_id) == ("approved", right_id)
    assert client_id(client) != first  # a new connection: the old one was dropped with its pending reply


def test_an_error_reply_keeps_the_connection(redis_url):
    """NOSCRIPT and script errors are Redis's whole answer: the connection stays in step and is kept."""
    client = redis.Redis.from_url(redis_url)
    first = client_id(client)
    try:
        client.evalsha("0" * 40, 0)
    except redis.exceptions.NoScriptError:
        pass
    else:
        raise AssertionError("NOSCRIPT did not raise")
    assert client_id(client) == first


def test_a_thread_per_request_gives_every_connection_back_and_close_reaches_them(redis_url):
    """werkzeug's server (like any thread- or greenlet-per-request server) runs each request on a new thread:
    500 of them, 50 at a time, must neither exhaust the pool nor leave connections behind."""
    client = connect(redis_url)
    store = VerificationStore(client)
    issue(store, "+13125550163")
    errors: list[BaseException] = []

    def request() -> None:
        try:
            assert check(store, "+13125550163", "000000").outcome in ("wrong", "max_attempts", "number_locked")
        except BaseException as exc:  # noqa: BLE001 -- reported below, with the thread's failure
            errors.append(exc)

    for _ in range(10):
        threads = [threading.Thread(target=request) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    pool = client.connection_pool
    created = pool.max_connections - sum(1 for conn in pool.pool.queue if conn is None)
    assert 0 < created <= 50  # never more than ran at once
    assert sum(1 for conn in pool.pool.queue if conn is not None) == created  # every one given back
    observer = redis.Redis.from_url(redis_url)
    before = len(observer.client_list())
    client.close()
    deadline = time.monotonic() + 5  # Redis notices a closed socket on its next event loop turn
    while len(observer.client_list()) > before - created and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(observer.client_list()) == before - created


def test_a_forked_child_never_uses_its_parents_connection(redis_url):
    """A preloading gunicorn master that ran a command forks workers: each makes its own connection."""
    client = redis.Redis.from_url(redis_url)
    parent = client_id(client)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, then leave without running any cleanup
        try:
            os.write(write_end, str(client_id(client)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = int(os.read(read_end, 64) or b"0")
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child and child != parent
    assert client_id(client) == parent  # and the parent's is untouched

"""store.HeldConnections: the request path's scripts go out on a connection held per thread and process.

What redis-py's pool checkout guards against must still hold: no reply left unread for the next command, no
connection shared across threads or across a fork, and clients it does not fit use the ordinary path.
"""
from __future__ import annotations

import os
import threading

import redis

from otpservice import codes
from otpservice.store import HeldConnections, Store

SECRET = b"h" * 40


def issue(store: Store, phone: str, code: str = "123456") -> str:
    return store.begin_send(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                            now_ms=1_000, ttl_ms=600_000, retention_ms=86_400_000, cooldown_ms=30_000,
                            skip_cooldown_after_failure=True).verification_id


def check(store: Store, phone: str, code: str):
    return store.verify(phone=phone, purpose="login", code_hash=codes.code_hash(SECRET, phone, "login", code),
                        now_ms=2_000, max_attempts=5, failure_cap=10)


def client_id(held: HeldConnections) -> int:
    return held.execute("CLIENT", "ID")


def test_an_interrupted_exchange_leaves_no_reply_for_the_next_call(redis_url, monkeypatch):
    """A reply left unread would answer the next command: here another number's `wrong` would reach a right
    code's check. The interruption (a signal, a worker timeout) disconnects the held connection instead. It is
    injected, by making the real connection's read raise: no test can time a real signal to that instant."""
    client = redis.Redis.from_url(redis_url)
    store = Store(client, secret=SECRET)
    issue(store, "+13125550161")
    right_id = issue(store, "+13125550162")
    held = HeldConnections.for_client(client)
    first = client_id(held)
    conn = held.local.conn

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(conn, "read_response", interrupted)
    try:
        check(store, "+13125550161", "000000")  # sent, its reply never read
    except KeyboardInterrupt:
        pass
    else:
        raise AssertionError("the interruption did not propagate")
    monkeypatch.undo()
    result = check(store, "+13125550162", "123456")
    assert (result.outcome, result.verification_id) == ("approved", right_id)
    assert client_id(held) != first  # a new connection: the old one was dropped with its pending reply


def test_an_error_reply_keeps_the_connection(redis_url):
    """NOSCRIPT and script errors are Redis's whole answer: the connection stays in step and is kept."""
    client = redis.Redis.from_url(redis_url)
    held = HeldConnections.for_client(client)
    first = client_id(held)
    try:
        held.execute("EVALSHA", "0" * 40, 0)
    except redis.exceptions.NoScriptError:
        pass
    else:
        raise AssertionError("NOSCRIPT did not raise")
    assert client_id(held) == first


def test_each_thread_holds_its_own_connection_and_keeps_it(redis_url):
    client = redis.Redis.from_url(redis_url)
    held = HeldConnections.for_client(client)
    assert HeldConnections.for_client(client) is held
    mine = [client_id(held) for _ in range(3)]
    other: list[int] = []
    thread = threading.Thread(target=lambda: other.extend(client_id(held) for _ in range(3)))
    thread.start()
    thread.join()
    assert len(set(mine)) == 1 and len(set(other)) == 1 and mine[0] != other[0]


def test_a_forked_child_never_uses_its_parents_connection(redis_url):
    """A preloading gunicorn master that ran a script forks workers: each makes its own connection."""
    client = redis.Redis.from_url(redis_url)
    held = HeldConnections.for_client(client)
    parent = client_id(held)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its connection's id, then leave without running any cleanup
        try:
            os.write(write_end, str(client_id(held)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = int(os.read(read_end, 64) or b"0")
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child and child != parent
    assert client_id(held) == parent  # and the parent's is untouched


def test_clients_it_does_not_fit_use_the_ordinary_path(redis_url):
    assert HeldConnections.for_client(redis.Redis.from_url(redis_url, single_connection_client=True)) is None
    assert HeldConnections.for_client(object()) is None

"""The Lua scripts in storage/lua, loaded once and run one way: EVALSHA, loading the script on NOSCRIPT.

Every decision the service makes in Redis (reserve a send, check and spend a code, apply a receipt, take a
budget) is one script, so it is atomic and costs one round trip. A script Redis does not have (a restart, a
failover to a replica that never saw it, SCRIPT FLUSH) answers NOSCRIPT without running, so loading it and
running it again is safe; nothing else is ever retried (a timed-out script may have run).

A durable run (a reservation, a spend, a cancel) is followed on the same connection, in the same round trip,
by `WAIT replicas timeout`: a write only the master holds would be lost if a replica took over, and a master
that was deposed a moment ago still accepts writes until it rejoins as a replica, having no replica of its
own. Either way WAIT counts too few replicas, and the run fails (NotReplicated: 503), so no spend or
approval is answered that a failover could undo.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis

INCLUDE_RE = re.compile(r"^--! include (\w+)$", re.MULTILINE)


class NotReplicated(redis.exceptions.RedisError):
    """Fewer replicas than required acknowledged a durable write in time: it is not answered. `reply` is what
    the script answered on this master, for a caller that must undo what it wrote."""

    def __init__(self, message: str, reply: Any = None) -> None:
        super().__init__(message)
        self.reply = reply


def load_script(name: str) -> str:
    """The text of storage/lua/<name>.lua, each `--! include <lib>` line replaced by that file's text (Redis
    runs each script on its own, so shared Lua functions travel inside the scripts that use them)."""
    text = resources.files("otpservice.storage").joinpath("lua", f"{name}.lua").read_text()
    return INCLUDE_RE.sub(lambda m: load_script(m.group(1)).rstrip("\n"), text)


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (redis-py's, or connect.LazyCluster)."""
    return hasattr(client, "get_primaries")


def exchange(pool: Any, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Send `commands` on one connection of redis-py's `pool` and read every reply, in one round trip; the
    connection goes back to the pool whatever happens. An error reply is returned in its place (Redis's whole
    answer was read, so the connection is in step); an exchange cut short (a timeout, a lost connection, a
    signal) disconnects it, so no reply is ever left unread for the next command.

    This is what redis-py's execute_command does for one command, without its retry and observability
    wrappers, which cost /verify 8 % of its instructions (bench/RESULTS.md).
    """
    conn = pool.get_connection()
    try:
        conn.send_packed_command(conn.pack_commands(commands))  # one write: a script and its WAIT go out together
        replies = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.exceptions.ResponseError as error:
                replies.append(error)
        return replies
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


class Scripts:
    """Named scripts registered on one client: `run` one, or `run_many` in one round trip."""

    def __init__(self, client: Any, names: Sequence[str], *, replicas: int = 0, wait_timeout_ms: int = 500) -> None:
        self.client = client
        self.scripts = {name: client.register_script(load_script(name)) for name in names}
        # The embedded store and single-connection clients have no pool to borrow from: redis-py's own path.
        self.pooled = isinstance(client, redis.Redis) and client.connection is None
        self.replicas = replicas
        self.wait_timeout_ms = wait_timeout_ms
        if replicas and not (self.pooled or is_cluster(client)):
            raise ValueError("waiting for replicas needs a client of a real Redis")

    def run(self, name: str, keys: Sequence[Any], args: Sequence[Any], *, durable: bool = False,
            then: Sequence[Sequence[Any]] = ()) -> Any:
        """EVALSHA the script; on NOSCRIPT (it did not run) load it and run it again. `durable`: answer only
        once `replicas` replicas hold what it wrote (NotReplicated otherwise). `then`: plain commands on other
        keys (another slot) that follow the script, in the same round trip where the client allows it."""
        script = self.scripts[name]
        if durable and self.replicas:
            return self._durable(script, keys, args)
        if self.pooled:
            replies = exchange(self.client.connection_pool,
                               [("EVALSHA", script.sha, len(keys), *keys, *args), *then])
            for reply in replies[1:]:
                self._raise(reply)
            if not isinstance(replies[0], redis.exceptions.NoScriptError):
                return self._raise(replies[0])
            return script(keys=list(keys), args=list(args))
        reply = script(keys=list(keys), args=list(args))
        for command in then:
            self.client.execute_command(*command)
        return reply

    def _durable(self, script: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        pool, cluster = self.client.connection_pool if self.pooled else None, None
        if pool is None:  # a cluster: the connection of the node that serves these keys
            cluster = self.client.client() if hasattr(self.client, "client") else self.client
            pool = cluster.get_redis_connection(cluster.get_node_from_key(keys[0])).connection_pool
        evalsha = ("EVALSHA", script.sha, len(keys), *keys, *args)
        wait = ("WAIT", self.replicas, self.wait_timeout_ms)
        try:
            reply, acknowledged = exchange(pool, [evalsha, wait])
            if isinstance(reply, redis.exceptions.NoScriptError):
                reply, acknowledged = exchange(pool, [("SCRIPT", "LOAD", script.script), evalsha, wait])[1:]
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            if cluster is not None:
                cluster.nodes_manager.initialize()  # the node may have failed over: learn who serves the slot now
            raise
        if cluster is not None and isinstance(reply, (redis.exceptions.MovedError, redis.exceptions.AskError)):
            cluster.nodes_manager.initialize()
        self._raise(reply)
        if int(acknowledged) < self.replicas:
            raise NotReplicated(f"{acknowledged} of {self.replicas} replicas acknowledged in time", reply)
        return reply

    @staticmethod
    def _raise(reply: Any) -> Any:
        if isinstance(reply, Exception):
            raise reply
        return reply

    def run_many(self, calls: Sequence[tuple[str, Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Several independent calls (each atomic on its own keys) in one pipelined round trip.

        redis-py's pipelines check every script with SCRIPT EXISTS first, a round trip more on each call, so
        the pipeline carries plain EVALSHAs and only a call answered NOSCRIPT (which did not run) goes again
        through `run`. A cluster's calls touch different slots, and redis-py's cluster pipeline carries no
        scripts: there they run one after the other.
        """
        if is_cluster(self.client):
            return [self.run(name, keys, args) for name, keys, args in calls]
        if self.pooled:  # one write and its replies on one connection, as `run` (a quarter of a pipeline's cost)
            results = exchange(self.client.connection_pool,
                               [("EVALSHA", self.scripts[name].sha, len(keys), *keys, *args)
                                for name, keys, args in calls])
        else:
            pipe = self.client.pipeline(transaction=False)
            for name, keys, args in calls:
                pipe.evalsha(self.scripts[name].sha, len(keys), *keys, *args)
            results = pipe.execute(raise_on_error=False)
        for index, result in enumerate(results):
            if isinstance(result, redis.exceptions.NoScriptError):
                results[index] = self.run(*calls[index])
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

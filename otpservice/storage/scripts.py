"""The Lua scripts in storage/lua, loaded once and run one way: EVALSHA, loading the script on NOSCRIPT.

Every decision the service makes in Redis (reserve a send, check and spend a code, apply a receipt, take a
budget) is one script, so it is atomic and costs one round trip. A script Redis does not have (a restart, a
failover to a replica that never saw it, SCRIPT FLUSH) answers NOSCRIPT without running, so loading it and
running it again is safe; nothing else is ever retried (a timed-out script may have run).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis

INCLUDE_RE = re.compile(r"^--! include (\w+)$", re.MULTILINE)


def load_script(name: str) -> str:
    """The text of storage/lua/<name>.lua, each `--! include <lib>` line replaced by that file's text (Redis
    runs each script on its own, so shared Lua functions travel inside the scripts that use them)."""
    text = resources.files("otpservice.storage").joinpath("lua", f"{name}.lua").read_text()
    return INCLUDE_RE.sub(lambda m: load_script(m.group(1)).rstrip("\n"), text)


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client (redis-py's, or connect.LazyCluster)."""
    return hasattr(client, "get_primaries")


class Scripts:
    """Named scripts registered on one client: `run` one, or `run_many` in one round trip."""

    def __init__(self, client: Any, names: Sequence[str]) -> None:
        self.client = client
        self.scripts = {name: client.register_script(load_script(name)) for name in names}
        self.lean = isinstance(client, redis.Redis) and client.connection is None

    def run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA the script; on NOSCRIPT (it did not run) load it and run it again."""
        script = self.scripts[name]
        if self.lean:
            try:
                return self._exchange("EVALSHA", script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                pass
        return script(keys=list(keys), args=list(args))

    def _exchange(self, *command: Any) -> Any:
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_command(*command)
            return conn.read_response()
        except redis.exceptions.ResponseError:
            raise  # Redis's whole answer was read: the connection is in step
        except BaseException:
            conn.disconnect()  # an exchange cut short: never leave a reply unread for the next command
            raise
        finally:
            pool.release(conn)

    def run_many(self, calls: Sequence[tuple[str, Sequence[Any], Sequence[Any]]]) -> list[Any]:
        """Several independent calls (each atomic on its own keys) in one pipelined round trip.

        redis-py's pipelines check every script with SCRIPT EXISTS first, a round trip more on each call, so
        the pipeline carries plain EVALSHAs and only a call answered NOSCRIPT (which did not run) goes again
        through `run`. A cluster's calls touch different slots, and redis-py's cluster pipeline carries no
        scripts: there they run one after the other.
        """
        if is_cluster(self.client):
            return [self.run(name, keys, args) for name, keys, args in calls]
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

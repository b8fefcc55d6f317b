"""Start and stop a throwaway 3-master Redis Cluster on free loopback ports for the test suite."""
from __future__ import annotations

import shutil
import subprocess
import time

import redis

from tests.support.redis_server import REDIS_SERVER, RedisServer, free_port

REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
MASTERS = 3


class RedisCluster:
    """Three `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`."""

    def __init__(self, masters: int = MASTERS) -> None:
        # Each node gets its own bus port too: the default (port + 10000) may be taken or out of range.
        self.nodes = [RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                  "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000")
                      for _ in range(masters)]

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(self.addresses)

    def start(self, timeout: float = 30.0) -> RedisCluster:
        """Start the nodes, assign the 16384 slots, and wait until every node reports cluster_state:ok."""
        try:
            for node in self.nodes:
                node.start()
            subprocess.run([REDIS_CLI, "--cluster", "create", *self.addresses, "--cluster-replicas", "0",
                            "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=timeout)
            deadline = time.monotonic() + timeout
            while not self.healthy():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"cluster on {self.addresses} not ok within {timeout}s")
                time.sleep(0.1)
        except BaseException:
            self.cleanup()
            raise
        return self

    def healthy(self) -> bool:
        """Every node sees the whole cluster, all slots assigned."""
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_timeout=1) as client:
                info = client.cluster("INFO")  # parsed by redis-py into a dict of strings
                if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != str(len(self.nodes)):
                    return False
        return True

    def flush(self) -> None:
        """Empty every master (the cluster is ours)."""
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_timeout=5) as client:
                client.flushall()

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


__all__ = ["REDIS_SERVER", "RedisCluster"]

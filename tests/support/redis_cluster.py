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

    def __init__(self, masters: int = MASTERS, replicas: int = 0) -> None:
        # Each node gets its own bus port too: the default (port + 10000) may be taken or out of range.
        self.replicas = replicas
        self.nodes = [RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                  "--cluster-port", str(free_port()), "--cluster-node-timeout", "2000")
                      for _ in range(masters * (1 + replicas))]

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
            subprocess.run([REDIS_CLI, "--cluster", "create", *self.addresses, "--cluster-replicas",
                            str(self.replicas), "--cluster-yes"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
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
        """Every node sees the whole cluster, all slots assigned, and every replica is in sync."""
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_timeout=1) as client:
                info = client.cluster("INFO")  # parsed by redis-py into a dict of strings
                if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != str(len(self.nodes)):
                    return False
                replication = client.info("replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
        return True

    def master_of(self, key: str) -> RedisServer:
        """The node serving `key`'s slot now."""
        with redis.Redis(port=self.nodes[0].port, socket_timeout=2) as client:
            slot = client.cluster("KEYSLOT", key)
            for start, end, master, *_ in client.cluster("SLOTS"):
                if start <= slot <= end:
                    return next(node for node in self.nodes if node.port == master[1])
        raise LookupError(key)

    def replica_of(self, master: RedisServer) -> RedisServer:
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_timeout=2) as client:
                info = client.info("replication")
                if info["role"] == "slave" and int(info["master_port"]) == master.port:
                    return node
        raise LookupError(master.port)

    def flush(self) -> None:
        """Empty every master, and wait for their replicas to follow (the cluster is ours)."""
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_timeout=5) as client:
                if client.info("replication")["role"] == "master":
                    client.flushall()
                    if self.replicas:
                        client.wait(self.replicas, 5000)

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()


__all__ = ["REDIS_SERVER", "RedisCluster"]

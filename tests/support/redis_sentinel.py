"""A throwaway Redis Sentinel deployment on free loopback ports: a master, a replica and three sentinels."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.redis_server import REDIS_SERVER, RedisServer, free_port

MASTER_NAME = "otpmaster"


class RedisSentinel:
    """`redis-server --sentinel` processes watching a master with one replica; `failover()` swaps them."""

    def __init__(self, sentinels: int = 3) -> None:
        self.master = RedisServer()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.master.port))
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = Path(tempfile.mkdtemp(prefix="otp-sentinel-"))
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def sentinel(self, index: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinel_ports[index], socket_timeout=2)

    def master_port(self) -> int:
        return int(self.sentinel().sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def start(self, timeout: float = 30.0) -> RedisSentinel:
        try:
            self.master.start()
            self.replica.start()
            for port in self.sentinel_ports:
                conf = self.dir / f"sentinel-{port}.conf"
                conf.write_text(f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                                f"sentinel down-after-milliseconds {MASTER_NAME} 2000\n"
                                f"sentinel failover-timeout {MASTER_NAME} 10000\n")
                self.procs.append(subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.wait(lambda: self.replicated() and all(self.sees_replica(i) for i in range(len(self.procs))),
                      timeout, "the sentinels to see the master and its replica")
        except BaseException:
            self.cleanup()
            raise
        return self

    def replicated(self) -> bool:
        info = redis.Redis(port=self.replica.port, socket_timeout=1).info("replication")
        return info.get("master_link_status") == "up"

    def sees_replica(self, index: int) -> bool:
        try:
            state = self.sentinel(index).sentinel_master(MASTER_NAME)
            return int(state.get("num-slaves", 0)) >= 1 and int(state.get("num-other-sentinels", 0)) >= 1
        except redis.RedisError:
            return False

    def failover(self, timeout: float = 30.0) -> None:
        """SENTINEL FAILOVER, and wait until the sentinels name the old replica as master (not for the old
        master to be demoted: that comes later, which is the window the service must not approve in)."""
        before = self.master_port()
        self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        self.wait(lambda: self.master_port() != before, timeout, "the sentinels to promote the replica")

    def settled(self, timeout: float = 60.0) -> None:
        """Wait until the deposed master replicates from the new one (its writes since the failover are gone)."""
        def demoted() -> bool:
            old = self.master if self.master_port() != self.master.port else self.replica
            info = redis.Redis(port=old.port, socket_timeout=1).info("replication")
            return info.get("role") == "slave" and info.get("master_link_status") == "up"
        self.wait(demoted, timeout, "the deposed master to follow the new one")

    @staticmethod
    def wait(condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what}")

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        self.master.cleanup()
        self.replica.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

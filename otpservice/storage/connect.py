"""Open the Redis connection named by OTP_REDIS_URL (or the embedded store of a sandbox), and fail closed.

No automatic retries: a command that timed out may have run (a code spent, a send reserved), and running
it again would answer wrongly. A failure surfaces as StoreUnavailable (503) and the caller retries the whole
request. Connections are redis-py's own pool's, used as designed: each command checks one out and gives it
back, so any WSGI server (a thread per request, greenlets, a fixed pool) holds at most as many as it runs
commands at once, and `client.close()` reaches them all.
"""
from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.connection import Encoder
from redis.retry import Retry

from otpservice.config import ConfigError
from otpservice.errors import StoreUnavailable
from otpservice.observability.metrics import Metrics, NullMetrics
from otpservice.storage.scripts import NotReplicated

log = logging.getLogger(__name__)

# What a Redis that cannot answer raises; each becomes StoreUnavailable. A ResponseError is among them: an
# answer such as OOM (a full Redis under noeviction) or a script's error refuses the request too; so is a
# durable write too few replicas acknowledged (NotReplicated).
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError, redis.exceptions.ReadOnlyError,
                redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
                redis.exceptions.ResponseError, redis.exceptions.RedisClusterException, NotReplicated)


class StoreBase:
    """What every store shares: its client, the metrics its failures are counted in, and failing closed."""

    def __init__(self, client: Any, *, metrics: Metrics | NullMetrics | None = None) -> None:
        self.redis = client
        self.metrics = metrics or NullMetrics()

    def unavailable(self, exc: Exception) -> StoreUnavailable:
        """Log and count a Redis failure; the StoreUnavailable to raise in its place."""
        log.warning("redis unavailable: %s", type(exc).__name__)
        self.metrics.store_error(type(exc).__name__)
        return StoreUnavailable()


def guarded(method: Callable) -> Callable:
    """A store method whose Redis failures become StoreUnavailable: callers fail closed."""
    @functools.wraps(method)
    def wrapper(self: StoreBase, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except REDIS_ERRORS as exc:
            raise self.unavailable(exc) from exc
    return wrapper

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
MAX_CONNECTIONS = 100  # per process: above any worker's concurrent requests, below Redis's maxclients
DEFAULT_PORTS = {"redis+sentinel": 26379, "rediss+sentinel": 26379, "redis+cluster": 6379, "rediss+cluster": 6379}

_embedded_lock = threading.Lock()
_embedded_server = None


def embedded_client():
    """A fakeredis client on one in-process server shared by every thread (the sandbox's store)."""
    global _embedded_server
    import fakeredis  # imported here: production never loads the embedded store

    with _embedded_lock:
        if _embedded_server is None:
            _embedded_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_embedded_server)


def connect(url: str, *, timeout: float = 1.0) -> redis.Redis:
    """A client for `url` (redis://, rediss://, redis+sentinel://, redis+cluster://); empty: the embedded store."""
    if not url:
        log.warning("OTP_REDIS_URL is unset: using the embedded in-process store. It serves one process only "
                    "and forgets everything on exit; set OTP_REDIS_URL for anything but a local trial.")
        return embedded_client()
    options = dict(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                   health_check_interval=30)
    scheme = urlsplit(url).scheme
    try:
        if scheme in SENTINEL_SCHEMES:
            return sentinel_client(parse_sentinel_url(url), timeout=timeout)
        if scheme in CLUSTER_SCHEMES:
            return cluster_client(parse_cluster_url(url), timeout=timeout)
    except ValueError as exc:
        raise ConfigError(f"OTP_REDIS_URL: {exc}") from None
    # A blocking pool: past MAX_CONNECTIONS commands at once (a burst of greenlets or threads), a command waits
    # up to the timeout for a connection to come back instead of failing at once.
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=timeout, **options)
    return redis.Redis.from_pool(pool)  # the client owns the pool: close() disconnects every connection


@dataclass(frozen=True)
class ServerList:
    """What a sentinel or cluster URL names: hosts, TLS, credentials, and for Sentinel the master and db."""

    hosts: list[tuple[str, int]]
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    master: str = ""
    db: int = 0
    sentinel_password: str | None = field(default=None, repr=False)


def _hosts(netloc_hosts: str, default_port: int) -> list[tuple[str, int]]:
    hosts = []
    for item in netloc_hosts.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "")
        host = host.strip("[]")
        if not host:
            raise ValueError(f"no host in {item!r}")
        hosts.append((host, int(port) if port else default_port))
    if not hosts:
        raise ValueError("no hosts")
    return hosts


def _split(url: str) -> tuple[str, str | None, str | None, str, str, dict]:
    """(scheme, username, password, hosts part, path, query) of a URL with several comma-separated hosts."""
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, _, pw = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(pw) or None
    return parts.scheme, username, password, hostlist, parts.path, parse_qs(parts.query)


def parse_sentinel_url(url: str) -> ServerList:
    """`redis+sentinel://[:password@]host:port,host:port/<master name>[/<db>][?sentinel_password=...]`."""
    scheme, username, password, hostlist, path, query = _split(url)
    segments = [unquote(p) for p in path.split("/") if p]
    if not segments or len(segments) > 2:
        raise ValueError("a sentinel URL names its master: redis+sentinel://host:port,.../master_name/db")
    db = int(segments[1]) if len(segments) == 2 else 0
    return ServerList(_hosts(hostlist, DEFAULT_PORTS[scheme]), tls=scheme.startswith("rediss"),
                      username=username, password=password, master=segments[0], db=db,
                      sentinel_password=(query.get("sentinel_password") or [None])[0])


def parse_cluster_url(url: str) -> ServerList:
    """`redis+cluster://[user:password@]host:port,host:port` (any reachable nodes: the rest are discovered)."""
    scheme, username, password, hostlist, path, _ = _split(url)
    if path.strip("/") not in ("", "0"):
        raise ValueError("Redis Cluster has only database 0")
    return ServerList(_hosts(hostlist, DEFAULT_PORTS[scheme]), tls=scheme.startswith("rediss"),
                      username=username, password=password)


def sentinel_client(servers: ServerList, *, timeout: float) -> redis.Redis:
    """A client for the master Sentinel names now; after a failover it asks the sentinels again."""
    from redis.sentinel import Sentinel

    common = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "ssl": servers.tls}
    sentinel = Sentinel(servers.hosts, sentinel_kwargs={**common, "password": servers.sentinel_password},
                        **common)
    return sentinel.master_for(servers.master, db=servers.db, username=servers.username,
                               password=servers.password, retry=Retry(NoBackoff(), 0), **common)


def cluster_client(servers: ServerList, *, timeout: float) -> LazyCluster:
    """A Redis Cluster client: keys are routed by slot; MOVED/ASK redirects are followed, failures never retried."""
    from redis.cluster import ClusterNode, RedisCluster

    return LazyCluster(lambda: RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in servers.hosts], username=servers.username,
        password=servers.password, ssl=servers.tls, socket_timeout=timeout, socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0)))


class LazyCluster:
    """A RedisCluster made on first use: RedisCluster() reads the topology at once and raises when no node
    answers, and the service must start anyway (failing closed, /readyz 503) and recover when the cluster does.
    """

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The RedisCluster, made now if need be; no node answering is a ConnectionError, like any outage."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._build()
                    except redis.exceptions.RedisClusterException as exc:
                        raise redis.exceptions.ConnectionError(str(exc)) from exc
        return self._client

    def get_encoder(self) -> Encoder:
        # Script hashes its text at registration, before any connection: RedisCluster's own default encoding.
        return Encoder("utf-8", "strict", False)

    def register_script(self, script: str) -> Script:
        return Script(self, script)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client(), name)

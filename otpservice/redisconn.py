"""Open the Redis connection named by OTP_REDIS_URL, or the embedded store for a sandbox.

No automatic retries: a command that timed out may have run (a code spent, a send reserved), and running
it again would answer wrongly. A failure surfaces as 503 and the caller retries the whole request.
"""
from __future__ import annotations

import logging
import threading

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

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
    """A client for `url` (redis:// or rediss://); empty means the embedded store."""
    if not url:
        log.warning("OTP_REDIS_URL is unset: using the embedded in-process store. It serves one process only "
                    "and forgets everything on exit; set OTP_REDIS_URL for anything but a local trial.")
        return embedded_client()
    options = dict(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                   health_check_interval=30)
    return redis.Redis.from_url(url, **options)

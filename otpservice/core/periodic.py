"""Background work of the service (the opt-out sync, the reconciler): a daemon thread per serving process that
runs its job every interval when it wins a Redis lock that lasts the interval, so many workers run it once
between them. The thread starts in a process that serves, never where the app is built: a gunicorn master that
preloads the app builds it, then forks the workers, and a fork keeps no thread.
"""
from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    """`job()` every `interval` seconds, in whichever process `lock(ttl_ms)` lets run it.

    Nothing starts at construction. `start()` starts this process's thread, once per process: gunicorn's
    post_worker_init calls it in each worker (config/gunicorn.conf.py), and `middleware()` calls it on the
    first request under any other server.
    """

    def __init__(self, title: str, interval: int, lock: Callable[[int], bool], job: Callable[[], Any]) -> None:
        self.title = title  # what the logs call it, e.g. "opt-out sync"
        self.name = title.replace(" ", "-")
        self.interval = interval
        self.lock = lock
        self.job = job
        self.pid = 0  # the process whose thread runs: after a fork, the child's pid differs and it has none
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def start(self) -> Periodic:
        """Start this process's thread unless it runs already; a forked child starts its own."""
        with self._guard:
            if self.pid != os.getpid():
                self.stopped = threading.Event()
                self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self.thread.start()
                self.pid = os.getpid()
        return self

    def middleware(self, wsgi_app: Callable) -> Callable:
        """`wsgi_app` that first starts this process's thread if need be."""
        def serve(environ, start_response):
            if self.pid != os.getpid():
                self.start()
            return wsgi_app(environ, start_response)
        return serve

    def stop(self) -> None:
        self.stopped.set()

    def run_once(self) -> bool:
        """Run the job if no process has in this interval; the lock expires with the interval, never early."""
        won = self.lock(self.interval * 1000)
        if won:
            self.job()
        return won

    def _loop(self) -> None:
        log.info("%s thread started", self.title, extra={"pid": os.getpid(), "interval": self.interval})
        # A random first delay spreads workers started together; later ones follow the interval.
        delay = random.uniform(1, max(1, min(30, self.interval)))
        while not self.stopped.wait(delay):
            try:
                self.run_once()
            except Exception as exc:  # the thread must outlive a Redis or provider outage
                log.warning("%s failed: %s", self.title, type(exc).__name__)
            delay = self.interval * random.uniform(1.0, 1.1)  # past the lock's expiry

"""gunicorn settings for `otpservice serve` and the Docker image: workers, timeouts, JSON logs, metrics.

Every value comes from the service's own settings (OTP_* variables, read by otpservice.config); command-line
flags given after `otpservice serve` still win over this file.
"""
import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path

# Every module-level name here that gunicorn knows is read as its setting (`config` is one): import names only.
from otpservice.config import Settings, check_workers, or_exit

CGROUP = "/sys/fs/cgroup"  # where a container sees its own cgroup (v2: cpu.max; v1: cpu/cpu.cfs_quota_us)

# A refused configuration prints its one line and exits: gunicorn would print a traceback for an exception here.
with or_exit():
    settings = Settings.from_env()


def cpu_quota(root: str = CGROUP) -> float | None:
    """The CPUs the cgroup's quota allows (a container's `--cpus`), or None when it sets none.

    cgroup v2 writes `cpu.max` as "QUOTA PERIOD" ("max PERIOD": no limit); v1 has cpu.cfs_quota_us (-1: no limit)
    and cpu.cfs_period_us under the cpu controller's folder.
    """
    try:
        quota, period = Path(root, "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    for folder in ("cpu", "cpu,cpuacct"):
        try:
            quota = int(Path(root, folder, "cpu.cfs_quota_us").read_text())
            period = int(Path(root, folder, "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota / period if quota > 0 and period > 0 else None
    return None


def usable_cpus(root: str = CGROUP) -> int:
    """CPUs this process may use: those it may run on, no more than its cgroup's quota (rounded up)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cpu_quota(root)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def default_workers(settings: Settings, root: str = CGROUP) -> int:
    """OTP_WORKERS, or for 0: one process with the embedded store (it lives in one), else 2 per usable CPU + 1."""
    if settings.workers:
        return settings.workers
    return 2 * usable_cpus(root) + 1 if settings.redis_url else 1

if settings.worker_class == "gevent":
    # Before the app is imported and built (preload_app, below): its locks, queues and sockets must be gevent's,
    # or one greenlet waiting on a real lock would stop every request of the worker.
    from gevent import monkey

    monkey.patch_all()

# prometheus_client picks its storage when it is first imported, from PROMETHEUS_MULTIPROC_DIR. With
# preload_app the master imports it (building the app) straight after reading this file, before any server
# hook: gunicorn's Arbiter.setup() loads a preloaded app, and only Arbiter.start() then calls on_starting.
# So the directory is made and the variables set here, as this file loads, which also covers
# `gunicorn --check-config` (it loads the app, with no Arbiter). On a HUP gunicorn reads this file again:
# OTP_METRICS_DIR is set by then, so the same directory is kept. This is the only environment write in the
# project; OTP_METRICS_DIR tells the app the same directory.
OWN_METRICS_DIR = not settings.metrics_dir
metrics_dir = settings.metrics_dir or tempfile.mkdtemp(prefix="otp-metrics-")
os.makedirs(metrics_dir, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
os.environ["OTP_METRICS_DIR"] = metrics_dir


def remove_own_metrics_dir(path: str = metrics_dir, owner: int = os.getpid()) -> None:
    """At exit, remove the temporary metrics directory this file made; only in the process that made it.

    Workers fork with this handler registered and leave through sys.exit, so without the pid check the
    first worker to stop would delete every worker's files.
    """
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


if OWN_METRICS_DIR:
    atexit.register(remove_own_metrics_dir)

bind = f"{settings.host}:{settings.port}"
# I/O-bound work (Redis, Telnyx): processes for the cores, and in each a greenlet per request (gevent), so a
# send waiting on Telnyx holds only its own request; OTP_SEND_CONCURRENCY bounds those waits (bench/RESULTS.md).
# A container's CPU limit counts, not the host's cores: gunicorn workers beyond it only queue for the same quota.
workers = default_workers(settings)
worker_class = settings.worker_class
worker_connections = settings.worker_connections
threads = settings.threads
# Above the send deadline, so a slow provider gives an answer, not a killed worker.
timeout = settings.worker_timeout
graceful_timeout = settings.worker_timeout
keepalive = 5
# Import and build the app once, in the master, then fork the workers from it: each worker starts as a copy
# instead of importing Flask, redis, phonenumbers, nacl... itself, all of them at once on the same cores
# (start-up to ready stays under 1 s at 4 workers on 2 cores: bench/RESULTS.md). Threads do not survive a fork,
# so the app starts none while it is built; post_worker_init below starts them in each worker.
preload_app = True

# gunicorn's access log is off: the app writes one JSON access line per request itself (otpservice.logs),
# with the request id. gunicorn's own messages (boot, worker restarts) use the same JSON formatter.
accesslog = None
errorlog = "-"
loglevel = settings.log_level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "otpservice.observability.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": settings.log_level.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": settings.log_level.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def on_starting(server):
    """Refuse a worker count the store cannot serve (`serve -- --workers 4` on the embedded store), then drop the
    .db files of a past run from the metrics directory: their counts are not this run's.

    This runs once per start, after the preloaded app made the master's own (empty) files: deleting those
    too is harmless, because the master counts nothing and prometheus_client opens files named after the
    new pid on a worker's first count after the fork.
    """
    with or_exit():
        check_workers(settings, server.cfg.workers)
    for name in os.listdir(metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(metrics_dir, name))


def post_worker_init(worker):
    """Start the app's background threads (the opt-out sync) in each worker, which serves; never the master."""
    from otpservice import start_background

    start_background(worker.wsgi)


def child_exit(server, worker):
    """Tell prometheus_client a worker is gone, so its live gauges stop counting (counters are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

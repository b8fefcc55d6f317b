"""gunicorn settings for `otpservice serve` and the Docker image: workers, timeouts, JSON logs, metrics.

Every value comes from the service's own settings (OTP_* variables, read by otpservice.config); command-line
flags given after `otpservice serve` still win over this file.
"""
import multiprocessing
import os
import shutil
import tempfile

from otpservice.config import Settings

settings = Settings.from_env()

OWN_METRICS_DIR = not settings.metrics_dir
metrics_dir = settings.metrics_dir

bind = f"{settings.host}:{settings.port}"
# I/O-bound work (Redis, Telnyx): processes for the cores, threads to wait on the network.
workers = settings.workers or multiprocessing.cpu_count() * 2 + 1
worker_class = "gthread"
threads = settings.threads
# Above the Telnyx timeout, so a slow provider gives a 503, not a killed worker.
timeout = settings.worker_timeout
graceful_timeout = settings.worker_timeout
keepalive = 5
preload_app = False

# gunicorn's access log is off: the app writes one JSON access line per request itself (otpservice.logs),
# with the request id. gunicorn's own messages (boot, worker restarts) use the same JSON formatter.
accesslog = None
errorlog = "-"
loglevel = settings.log_level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "otpservice.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": settings.log_level.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": settings.log_level.upper(), "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def on_starting(server):
    """Give every worker one metrics directory: a fresh temp dir, or OTP_METRICS_DIR emptied of a past run."""
    global metrics_dir
    if OWN_METRICS_DIR:
        metrics_dir = tempfile.mkdtemp(prefix="otp-metrics-")
    os.makedirs(metrics_dir, exist_ok=True)
    for name in os.listdir(metrics_dir):
        if name.endswith(".db"):  # a previous run's counts are not this run's
            os.remove(os.path.join(metrics_dir, name))
    # prometheus_client picks its storage when a worker first imports it, from PROMETHEUS_MULTIPROC_DIR.
    # Workers fork from this master after this hook (preload_app is off), so setting the variable here, before
    # any of them exists, is what puts every worker's values in files /metrics can add up. This is the only
    # environment write in the project; OTP_METRICS_DIR tells the app the same directory.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    os.environ["OTP_METRICS_DIR"] = metrics_dir


def child_exit(server, worker):
    """Tell prometheus_client a worker is gone, so its live gauges stop counting (counters are kept)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the temporary metrics directory this file made."""
    if OWN_METRICS_DIR and metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)

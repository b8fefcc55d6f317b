"""The app is built in one process and served in others (gunicorn's preload_app): nothing that a fork would
break (a thread, an open connection) may start while it is built, and the opt-out sync runs in each worker."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest
import redis
import requests

from otpservice import create_app
from otpservice.config import Settings
from otpservice.storage.optouts import OptOutStore
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, CODE_SECRET, SIM_API_KEY, services
from tests.support.gunicorn_server import GunicornServer

NUMBER = "+13125550177"


def listener() -> socket.socket:
    """A TCP port that counts who connects (the kernel completes connections into the backlog)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def connections(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_building_the_app_connects_to_nothing_and_starts_no_thread():
    redis_port, telnyx_port = listener(), listener()
    settings = Settings(redis_url=f"redis://127.0.0.1:{redis_port.getsockname()[1]}/0", redis_timeout=0.2,
                        telnyx_api_key=SIM_API_KEY, telnyx_from="+13125550100", code_secret=CODE_SECRET,
                        optout_sync_interval=3600,
                        telnyx_base_url=f"http://127.0.0.1:{telnyx_port.getsockname()[1]}/v2")
    app = create_app(settings)
    scheduler = services(app).scheduler
    try:
        assert connections(redis_port) == 0 and connections(telnyx_port) == 0
        assert scheduler.thread is None and scheduler.pid == 0
        # The ports do see a connection once the app serves a request that needs one (the listener works).
        assert app.test_client().get("/readyz").status_code == 503
        assert connections(redis_port) >= 1
        assert scheduler.thread.is_alive() and scheduler.pid == os.getpid()  # started by the request
    finally:
        scheduler.stop()
        redis_port.close()
        telnyx_port.close()


def test_a_forked_process_starts_its_own_sync_thread_on_its_first_request(make_app):
    app = make_app(optout_sync_interval=3600)
    scheduler = services(app).scheduler
    assert scheduler.thread is None  # not at build time
    assert app.test_client().get("/healthz").status_code == 200
    parent_thread = scheduler.thread
    assert parent_thread.is_alive() and scheduler.pid == os.getpid()
    assert app.test_client().get("/healthz").status_code == 200
    assert scheduler.thread is parent_thread  # once per process
    child = os.fork()
    if child == 0:  # pragma: no cover (runs in the child; its exit status is the verdict)
        ok = not parent_thread.is_alive()  # a fork keeps no thread but the caller's
        ok = ok and app.test_client().get("/healthz").status_code == 200
        ok = ok and scheduler.pid == os.getpid() and scheduler.thread is not parent_thread
        ok = ok and scheduler.thread.is_alive()
        os._exit(0 if ok else 1)
    try:
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert scheduler.thread is parent_thread and scheduler.pid == os.getpid()  # the parent's is untouched
    finally:
        scheduler.stop()


def log_entries(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_preloading_gunicorn_runs_the_sync_thread_in_every_worker_and_not_in_the_master(
        redis_url, sim, sim_signing_key):
    from otpservice.sending.telnyx.signatures import public_key_b64

    assert requests.post(f"{sim.url}/sim/optouts", json={"to": NUMBER}, timeout=5).status_code == 201
    server = GunicornServer({
        "OTP_REDIS_URL": redis_url, "OTP_API_KEYS": CLIENT_KEY, "OTP_ADMIN_TOKEN": ADMIN_TOKEN,
        "OTP_CODE_SECRET": CODE_SECRET, "OTP_TELNYX_API_KEY": SIM_API_KEY, "OTP_TELNYX_BASE_URL": sim.base_url,
        "OTP_TELNYX_PUBLIC_KEY": public_key_b64(sim_signing_key), "OTP_TELNYX_FROM": "+13125550100",
        "OTP_OPTOUT_SYNC_INTERVAL": "1", "OTP_LOG_LEVEL": "INFO"}, workers=2)
    registry = OptOutStore(redis.Redis.from_url(redis_url))
    try:
        server.start()
        master = server.proc.pid  # `otpservice serve` execs gunicorn: this is its master
        # The master built the app before forking (preload_app): it has PyNaCl's libsodium loaded.
        assert "_sodium" in open(f"/proc/{master}/maps").read()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            started = [e for e in log_entries(server.output()) if e["msg"] == "opt-out sync thread started"]
            if len(started) >= 2 and registry.is_opted_out(NUMBER):
                break
            time.sleep(0.1)
        assert registry.is_opted_out(NUMBER)  # a sync thread ran: Telnyx's list reached Redis
    finally:
        stopped = server.stop()
        output = server.output()
        server.cleanup()
    assert stopped == 0
    entries = log_entries(output)
    workers = {int(e["msg"].rsplit(" ", 1)[1]) for e in entries if e["msg"].startswith("Booting worker")}
    threads = [e["pid"] for e in entries if e["msg"] == "opt-out sync thread started"]
    assert len(workers) == 2 and master not in workers
    assert sorted(threads) == sorted(workers)  # one thread per worker, none in the master
    assert any(e["msg"] == "opt-out sync" for e in entries)

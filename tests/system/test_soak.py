"""A thousand mixed requests through the servers users run: `otpservice run` (werkzeug, a thread per request) on
its embedded store and on a real Redis, and `otpservice serve` (gunicorn). No answer is a 5xx, and the Redis
client connections stay bounded however many threads the server makes."""
from __future__ import annotations

import random
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from otpservice.sending.telnyx.signatures import public_key_b64, signing_key_from_seed_b64
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, CODE_SECRET, SIM_API_KEY
from tests.support.gunicorn_server import GunicornServer
from tests.support.sandbox import Sandbox

REQUESTS = 1000
CLIENTS = 8  # requests in flight at once
CODE_RE = re.compile(r"\b(\d{6})\b")


def soak(url: str, sim_url: str, client_key: str, admin_token: str, *, seed: int) -> Counter:
    """REQUESTS mixed requests from CLIENTS threads: request-code, verify right and wrong, GET, admin lookup."""
    rng = random.Random(seed)
    client, admin = {"Authorization": f"Bearer {client_key}"}, {"Authorization": f"Bearer {admin_token}"}
    issued: list[tuple[str, str]] = []
    lock = threading.Lock()

    def one(i: int) -> int:
        number = f"+1312{rng.randint(2_000_000, 9_999_999)}"
        kind = i % 5
        with lock:
            known = list(issued)
        if kind == 0 or not known:
            answer = requests.post(url + "/request-code", json={"phone_number": number}, headers=client, timeout=30)
            if answer.status_code == 202:
                with lock:
                    issued.append((number, answer.json()["verification_id"]))
        elif kind == 1:
            number, _ = rng.choice(known)
            texts = requests.get(sim_url + "/sim/messages", params={"to": number}, timeout=30).json()["data"]
            code = CODE_RE.search(texts[0]["text"]).group(1) if texts else "123456"
            answer = requests.post(url + "/verify", json={"phone_number": number, "code": code}, headers=client,
                                   timeout=30)
        elif kind == 2:
            answer = requests.post(url + "/verify", json={"phone_number": number, "code": "000000"},
                                   headers=client, timeout=30)
        elif kind == 3:
            answer = requests.get(url + "/verifications/" + rng.choice(known)[1], headers=client, timeout=30)
        else:
            answer = requests.get(url + "/admin/opt-outs/%2B" + number[1:], headers=admin, timeout=30)
        return answer.status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        return Counter(pool.map(one, range(REQUESTS)))


class ClientWatch:
    """The most client connections a Redis server saw while the block ran (its own observer excluded)."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.most = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(0.02):
            self.most = max(self.most, int(self.redis.info("clients")["connected_clients"]) - 1)

    def __enter__(self) -> ClientWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join()


def no_server_errors(statuses: Counter) -> None:
    assert sum(statuses.values()) == REQUESTS
    assert not [status for status in statuses if status >= 500], statuses
    assert statuses[200] > REQUESTS // 4 and statuses[202] > 0, statuses  # the requests did real work


@pytest.mark.slow
def test_the_sandbox_serves_a_thousand_mixed_requests():
    """The newcomer's `make run`: embedded store, werkzeug's server making a thread per request."""
    with Sandbox() as sandbox:
        statuses = soak(sandbox.url, sandbox.sim_url, "sandbox-client-key", "sandbox-admin-token", seed=1)
    no_server_errors(statuses)


@pytest.mark.slow
def test_a_thread_per_request_server_on_redis_keeps_its_connections_bounded(redis_url):
    with Sandbox(OTP_REDIS_URL=redis_url) as sandbox, ClientWatch(redis_url) as watch:
        statuses = soak(sandbox.url, sandbox.sim_url, "sandbox-client-key", "sandbox-admin-token", seed=2)
    no_server_errors(statuses)
    # A thousand server threads came and went; connections follow the requests in flight, not the threads.
    assert 0 < watch.most <= 2 * CLIENTS, watch.most


@pytest.mark.slow
def test_gunicorn_serves_a_thousand_mixed_requests(redis_url, sim):
    seed = "c2Fua2V5LXNvYWstdGVzdC0wMTIzNDU2Nzg5YWJjZGU="
    server = GunicornServer({
        "OTP_REDIS_URL": redis_url, "OTP_API_KEYS": CLIENT_KEY, "OTP_ADMIN_TOKEN": ADMIN_TOKEN,
        "OTP_CODE_SECRET": CODE_SECRET, "OTP_TELNYX_API_KEY": SIM_API_KEY, "OTP_TELNYX_BASE_URL": sim.base_url,
        "OTP_TELNYX_PUBLIC_KEY": public_key_b64(signing_key_from_seed_b64(seed)), "OTP_TELNYX_FROM": "+13125550100",
        "OTP_LOG_LEVEL": "WARNING"}, workers=2)
    try:
        server.start()
        with ClientWatch(redis_url) as watch:
            statuses = soak(server.url, sim.url, CLIENT_KEY, ADMIN_TOKEN, seed=3)
    finally:
        server.cleanup()
    no_server_errors(statuses)
    # Gevent workers (the default): at most a connection per request in flight in a worker (CLIENTS, when every
    # one lands on it) and one per background job (opt-out sync, reconciler), per worker; a leak would be ~1,000.
    assert 0 < watch.most <= 2 * (CLIENTS + 2), watch.most

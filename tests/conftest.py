"""Shared fixtures: a real redis-server the suite starts itself, the simulator on a free port, the app."""
from __future__ import annotations

import pytest
import redis

from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, CODE_SECRET, PROFILE_ID, SIM_API_KEY, Clock, LiveServer
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server for the whole session, on a free port; each test gets a flushed db (see `redis_url`)."""
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server):
    """URL of the suite's own Redis, emptied before the test (it is ours, so flushing it is safe)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster():
    """A real Redis Cluster on free ports for the whole session (started only by tests that ask): 3 masters with
    a replica each, as in production, so the service waits for a replica's acknowledgement (its default)."""
    from tests.support.redis_cluster import RedisCluster
    cluster = RedisCluster(replicas=1).start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="session")
def sim_signing_key():
    from otpservice.sending.telnyx.signatures import signing_key_from_seed_b64
    return signing_key_from_seed_b64(None)


@pytest.fixture(scope="session")
def sim_server(sim_signing_key):
    """The real Telnyx simulator, over HTTP on a free port, for the whole session."""
    from otpservice.sandbox import SimulatorServer
    server = SimulatorServer(host="127.0.0.1", port=0, api_key=SIM_API_KEY, signing_key=sim_signing_key,
                             timeout_sleep=1.5, webhook_delay=0.01).start()
    yield server
    server.stop()


@pytest.fixture
def sim(sim_server):
    """The simulator with an empty outbox, no faults and no opt-outs."""
    sim_server.state = sim_server.app.extensions["telnyx_sim"].state
    sim_server.state.reset()
    yield sim_server
    sim_server.state.reset()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settings_overrides():
    """Per-test settings on top of the suite's defaults (a test may update this dict before make_app)."""
    return {}


@pytest.fixture
def make_app(redis_url, sim, clock, settings_overrides, sim_signing_key):
    """Build the real app against the suite's Redis and the real simulator (its Telnyx client made by wiring)."""
    from otpservice import create_app
    from otpservice.config import Settings
    from otpservice.sending.telnyx.signatures import public_key_b64

    def build(**overrides):
        values = dict(redis_url=redis_url, api_keys=(CLIENT_KEY,), admin_token=ADMIN_TOKEN,
                      code_secret=CODE_SECRET, telnyx_api_key=SIM_API_KEY, telnyx_base_url=sim.base_url,
                      telnyx_public_key=public_key_b64(sim_signing_key), telnyx_from="+13125550100",
                      telnyx_messaging_profile_id=PROFILE_ID, webhook_url="", telnyx_timeout=1.0)
        values["optout_sync_interval"] = 0  # no background sync thread in tests (a test may override)
        values["reconcile_after"] = 0  # nor a reconciler
        # Many tests authenticate wrongly on purpose, all from one address: the throttle has its own tests.
        values["limit_admin_failures"] = "1000000/minute"
        values.update(settings_overrides)
        values.update(overrides)
        app = create_app(Settings(**values), clock=clock)
        built.append(app)
        return app

    built: list = []
    yield build
    # A test that turned a background job on (the reconciler, the opt-out sync) stops it with the test: left
    # running, its next turn writes its Redis lock into a later test's empty database.
    for app in built:
        for job in app.extensions["otpservice"].background():
            job.stop()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    """Flask's test client with the client key; the app's Telnyx calls still go over HTTP to the simulator."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    return test_client


@pytest.fixture
def live(app):
    """The app on a real port, for concurrency tests and for the simulator's webhooks to reach it."""
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture
def redis_sends(monkeypatch):
    """What this process sends to Redis from now on, one entry per round trip (a pipeline is one).

    Counted at redis-py's connection (send_packed_command); clear it after a warm-up to count one request.
    """
    import redis.connection

    sends: list = []
    original = redis.connection.Connection.send_packed_command

    def counting(self, command, check_health=True):
        sends.append(command)
        return original(self, command, check_health)
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    return sends


@pytest.fixture
def routes_file(tmp_path, request):
    """The requesting test module's ROUTES (a routes file's text) written to a file: its OTP_ROUTES_FILE."""
    path = tmp_path / "routes.yaml"
    path.write_text(request.module.ROUTES, encoding="utf-8")
    return str(path)

"""Module-scoped fixtures for tests of the Telnyx client against its own simulator (no service app)."""
from __future__ import annotations

import pytest
import requests

from otpservice.sandbox import SimulatorServer
from otpservice.sending.telnyx.client import TelnyxClient


def simulator_fixtures(*, timeout_sleep: float):
    """(sim, fresh_sim, client): one simulator per module, emptied before each test, and the real client.

    Bind the three names at module level (`sim, fresh_sim, client = simulator_fixtures(...)`); they shadow
    the suite-wide `sim` and `client`, which serve the whole app instead.
    """
    @pytest.fixture(scope="module")
    def sim():
        server = SimulatorServer(webhook_delay=0.01, timeout_sleep=timeout_sleep, webhook_backoff=0.01).start()
        yield server
        server.stop()

    @pytest.fixture(autouse=True)
    def fresh_sim(sim):
        requests.post(sim.url + "/sim/reset", timeout=5).raise_for_status()

    @pytest.fixture
    def client(sim):
        telnyx = TelnyxClient(api_key=sim.api_key, base_url=sim.base_url, timeout=(1.0, 3.0))
        yield telnyx
        telnyx.close()

    return sim, fresh_sim, client

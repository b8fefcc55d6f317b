"""Fifty parallel requests never get more sends than a limit allows (real HTTP, real Redis, threads)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.app import CLIENT_KEY, LiveServer, outbox, services

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
ROOMY = dict(limit_prefix="1000/hour", limit_country="1000/hour", limit_global="1000/minute",
             limit_ip="1000/hour")


@pytest.fixture
def serve(make_app):
    servers = []

    def start(**settings):
        servers.append(LiveServer(make_app(**{**ROOMY, **settings})))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


def burst(url: str, bodies: list[dict]) -> list[requests.Response]:
    with ThreadPoolExecutor(50) as pool:
        return list(pool.map(lambda body: requests.post(f"{url}/request-code", json=body, headers=AUTH,
                                                        timeout=30), bodies))


def assert_exactly(results: list[requests.Response], allowed: int, policy: str) -> None:
    statuses = [r.status_code for r in results]
    assert statuses.count(202) == allowed, statuses
    assert statuses.count(429) == len(results) - allowed
    assert {r.json()["error"]["limit"] for r in results if r.status_code == 429} == {policy}


def numbers(n: int) -> list[str]:
    return [f"+1312555{1000 + i:04d}" for i in range(n)]


def test_fifty_parallel_from_one_ip_get_the_ip_budget(serve, sim):
    server = serve(limit_ip="10/hour")
    results = burst(server.url, [{"phone_number": n, "client_ip": "203.0.113.9"} for n in numbers(50)])
    assert_exactly(results, 10, "client_ip")
    assert len(outbox(sim)) == 10


def test_fifty_parallel_against_the_global_ceiling(serve, sim):
    server = serve(limit_global="7/minute")
    assert_exactly(burst(server.url, [{"phone_number": n} for n in numbers(50)]), 7, "global")
    assert len(outbox(sim)) == 7


def test_fifty_parallel_for_one_number_across_purposes_get_the_number_budget(serve, sim):
    server = serve()
    results = burst(server.url, [{"phone_number": "+13125550123", "purpose": f"p{i}"} for i in range(50)])
    assert_exactly(results, 3, "phone_number")
    assert len(outbox(sim, "+13125550123")) == 3


def test_happy_path_costs_six_redis_round_trips(client, sim, redis_sends):
    """The benchmark's budget: a /request-code that sends costs 6 round trips to Redis besides Telnyx: the send
    budgets, the reservation and the send's result (3), and the fraud guard's state, its scopes' counts and
    the counts of the text that left (3)."""
    client.post("/request-code", json={"phone_number": "+13125550150"})  # scripts loaded, pool warm
    redis_sends.clear()
    response = client.post("/request-code", json={"phone_number": "+13125550151", "client_ip": "203.0.113.9"})
    assert response.status_code == 202
    assert len(redis_sends) == 6


def test_scripts_flushed_from_redis_are_loaded_again(app, client, sim, clock):
    clock.freeze()
    assert client.post("/request-code", json={"phone_number": "+13125550152"}).status_code == 202
    services(app).redis.script_flush()
    assert client.post("/request-code", json={"phone_number": "+13125550153"}).status_code == 202
    services(app).redis.script_flush()
    clock.advance(31)
    assert client.post("/request-code", json={"phone_number": "+13125550152"}).status_code == 202
    assert len(outbox(sim)) == 3

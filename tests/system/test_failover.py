"""Single use survives a Sentinel failover: a code spent before or during it never verifies again afterwards,
and no approval comes from a deposed master (whose writes are thrown away once it rejoins as a replica)."""
from __future__ import annotations

import time

import pytest
import redis
import requests

from tests.support.app import CLIENT_KEY, LiveServer, code_from, outbox
from tests.support.redis_sentinel import RedisSentinel

CODES = 40


@pytest.fixture
def sentinel():
    deployment = RedisSentinel().start()
    yield deployment
    deployment.cleanup()


def issue(live, sim, count: int) -> list[tuple[str, str]]:
    pairs = []
    for n in range(count):
        number = f"+1312555{7000 + n:04d}"
        answer = requests.post(live.url + "/request-code", json={"phone_number": number}, timeout=10,
                               headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        assert answer.status_code == 202, answer.text
        pairs.append((number, code_from(outbox(sim, number)[0])))
    return pairs


def spend(live, number: str, code: str) -> tuple[int, bool]:
    answer = requests.post(live.url + "/verify", json={"phone_number": number, "code": code}, timeout=10,
                           headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    return answer.status_code, answer.status_code == 200 and answer.json()["valid"] is True


@pytest.mark.slow
def test_no_code_verifies_twice_across_a_failover_mid_stream(make_app, sim, sentinel):
    app = make_app(redis_url=sentinel.url, limit_global="100000/minute", limit_country="100000/hour",
                   limit_prefix="100000/hour", fraud_guard="off")  # codes of one prefix, most never entered
    live = LiveServer(app)
    try:
        pairs = issue(live, sim, CODES)
        master = redis.Redis(port=sentinel.master_port())
        assert master.wait(1, 5000) == 1  # the codes are on the replica before anything fails over
        first = {}
        for index, (number, code) in enumerate(pairs):
            if index == CODES // 4:
                sentinel.failover()  # returns once a new master is named: the old one still takes writes
            first[number] = spend(live, number, code)
            time.sleep(0.05)
        sentinel.settled()  # the deposed master follows the new one: what it wrote meanwhile is gone
        time.sleep(1)
        approved_twice = [number for number, code in pairs
                          if first[number][1] and spend(live, number, code)[1]]
        again = {number: spend(live, number, code) for number, code in pairs}
    finally:
        live.stop()
    assert approved_twice == []
    assert sum(valid for _, valid in first.values()) >= CODES // 4  # the spends before the failover approved
    assert all(status in (200, 404, 503) for status, _ in first.values())  # a refusal is 503, never an error
    # Every code verifies at most once overall: those refused during the failover may verify now, once.
    assert all(not (first[number][1] and again[number][1]) for number, _ in pairs)


@pytest.fixture
def replicated_cluster():
    from tests.support.redis_cluster import RedisCluster
    cluster = RedisCluster(replicas=1).start()
    yield cluster
    cluster.cleanup()


@pytest.mark.slow
def test_no_code_verifies_twice_across_a_cluster_failover_mid_stream(make_app, sim, replicated_cluster):
    """A replica takes its master's slots over (CLUSTER FAILOVER TAKEOVER) while codes are being spent; the old
    master keeps accepting writes until it hears of the new epoch, then rejoins as a replica and drops them."""
    from otpservice.storage import keys

    cluster = replicated_cluster
    app = make_app(redis_url=cluster.url, limit_global="100000/minute", limit_country="100000/hour",
                   limit_prefix="100000/hour", fraud_guard="off")  # codes of one prefix, most never entered
    live = LiveServer(app)
    try:
        pairs = issue(live, sim, 3 * CODES)
        target = cluster.master_of(keys.number(pairs[0][0]))  # the numbers this master serves
        pairs = [(n, c) for n, c in pairs if cluster.master_of(keys.number(n)).port == target.port][:CODES]
        assert len(pairs) >= 8
        assert redis.Redis(port=target.port).wait(1, 5000) == 1
        replica = cluster.replica_of(target)
        first = {}
        for index, (number, code) in enumerate(pairs):
            if index == len(pairs) // 4:
                redis.Redis(port=replica.port).execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
            first[number] = spend(live, number, code)
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while not (cluster.healthy() and cluster.master_of(keys.number(pairs[0][0])).port == replica.port):
            assert time.monotonic() < deadline, "the cluster did not settle"
            time.sleep(0.2)
        time.sleep(1)
        approved_twice = [number for number, code in pairs if first[number][1] and spend(live, number, code)[1]]
    finally:
        live.stop()
    assert approved_twice == []
    assert sum(valid for _, valid in first.values()) >= len(pairs) // 4
    assert all(status in (200, 404, 503) for status, _ in first.values())


@pytest.mark.slow
def test_a_cluster_master_whose_replica_is_gone_approves_nothing(make_app, sim, replicated_cluster):
    """WAIT on the master that serves the code: with its replica down nothing is acknowledged, so the right code
    is answered 503, never approved. The master did spend it, so once the replica is back it is gone (404):
    failing closed costs the user a new code, never a second approval."""
    from otpservice.storage import keys
    from tests.support.redis_server import RedisServer

    cluster = replicated_cluster
    live = LiveServer(make_app(redis_url=cluster.url, redis_wait_timeout=0.2))
    try:
        [(number, code)] = issue(live, sim, 1)
        master = cluster.master_of(keys.number(number))
        replica = cluster.replica_of(master)
        replica.stop()
        refused = [spend(live, number, code) for _ in range(3)]
        restarted = RedisServer(*replica.extra_args, port=replica.port, directory=replica.dir).start()
        cluster.nodes[cluster.nodes.index(replica)] = restarted
        deadline = time.monotonic() + 30
        while redis.Redis(port=master.port).wait(1, 100) < 1:
            assert time.monotonic() < deadline, "the replica did not rejoin"
        after = spend(live, number, code)
    finally:
        live.stop()
    assert refused == [(503, False)] * 3
    assert after == (404, False)

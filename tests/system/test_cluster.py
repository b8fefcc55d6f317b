"""The core request/verify/cancel/concurrency tests again, on a real 3-master Redis Cluster.

`redis_url` is overridden here, so every test imported below builds its app on `redis+cluster://...`: the same
Lua scripts, routed by slot. Further modules' tests join by being imported the same way.
"""
from __future__ import annotations

import time

import pytest
from redis.cluster import RedisCluster as ClusterClient

from otpservice.storage import keys
from tests.support.app import CLIENT_KEY, outbox, store_client, services
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer
from tests.functional.test_concurrency import (  # noqa: F401  (collected here, on the cluster)
    test_fifty_concurrent_requests_for_one_number_send_one_sms,
    test_fifty_concurrent_wrong_codes_use_at_most_the_allowed_attempts,
    test_twenty_concurrent_right_codes_give_exactly_one_approval,
)
from tests.functional.test_core_api import (  # noqa: F401
    request_code,
    test_bad_request_bodies_change_nothing,
    test_code_expires_after_its_ttl,
    test_every_spelling_of_a_number_shares_one_verification,
    test_five_wrong_codes_lock_the_verification,
    test_get_and_cancel_a_verification,
    test_idempotency_key_is_released_after_a_transient_failure,
    test_idempotency_key_replays_the_first_answer_and_sends_once,
    test_no_redis_value_or_key_contains_a_code,
    test_purposes_are_separate,
    test_request_and_verify_round_trip,
    test_resend_inside_cooldown_is_429_and_after_it_a_new_code_keeps_id_and_attempts,
    test_verify_by_verification_id,
)

from tests.functional.test_fraud import (  # noqa: F401  (the fraud guard's scripts and records on the cluster)
    start,
    test_a_blocked_country_still_sends_to_its_proven_prefixes,
    test_a_prefix_whose_codes_nobody_enters_is_blocked_listed_and_lifted,
    test_a_refused_request_gives_its_fixed_budgets_back,
    test_shadow_mode_records_and_counts_what_it_would_refuse_and_sends,
    test_the_allow_list_is_never_blocked,
    test_the_daily_spend_cap_counts_send_answers_and_finalized_costs,
)
from tests.functional.test_delivery import (  # noqa: F401  (webhooks on the cluster)
    hook,
    test_carrier_errors_are_kept,
    test_every_send_of_the_number_is_found,
    test_failed_latest_send_skips_the_cooldown,
    test_finalized_before_sent_never_moves_back,
    test_sent_then_delivered,
    test_terminal_states_are_final,
)
from tests.functional.test_limits_concurrency import (  # noqa: F401  (limits on the cluster)
    serve,
    test_fifty_parallel_against_the_global_ceiling,
    test_fifty_parallel_for_one_number_across_purposes_get_the_number_budget,
    test_fifty_parallel_from_one_ip_get_the_ip_budget,
)
from tests.functional.test_send_gate import (  # noqa: F401
    test_ip_limit_uses_body_client_ip_and_ipv6_slash_64,
    test_per_number_limits_trip_at_their_number_with_exact_retry_after,
    test_prefix_and_country_limits,
    test_refusal_by_a_later_budget_refunds_the_others,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_url(redis_cluster):
    """The session's cluster, emptied on every master before the test."""
    redis_cluster.flush()
    return redis_cluster.url


def test_the_app_really_talks_to_a_cluster(app):
    assert isinstance(services(app).redis.client(), ClusterClient)


def test_the_app_starts_while_the_cluster_is_down_and_serves_once_it_is_up(make_app, sim):
    cluster = RedisCluster()  # its nodes' ports, not started yet
    try:
        # Masters without replicas here: there is no acknowledgement to wait for.
        client = make_app(redis_url=cluster.url, redis_timeout=0.5, redis_wait_replicas="0").test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
        assert client.get("/readyz").status_code == 503
        refused = client.post("/request-code", json={"phone_number": "+13125550250"})
        assert refused.status_code == 503 and outbox(sim, "+13125550250") == []
        cluster.start()
        assert client.get("/readyz").status_code == 200
        assert client.post("/request-code", json={"phone_number": "+13125550250"}).status_code == 202
    finally:
        cluster.cleanup()


def test_a_numbers_keys_share_one_slot_and_numbers_spread_over_the_masters(client, sim, redis_cluster, redis_url):
    numbers = [f"+1312{n}0123" for n in range(555, 567)]  # twelve prefixes: none of them a pumping pattern
    for number in numbers:
        assert request_code(client, number).status_code == 202
    cluster = store_client(redis_url)
    slots_by_bucket: dict[str, set[int]] = {}
    for key in cluster.scan_iter():
        name = key.decode()
        if name.startswith("otp:{"):
            slots_by_bucket.setdefault(name.split("{")[1].split("}")[0], set()).add(cluster.keyslot(name))
    assert len(slots_by_bucket) == len(numbers)
    assert all(len(slots) == 1 for slots in slots_by_bucket.values())
    # The record key each script builds inside Lua lands in the slot of the keys it declares.
    for number in numbers:
        base, _ = keys.number_tag(number)
        assert cluster.keyslot(keys.number(number)) == cluster.keyslot(keys.record_prefix(number) + "x")
        assert base == f"otp:{{{keys.bucket(number)}}}"
    holders = {cluster.get_node_from_key(f"otp:{{{bucket}}}:x").name for bucket in slots_by_bucket}
    assert len(holders) >= 2  # twelve random buckets on one master of three: about one chance in 60,000


def test_a_lost_master_fails_closed_and_the_cluster_recovers_without_a_restart(make_app, sim):
    """Its own cluster, since this one loses a node: every answer 503 meanwhile, then service resumes."""
    cluster = RedisCluster().start()
    restarted = None
    try:
        # Masters without replicas here: there is no acknowledgement to wait for.
        client = make_app(redis_url=cluster.url, redis_timeout=0.5, redis_wait_replicas="0").test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
        assert client.post("/request-code", json={"phone_number": "+13125550230"}).status_code == 202
        victim = cluster.nodes[0]
        victim.stop()
        answers = []
        for number in [f"+1312555{n:04d}" for n in range(231, 239)]:
            response = client.post("/request-code", json={"phone_number": number})
            answers.append(response.status_code)
            # Never a 503 for a text that went out, never a text behind a 503.
            if response.status_code == 503:
                assert response.get_json()["error"]["code"] == "store_unavailable" and outbox(sim, number) == []
            else:
                assert response.status_code == 202 and len(outbox(sim, number)) == 1
        assert 503 in answers  # numbers of the lost master's slots cannot be served
        assert client.get("/readyz").status_code == 503
        restarted = RedisServer(*victim.extra_args, port=victim.port, directory=victim.dir).start()
        deadline = time.monotonic() + 30  # the node rejoins and the cluster votes itself ok again
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        numbers = [f"+1312555{n:04d}" for n in range(240, 246)]  # some surely hash to the restarted node
        deadline = time.monotonic() + 30
        while client.post("/request-code", json={"phone_number": numbers[0]}).status_code != 202:
            assert time.monotonic() < deadline, "the cluster never served again"
            time.sleep(0.2)
        assert all(client.post("/request-code", json={"phone_number": n}).status_code == 202 for n in numbers[1:])
    finally:
        if restarted:
            restarted.stop()
        cluster.cleanup()


def test_inbound_stop_and_start_on_the_cluster(client, hook, sim):  # noqa: F811 (the imported fixture)
    """The opt-out record (number's slot) and its index (its own slot) are written across nodes."""
    from tests.support.webhooks import inbound_event
    assert hook(inbound_event("+13125550260", "STOP")).status_code == 200
    refused = client.post("/request-code", json={"phone_number": "+13125550260"})
    assert refused.status_code == 409 and outbox(sim, "+13125550260") == []
    assert hook(inbound_event("+13125550260", "START")).status_code == 200
    assert client.post("/request-code", json={"phone_number": "+13125550260"}).status_code == 202

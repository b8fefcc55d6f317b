"""Issue 17's acceptance run: a pumping run spread over 100 fresh prefixes of Latvia, from a new address and
device each request, mixed with real users in Latvia, the UK and the US who enter 90 % of their codes
(bench/pumping.py plays it; `python -m bench.pumping` prints the same figures). Real app, real redis-server,
the simulator over HTTP; time is the app's clock, moved a few seconds per request."""
from __future__ import annotations

import pytest

from bench import pumping


@pytest.fixture(scope="module")
def runs(redis_server):
    return {mode: pumping.play(mode, redis_url=redis_server.url) for mode in ("enforce", "shadow")}


def test_the_attack_is_refused_after_the_guard_saw_its_first_50(runs):
    enforce = runs["enforce"]
    assert enforce.after_first(50) >= 0.95, enforce.attack
    assert enforce.attack.sent <= 100, enforce.attack  # of 800


def test_real_users_keep_their_codes(runs):
    enforce = runs["enforce"]
    assert enforce.users_refused() <= 0.01, dict(enforce.users)
    assert all(side.refused_total == 0 for country, side in enforce.users.items() if country != pumping.ATTACKED)


def test_the_attack_spends_no_budget_of_anybody_else(runs):
    for outcome in runs.values():
        assert not {"country", "global", "number_prefix", "client_ip"} & set(outcome.budget_refusals)


def test_shadow_mode_sends_everything_and_decides_the_same(runs):
    shadow, enforce = runs["shadow"], runs["enforce"]
    assert shadow.attack.refused_total == 0 and all(s.refused_total == 0 for s in shadow.users.values())
    assert shadow.attack.sent == shadow.attack.requests
    assert shadow.decisions == enforce.decisions
    assert {b["mode"] for b in shadow.blocks} == {"shadow"}


def test_every_refusal_has_its_block_record(runs):
    enforce = runs["enforce"]
    listed = {(b["scope"], b["rule"]) for b in enforce.blocks}
    assert enforce.reasons and {(r["scope"], r["rule"]) for r in enforce.reasons} <= listed
    assert all(r["figures"]["conversion"] < r["figures"]["threshold"] for r in enforce.reasons)

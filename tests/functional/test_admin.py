"""The admin API and the opt-out registry: auth, the four sources, paging, sync with the simulator, patterns."""
from __future__ import annotations

import pytest
import redis
import requests

from otpservice.storage import keys
from tests.support.app import ADMIN_TOKEN, CLIENT_KEY, outbox, services
from tests.support.openapi_check import DocumentChecker

NUMBER = "+13125550123"
ENCODED = "%2B13125550123"
PROFILE = "4001767e-ce0f-4cae-9d5f-0d5e636e7809"


@pytest.fixture
def admin(app):
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    return test_client


def sim_optout(sim, to: str, **extra) -> None:
    response = requests.post(f"{sim.url}/sim/optouts", json={"to": to, **extra}, timeout=5)
    assert response.status_code == 201


def test_admin_auth_client_key_403_none_401(app):
    anonymous = app.test_client()
    assert anonymous.get(f"/admin/opt-outs/{ENCODED}").status_code == 401
    as_client = anonymous.get(f"/admin/opt-outs/{ENCODED}", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert as_client.status_code == 403 and as_client.get_json()["error"]["code"] == "forbidden"
    assert anonymous.put(f"/admin/opt-outs/{ENCODED}",
                         headers={"Authorization": f"Bearer {CLIENT_KEY}"}).status_code == 403
    assert anonymous.post("/admin/opt-outs/sync", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert services(app).optouts.store.records(NUMBER) == []


def test_block_lookup_unblock(admin, client, sim):
    assert admin.get(f"/admin/opt-outs/{ENCODED}").get_json() == {
        "phone_number": NUMBER, "opted_out": False, "records": []}
    blocked = admin.put(f"/admin/opt-outs/{ENCODED}", json={"keyword": "fraud"})
    assert blocked.status_code == 200
    body = blocked.get_json()
    assert body["opted_out"] is True and [r["source"] for r in body["records"]] == ["admin"]
    assert body["records"][0]["keyword"] == "fraud"
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 409
    assert admin.delete(f"/admin/opt-outs/{ENCODED}").get_json()["opted_out"] is False
    assert client.post("/request-code", json={"phone_number": NUMBER}).status_code == 202


def test_four_sources_each_refuse_and_show_in_lookup(app, admin, client, sim, clock):
    # The sync keeps a send_rejected record made less than 1 s before it starts even though the simulator's
    # list lacks the number (its opt_out fault refuses without listing): with the clock frozen, a busy
    # machine's slow steps below cannot push the record past that second.
    clock.freeze()
    registry = services(app).optouts.store
    numbers = {"inbound_stop": "+13125550131", "send_rejected": "+13125550132", "admin": "+13125550133",
               "telnyx": "+13125550134"}
    registry.add(numbers["inbound_stop"], "inbound_stop", now_ms=0, keyword="STOP")  # what the webhook writes
    requests.post(f"{sim.url}/sim/faults", json={"mode": "opt_out", "count": 1, "to": numbers["send_rejected"]},
                  timeout=5)
    assert client.post("/request-code", json={"phone_number": numbers["send_rejected"]}).status_code == 409
    assert admin.put(f"/admin/opt-outs/{numbers['admin']}").status_code == 200
    sim_optout(sim, numbers["telnyx"])
    assert admin.post("/admin/opt-outs/sync").status_code == 200
    sent_before = len(outbox(sim))
    for source, number in numbers.items():
        response = client.post("/request-code", json={"phone_number": number})
        assert response.status_code == 409 and response.get_json()["error"]["code"] == "opted_out", source
        lookup = admin.get(f"/admin/opt-outs/{number}").get_json()
        assert lookup["opted_out"] is True
        assert [r["source"] for r in lookup["records"]] == [source]
    assert len(outbox(sim)) == sent_before


def test_unblock_keeps_telnyx_records(app, admin, sim):
    registry = services(app).optouts.store
    for source in ("inbound_stop", "admin", "telnyx", "send_rejected"):
        registry.add(NUMBER, source, now_ms=0)
    remaining = admin.delete(f"/admin/opt-outs/{ENCODED}").get_json()
    assert [r["source"] for r in remaining["records"]] == ["telnyx", "send_rejected"]
    assert remaining["opted_out"] is True


def test_sync_pulls_every_page_filtered_by_profile_and_reconciles(app, admin, sim, redis_url):
    numbers = [f"+1312555{n:04d}" for n in range(300, 555)]  # 255 numbers: two pages of 250
    for number in numbers:
        sim_optout(sim, number, keyword="STOP")
    sim_optout(sim, "+14155550123", messaging_profile_id="another-profile")
    registry = services(app).optouts.store
    registry.add("+13125550999", "telnyx", now_ms=0)           # no longer on Telnyx's list
    registry.add("+13125550998", "send_rejected", now_ms=0)    # an old mirror of a lifted block
    registry.add("+13125550997", "inbound_stop", now_ms=0)     # ours: never touched by a sync
    result = admin.post("/admin/opt-outs/sync").get_json()
    assert result == {"listed": 255, "added": 255, "removed": 2}
    assert registry.numbers_with("telnyx") == set(numbers)
    assert not registry.is_opted_out("+14155550123")
    assert not registry.is_opted_out("+13125550999") and not registry.is_opted_out("+13125550998")
    assert registry.is_opted_out("+13125550997")
    record = admin.get(f"/admin/opt-outs/{numbers[0]}").get_json()["records"][0]
    assert record["source"] == "telnyx" and record["keyword"] == "STOP" and record["messaging_profile_id"] == PROFILE
    assert admin.post("/admin/opt-outs/sync").get_json() == {"listed": 255, "added": 0, "removed": 0}


def test_sync_uses_small_pages_across_many(app, sim):
    """The client walks every page of the simulator's list (here 7 pages of 3)."""
    from otpservice.core.optouts import OptOutService
    from otpservice.sending.telnyx.client import TelnyxClient

    numbers = {f"+1312555{n:04d}" for n in range(600, 620)}
    for number in numbers:
        sim_optout(sim, number)

    class SmallPages(TelnyxClient):
        def list_opt_outs(self, **kwargs):
            return super().list_opt_outs(page_size=3, **kwargs)

    sync = OptOutService(store=services(app).optouts.store, provider=SmallPages(api_key="KEYtest",
                         base_url=sim.base_url), messaging_profile_id=PROFILE)
    assert sync.sync()["listed"] == 20
    assert services(app).optouts.store.numbers_with("telnyx") == numbers


def test_refresh_asks_telnyx_live(app, admin, sim):
    assert admin.get(f"/admin/opt-outs/{ENCODED}").get_json()["opted_out"] is False
    sim_optout(sim, NUMBER)
    assert admin.get(f"/admin/opt-outs/{ENCODED}").get_json()["opted_out"] is False   # local only
    fresh = admin.get(f"/admin/opt-outs/{ENCODED}?refresh=true").get_json()
    assert [r["source"] for r in fresh["records"]] == ["telnyx"]
    requests.delete(f"{sim.url}/sim/optouts/{NUMBER}", timeout=5)
    assert admin.get(f"/admin/opt-outs/{ENCODED}?refresh=true").get_json()["opted_out"] is False


def test_sync_when_telnyx_refuses_changes_nothing(app, sim):
    from otpservice.core.optouts import OptOutService
    from otpservice.errors import ProviderError
    from otpservice.sending.telnyx.client import TelnyxClient

    services(app).optouts.store.add(NUMBER, "telnyx", now_ms=0)   # would be stale if the list were read
    sync = OptOutService(store=services(app).optouts.store,
                         provider=TelnyxClient(api_key="KEYwrong", base_url=sim.base_url))
    with pytest.raises(ProviderError):
        sync.sync()
    assert services(app).optouts.store.is_opted_out(NUMBER)


def test_paged_list(app, admin):
    registry = services(app).optouts.store
    numbers = sorted(f"+1312555{n:04d}" for n in range(700, 705))
    for number in numbers:
        registry.add(number, "admin", now_ms=0)
    seen, cursor = [], None
    for _ in range(3):
        page = admin.get("/admin/opt-outs", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = page.get_json()
        seen += [item["phone_number"] for item in body["data"]]
        cursor = body["next_cursor"]
    assert seen == numbers and cursor is None
    assert admin.get("/admin/opt-outs?limit=0").status_code == 400
    assert admin.get("/admin/opt-outs?cursor=*").status_code == 400


@pytest.mark.parametrize("raw", ["*", "%2A", "%3F", "%5B", "[", "%2B1312*", "%2B1312555012%3F", "%5B0-9%5D", "sync"])
def test_patterns_in_admin_paths_are_invalid_numbers(app, admin, raw, redis_url):
    services(app).optouts.store.add(NUMBER, "admin", now_ms=0)
    for method in ("get", "put", "delete"):
        response = getattr(admin, method)(f"/admin/opt-outs/{raw}")
        assert response.status_code == 422, (method, raw)
        assert response.get_json()["error"]["code"] == "invalid_phone_number"
    assert admin.get(f"/admin/verifications?phone_number={raw}").status_code == 422
    assert services(app).optouts.store.records(NUMBER)[0]["source"] == "admin"
    assert redis.Redis.from_url(redis_url).exists(keys.optouts(NUMBER))


def test_recent_verifications(admin, client, clock, sim):
    clock.freeze()
    assert client.post("/request-code", json={"phone_number": NUMBER, "purpose": "login"}).status_code == 202
    clock.advance(5)
    assert client.post("/request-code", json={"phone_number": NUMBER, "purpose": "reset"}).status_code == 202
    body = admin.get(f"/admin/verifications?phone_number={ENCODED}").get_json()
    assert [v["purpose"] for v in body["data"]] == ["reset", "login"]
    assert admin.get("/admin/verifications").status_code == 400
    assert client.get(f"/admin/verifications?phone_number={ENCODED}").status_code == 403


def test_admin_responses_conform_to_the_document(app, admin, sim):
    check = DocumentChecker(app)
    sim_optout(sim, "+13125550140")
    assert check(admin, "put", f"/admin/opt-outs/{ENCODED}").status_code == 200
    assert check(admin, "get", f"/admin/opt-outs/{ENCODED}").status_code == 200
    assert check(admin, "get", "/admin/opt-outs/%2B13125550140?refresh=true").status_code == 200
    assert check(admin, "get", "/admin/opt-outs?limit=1").status_code == 200
    assert check(admin, "post", "/admin/opt-outs/sync").status_code == 200
    assert check(admin, "delete", f"/admin/opt-outs/{ENCODED}").status_code == 200
    assert check(admin, "get", "/admin/opt-outs/nope").status_code == 422
    assert check(admin, "get", f"/admin/verifications?phone_number={ENCODED}").status_code == 200
    as_client = app.test_client()
    as_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    assert check(as_client, "get", f"/admin/opt-outs/{ENCODED}").status_code == 403


def test_rate_limited_response_conforms(make_app, sim):
    app = make_app(limit_global="1/minute")
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {CLIENT_KEY}"
    check = DocumentChecker(app)
    assert check(client, "post", "/request-code", json={"phone_number": NUMBER}).status_code == 202
    assert check(client, "post", "/request-code", json={"phone_number": "+13125550124"}).status_code == 429


def test_scheduler_syncs_once_per_interval_across_processes(app, sim):
    from otpservice.core.optouts import SyncScheduler
    sim_optout(sim, NUMBER)
    first, second = (SyncScheduler(services(app).optouts, 3600) for _ in range(2))
    assert first.run_once() is True
    assert second.run_once() is False            # the lock holds for the interval
    assert services(app).optouts.store.is_opted_out(NUMBER)


def test_cli_show_and_sync(redis_url, sim, monkeypatch, capsys):
    import json

    from otpservice.cli import main
    for name, value in {"OTP_REDIS_URL": redis_url, "OTP_TELNYX_BASE_URL": sim.base_url,
                        "OTP_TELNYX_API_KEY": "KEYtest", "OTP_TELNYX_MESSAGING_PROFILE_ID": PROFILE}.items():
        monkeypatch.setenv(name, value)
    sim_optout(sim, NUMBER)
    assert main(["optouts", "sync"]) == 0
    assert json.loads(capsys.readouterr().out)["listed"] == 1
    assert main(["optouts", "show", NUMBER]) == 0
    assert json.loads(capsys.readouterr().out)["records"][0]["source"] == "telnyx"
    assert main(["optouts", "show", "*"]) == 1

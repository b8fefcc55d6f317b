"""The routing table: OTP_ROUTES_FILE in YAML or JSON, refused at start-up naming the line of what is wrong; the
routes a number gets; and RoutedSender sending along them with the real Telnyx client against the simulator."""
from __future__ import annotations

import json
import textwrap
import time

import pytest
import requests

from otpservice.config import ConfigError, Settings
from otpservice.sending.base import OutboundMessage, ProviderUnavailable, Route, RouteRefused
from otpservice.sending.routes_file import load_routes
from otpservice.sending.routing import RoutedSender, Router, starting_after
from otpservice.sending.telnyx.client import TelnyxClient
from tests.support.sim_fixtures import simulator_fixtures

P1, P2 = "4001767e-ce0f-4cae-9d5f-0d5e636e7809", "7a1b2c3d-0000-4000-8000-00000000000b"
EXAMPLE = f"""\
# the US on a long code, the UK on an alphanumeric sender then a pool, Norway, the rest on a pool
US:
  - name: us-long
    endpoint: messages
    from: +13125550100
GB:
  - name: uk-alpha
    endpoint: messages
    from: ACME
    messaging_profile_id: {P2}
  - endpoint: number_pool
    messaging_profile_id: {P2}
NO:
  - endpoint: messages
    from: 12345
default:
  - name: pool
    endpoint: number_pool
    messaging_profile_id: {P1}
"""


def write(tmp_path, text: str, name: str = "routes.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_the_yaml_file_gives_each_country_its_routes_in_order(tmp_path):
    table = load_routes(write(tmp_path, EXAMPLE))
    assert table["US"] == (Route("messages", "+13125550100", None, "us-long"),)
    assert table["GB"] == (Route("messages", "ACME", P2, "uk-alpha"), Route("number_pool", None, P2, "gb-2"))
    # YAML 1.1 would read NO as false and 12345 as a number: every value is the string written.
    assert table["NO"] == (Route("messages", "12345", None, "no-1"),)
    assert table["default"] == (Route("number_pool", None, P1, "pool"),)


def test_the_same_table_in_json(tmp_path):
    document = {"US": [{"name": "us-long", "endpoint": "messages", "from": "+13125550100"}],
                "default": [{"name": "pool", "endpoint": "number_pool", "messaging_profile_id": P1}]}
    table = load_routes(write(tmp_path, json.dumps(document, indent=2), "routes.json"))
    assert table == load_routes(write(tmp_path, "US:\n  - {name: us-long, endpoint: messages, from: '+13125550100'}\n"
                                                f"default:\n  - {{name: pool, endpoint: number_pool, "
                                                f"messaging_profile_id: {P1}}}\n"))


@pytest.mark.parametrize("text, line, words", [
    ("US:\n  - endpoint: messages\n    from: +13125550100\n    form: typo\n", 4, "unknown field 'form'"),
    ("US:\n  - endpoint: sms\n    from: +13125550100\n", 2, "endpoint must be one of"),
    ("UK:\n  - endpoint: messages\n    from: +447700900123\n", 1, "(write GB)"),
    ("gb:\n  - endpoint: messages\n    from: +447700900123\n", 1, "(write GB)"),
    ("US:\n  - endpoint: messages\n    from: ACME\n    messaging_profile_id: " + P1 + "\n", 3,
     "no alphanumeric sender ID to the US"),
    ("GB:\n  - endpoint: messages\n    from: ACME\n", 2, "needs the messaging_profile_id"),
    ("GB:\n  - endpoint: messages\n    from: THIS IS TOO LONG\n    messaging_profile_id: " + P1 + "\n", 3,
     "alphanumeric sender ID"),
    ("default:\n  - endpoint: number_pool\n    from: +13125550100\n    messaging_profile_id: " + P1 + "\n", 3,
     "has no `from`"),
    ("default:\n  - endpoint: number_pool\n", 2, "needs the messaging_profile_id"),
    ("default:\n  - endpoint: number_pool\n    messaging_profile_id: not-a-uuid\n", 3, "profile's UUID"),
    ("default:\n  - endpoint: whatsapp\n    from: ACME\n", 3, "WhatsApp-enabled number"),
    ("US:\n  - name: a\n    endpoint: messages\n    from: '+13125550100'\nCA:\n  - name: a\n    endpoint: messages\n"
     "    from: '+14165550100'\n", 6, "already the name of the route at line 2"),
    ("US:\n  - name: primary\n    endpoint: messages\n    from: '+13125550100'\n", 2, "kept for the route"),
    ("US:\n  - name: 9lives\n    endpoint: messages\n    from: '+13125550100'\n", 2, "must be a letter"),
    ("US: []\n", 1, "at least one route"),
    ("US:\n  - endpoint: messages\n    from: '+1312'\nUS:\n  - endpoint: messages\n", 4, "appears twice"),
    ("US:\n  - endpoint: messages\n    from: [1, 2\n", 4, "not valid YAML"),
    ("- just a list\n", 1, "must map countries"),
    ("US:\n" + "".join(f"  - endpoint: messages\n    from: '+1312555{n:04d}'\n" for n in range(11)), 1,
     "at most 10"),
])
def test_a_malformed_yaml_file_stops_start_up_naming_the_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_routes(path)
    assert f"OTP_ROUTES_FILE {path}, line {line}: " in str(refused.value) and words in str(refused.value)


@pytest.mark.parametrize("text, line, words", [
    ('{\n  "US": [\n    {"endpoint": "messages",\n     "from": "+13125550100",}\n  ]\n}', 4, "not valid JSON"),
    ('{\n  "US": [\n    {"endpoint": "messages", "from": 13125550100}\n  ]\n}', 3, "from must be a non-empty string"),
    ('{\n  "US": [{"endpoint": "messages", "from": "+13125550100"}],\n  "DE": [\n    {"endpoint": "fax"}\n  ]\n}',
     4, "endpoint must be one of"),
    ('{\n  "US": [{"endpoint": "messages", "from": "+1"}],\n  "US": []\n}', 1, "'US' appears twice"),
])
def test_a_malformed_json_file_stops_start_up_naming_the_line(tmp_path, text, line, words):
    path = write(tmp_path, text, "routes.json")
    with pytest.raises(ConfigError) as refused:
        load_routes(path)
    assert f"OTP_ROUTES_FILE {path}, line {line}: " in str(refused.value) and words in str(refused.value)


def test_a_file_that_cannot_be_read_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_routes(str(tmp_path / "absent.yaml"))
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml or \.json"):
        load_routes(write(tmp_path, "US: []", "routes.txt"))


def test_without_a_file_the_settings_give_the_one_default_route_and_its_failover():
    router = Router.from_settings(Settings(telnyx_from="+13125550100", telnyx_messaging_profile_id=P1,
                                           failover_endpoint="number_pool"))
    assert router.routes(region="BR") == ("sms", (Route("messages", "+13125550100", P1, "primary"),
                                                  Route("number_pool", None, P1, "failover")))
    assert router.names == ("primary", "failover")


def test_the_file_overrides_per_country_and_the_settings_serve_the_rest(tmp_path):
    path = write(tmp_path, "GB:\n  - {name: uk-wa, endpoint: whatsapp, from: '+447700900100'}\n"
                           "  - {name: uk-sms, endpoint: messages, from: '+447700900101'}\n")
    router = Router.from_settings(Settings(telnyx_from="+13125550100", routes_file=path, whatsapp_template="otp"))
    uk_wa, uk_sms = router.table["GB"]
    assert router.routes(region="GB") == ("whatsapp", (uk_wa,))  # the channel of the country's first route
    assert router.routes(region="GB", channel="sms") == ("sms", (uk_sms,))
    assert router.routes(region="US") == ("sms", (Route("messages", "+13125550100", None, "primary"),))
    # No WhatsApp route for the US, nor in the default list.
    assert router.routes(region="US", channel="whatsapp") == ("whatsapp", ())


def test_a_whatsapp_route_needs_its_template_and_a_file_without_default_needs_the_settings_route(tmp_path):
    whatsapp = write(tmp_path, "default:\n  - {name: wa, endpoint: whatsapp, from: '+13125550100'}\n")
    with pytest.raises(ConfigError, match="OTP_WHATSAPP_TEMPLATE is required: route wa"):
        Router.from_settings(Settings(routes_file=whatsapp))
    partial = write(tmp_path, "US:\n  - {endpoint: messages, from: '+13125550100'}\n", "us.yaml")
    with pytest.raises(ConfigError, match="has no `default` list.*OTP_TELNYX_FROM"):
        Router.from_settings(Settings(routes_file=partial))


def test_a_resend_after_a_failed_delivery_starts_on_the_next_route():
    a, b, c = (Route("messages", f"+1312555010{n}", None, name) for n, name in enumerate("abc"))
    assert starting_after((a, b, c), "a") == (b, c, a)
    assert starting_after((a, b, c), "c") == (a, b, c)
    assert starting_after((a, b, c), "gone") == (a, b, c)  # a route the file no longer has
    assert starting_after((a,), "a") == (a,)


# -- RoutedSender against the simulator ----------------------------------------------------------------------
sim, fresh_sim, client = simulator_fixtures(timeout_sleep=1.0)
TO = "+447700900123"
ALPHA = Route("messages", "ACME", P2, "uk-alpha")
POOL = Route("number_pool", None, P2, "uk-pool")


def message(route: Route = ALPHA) -> OutboundMessage:
    return OutboundMessage(to=TO, text="Your code is 123456", route=route, idempotency_key="v-1")


def arm(sim, mode: str, **extra) -> None:
    requests.post(f"{sim.url}/sim/faults", json={"mode": mode, **extra}, timeout=5).raise_for_status()


def posts(sim) -> list[dict]:
    return [r for r in requests.get(f"{sim.url}/sim/requests", timeout=5).json()["data"] if r["method"] == "POST"]


def test_a_refused_route_moves_to_the_next_under_another_key(sim, client):
    arm(sim, "alpha_sender_not_configured", **{"from": "ACME", "count": 5})
    sent = RoutedSender(client, deadline=5).send(message(), (ALPHA, POOL))
    assert sent.route == POOL
    seen = posts(sim)
    assert [(r["path"], r["idempotency_key"]) for r in seen] == [("/v2/messages", "v-1"),
                                                                 ("/v2/messages/number_pool", "v-1:1")]
    [out] = requests.get(f"{sim.url}/sim/messages", timeout=5).json()["data"]
    assert (out["id"], out["endpoint"]) == (sent.message_id, "number_pool")


def test_the_last_routes_refusal_is_raised_with_its_route(sim, client):
    arm(sim, "profile_disabled", count=2)
    with pytest.raises(RouteRefused) as refused:
        RoutedSender(client, deadline=5).send(message(), (ALPHA, POOL))
    assert refused.value.route == POOL and refused.value.reason == "profile_disabled"
    assert len(posts(sim)) == 2


def test_an_answer_that_may_be_an_acceptance_never_moves_on(sim):
    """The first route took the text but answered too late: the next route is never tried, the text goes once."""
    slow = TelnyxClient(api_key=sim.api_key, base_url=sim.base_url, timeout=(0.5, 0.3), send_deadline=0.7)
    try:
        arm(sim, "timeout", **{"from": "ACME"})
        with pytest.raises(ProviderUnavailable) as unanswered:
            RoutedSender(slow, deadline=0.7).send(message(), (ALPHA, POOL))
        assert unanswered.value.unanswered and unanswered.value.route == ALPHA
    finally:
        slow.close()
    assert {r["path"] for r in posts(sim)} == {"/v2/messages"}
    outbox: list[dict] = []
    for _ in range(60):  # the simulator sends once its sleep ends
        outbox = requests.get(f"{sim.url}/sim/messages", timeout=5).json()["data"]
        if outbox:
            break
        time.sleep(0.05)
    assert [m["from"] for m in outbox] == ["ACME"]


def test_a_route_refusal_past_the_deadline_does_not_move_on(sim, client):
    arm(sim, "invalid_from", count=1)
    with pytest.raises(RouteRefused):
        RoutedSender(client, deadline=0).send(message(), (ALPHA, POOL))
    assert len(posts(sim)) == 1


def test_serving_needs_the_settings_sender_only_where_the_settings_route_serves(tmp_path):
    """`otpservice serve` and `config` check the routes file, and the settings' sender only when it sends."""
    from otpservice import wiring

    full = write(tmp_path, f"default:\n  - {{endpoint: number_pool, messaging_profile_id: {P1}}}\n")
    wiring.require_sending(Settings(telnyx_api_key="KEY", routes_file=full))  # no OTP_TELNYX_FROM needed
    partial = write(tmp_path, "US:\n  - {endpoint: messages, from: '+13125550100'}\n", "us.yaml")
    with pytest.raises(ConfigError, match="has no `default` list"):
        wiring.require_sending(Settings(telnyx_api_key="KEY", routes_file=partial))
    wiring.require_sending(Settings(telnyx_api_key="KEY", routes_file=partial, telnyx_from="+13125550100"))
    broken = write(tmp_path, "US:\n  - {endpoint: fax}\n", "broken.yaml")
    with pytest.raises(ConfigError, match=r"line 2: endpoint must be one of"):
        wiring.require_sending(Settings(telnyx_api_key="KEY", routes_file=broken))

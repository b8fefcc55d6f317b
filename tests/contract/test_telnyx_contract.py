"""Contract tests: the client's requests, the simulator's answers and webhooks, held to Telnyx's OpenAPI."""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from otpservice.sandbox import WebhookRecorder
from otpservice.sending.telnyx.client import TelnyxClient
from otpservice.sending.telnyx.signatures import load_verify_key, verify_webhook
from tests.support import telnyx_data
from tests.support.sim_fixtures import simulator_fixtures

URI = "urn:test:telnyx-messaging"
TO, FROM, PROFILE = "+13125550123", "+18445550001", "0f512bda-ae1e-4597-8e11-e5f5686b97d3"
TEXT = "Your verification code is 482913"
# Fields Telnyx documents but the OpenAPI subset does not declare; the strict check allows exactly these.
DOCUMENTED_EXTRAS = {
    "InboundMessagePayload": {"autoresponse_type": {"enum": ["STOP", "START", "HELP"]}},
    "InboundMessageEvent": {"meta": {"$ref": "#/components/schemas/OutboundMessageEvent/properties/meta"}},
}

SPEC: dict[str, Any] = telnyx_data.spec()


def _date_time(value: object) -> bool:
    """RFC 3339 date-time; a space for the T is allowed (RFC 3339 §5.6 note), as in Telnyx's opt-outs."""
    if not isinstance(value, str):
        return True
    return bool(
        re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", value)
    ) and _parses(value)


def _parses(value: str) -> bool:
    """Whether Python can read the timestamp (catches month 13 and the like)."""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


FORMATS = FormatChecker()
FORMATS.checks("date-time")(_date_time)
FORMATS.checks("url")(lambda v: not isinstance(v, str) or urlsplit(v).scheme in ("http", "https"))
FORMATS.checks("json-pointer")(lambda v: not isinstance(v, str) or v == "" or v.startswith("/"))


def _strict(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the spec where object schemas refuse undeclared properties (catches misspelt fields)."""
    strict = copy.deepcopy(spec)
    for name, extra in DOCUMENTED_EXTRAS.items():
        strict["components"]["schemas"][name]["properties"].update(extra)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(strict["components"])
    walk(strict["paths"])
    walk(strict["webhooks"])
    return strict


REGISTRY = Registry().with_resource(
    URI, Resource.from_contents(_strict(SPEC), default_specification=DRAFT202012)
)


def check(instance: Any, pointer: str) -> None:
    """Validate `instance` against the (strict) schema at `pointer` of the spec, listing every violation."""
    validator = Draft202012Validator({"$ref": f"{URI}#{pointer}"}, registry=REGISTRY, format_checker=FORMATS)
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)
    ]
    assert not problems, f"{pointer}: " + "; ".join(problems)


def _pointer(*parts: str) -> str:
    """A JSON pointer into the spec from raw keys (escapes ~ and /)."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def request_schema(path: str) -> str:
    """The pointer of the JSON request body schema of POST `path`."""
    return _pointer("paths", path, "post", "requestBody", "content", "application/json", "schema")


def response_schema(path: str, status: str, method: str = "post") -> str:
    """The pointer of a response body schema; a $ref'd response object is followed."""
    response = SPEC["paths"][path][method]["responses"][status]
    if "$ref" in response:
        ref = response["$ref"].lstrip("#")
        return ref + _pointer("content", "application/json", "schema")
    return _pointer("paths", path, method, "responses", status, "content", "application/json", "schema")


def webhook_schema(name: str) -> str:
    """The pointer of a webhook's request body schema."""
    return _pointer("webhooks", name, "post", "requestBody", "content", "application/json", "schema")


ERRORS_SCHEMA = response_schema("/messages", "4XX")  # messaging_Errors, via messaging_GenericErrorResponse


sim, fresh_sim, client = simulator_fixtures(timeout_sleep=0.3)


def raw_post(sim, path: str, body: Any, *, key: str | None = None) -> requests.Response:
    """A POST to the simulator's API as any client would make it."""
    headers = {"Authorization": f"Bearer {key or sim.api_key}"}
    if isinstance(body, (bytes, str)):
        return requests.post(sim.base_url + path, data=body, headers=headers, timeout=5)
    return requests.post(sim.base_url + path, json=body, headers=headers, timeout=5)


def logged_requests(sim) -> list[dict]:
    """Every API request the simulator received, oldest first."""
    return requests.get(sim.url + "/sim/requests", timeout=5).json()["data"]


def assert_errors_body(response: requests.Response, status: int, code: str) -> dict:
    """The response is Telnyx's error shape, valid against messaging_Errors, with this status and code."""
    body = response.json()
    check(body, ERRORS_SCHEMA)
    assert response.status_code == status
    assert body["errors"] and all(re.fullmatch(r"\d+", e["code"]) for e in body["errors"])
    assert body["errors"][0]["code"] == code
    return body["errors"][0]


def test_every_request_body_the_client_builds_matches_the_spec(sim, client):
    with WebhookRecorder() as hooks:
        client.send_message(to=TO, text=TEXT, from_=FROM)
        client.send_message(to=TO, text=TEXT, from_=FROM, messaging_profile_id=PROFILE, webhook_url=hooks.url)
        client.send_message(to=TO, text=TEXT, endpoint="number_pool", messaging_profile_id=PROFILE)
        client.send_message(
            to=TO,
            text="Código: 482913 ✓",
            endpoint="number_pool",
            messaging_profile_id=PROFILE,
            webhook_url=hooks.url,
        )
    posts = [r for r in logged_requests(sim) if r["method"] == "POST"]
    assert [r["path"] for r in posts] == ["/v2/messages"] * 2 + ["/v2/messages/number_pool"] * 2
    for post in posts:
        body = json.loads(post["body"])
        check(body, request_schema(post["path"].removeprefix("/v2")))
        assert body["text"] in (TEXT, "Código: 482913 ✓")
    with_hook = json.loads(posts[1]["body"])
    assert with_hook["webhook_url"] == hooks.url and with_hook["use_profile_webhooks"] is False


def test_opt_out_query_matches_the_spec_parameters(sim, client):
    for n in range(3):
        requests.post(
            sim.url + "/sim/optouts",
            json={"to": f"+1312555000{n}", "messaging_profile_id": PROFILE},
            timeout=5,
        ).raise_for_status()
    assert len(list(client.list_opt_outs(messaging_profile_id=PROFILE, page_size=2))) == 3
    parameters = {p.get("name"): p for p in SPEC["paths"]["/messaging_optouts"]["get"]["parameters"]}
    parameters["page"] = SPEC["components"]["parameters"]["PageConsolidated"]
    gets = [r for r in logged_requests(sim) if r["path"] == "/v2/messaging_optouts"]
    assert len(gets) == 2
    for get in gets:
        objects: dict[str, dict[str, Any]] = {}
        for key, value in parse_qsl(get["query_string"]):
            name, field = re.fullmatch(r"(\w+)\[(\w+)\]", key).groups()  # deepObject style
            objects.setdefault(name, {})[field] = value
        assert set(objects) <= set(parameters)
        for name, value in objects.items():
            schema = parameters[name]["schema"]
            typed = {
                k: int(v) if schema["properties"][k]["type"] == "integer" else v for k, v in value.items()
            }
            errors = list(Draft202012Validator(schema, format_checker=FORMATS).iter_errors(typed))
            assert not errors, errors


@pytest.mark.parametrize(
    "path, body",
    [
        ("/messages", {"from": FROM, "to": TO, "text": TEXT}),
        (
            "/messages",
            {
                "from": FROM,
                "to": TO,
                "text": "é" * 200,
                "webhook_url": "http://127.0.0.1:9/none",
                "webhook_failover_url": "http://127.0.0.1:9/failover",
                "use_profile_webhooks": False,
            },
        ),
        ("/messages/number_pool", {"to": TO, "text": TEXT, "messaging_profile_id": PROFILE}),
    ],
)
def test_success_responses_match_the_spec(sim, path, body):
    response = raw_post(sim, path, body)
    assert response.status_code == 200
    check(response.json(), response_schema(path, "200"))
    data = response.json()["data"]
    uuid.UUID(data["id"])
    assert (data["direction"], data["record_type"], data["to"][0]["status"]) == (
        "outbound",
        "message",
        "queued",
    )
    assert data["to"][0]["phone_number"] == TO and data["text"] == body["text"]


@pytest.mark.parametrize(
    "mode, status, code",
    [
        ("http_500", 500, "10007"),
        ("rate_limit", 429, "10011"),
        ("opt_out", 409, "40300"),
        ("invalid_to", 400, "40310"),
        ("auth_failed", 401, "10009"),
        ("invalid_from", 400, "40305"),
        ("alpha_sender_not_configured", 400, "40306"),
        ("profile_disabled", 400, "40312"),
        ("pool_empty", 400, "40321"),
    ],
)
def test_fault_responses_match_the_spec(sim, mode, status, code):
    requests.post(sim.url + "/sim/faults", json={"mode": mode}, timeout=5).raise_for_status()
    response = raw_post(sim, "/messages", {"from": FROM, "to": TO, "text": TEXT})
    error = assert_errors_body(response, status, code)
    if mode == "rate_limit":
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= {
            h.lower() for h in response.headers
        }
    if mode == "opt_out":
        assert error["title"] == "Blocked due to STOP message"
        assert (
            error["detail"]
            == f"Messages cannot be sent from '{FROM}' to '{TO}' due to an existing block rule."
        )


@pytest.mark.parametrize(
    "path, body, status, code, pointer",
    [
        ("/messages", {"from": FROM, "text": TEXT}, 422, "10004", "/to"),
        ("/messages", {"to": TO, "text": TEXT}, 422, "10004", "/from"),
        ("/messages", {"to": TO, "from": FROM}, 422, "10004", "/text"),
        ("/messages", {"to": 13125550123, "from": FROM, "text": TEXT}, 422, "10003", "/to"),
        (
            "/messages",
            {"to": TO, "from": FROM, "text": TEXT, "encoding": "latin1"},
            422,
            "10003",
            "/encoding",
        ),
        ("/messages", {"to": "3125550123", "from": FROM, "text": TEXT}, 400, "40310", "/to"),
        ("/messages/number_pool", {"to": TO, "text": TEXT}, 422, "10004", "/messaging_profile_id"),
        ("/messages", b"{not json", 400, "10015", None),
        ("/messages", b"[1, 2]", 400, "10015", None),
    ],
)
def test_validation_errors_match_the_spec(sim, path, body, status, code, pointer):
    error = assert_errors_body(raw_post(sim, path, body), status, code)
    assert error.get("source", {}).get("pointer") == pointer


def test_auth_and_routing_errors_match_the_spec(sim):
    assert_errors_body(
        raw_post(sim, "/messages", {"from": FROM, "to": TO, "text": TEXT}, key="KEY-wrong"), 401, "10009"
    )
    assert_errors_body(requests.post(sim.base_url + "/messages", json={}, timeout=5), 401, "10009")
    # The spec declares a bare messaging_Error for 400/401 on this path; Telnyx (and the README) answer with
    # the usual {"errors": [...]} everywhere, so that is the shape held to here.
    assert_errors_body(requests.get(sim.base_url + "/messaging_optouts", timeout=5), 401, "10009")
    response = requests.get(
        sim.base_url + "/messaging_optouts",
        params={"page[size]": 251},
        timeout=5,
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )
    assert assert_errors_body(response, 400, "10003")["source"] == {"parameter": "page[size]"}
    assert_errors_body(requests.get(sim.base_url + "/nowhere", timeout=5), 404, "10005")


def test_opt_out_list_matches_the_spec(sim):
    requests.post(sim.url + "/sim/optouts", json={"to": TO, "messaging_profile_id": PROFILE}, timeout=5)
    with WebhookRecorder() as hooks:
        requests.post(
            sim.url + "/sim/inbound",
            json={"from": "+13125550199", "text": "quit", "webhook_url": hooks.url},
            timeout=5,
        ).raise_for_status()
    response = requests.get(
        sim.base_url + "/messaging_optouts",
        params={"page[size]": 1},
        timeout=5,
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )
    body = response.json()
    check(body, response_schema("/messaging_optouts", "200", "get"))
    assert body["meta"] == {"page_number": 1, "page_size": 1, "total_pages": 2, "total_results": 2}
    [item] = body["data"]
    assert item["to"] == TO and item["keyword"] == "STOP"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00", item["created_at"])  # Telnyx's style


def _verified(delivery, public_key: str) -> dict:
    """The delivery's parsed body, after its signature and timestamp header were checked on the raw bytes."""
    verify_webhook(load_verify_key(public_key), delivery.headers, delivery.body, now=time.time())
    assert delivery.headers["Content-Type"] == "application/json"
    return delivery.json()


def test_delivery_webhooks_match_the_spec_and_are_signed(sim, client):
    public_key = requests.get(sim.url + "/sim/public-key", timeout=5).json()["public_key"]
    with WebhookRecorder() as hooks:
        delivered = client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        requests.post(sim.url + "/sim/faults", json={"mode": "delivery_failed"}, timeout=5).raise_for_status()
        failed = client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        deliveries = hooks.wait_for(lambda d: len(d) >= 4)
    events = [_verified(d, public_key) for d in deliveries]
    for event in events:
        check(event, webhook_schema("deliveryUpdate"))
        assert event["meta"] == {"attempt": 1, "delivered_to": hooks.url}
        assert event["data"]["record_type"] == "event"
    assert len({e["data"]["id"] for e in events}) == 4  # event ids are unique: receivers dedupe on them
    by_message = {(e["data"]["payload"]["id"], e["data"]["event_type"]): e["data"]["payload"] for e in events}
    assert by_message[(delivered.message_id, "message.sent")]["to"][0]["status"] == "sent"
    assert by_message[(delivered.message_id, "message.finalized")]["to"][0]["status"] == "delivered"
    failure = by_message[(failed.message_id, "message.finalized")]
    assert failure["to"][0]["status"] == "delivery_failed"
    assert [e["code"] for e in failure["errors"]] == ["40008"]


def test_inbound_webhook_matches_the_spec_and_is_signed(sim):
    public_key = requests.get(sim.url + "/sim/public-key", timeout=5).json()["public_key"]
    with WebhookRecorder() as hooks:
        answer = requests.post(
            sim.url + "/sim/inbound", json={"from": TO, "text": "STOP", "webhook_url": hooks.url}, timeout=5
        ).json()["data"]
        [delivery] = hooks.wait_for(lambda d: len(d) >= 1)
    event = _verified(delivery, public_key)
    check(event, webhook_schema("inboundMessage"))
    assert event["data"] == answer["event"]
    payload = event["data"]["payload"]
    assert (event["data"]["event_type"], payload["direction"]) == ("message.received", "inbound")
    assert (payload["from"]["phone_number"], payload["text"], payload["autoresponse_type"]) == (
        TO,
        "STOP",
        "STOP",
    )


def test_failed_webhooks_are_retried_with_fresh_signatures(sim, client):
    public_key = requests.get(sim.url + "/sim/public-key", timeout=5).json()["public_key"]
    with WebhookRecorder(statuses=[500, 302]) as hooks:  # a 3xx is a failure too
        client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        deliveries = hooks.wait_for(lambda d: len(d) >= 4)
    events = [_verified(d, public_key) for d in deliveries]
    assert [(e["data"]["event_type"], e["meta"]["attempt"]) for e in events] == [
        ("message.sent", 1),
        ("message.sent", 2),
        ("message.sent", 3),
        ("message.finalized", 1),
    ]
    assert len({e["data"]["id"] for e in events[:3]}) == 1  # a retry is the same event
    log = requests.get(sim.url + "/sim/webhooks", timeout=5).json()["data"]
    assert [(w["event_type"], w["attempts"], w["status"], w["delivered"]) for w in log] == [
        ("message.sent", 3, 200, True),
        ("message.finalized", 1, 200, True),
    ]


def test_webhooks_give_up_after_max_attempts(sim, client):
    with WebhookRecorder(statuses=[503] * 6) as hooks:
        client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        hooks.wait_for(lambda d: len(d) >= 6)
        time.sleep(0.1)
    log = requests.get(sim.url + "/sim/webhooks", timeout=5).json()["data"]
    assert [(w["attempts"], w["status"], w["delivered"]) for w in log] == [(3, 503, False), (3, 503, False)]
    assert len(hooks.deliveries) == 6


@pytest.mark.parametrize(
    "instance, pointer",
    [
        ({"to": TO, "from_": FROM, "text": TEXT}, request_schema("/messages")),  # misspelt field
        ({"data": {"id": "not-a-uuid"}}, response_schema("/messages", "200")),
        ({"errors": [{"code": "10007"}]}, ERRORS_SCHEMA),  # title is required
        (
            {"data": [{"created_at": "2025-13-28 12:00:38+00:00"}]},
            response_schema("/messaging_optouts", "200", "get"),
        ),
        ({"data": {"payload": {"autoresponse_type": "STOP"}}}, webhook_schema("deliveryUpdate")),
    ],
)
def test_the_contract_checker_rejects_what_the_spec_forbids(instance, pointer):
    with pytest.raises(AssertionError):
        check(instance, pointer)


def test_a_message_read_back_matches_the_spec_at_every_stage(sim, client):
    with WebhookRecorder() as hooks:
        sent = client.send_message(to=TO, text=TEXT, from_=FROM, webhook_url=hooks.url)
        path = f"/messages/{sent.message_id}"
        queued = requests.get(sim.base_url + path, headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=5)
        hooks.wait_for(lambda d: len(d) >= 2)
    delivered = requests.get(sim.base_url + path, headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=5)
    pointer = response_schema("/messages/{id}", "200", "get")
    # The first read races the simulator's 10 ms step to `sent`; either way the message is not final yet.
    for response, statuses in ((queued, {"queued", "sent"}), (delivered, {"delivered"})):
        assert response.status_code == 200
        check(response.json(), pointer)
        data = response.json()["data"]
        assert (data["id"], data["text"]) == (sent.message_id, TEXT) and data["to"][0]["status"] in statuses
    assert delivered.json()["data"]["completed_at"] and queued.json()["data"]["completed_at"] is None
    with WebhookRecorder() as hooks:
        inbound = requests.post(sim.url + "/sim/inbound", json={"from": TO, "text": "HELP", "webhook_url": hooks.url},
                                timeout=5).json()["data"]["event"]["payload"]
    answer = requests.get(sim.base_url + f"/messages/{inbound['id']}",
                          headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=5)
    check(answer.json(), pointer)
    assert answer.json()["data"]["direction"] == "inbound"
    missing = requests.get(sim.base_url + f"/messages/{uuid.uuid4()}",
                           headers={"Authorization": f"Bearer {sim.api_key}"}, timeout=5)
    assert_errors_body(missing, 404, "10005")
    assert_errors_body(requests.get(sim.base_url + path, timeout=5), 401, "10009")


@pytest.mark.parametrize("body, status, code, pointer", [
    ({"from": FROM, "to": TO, "text": "Code ✓ 482913", "encoding": "gsm7"}, 400, "10003", "/text"),
    ({"from": "Acme", "to": TO, "text": TEXT}, 400, "40306", "/messaging_profile_id"),
])
def test_what_telnyx_refuses_is_refused_in_its_shape(sim, body, status, code, pointer):
    error = assert_errors_body(raw_post(sim, "/messages", body), status, code)
    assert error["source"] == {"pointer": pointer}
    assert requests.get(sim.url + "/sim/messages", timeout=5).json()["data"] == []  # nothing was sent


@pytest.mark.parametrize("body, encoding", [
    ({"from": FROM, "to": TO, "text": "Code ✓ 482913"}, "UCS-2"),                   # auto picks UCS-2
    ({"from": FROM, "to": TO, "text": "Café: 482913", "encoding": "gsm7"}, "GSM-7"),  # é is in GSM-7
    ({"from": "Acme", "to": TO, "text": TEXT, "messaging_profile_id": PROFILE}, "GSM-7"),
])
def test_what_telnyx_accepts_next_to_those_refusals(sim, body, encoding):
    response = raw_post(sim, "/messages", body)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["encoding"] == encoding


# -- WhatsApp ---------------------------------------------------------------------------------------------
WA_FROM = "+13125550199"


def test_the_whatsapp_send_matches_the_spec_on_both_sides(sim):
    whatsapp = TelnyxClient(api_key=sim.api_key, base_url=sim.base_url, timeout=(1.0, 3.0),
                            whatsapp_template="otp_code")
    public_key = requests.get(sim.url + "/sim/public-key", timeout=5).json()["public_key"]
    try:
        with WebhookRecorder() as hooks:
            sent = whatsapp.send_whatsapp(to=TO, code="482913", from_=WA_FROM, messaging_profile_id=PROFILE,
                                          webhook_url=hooks.url, idempotency_key="v-1")
            deliveries = hooks.wait_for(lambda d: len(d) >= 2)
    finally:
        whatsapp.close()
    [post] = [r for r in logged_requests(sim) if r["method"] == "POST"]
    assert post["path"] == "/v2/messages/whatsapp" and post["idempotency_key"] == "v-1"
    check(json.loads(post["body"]), request_schema("/messages/whatsapp"))
    answer = raw_post(sim, "/messages/whatsapp", json.loads(post["body"]))  # a replay-free twin, for its body
    check(answer.json(), response_schema("/messages/whatsapp", "200"))
    assert answer.json()["data"]["type"] == "WHATSAPP" and sent.status == "queued"
    events = [_verified(d, public_key) for d in deliveries]
    for event in events:
        check(event, webhook_schema("deliveryUpdate"))
    assert {e["data"]["payload"]["id"] for e in events} == {sent.message_id}
    assert "text" not in events[0]["data"]["payload"]  # a receipt does not repeat the code


def test_whatsapp_refusals_match_the_spec(sim):
    body = {"from": WA_FROM, "to": TO, "whatsapp_message": {"type": "template", "template": {"name": "otp"}}}
    error = assert_errors_body(raw_post(sim, "/messages/whatsapp", body), 422, "10004")
    assert error["source"]["pointer"] == "/whatsapp_message/template"
    assert_errors_body(raw_post(sim, "/messages/whatsapp", {"to": TO, "whatsapp_message": {}}), 422, "10004")
    bad_from = {**body, "from": "ACME"}
    assert_errors_body(raw_post(sim, "/messages/whatsapp", bad_from), 400, "40305")


# -- the account: numbers and profiles (otpservice doctor) ---------------------------------------------------
def test_the_numbers_and_profiles_the_doctor_reads_match_the_spec(sim):
    inventory = {"messaging_profiles": [{"id": PROFILE, "name": "UK", "enabled": False, "webhook_url": None,
                                         "alpha_sender": "ACME", "whitelisted_destinations": ["GB"],
                                         "number_pool": False}],
                 "phone_numbers": [{"phone_number": FROM, "messaging_profile_id": PROFILE, "type": "tollfree"},
                                   {"phone_number": "+13125550111", "messaging_profile_id": None,
                                    "messaging_enabled": False}]}
    requests.put(sim.url + "/sim/inventory", json=inventory, timeout=5).raise_for_status()
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    listed = requests.get(sim.base_url + "/phone_numbers/messaging", headers=headers, timeout=5,
                          params={"filter[messaging_profile_id]": PROFILE, "page[size]": 250})
    check(listed.json(), response_schema("/phone_numbers/messaging", "200", "get"))
    [number] = listed.json()["data"]
    assert number["phone_number"] == FROM and number["features"]["sms"] is not None
    one = requests.get(f"{sim.base_url}/phone_numbers/{number['id']}/messaging", headers=headers, timeout=5)
    check(one.json(), response_schema("/phone_numbers/{id}/messaging", "200", "get"))
    assert one.json()["data"] == number
    off = requests.get(sim.base_url + "/phone_numbers/%2B13125550111/messaging", headers=headers, timeout=5)
    assert off.json()["data"]["features"]["sms"] is None and off.json()["data"]["messaging_profile_id"] is None
    profile = requests.get(f"{sim.base_url}/messaging_profiles/{PROFILE}", headers=headers, timeout=5)
    check(profile.json(), response_schema("/messaging_profiles/{id}", "200", "get"))
    assert (profile.json()["data"]["enabled"], profile.json()["data"]["alpha_sender"]) == (False, "ACME")
    missing = requests.get(f"{sim.base_url}/messaging_profiles/{uuid.uuid4()}", headers=headers, timeout=5)
    assert_errors_body(missing, 404, "10005")


def test_the_doctors_queries_match_the_spec_parameters(sim, client):
    from otpservice.sandbox.account import number_id
    from otpservice.sending.telnyx.doctor import Account

    account = Account(client)
    account.number(FROM)
    account.numbers_on(PROFILE)
    account.profile(PROFILE)
    parameters = {p.get("name"): p for p in SPEC["paths"]["/phone_numbers/messaging"]["get"]["parameters"]
                  if "name" in p}
    page = SPEC["components"]["parameters"]["PageConsolidated"]["schema"]
    gets = [r for r in logged_requests(sim) if r["method"] == "GET"]
    listing = "/v2/phone_numbers/messaging"
    assert [r["path"] for r in gets] == [listing, f"/v2/phone_numbers/{number_id(FROM)}/messaging", listing,
                                         f"/v2/messaging_profiles/{PROFILE}"]
    for get in (gets[0], gets[2]):
        for key, value in parse_qsl(get["query_string"]):
            if key.startswith("page["):
                field = key[5:-1]
                assert not list(Draft202012Validator(page["properties"][field]).iter_errors(int(value)))
            else:
                assert not list(Draft202012Validator(parameters[key]["schema"], format_checker=FORMATS)
                                .iter_errors(value)), key

"""The logs of a whole request/verify/read/cancel cycle: JSON lines, request ids, and nothing secret.

Webhooks included: a signed delivery report, a forged one, and an inbound STOP.
"""
from __future__ import annotations

import json
import logging
import threading
import time

import nacl.signing

import pytest
import requests
from flask import has_request_context

from otpservice.observability.logs import JsonFormatter
from tests.support.app import CLIENT_KEY, SIM_API_KEY, code_from, outbox
from tests.support.webhooks import delivery_event, inbound_event, post_signed

NUMBER = "+13125550150"
OTHER = "+447400123450"
STOPPER = "+13125550151"


class Lines(logging.Handler):
    """Formats every record of this thread (the test client's requests) as the service's JSON line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.thread = threading.get_ident()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The service's own loggers, and anything else logged while the app serves a request; the test's own
        # calls to the simulator (outside any request) are not the service's logs.
        ours = record.name.startswith("otpservice") and not record.name.startswith("otpservice.sandbox")
        if record.thread == self.thread and (ours or has_request_context()):
            self.lines.append(self.format(record))  # formatted now, inside the request, as in production


@pytest.fixture
def captured():
    root, handler = logging.getLogger(), Lines()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_full_cycle_logs_json_with_request_ids_and_no_secret(client, sim, captured, sim_signing_key):
    sent = client.post("/request-code", json={"phone_number": NUMBER}, headers={"X-Request-ID": "req-given-1"})
    assert sent.headers["X-Request-ID"] == "req-given-1"
    vid = sent.get_json()["verification_id"]
    code = code_from(outbox(sim, NUMBER)[0])
    wrong = "000000" if code != "000000" else "111111"
    client.post("/verify", json={"phone_number": NUMBER, "code": wrong})
    client.post("/verify", json={"verification_id": vid, "code": code})
    client.get(f"/verifications/{vid}")
    message_id = sent.get_json()["delivery"]["message_id"]
    assert post_signed(client, delivery_event(message_id, "delivered", to=NUMBER), sim_signing_key,
                       timestamp=time.time()).status_code == 200
    forged = nacl.signing.SigningKey.generate()
    assert post_signed(client, delivery_event(message_id, "delivery_failed", to=NUMBER), forged,
                       timestamp=time.time()).status_code == 401
    stop = post_signed(client, inbound_event(STOPPER, "STOP"), sim_signing_key, timestamp=time.time())
    assert stop.status_code == 200
    client.delete(f"/verifications/{vid}")
    requests.post(f"{sim.url}/sim/faults", json={"mode": "http_500", "count": 3}, timeout=5)
    client.post("/request-code", json={"phone_number": OTHER, "locale": "en"})  # a failed send logs warnings
    client.post("/verify", json={"phone_number": NUMBER, "code": code}, headers={"Authorization": "Bearer leaked-key"})
    client.post("/request-code", data="{not json", content_type="application/json")

    entries = [json.loads(line) for line in captured]  # every line is one JSON object
    assert len(entries) >= 9 and all(isinstance(entry, dict) for entry in entries)
    assert all(entry.get("request_id") for entry in entries)  # every line here was logged inside a request
    access = [entry for entry in entries if entry["logger"] == "otpservice.access"]
    assert len(access) == 11 and access[0]["request_id"] == "req-given-1"
    assert len({entry["request_id"] for entry in access}) == 11
    assert any(entry["level"] == "WARNING" for entry in entries)  # the failed send was logged...
    text = "\n".join(captured)
    for secret in (NUMBER, NUMBER[1:], OTHER, OTHER[1:], STOPPER, STOPPER[1:], code, CLIENT_KEY, SIM_API_KEY,
                   "leaked-key"):
        assert secret not in text  # ...without a number, code or key
    assert "+1312*****50" in text  # numbers appear masked


def test_access_lines_name_the_route_not_the_path(app, captured):
    """A number written nationally, or a user id, in a path never reaches the access log."""
    admin = app.test_client()
    admin.get("/admin/opt-outs/3125550177", headers={"Authorization": "Bearer test-admin-token"})
    admin.get("/totp/alice-private-id", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    access = [json.loads(line) for line in captured if '"otpservice.access"' in line]
    assert [entry["path"] for entry in access] == ["/admin/opt-outs/<phone_number>", "/totp/<user_id>"]
    assert "3125550177" not in "\n".join(captured) and "alice-private-id" not in "\n".join(captured)

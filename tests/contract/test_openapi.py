"""/openapi.json is a valid OpenAPI 3.1 document and real responses of the core routes conform to it."""
from __future__ import annotations

import re

from openapi_spec_validator import validate

from tests.support.app import code_from, outbox
from tests.support.openapi_check import DocumentChecker

NUMBER = "+13125550180"


def test_document_is_valid_openapi_31(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    for path in ("/request-code", "/verify", "/verifications/{verification_id}", "/healthz", "/readyz"):
        assert path in document["paths"]


def test_core_responses_conform(app, client, sim):
    check = DocumentChecker(app)
    created = check(client, "post", "/request-code", json={"phone_number": NUMBER})
    assert created.status_code == 202
    vid = created.get_json()["verification_id"]
    assert check(client, "post", "/request-code", json={"phone_number": NUMBER}).status_code == 429
    code = code_from(outbox(sim, NUMBER)[0])
    wrong = "000000" if code != "000000" else "111111"
    assert check(client, "post", "/verify", json={"phone_number": NUMBER, "code": wrong}).status_code == 200
    assert check(client, "get", f"/verifications/{vid}").status_code == 200
    assert check(client, "post", "/verify", json={"verification_id": vid, "code": code}).status_code == 200
    assert check(client, "post", "/verify", json={"verification_id": vid, "code": code}).status_code == 404
    assert check(client, "post", "/verify", json={"phone_number": NUMBER, "code": "12"}).status_code == 400
    assert check(client, "post", "/request-code", json={"phone_number": "+1312"}).status_code == 422
    assert check(client, "delete", f"/verifications/{vid}").status_code == 404
    assert check(client, "get", "/healthz").status_code == 200
    assert check(client, "get", "/readyz").status_code == 200
    assert check(app.test_client(), "post", "/verify", json={}).status_code == 401
    assert check.checked == 12


def test_every_route_the_app_serves_is_in_the_document(app, client):
    """A view added without its OpenAPI part (web/openapi/) fails here; Flask's own /static route is not ours."""
    paths = client.get("/openapi.json").get_json()["paths"]
    served = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in paths.items() for method in item}
    assert served == documented
    assert {("/docs", "get"), ("/docs/{name}", "get")} <= served
    assert paths["/docs"]["get"]["security"] == [] and paths["/docs/{name}"]["get"]["security"] == []

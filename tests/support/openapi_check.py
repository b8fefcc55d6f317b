"""Hold real requests and responses to the service's own OpenAPI document (openapi-core)."""
from __future__ import annotations

from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request


class DocumentChecker:
    """Sends a request through a Flask test client and validates both sides against /openapi.json."""

    def __init__(self, app) -> None:
        document = app.test_client().get("/openapi.json").get_json()
        self.openapi = OpenAPI.from_dict(document)
        self.checked = 0

    def __call__(self, client, method: str, path: str, *, check_request: bool = True, **kwargs):
        response = client.open(path, method=method.upper(), **kwargs)
        # The view consumed the body stream: validate against a fresh copy of the same request.
        builder = EnvironBuilder(path=path, method=method.upper(), base_url="http://localhost/", **kwargs)
        headers = dict(client.environ_base)
        request = WerkzeugOpenAPIRequest(Request({**builder.get_environ(), **headers}))
        if check_request and response.status_code < 400:
            self.openapi.validate_request(request)
        self.openapi.validate_response(request, WerkzeugOpenAPIResponse(response))
        self.checked += 1
        return response

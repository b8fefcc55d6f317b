from otpservice.web.docs import ASSETS, CSS, JS
from otpservice.web.openapi.common import error_responses

CSP_HEADER = {"Content-Security-Policy": {
    "description": "This origin only: no script, style, fetch or image from anywhere else.",
    "schema": {"type": "string"}}}

OPENAPI_PATHS = {
    "/docs": {"get": {
        "summary": "This API reference, for a browser", "operationId": "docsPage", "security": [],
        "description": "Swagger UI rendering /openapi.json; every file it loads is served by the service itself.",
        "responses": {"200": {"description": "The page", "headers": CSP_HEADER,
                              "content": {"text/html": {"schema": {"type": "string"}}}}},
    }},
    "/docs/{name}": {"get": {
        "summary": "A file of the API reference page", "operationId": "docsFile", "security": [],
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": sorted(ASSETS)}}],
        "responses": {
            "200": {"description": "The file", "headers": CSP_HEADER,
                    "content": {media.split(";")[0]: {"schema": {"type": "string"}} for media in (JS, CSS)}},
            **error_responses(404),
        },
    }},
}

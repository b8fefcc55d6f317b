from otpservice.web.openapi.common import json_content

OPENAPI_PATHS = {
    "/healthz": {"get": {"summary": "The process runs", "operationId": "healthz", "security": [],
                         "responses": {"200": {"description": "ok", "content": json_content({
                             "type": "object", "required": ["status"],
                             "properties": {"status": {"const": "ok"}}})}}}},
    "/readyz": {"get": {"summary": "Redis answers and the configuration is complete", "operationId": "readyz",
                        "security": [],
                        "responses": {code: {"description": text, "content": json_content({
                            "type": "object", "required": ["status", "checks"],
                            "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                                           "checks": {"type": "object",
                                                      "additionalProperties": {"type": "string"}}}})}
                            for code, text in (("200", "ready"), ("503", "a check failed: see `checks`"))}}},
}

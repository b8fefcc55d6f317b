from otpservice import vocabulary
from otpservice.web.admin import DEFAULT_LIMIT, MAX_LIMIT
from otpservice.web.openapi.common import enum, error_responses, json_content, ref

ADMIN = [{"adminToken": []}]
PHONE_PATH = [{"name": "phone_number", "in": "path", "required": True, "schema": ref("PhoneNumber"),
               "description": "URL-encoded (`%2B13125550123`); never used as a pattern."}]
# 429: the caller's address failed admin authentication OTP_LIMIT_ADMIN_FAILURES times (limit admin_client_ip).
OPT_OUT_ERRORS = error_responses(401, 403, 422, 429, 500, 503)
PROVIDER_ERROR = {"502": {"description": "`provider_error`: Telnyx refused the list request (key, profile).",
                          "content": json_content(ref("Error"))}}

OPENAPI_SCHEMAS = {
    "OptOutRecord": {
        "type": "object", "required": ["source", "keyword", "messaging_profile_id", "created_at"],
        "properties": {
            "source": enum(vocabulary.OPT_OUT_SOURCES),
            "keyword": {"type": ["string", "null"]}, "messaging_profile_id": {"type": ["string", "null"]},
            "created_at": ref("Timestamp")}},
    "OptOut": {
        "type": "object", "required": ["phone_number", "opted_out", "records"],
        "properties": {"phone_number": {"type": "string"}, "opted_out": {"type": "boolean"},
                       "records": {"type": "array", "items": ref("OptOutRecord")}}},
    "OptOutPage": {
        "type": "object", "required": ["data", "next_cursor"],
        "properties": {"data": {"type": "array", "items": ref("OptOut")},
                       "next_cursor": {"type": ["string", "null"]}}},
    "OptOutSyncResult": {
        "type": "object", "required": ["listed", "added", "removed"],
        "properties": {"listed": {"type": "integer", "minimum": 0,
                                  "description": "Numbers on Telnyx's list (of the messaging profile)."},
                       "added": {"type": "integer", "minimum": 0, "description": "Local records created."},
                       "removed": {"type": "integer", "minimum": 0,
                                   "description": "Local `telnyx`/`send_rejected` records of numbers Telnyx "
                                                  "no longer lists."}}},
    "VerificationList": {
        "type": "object", "required": ["phone_number", "data"],
        "properties": {"phone_number": {"type": "string"},
                       "data": {"type": "array", "items": ref("Verification")}}},
}

OPENAPI_PATHS = {
    "/admin/opt-outs/{phone_number}": {
        "get": {"summary": "A number's opt-out records", "operationId": "getOptOut", "security": ADMIN,
                "parameters": PHONE_PATH + [{"name": "refresh", "in": "query", "required": False,
                                             "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                                             "description": "Ask Telnyx's list live first."}],
                "responses": {"200": {"description": "The records (empty: not opted out).",
                                      "content": json_content(ref("OptOut"))},
                              **error_responses(400), **PROVIDER_ERROR, **OPT_OUT_ERRORS}},
        "put": {"summary": "Block a number (source `admin`)", "operationId": "blockNumber", "security": ADMIN,
                "parameters": PHONE_PATH,
                "requestBody": {"required": False, "content": json_content({
                    "type": "object", "properties": {"keyword": {"type": "string", "maxLength": 64}}})},
                "responses": {"200": {"description": "Blocked.", "content": json_content(ref("OptOut"))},
                              **error_responses(400, 415), **OPT_OUT_ERRORS}},
        "delete": {"summary": "Remove the local admin and inbound_stop records", "operationId": "unblockNumber",
                   "security": ADMIN, "parameters": PHONE_PATH,
                   "responses": {"200": {"description": "What remains (Telnyx's own block stays).",
                                         "content": json_content(ref("OptOut"))}, **OPT_OUT_ERRORS}},
    },
    "/admin/opt-outs": {"get": {
        "summary": "Opted-out numbers, paged", "operationId": "listOptOuts", "security": ADMIN,
        "parameters": [{"name": "limit", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                       {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "One page.", "content": json_content(ref("OptOutPage"))},
                      **error_responses(400, 401, 403, 429, 500, 503)}}},
    "/admin/opt-outs/sync": {"post": {
        "summary": "Pull Telnyx's whole opt-out list (every page)", "operationId": "syncOptOuts",
        "security": ADMIN,
        "responses": {"200": {"description": "Synced.", "content": json_content(ref("OptOutSyncResult"))},
                      **PROVIDER_ERROR, **error_responses(401, 403, 429, 500, 503)}}},
    "/admin/verifications": {"get": {
        "summary": "A number's verifications of the last 24 h, newest first", "operationId": "listVerifications",
        "security": ADMIN,
        "parameters": [{"name": "phone_number", "in": "query", "required": True, "schema": ref("PhoneNumber")}],
        "responses": {"200": {"description": "Newest first.", "content": json_content(ref("VerificationList"))},
                      **error_responses(400, 401, 403, 422, 429, 500, 503)}}},
}

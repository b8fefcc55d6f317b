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
    "FraudBlockList": {
        "type": "object", "required": ["mode", "data"],
        "properties": {"mode": {**enum(vocabulary.FRAUD_MODES), "description": "OTP_FRAUD_GUARD now."},
                       "data": {"type": "array", "items": ref("FraudBlock")}}},
    "FraudBlockLifted": {"allOf": [ref("FraudBlock"), {
        "type": "object", "required": ["exempt_until"],
        "properties": {"exempt_until": {**ref("Timestamp"),
                                        "description": "The scope is not blocked again before then."}}}]},
    "FraudCounts": {
        "type": "object", "required": ["sent", "approved", "failed", "conversion"],
        "properties": {"sent": {"type": "integer", "minimum": 0}, "approved": {"type": "integer", "minimum": 0},
                       "failed": {"type": "integer", "minimum": 0},
                       "conversion": {"type": "number", "minimum": 0, "maximum": 1,
                                      "description": "approved / (sent - failed); 1 before any text."}}},
    "FraudConversion": {
        "type": "object", "required": ["scope", "window", "history", "window_seconds", "history_seconds"],
        "properties": {"scope": {"type": "string"}, "window": ref("FraudCounts"), "history": ref("FraudCounts"),
                       "window_seconds": {"type": "integer"}, "history_seconds": {"type": "integer"}}},
    "AllowEntry": {
        "type": "object", "required": ["entry", "note", "added_at"],
        "properties": {"entry": {"type": "string"}, "note": {"type": "string"}, "added_at": ref("Timestamp")}},
    "AllowList": {"type": "object", "required": ["data"],
                  "properties": {"data": {"type": "array", "items": ref("AllowEntry")}}},
    "Spend": {
        "type": "object", "required": ["day", "currency", "total", "limit", "countries"],
        "properties": {"day": {"type": "string", "format": "date"}, "currency": {"type": "string"},
                       "total": {"type": "number"}, "limit": {"type": ["number", "null"]},
                       "countries": {"type": "object", "additionalProperties": {
                           "type": "object", "required": ["spent", "limit"],
                           "properties": {"spent": {"type": "number"}, "limit": {"type": ["number", "null"]}}}}}},
    "VerificationList": {
        "type": "object", "required": ["phone_number", "data"],
        "properties": {"phone_number": {"type": "string"},
                       "data": {"type": "array", "items": ref("Verification")}}},
}

FRAUD_ERRORS = error_responses(401, 403, 429, 500, 503)
SCOPE_PATH = [{"name": "scope", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 80},
               "description": "As the block record names it, URL-encoded (`country:LV`, `prefix:%2B3712000`)."}]
ENTRY_PATH = [{"name": "entry", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": "^\\+[1-9][0-9]{2,14}$"},
               "description": "An E.164 number or prefix, URL-encoded (`%2B3712000`)."}]
NOT_LISTED = {"description": "`not_found`: nothing to remove.", "content": json_content(ref("Error"))}

OPENAPI_PATHS = {
    "/admin/fraud/blocks": {"get": {
        "summary": "The fraud guard's live blocks, newest first", "operationId": "listFraudBlocks",
        "security": ADMIN,
        "description": "Every block the guard recorded and not yet ended, enforced or (mode shadow) only recorded.",
        "responses": {"200": {"description": "The blocks.", "content": json_content(ref("FraudBlockList"))},
                      **FRAUD_ERRORS}}},
    "/admin/fraud/blocks/{scope}": {"delete": {
        "summary": "Lift a block", "operationId": "liftFraudBlock", "security": ADMIN, "parameters": SCOPE_PATH,
        "description": "The scope's next request goes through: it is exempt from the guard's rules for "
                       "OTP_FRAUD_BLOCK_SECONDS.",
        "responses": {"200": {"description": "Lifted.", "content": json_content(ref("FraudBlockLifted"))},
                      "404": {"description": "`not_found`: no live block on this scope.",
                              "content": json_content(ref("Error"))},
                      **error_responses(400), **FRAUD_ERRORS}}},
    "/admin/fraud/conversion": {"get": {
        "summary": "A scope's texts, approved codes and failed deliveries", "operationId": "getFraudConversion",
        "security": ADMIN,
        "parameters": [{"name": "scope", "in": "query", "required": True, "schema": {"type": "string"},
                        "description": "prefix:<E.164 minus 4 digits>, country:<region> or route:<name>."}],
        "responses": {"200": {"description": "The window's and the history's counts.",
                              "content": json_content(ref("FraudConversion"))},
                      **error_responses(400), **FRAUD_ERRORS}}},
    "/admin/fraud/allow": {"get": {
        "summary": "Numbers and prefixes the fraud guard never blocks", "operationId": "listFraudAllow",
        "security": ADMIN,
        "responses": {"200": {"description": "The allow list.", "content": json_content(ref("AllowList"))},
                      **FRAUD_ERRORS}}},
    "/admin/fraud/allow/{entry}": {
        "put": {"summary": "Never block this number or prefix", "operationId": "addFraudAllow", "security": ADMIN,
                "parameters": ENTRY_PATH,
                "requestBody": {"required": False, "content": json_content({
                    "type": "object", "properties": {"note": {"type": "string", "maxLength": 200}}})},
                "responses": {"200": {"description": "On the list (the spend caps still apply).",
                                      "content": json_content(ref("AllowEntry"))},
                              **error_responses(400, 415), **FRAUD_ERRORS}},
        "delete": {"summary": "Take a number or prefix off the allow list", "operationId": "removeFraudAllow",
                   "security": ADMIN, "parameters": ENTRY_PATH,
                   "responses": {"200": {"description": "Removed.", "content": json_content({
                       "type": "object", "required": ["entry", "removed"],
                       "properties": {"entry": {"type": "string"}, "removed": {"const": True}}})},
                       "404": NOT_LISTED, **error_responses(400), **FRAUD_ERRORS}}},
    "/admin/fraud/spend": {"get": {
        "summary": "Today's (UTC) spend on texts against the caps", "operationId": "getSpend", "security": ADMIN,
        "responses": {"200": {"description": "Total and per country, in OTP_SPEND_CURRENCY.",
                              "content": json_content(ref("Spend"))}, **FRAUD_ERRORS}}},
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

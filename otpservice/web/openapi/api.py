from otpservice import vocabulary
from otpservice.web.openapi.common import enum, error_responses, json_content, ref

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                               "schema": {"type": "integer", "minimum": 1}}}

OPENAPI_SCHEMAS = {
    "CodeRequest": {
        "type": "object", "required": ["phone_number"],
        "properties": {
            "phone_number": ref("PhoneNumber"), "purpose": ref("Purpose"),
            "locale": {"type": "string", "maxLength": 35, "description": "BCP 47; picks the message template, "
                       "falling back to the number's country language, then English."},
            "client_ip": {"type": "string", "maxLength": 64,
                          "description": "The end user's IP address, for per-IP limits."},
            "device_id": {"type": "string", "minLength": 1, "maxLength": 128,
                          "description": "The end user's device, as your app knows it: code requests per device "
                                         "have a velocity budget (OTP_LIMIT_DEVICE), past which the fraud guard "
                                         "blocks the device. Only a digest is kept."},
            "user_id": {"type": "string", "minLength": 1, "maxLength": 128,
                        "description": "The end user's account: as device_id, under OTP_LIMIT_USER."},
            "channel": {**enum(vocabulary.SEND_CHANNELS),
                        "description": "How the code goes: an SMS, or WhatsApp's authentication template (its "
                                       "copy-code button). Default: the channel of the first route of the number's "
                                       "country (OTP_ROUTES_FILE). The code, its limits, opt-outs and attempts are "
                                       "the same whatever the channel."},
        },
        "additionalProperties": True, "description": "Unknown fields are ignored.",
    },
    "CodeRequested": {
        "type": "object",
        "required": ["verification_id", "phone_number", "purpose", "channel", "status", "expires_at",
                     "expires_in", "resend_after", "send_count", "delivery"],
        "properties": {
            "verification_id": {"type": "string", "format": "uuid"},
            "phone_number": {"type": "string"}, "purpose": {"type": "string"},
            "channel": enum(vocabulary.SEND_CHANNELS), "status": {"const": "pending"},
            "expires_at": ref("Timestamp"), "expires_in": {"type": "integer", "minimum": 0},
            "resend_after": {"type": "integer", "minimum": 0,
                             "description": "Seconds before another code may be sent for this number and purpose."},
            "send_count": {"type": "integer", "minimum": 1,
                           "description": "Codes sent for this verification (a resend keeps the id)."},
            "delivery": {"type": "object", "required": ["status", "message_id"], "properties": {
                "status": enum(vocabulary.DELIVERY_STATUSES),
                "message_id": {"type": ["string", "null"]}}},
        },
    },
    "VerifyRequest": {
        "type": "object", "required": ["code"],
        "description": "Either `phone_number` (+ optional `purpose`), or `verification_id`, or for TOTP "
                       "`user_id` with `channel: totp`.",
        "properties": {
            "phone_number": ref("PhoneNumber"), "purpose": ref("Purpose"),
            "verification_id": {"type": "string"}, "user_id": {"type": "string"},
            "channel": {**enum(vocabulary.CHANNELS), "default": vocabulary.SMS},
            "code": {"type": "string", "description": "Exactly OTP_CODE_DIGITS ASCII digits (6 for TOTP)."},
            "client_ip": {"type": "string", "maxLength": 64,
                          "description": "The end user's IP address: its wrong codes count against "
                                         "OTP_LIMIT_VERIFY_FAILURES_IP (429 `rate_limited`, limit "
                                         "`verify_client_ip`, past it, without checking the code)."},
        },
    },
    "VerifyResult": {
        "type": "object", "required": ["valid", "status"],
        "properties": {
            "valid": {"type": "boolean"},
            "status": {"type": "string", "enum": ["approved", "pending", "max_attempts_reached"]},
            "verification_id": {"type": "string"}, "phone_number": {"type": "string"},
            "purpose": {"type": "string"}, "user_id": {"type": "string"}, "channel": {"type": "string"},
            "attempts_remaining": {"type": "integer", "minimum": 0},
        },
    },
    "Send": {
        "type": "object",
        "required": ["message_id", "endpoint", "route", "channel", "sent_at", "delivery_status",
                     "delivery_updated_at", "errors"],
        "properties": {
            "message_id": {"type": ["string", "null"], "description": "Telnyx's id; null when never accepted."},
            "endpoint": enum(vocabulary.ENDPOINTS),
            "route": {"type": "string", "description": "The route the text took: its name in OTP_ROUTES_FILE, or "
                                                       "`primary` / `failover` for the settings' routes."},
            "channel": enum(vocabulary.SEND_CHANNELS),
            "sent_at": ref("Timestamp"),
            "delivery_status": {**enum(vocabulary.DELIVERY_STATUSES),
                                "description": "Telnyx's status; `unknown` when Telnyx never answered."},
            "delivery_updated_at": ref("Timestamp"),
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "code": {"type": "string"}, "title": {"type": "string"}}}},
        },
    },
    "Verification": {
        "type": "object",
        "required": ["verification_id", "phone_number", "purpose", "channel", "status", "created_at",
                     "expires_at", "attempts", "attempts_remaining", "sends"],
        "properties": {
            "verification_id": {"type": "string"}, "phone_number": {"type": "string"},
            "purpose": {"type": "string"}, "channel": enum(vocabulary.CHANNELS),
            "status": enum(vocabulary.VERIFICATION_STATUSES),
            "created_at": ref("Timestamp"), "expires_at": ref("Timestamp"),
            "attempts": {"type": "integer", "minimum": 0}, "attempts_remaining": {"type": "integer", "minimum": 0},
            "send_count": {"type": "integer", "minimum": 0},
            "sends": {"type": "array", "items": ref("Send")},
        },
    },
}

VERIFICATION_ID = [{"name": "verification_id", "in": "path", "required": True, "schema": {"type": "string"}}]

OPENAPI_PATHS = {
    "/request-code": {"post": {
        "summary": "Text a one-time code to a number",
        "operationId": "requestCode",
        "description": "Checks run before anything is sent, in this order: input, country, number type, "
                       "opt-out, rate limits. One live code per number and purpose: a request after the "
                       "cooldown sends a new code, keeps the verification id and does not reset attempts. "
                       "With `Idempotency-Key`, the same key and body within 24 h return the first answer "
                       "(header `Idempotent-Replayed: true`) and send nothing; 5xx answers are not kept, so "
                       "a retry runs for real. The text goes on the first route of the number's country and "
                       "channel; a route Telnyx refuses for its sender or profile (40305, 40306, 40312, 40321) "
                       "hands it to the next, within the send deadline, never after an answer that may be an "
                       "acceptance; a resend after a failed delivery starts on the route after the failed one.",
        "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 128}}],
        "requestBody": {"required": True, "content": json_content(ref("CodeRequest"))},
        "responses": {
            "202": {"description": "The code was handed to Telnyx (`delivery.status` queued or sent, with its "
                                   "message id), or the send deadline passed without a definite answer "
                                   "(`delivery.status` `unknown`, `message_id` null): the text may still arrive, the "
                                   "code is valid and the cooldown holds.",
                    "content": json_content(ref("CodeRequested"))},
            "403": {"description": "Nothing was sent: `country_not_allowed` (outside OTP_ALLOWED_COUNTRIES, or a "
                                   "non-geographic number without OTP_ALLOW_NON_GEOGRAPHIC), `verification_blocked` "
                                   "(the fraud guard: `reason` names the scope, rule and figures, and when the "
                                   "block ends), `spend_limit_reached` (a daily spend cap: `reason` gives the cap, "
                                   "the spend and when it resets), or `forbidden` (the key may not use this route).",
                    "content": json_content(ref("Error"))},
            "409": {"description": "`opted_out` (or `idempotency_in_progress`): nothing was sent.",
                    "content": json_content(ref("Error"))},
            "429": {"description": "`rate_limited`: body `retry_after` and `limit` (`resend_cooldown` runs from the "
                                   "latest text whatever became of its code; `phone_number_failures`: the "
                                   "number's wrong codes locked it, no code is sent until the lock ends).",
                    "headers": RETRY_AFTER,
                    "content": json_content(ref("Error"))},
            "502": {"description": "`provider_error`: Telnyx refused for a reason of ours (auth, sender, "
                                   "profile).", "content": json_content(ref("Error"))},
            "503": {"description": "`provider_unavailable` (every attempt refused by Telnyx with a 5xx or 429, or "
                                   "every send slot of the process taken: nothing reserved) or `store_unavailable`.",
                    "headers": RETRY_AFTER,
                    "content": json_content(ref("Error"))},
            "422": {"description": "`invalid_phone_number`, `unsupported_number_type`, `idempotency_key_reused`, or "
                                   "`channel_unavailable` (no route sends that channel to the number's country): "
                                   "nothing was reserved or sent.", "content": json_content(ref("Error"))},
            **error_responses(400, 401, 413, 415, 500),
        },
    }},
    "/verify": {"post": {
        "summary": "Check a code; a right code is spent at once",
        "operationId": "verify",
        "description": "A wrong code answers 200 with `valid: false`. A malformed code (not exactly the "
                       "configured number of ASCII digits) is 400 and uses no attempt.",
        "requestBody": {"required": True, "content": json_content(ref("VerifyRequest"))},
        "responses": {
            "200": {"description": "The verdict.", "content": json_content(ref("VerifyResult"))},
            "404": {"description": "`verification_not_found`: none pending (never issued, expired, approved, "
                                   "canceled).", "content": json_content(ref("Error"))},
            "429": {"description": "`max_attempts_reached`: the code used its attempts, or the number its "
                                   "daily failures (`Retry-After`: when the lock ends); `rate_limited` (limit "
                                   "`verify_client_ip`): the client's wrong codes are spent.",
                    "headers": RETRY_AFTER, "content": json_content(ref("Error"))},
            **error_responses(400, 401, 413, 415, 422, 500, 503),
        },
    }},
    "/verifications/{verification_id}": {
        "get": {"summary": "A verification and the delivery of each of its texts", "operationId": "getVerification",
                "parameters": VERIFICATION_ID,
                "responses": {"200": {"description": "The record (kept OTP_RECORD_RETENTION after creation).",
                                      "content": json_content(ref("Verification"))},
                              "404": {"description": "`verification_not_found`.",
                                      "content": json_content(ref("Error"))},
                              **error_responses(401, 500, 503)}},
        "delete": {"summary": "Cancel a pending verification", "operationId": "cancelVerification",
                   "parameters": VERIFICATION_ID,
                   "responses": {"200": {"description": "Canceled; its code no longer verifies.",
                                         "content": json_content(ref("Verification"))},
                                 "404": {"description": "`verification_not_found`: none pending with this id.",
                                         "content": json_content(ref("Error"))},
                                 **error_responses(401, 500, 503)}},
    },
}

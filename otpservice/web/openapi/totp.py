from otpservice import vocabulary
from otpservice.web.openapi.common import enum, error_responses, json_content, ref

USER_ID = {"type": "string", "pattern": "^[A-Za-z0-9._@+=:-]{1,128}$",
           "description": "The caller's own id for the user (letters, digits and . _ - @ + = :)."}
USER_ID_PARAM = [{"name": "user_id", "in": "path", "required": True, "schema": USER_ID}]
NULLABLE_TIMESTAMP = {"oneOf": [ref("Timestamp"), {"type": "null"}]}
RETRY_AFTER = {"Retry-After": {"description": "Seconds until the factor unlocks.",
                               "schema": {"type": "integer", "minimum": 1}}}

OPENAPI_SCHEMAS = {
    "TotpEnrollRequest": {
        "type": "object", "required": ["user_id"],
        "properties": {"user_id": USER_ID, "label": {
            "type": "string", "minLength": 1, "maxLength": 128,
            "description": "Account name the app shows (no colon); default: user_id."}},
    },
    "TotpEnrollment": {
        "type": "object", "required": ["user_id", "status", "provisioning_uri", "secret", "qr_svg", "expires_at"],
        "properties": {
            "user_id": {"type": "string"}, "status": {"const": "unconfirmed"},
            "provisioning_uri": {"type": "string", "description": "otpauth://totp/... with issuer OTP_APP_NAME."},
            "secret": {"type": "string", "description": "Base32 secret for manual entry; never shown again."},
            "qr_svg": {"type": "string", "description": "The provisioning URI as an SVG QR code."},
            "expires_at": {**ref("Timestamp"), "description": "Confirm before this (OTP_TOTP_ENROLL_TTL)."},
        },
    },
    "TotpConfirmRequest": {
        "type": "object", "required": ["user_id", "code"],
        "properties": {"user_id": USER_ID, "code": {"type": "string", "pattern": "^[0-9]{6}$"}},
    },
    "TotpConfirmResult": {
        "type": "object", "required": ["valid", "user_id", "status"],
        "properties": {
            "valid": {"type": "boolean"}, "user_id": {"type": "string"},
            "status": enum(vocabulary.FACTOR_STATUSES),
            "attempts_remaining": {"type": "integer", "minimum": 0, "description": "On a wrong code."},
        },
    },
    "TotpFactor": {
        "type": "object",
        "required": ["user_id", "status", "label", "created_at", "expires_at", "confirmed_at", "last_used_at",
                     "attempts_remaining", "locked_until"],
        "properties": {
            "user_id": {"type": "string"}, "status": enum(vocabulary.FACTOR_STATUSES),
            "label": {"type": "string"}, "created_at": ref("Timestamp"),
            "expires_at": {**NULLABLE_TIMESTAMP, "description": "Unconfirmed only; a confirmed factor never "
                                                                 "expires."},
            "confirmed_at": NULLABLE_TIMESTAMP, "last_used_at": NULLABLE_TIMESTAMP,
            "attempts_remaining": {"type": "integer", "minimum": 0},
            "locked_until": {**NULLABLE_TIMESTAMP, "description": "Set while wrong codes lock the factor."},
        },
    },
    "TotpDeleted": {
        "type": "object", "required": ["user_id", "status"],
        "properties": {"user_id": {"type": "string"}, "status": {"const": "deleted"}},
    },
}

OPENAPI_PATHS = {
    "/totp/enroll": {"post": {
        "summary": "Enroll an authenticator app for a user",
        "operationId": "totpEnroll",
        "description": "Makes a new secret and returns it once (URI, base32, QR). The factor is `unconfirmed` "
                       "until /totp/confirm, and an unconfirmed enrollment expires after OTP_TOTP_ENROLL_TTL; "
                       "enrolling again replaces it. A confirmed factor must be deleted first (409).",
        "requestBody": {"required": True, "content": json_content(ref("TotpEnrollRequest"))},
        "responses": {
            "201": {"description": "Enrolled, unconfirmed.", "content": json_content(ref("TotpEnrollment"))},
            "409": {"description": "`totp_exists`: the user has a confirmed factor.",
                    "content": json_content(ref("Error"))},
            **error_responses(400, 401, 413, 415, 500, 503),
        },
    }},
    "/totp/confirm": {"post": {
        "summary": "Confirm an enrollment with a code from the app",
        "operationId": "totpConfirm",
        "description": "A right code (±1 step of 30 s) confirms the factor and is spent; a wrong one answers "
                       "200 with `valid: false`. OTP_MAX_ATTEMPTS wrong codes lock the factor for "
                       "OTP_TOTP_LOCKOUT (429).",
        "requestBody": {"required": True, "content": json_content(ref("TotpConfirmRequest"))},
        "responses": {
            "200": {"description": "The verdict.", "content": json_content(ref("TotpConfirmResult"))},
            "404": {"description": "`totp_not_found`: no enrollment awaiting confirmation.",
                    "content": json_content(ref("Error"))},
            "409": {"description": "`totp_exists`: already confirmed.", "content": json_content(ref("Error"))},
            "429": {"description": "`max_attempts_reached`: too many wrong codes.", "headers": RETRY_AFTER,
                    "content": json_content(ref("Error"))},
            **error_responses(400, 401, 413, 415, 500, 503),
        },
    }},
    "/totp/{user_id}": {
        "get": {"summary": "A user's authenticator factor (never its secret)", "operationId": "totpGet",
                "parameters": USER_ID_PARAM,
                "responses": {"200": {"description": "The factor's state.", "content": json_content(ref("TotpFactor"))},
                              "404": {"description": "`totp_not_found`.", "content": json_content(ref("Error"))},
                              **error_responses(400, 401, 500, 503)}},
        "delete": {"summary": "Remove a user's authenticator factor", "operationId": "totpDelete",
                   "parameters": USER_ID_PARAM,
                   "responses": {"200": {"description": "Removed; its codes no longer verify.",
                                         "content": json_content(ref("TotpDeleted"))},
                                 "404": {"description": "`totp_not_found`.", "content": json_content(ref("Error"))},
                                 **error_responses(400, 401, 500, 503)}},
    },
}

"""One JSON error vocabulary for every failure: `{"error": {"code": ..., "message": ...}}`.

Domain modules raise `ServiceError` subclasses (no Flask here); `register_error_handlers` renders them,
and turns HTTP errors and unexpected exceptions into the same shape, never HTML or a traceback.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error the API answers with: HTTP status, machine code, sentence, extra body fields, headers."""

    status = 400
    code = "invalid_request"
    message = "The request is invalid."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None,
                 **fields: Any) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.headers = headers or {}
        self.fields = fields

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error."""
        return {"error": {"code": self.code, "message": self.message, **self.fields}}


def _error(name: str, status: int, code: str, message: str) -> type[ServiceError]:
    return type(name, (ServiceError,), {"status": status, "code": code, "message": message})


InvalidRequest = _error("InvalidRequest", 400, "invalid_request", "The request is invalid.")
Unauthorized = _error("Unauthorized", 401, "unauthorized", "A valid API key is required.")
Forbidden = _error("Forbidden", 403, "forbidden", "This key may not use this endpoint.")
NotFound = _error("NotFound", 404, "not_found", "No such resource.")
MethodNotAllowed = _error("MethodNotAllowed", 405, "method_not_allowed", "This method is not allowed here.")
PayloadTooLarge = _error("PayloadTooLarge", 413, "payload_too_large", "The request body is too large.")
UnsupportedMediaType = _error("UnsupportedMediaType", 415, "unsupported_media_type",
                              "Send the body as application/json.")
InvalidPhoneNumber = _error("InvalidPhoneNumber", 422, "invalid_phone_number",
                            "The phone number is not a valid number.")
CountryNotAllowed = _error("CountryNotAllowed", 403, "country_not_allowed",
                           "Codes are not sent to numbers of this country.")
UnsupportedNumberType = _error("UnsupportedNumberType", 422, "unsupported_number_type",
                               "Codes are not sent to this type of number.")
ChannelUnavailable = _error("ChannelUnavailable", 422, "channel_unavailable",
                            "No route sends codes over this channel to this number's country.")
OptedOut = _error("OptedOut", 409, "opted_out", "The recipient has opted out of messages.")
IdempotencyKeyReused = _error("IdempotencyKeyReused", 422, "idempotency_key_reused",
                              "This Idempotency-Key was used with a different request.")
IdempotencyInFlight = _error("IdempotencyInFlight", 409, "idempotency_in_progress",
                             "A request with this Idempotency-Key is still being processed.")
VerificationNotFound = _error("VerificationNotFound", 404, "verification_not_found",
                              "No pending verification matches.")
MaxAttemptsReached = _error("MaxAttemptsReached", 429, "max_attempts_reached",
                            "Too many wrong codes: request a new code.")
ProviderError = _error("ProviderError", 502, "provider_error",
                       "The SMS provider refused the message because of the service's configuration.")
InvalidSignature = _error("InvalidSignature", 401, "invalid_signature", "The webhook signature is not valid.")
InvalidPayload = _error("InvalidPayload", 400, "invalid_payload", "The webhook body is not a Telnyx event.")
InternalError = _error("InternalError", 500, "internal_error", "An unexpected error occurred.")
TotpNotFound = _error("TotpNotFound", 404, "totp_not_found", "This user has no authenticator factor.")
TotpExists = _error("TotpExists", 409, "totp_exists",
                    "This user already has a confirmed authenticator factor: delete it before enrolling again.")


class RateLimited(ServiceError):
    """A send or attempt budget is used up: 429 with Retry-After, `retry_after` and the policy that tripped."""

    status = 429
    code = "rate_limited"
    message = "Too many requests: try again later."

    def __init__(self, limit: str, retry_after: int, message: str | None = None) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(retry_after)}, retry_after=retry_after, limit=limit)
        self.limit = limit
        self.retry_after = retry_after


class Blocked(ServiceError):
    """A send the fraud guard or a spend cap refused: 403 with `reason`, which says what decided and why."""

    status = 403

    def __init__(self, reason: dict[str, Any], message: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.reason = reason


class VerificationBlocked(Blocked):
    code = "verification_blocked"
    message = "The fraud guard refused to send a code here: see reason."


class SpendLimitReached(Blocked):
    code = "spend_limit_reached"
    message = "Today's spend cap on texts is reached: no code is sent until it resets."


class Unavailable(ServiceError):
    """A dependency cannot answer: 503 with Retry-After."""

    status = 503

    def __init__(self, message: str | None = None, *, retry_after: int = 5, **fields: Any) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **fields)
        self.retry_after = retry_after


class StoreUnavailable(Unavailable):
    """Redis cannot answer: fail closed, nothing sent, nothing approved."""

    code = "store_unavailable"
    message = "The verification store is unavailable: nothing was sent or approved. Try again shortly."


class ProviderUnavailable(Unavailable):
    """Telnyx timed out, failed or throttled us."""

    code = "provider_unavailable"
    message = "The SMS provider is unavailable: try again later."


HTTP_ERRORS = {400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
               413: PayloadTooLarge, 415: UnsupportedMediaType}


def _codes(cls: type[ServiceError]) -> list[str]:
    found = [cls.code]
    for sub in cls.__subclasses__():
        found += _codes(sub)
    return found


# Every machine code an answer can carry (the OpenAPI enum), from the classes above: one list, never retyped.
ERROR_CODES = tuple(dict.fromkeys(_codes(ServiceError)))

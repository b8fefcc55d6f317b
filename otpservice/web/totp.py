"""Authenticator-app (TOTP) factors over HTTP: enroll, confirm, read, delete. Views only parse and render."""
from __future__ import annotations

from flask import Blueprint

from otpservice import errors
from otpservice.core.totp import TotpService
from otpservice.web.http import json_body, json_response, require_client, services

bp = Blueprint("totp", __name__)


def totp_service() -> TotpService:
    """The TotpService, or 400 when OTP_TOTP_ENABLED is off (the /verify dispatch reaches this too)."""
    totp = services().totp
    if totp is None:
        raise errors.InvalidRequest("Authenticator-app verification is not enabled on this service.",
                                    field="channel")
    return totp


@bp.post("/totp/enroll")
@require_client
def enroll():
    """Make a factor for a user: 201 with its secret, URI and QR code, shown this once."""
    return json_response(totp_service().enroll(json_body()), 201)


@bp.post("/totp/confirm")
@require_client
def confirm():
    """Confirm an enrollment with a code from the app."""
    return json_response(totp_service().confirm(json_body()))


@bp.get("/totp/<user_id>")
@require_client
def get_factor(user_id: str):
    """The factor's state, never its secret."""
    return json_response(totp_service().get(user_id))


@bp.delete("/totp/<user_id>")
@require_client
def delete_factor(user_id: str):
    """Remove the factor."""
    return json_response(totp_service().delete(user_id))

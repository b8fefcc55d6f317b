"""The client API: request a code, verify it, read or cancel a verification. Views only parse and render."""
from __future__ import annotations

from flask import Blueprint

from otpservice import errors, vocabulary
from otpservice.core.idempotency import Answer
from otpservice.web.http import CLIENT_KEY, current, forwarded_ip, json_body, json_response, require_client, \
    services
from otpservice.web.totp import totp_service

bp = Blueprint("api", __name__)


@bp.post("/request-code")
@require_client
def request_code():
    """Text a new code to a number (202), or replay the first answer to a reused Idempotency-Key."""
    req, found = current()
    body = json_body(req)
    verifications, proxy_ip = found.verifications, forwarded_ip(req, found.settings.trusted_proxy_header)

    def handle() -> Answer:
        return Answer(202, verifications.request_code(verifications.parse_request(body, proxy_ip)))

    key = req.headers.get("Idempotency-Key")
    answer = handle() if key is None else found.idempotency.run(req.environ[CLIENT_KEY], key, body, handle)
    headers = {**answer.headers, **({"Idempotent-Replayed": "true"} if answer.replayed else {})}
    return json_response(answer.body, answer.status, headers)


@bp.post("/verify")
@require_client
def verify():
    """Check a code; 200 with `valid` true or false."""
    req, found = current()
    body = json_body(req)
    channel = body.get("channel", vocabulary.SMS)
    if channel == vocabulary.TOTP:
        return json_response(totp_service().verify(body))
    if channel not in vocabulary.SEND_CHANNELS:  # a code texted over any channel is checked the same way
        raise errors.InvalidRequest(f"channel must be one of {', '.join(vocabulary.CHANNELS)}.", field="channel")
    return json_response(found.verifications.verify(body, forwarded_ip(req, found.settings.trusted_proxy_header)))


@bp.get("/verifications/<verification_id>")
@require_client
def get_verification(verification_id: str):
    return json_response(services().verifications.get(verification_id))


@bp.delete("/verifications/<verification_id>")
@require_client
def cancel_verification(verification_id: str):
    return json_response(services().verifications.cancel(verification_id))

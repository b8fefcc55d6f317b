"""The client API: request a code, verify it, read or cancel a verification. Views only parse and render."""
from __future__ import annotations

import hashlib
import json

from flask import Blueprint, current_app, g, request

from otpservice import errors
from otpservice.web import json_body, json_response, require_client

bp = Blueprint("api", __name__)
IDEMPOTENCY_MAX = 128


def service():
    return current_app.extensions["otp.verifications"]


@bp.post("/request-code")
@require_client
def request_code():
    """Text a new code to a number (202), or replay the first answer to a reused Idempotency-Key."""
    body = json_body()
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return json_response(service().request_code(service().parse_request(body)), 202)
    if not 1 <= len(key) <= IDEMPOTENCY_MAX:
        raise errors.InvalidRequest(f"Idempotency-Key must be 1-{IDEMPOTENCY_MAX} characters.")
    return idempotent(key, body)


def idempotent(key: str, body: dict):
    """Run /request-code once per (client, key): the same body gets the first answer, another body 422."""
    store, settings = current_app.extensions["otp.store"], current_app.extensions["otp.settings"]
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    name = store.idempotency_key(g.client_key, key)
    ttl_ms = settings.idempotency_ttl * 1000
    previous = store.idempotency_claim(name, fingerprint, ttl_ms)
    if previous is not None:
        if previous.get("fingerprint") != fingerprint:
            raise errors.IdempotencyKeyReused()
        if previous.get("state") != "done":
            raise errors.IdempotencyInFlight(headers={"Retry-After": "1"})
        return json_response(previous["body"], previous["status"],
                             {**previous.get("headers", {}), "Idempotent-Replayed": "true"})
    try:
        result = service().request_code(service().parse_request(body))
        status, answer, headers = 202, result, {}
    except errors.ServiceError as exc:
        if exc.status >= 500:
            store.idempotency_release(name)  # transient: let the retry run for real
            raise
        status, answer, headers = exc.status, exc.to_dict(), exc.headers
    except Exception:
        store.idempotency_release(name)
        raise
    store.idempotency_store(name, fingerprint, status, answer, headers, ttl_ms)
    return json_response(answer, status, headers)


@bp.post("/verify")
@require_client
def verify():
    """Check a code; 200 with `valid` true or false."""
    return json_response(service().verify(json_body()))


@bp.get("/verifications/<verification_id>")
@require_client
def get_verification(verification_id: str):
    return json_response(service().get(verification_id))


@bp.delete("/verifications/<verification_id>")
@require_client
def cancel_verification(verification_id: str):
    return json_response(service().cancel(verification_id))

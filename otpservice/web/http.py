"""HTTP plumbing shared by the views: the app's services, JSON bodies, bearer auth, JSON errors for every
failure, and the request envelope (request id, access line, request count)."""
from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from otpservice import errors
from otpservice.core.sendgate import ip_scope
from otpservice.observability.logs import REQUEST_ID, scrub
from otpservice.wiring import Services

log = logging.getLogger(__name__)
access_log = logging.getLogger("otpservice.access")

EXTENSION = "otpservice"
SERVICES = "otpservice.services"  # the app's services in the WSGI environ, put there by RequestEnvelope
CLIENT_KEY = "otpservice.client_key"  # the caller's client key, once require_client has accepted it
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def current() -> tuple[Request, Services]:
    """The request being served and its app's services (wiring.py).

    One context lookup for both: every `request.x` or `current_app.x` is a lookup of its own, and the views
    use this request's attributes many times (bench/RESULTS.md counts what they cost /verify).
    """
    req = request._get_current_object()  # werkzeug's documented way to the object behind the proxy
    return req, req.environ[SERVICES]


def services() -> Services:
    """The services of the app serving this request."""
    return current()[1]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise `body` compactly as application/json; charset=utf-8."""
    return Response(ENCODER.encode(body), status=status, headers=headers,
                    content_type="application/json; charset=utf-8")


def raw_body(req: Request | None = None) -> bytes:
    """The request body (a body over MAX_CONTENT_LENGTH is 413, with or without a Content-Length)."""
    req = req or current()[0]
    body = req.get_data(cache=True)
    if req.content_length is None:
        limit = req.max_content_length
        if limit is not None and len(body) >= limit and req.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()  # werkzeug stops reading a chunked body at the limit without a word
    return body


def json_body(req: Request | None = None) -> dict[str, Any]:
    """The request's JSON object, or InvalidRequest (bad JSON, not an object), or UnsupportedMediaType for a body
    that does not say it is JSON (a form post is never read as one). Unknown fields are kept."""
    req = req or current()[0]
    raw = raw_body(req)
    if not raw:
        raise errors.InvalidRequest("The body must be a JSON object.")
    if req.mimetype != "application/json":
        raise errors.UnsupportedMediaType("Send the body as application/json (Content-Type: application/json).")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The body must be a JSON object.")
    return body


def forwarded_ip(req: Request, header: str) -> str | None:
    """The end user's address from OTP_TRUSTED_PROXY_HEADER (`header`), only when one is configured.

    Of a list (X-Forwarded-For), the last entry: the one the trusted proxy itself wrote.
    """
    value = req.headers.get(header, "") if header else ""
    return value.split(",")[-1].strip() or None


def client_address(req: Request, header: str) -> str:
    """Who is calling, for per-client budgets: the trusted proxy header's address, else the peer's (as an IPv6
    /64 where it is one)."""
    return ip_scope(forwarded_ip(req, header)) or ip_scope(req.remote_addr) or "unknown"


def bearer_token(req: Request) -> str | None:
    scheme, _, token = req.environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def matches(token: str, candidates: tuple[str, ...] | list[str]) -> bool:
    """Constant-time membership: every candidate is compared, whatever matched first."""
    given = token.encode()
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(given, candidate.encode())
    return found


def require_client(view: Callable) -> Callable:
    """Client-key authentication: 401 `unauthorized` before anything else happens."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        req, found = current()
        token = bearer_token(req)
        if not token or not matches(token, found.settings.api_keys):
            raise errors.Unauthorized()
        req.environ[CLIENT_KEY] = token
        return view(*args, **kwargs)
    return wrapper


def require_admin(view: Callable) -> Callable:
    """Admin-token authentication: none 401, a client key 403, anything else wrong 401."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        req, found = current()
        settings = found.settings
        client = client_address(req, settings.trusted_proxy_header)
        found.admin_failures.check(client)  # 429 once this client failed too often: guessing runs at its pace
        token = bearer_token(req)
        if token and settings.admin_token and matches(token, [settings.admin_token]):
            return view(*args, **kwargs)
        reason = "client_key" if token and matches(token, settings.api_keys) else "wrong" if token else "missing"
        found.admin_failures.fail(client)
        found.metrics.admin_auth_failed()
        log.warning("admin authentication failed", extra={"client": client, "reason": reason,
                                                          "path": req.url_rule.rule if req.url_rule else "?"})
        if reason == "client_key":
            raise errors.Forbidden("Client keys may not use admin endpoints.")
        raise errors.Unauthorized("A valid admin token is required.")
    return wrapper


def render_error(exc: errors.ServiceError) -> Response:
    return json_response(exc.to_dict(), exc.status, exc.headers)


def register_error_handlers(app: Flask) -> None:
    """Every failure, expected or not, answers in the contract's JSON error shape."""

    @app.errorhandler(errors.ServiceError)
    def service_error(exc: errors.ServiceError):
        return render_error(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        cls = errors.HTTP_ERRORS.get(exc.code or 500)
        if cls is None:
            err = errors.ServiceError(exc.description or "HTTP error")
            err.status, err.code = exc.code or 500, (exc.name or "error").lower().replace(" ", "_")
        else:
            err = cls()
        response = render_error(err)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error: %s", type(exc).__name__)
        return render_error(errors.InternalError())


class RequestEnvelope:
    """WSGI middleware around the Flask app: a request id, one access line and one count per request.

    A sane X-Request-ID is kept, anything else replaced by 16 random bytes in hex; it is echoed on the response
    and stamped on every log line written during the request (observability.logs.REQUEST_ID). The access line
    and the count name the matched route's pattern (`/totp/<user_id>`), so no user id or number in a path
    reaches logs or metrics.
    """

    def __init__(self, wsgi_app: Callable, services: Services) -> None:
        self.wsgi_app = wsgi_app
        self.services = services
        self.metrics = services.metrics

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        environ[SERVICES] = self.services
        given = environ.get("HTTP_X_REQUEST_ID")
        request_id = given if given and REQUEST_ID_RE.match(given) else os.urandom(16).hex()
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()

        def start(status: str, headers: list, exc_info=None):
            # Flask calls this before it pops the request context: the matched rule is still on the request.
            req = environ.get("werkzeug.request")
            rule = req.url_rule if req is not None else None
            route = rule.rule if rule is not None else None
            code = int(status[:3])
            method = environ.get("REQUEST_METHOD", "")
            self.metrics.http_request(route or "unmatched", method, code)
            if access_log.isEnabledFor(logging.INFO):  # every request passes here: build the line only if kept
                path = route or scrub(environ.get("PATH_INFO", "")[:200])
                access_log.info("request", extra={"method": method, "path": path, "status": code,
                                                  "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
            headers.append(("X-Request-ID", request_id))
            # Answers carry codes' fate, opt-outs and secrets shown once: no proxy or browser may keep one.
            if not any(name.lower() == "cache-control" for name, _ in headers):
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            REQUEST_ID.reset(token)

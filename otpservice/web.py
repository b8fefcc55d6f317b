"""HTTP plumbing shared by the blueprints: JSON bodies, bearer auth, and JSON errors for every failure."""
from __future__ import annotations

import functools
import hmac
import json
import logging
from typing import Any, Callable

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from otpservice import errors

log = logging.getLogger(__name__)


# One encoder for every answer: json.dumps with non-default options builds a new JSONEncoder on each call.
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise `body` compactly as application/json; charset=utf-8."""
    return Response(ENCODER.encode(body), status=status, headers=headers,
                    content_type="application/json; charset=utf-8")


EXTENSIONS_KEY = "otpservice.extensions"  # the app's extensions, put in the environ by logs.RequestEnvelope
CLIENT_KEY = "otpservice.client_key"  # the caller's client key, once require_client has accepted it
BODY_KEY = "otpservice.body"  # the raw request body, once raw_body has read it


def context() -> tuple[dict[str, Any], dict[str, Any]]:
    """The current request's WSGI environ and its app's extensions, through one context-local lookup.

    Each access to one of Flask's proxies (request, current_app, g) costs several thousand instructions
    (callgrind: ~8k): the client routes, measured against a bare Flask app (issue 6), make one per request
    here and in the view instead of one per value.
    """
    environ = request.environ
    return environ, environ[EXTENSIONS_KEY]


def raw_body(environ: dict[str, Any] | None = None) -> bytes:
    """The request body, read once and kept in the environ (a body over MAX_CONTENT_LENGTH is 413).

    With a Content-Length, which clients send, it is read as exactly that many bytes. werkzeug's get_data()
    reads through 64 KiB buffers instead whenever the server marks its input terminated (gunicorn does):
    two of them allocated and zeroed per request, ~96k instructions, more than /verify's own code (issue 6,
    callgrind). Without one (a chunked body), get_data(), and 413 when the body goes on past the limit.
    """
    environ = environ if environ is not None else request.environ
    body = environ.get(BODY_KEY)
    if body is None:
        req = environ["werkzeug.request"]  # werkzeug keeps the request here: no proxy lookup is needed
        length, stream = req.content_length, req.stream  # the stream refuses a Content-Length over the limit
        if length is None:
            body = req.get_data(cache=True)
            limit = req.max_content_length
            if limit is not None and len(body) >= limit and environ["wsgi.input"].read(1):
                raise RequestEntityTooLarge()  # werkzeug's read stops at the limit without a word
        else:
            chunks: list[bytes] = []
            while length > 0 and (chunk := stream.read(length)):  # fewer bytes only if the client went away
                chunks.append(chunk)
                length -= len(chunk)
            body = b"".join(chunks)
        environ[BODY_KEY] = body
    return body


def json_body(environ: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request's JSON object, or InvalidRequest (bad JSON, not an object). Unknown fields are kept."""
    raw = raw_body(environ)
    if not raw:
        raise errors.InvalidRequest("The body must be a JSON object.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise errors.InvalidRequest("The body must be a JSON object.")
    return body


def bearer_token(environ: dict[str, Any] | None = None) -> str | None:
    header = (environ if environ is not None else request.environ).get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(token: str, candidates: tuple[str, ...] | list[str]) -> bool:
    """Constant-time membership: every candidate is compared, whatever matched first."""
    given = token.encode()
    found = False
    for candidate in _encoded(tuple(candidates)):
        found |= hmac.compare_digest(given, candidate)
    return found


@functools.lru_cache(maxsize=16)  # the configured key lists: a handful per process
def _encoded(candidates: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(candidate.encode() for candidate in candidates)


def require_client(view: Callable) -> Callable:
    """Client-key authentication: 401 `unauthorized` before anything else happens."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        environ, extensions = context()
        token = bearer_token(environ)
        if not token or not _matches(token, extensions["otp.settings"].api_keys):
            raise errors.Unauthorized()
        environ[CLIENT_KEY] = token
        return view(*args, **kwargs)
    return wrapper


def require_admin(view: Callable) -> Callable:
    """Admin-token authentication: none 401, a client key 403, anything else wrong 401."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        settings = current_app.extensions["otp.settings"]
        token = bearer_token()
        if token and settings.admin_token and _matches(token, [settings.admin_token]):
            return view(*args, **kwargs)
        if token and _matches(token, settings.api_keys):
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

"""GET /docs: the API reference, Swagger UI rendering /openapi.json, with every file served by this service."""
from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response

from otpservice import errors

bp = Blueprint("docs", __name__)

JS, CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
# Every file the page loads, by the name it has under /docs/: (package, file, media type). Swagger UI's own
# files come from the flask-swagger-ui package as installed, so nothing reaches a CDN and nothing is copied.
ASSETS: dict[str, tuple[str, str, str]] = {
    "docs.js": ("otpservice.web.assets", "docs.js", JS),
    "docs.css": ("otpservice.web.assets", "docs.css", CSS),
    "swagger-ui-bundle.js": ("flask_swagger_ui", "dist/swagger-ui-bundle.js", JS),
    "swagger-ui.css": ("flask_swagger_ui", "dist/swagger-ui.css", CSS),
}
# This origin only: scripts, styles, fetches and images (data: for the icons swagger-ui.css inlines); no
# inline script, no plug-ins, no frames, no form posts, no <base> that could point the page elsewhere.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "font-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"))


def read(package: str, name: str) -> bytes:
    return resources.files(package).joinpath(name).read_bytes()


@bp.after_request
def forbid_other_origins(response: Response) -> Response:
    """Every answer under /docs, errors too, carries the policy; Cache-Control stays the service's no-store."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/docs")
def page():
    return Response(read("otpservice.web.assets", "docs.html"), content_type="text/html; charset=utf-8")


@bp.get("/docs/<name>")
def asset(name: str):
    """One file of the page; any other name is 404 (the table above is all there is)."""
    if name not in ASSETS:
        raise errors.NotFound("No such file of the API page.")
    package, path, media_type = ASSETS[name]
    return Response(read(package, path), content_type=media_type)

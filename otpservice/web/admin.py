"""The admin API: opt-out lookup, list, block, unblock and sync, and a number's recent verifications.

Admin-token authentication (a client key gets 403). Views parse and validate, make one domain call and render.
A number in a path is parsed to E.164 before use and only ever becomes a digest or a set member, never a key
pattern, so `*`, `?` and `[` are just an invalid number (422).
"""
from __future__ import annotations

from flask import Blueprint, request

from otpservice import errors
from otpservice.web.http import json_body, json_response, raw_body, require_admin, services

bp = Blueprint("admin", __name__, url_prefix="/admin")
DEFAULT_LIMIT, MAX_LIMIT = 50, 250


@bp.get("/opt-outs/<phone_number>")
@require_admin
def lookup(phone_number: str):
    """A number's opt-out records; `?refresh=true` reads the provider's list first."""
    optouts = services().optouts
    number = optouts.number(phone_number)
    refresh = request.args.get("refresh", "false").lower()
    if refresh not in ("true", "false", "1", "0"):
        raise errors.InvalidRequest("refresh must be true or false.", field="refresh")
    if refresh in ("true", "1"):
        return json_response(optouts.refresh(number.e164))
    return json_response(optouts.lookup(number.e164))


@bp.get("/opt-outs")
@require_admin
def list_opt_outs():
    """Opted-out numbers, paged by an opaque cursor."""
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.InvalidRequest(f"limit must be an integer 1-{MAX_LIMIT}.", field="limit")
    return json_response(services().optouts.page(limit=int(raw), cursor=request.args.get("cursor") or None))


@bp.put("/opt-outs/<phone_number>")
@require_admin
def block(phone_number: str):
    """Block a number (source `admin`); an optional JSON body may give a `keyword` note."""
    optouts = services().optouts
    number = optouts.number(phone_number)
    keyword = json_body().get("keyword") if raw_body() else None
    if keyword is not None and not (isinstance(keyword, str) and len(keyword) <= 64):
        raise errors.InvalidRequest("keyword must be a string of at most 64 characters.", field="keyword")
    return json_response(optouts.block(number.e164, keyword=keyword))


@bp.delete("/opt-outs/<phone_number>")
@require_admin
def unblock(phone_number: str):
    """Remove the local `admin` and `inbound_stop` records; the provider's own block stays the provider's."""
    optouts = services().optouts
    return json_response(optouts.unblock(optouts.number(phone_number).e164))


@bp.post("/opt-outs/sync")
@require_admin
def sync():
    """Pull the provider's whole opt-out list (every page) into the registry."""
    return json_response(services().optouts.sync())


@bp.get("/verifications")
@require_admin
def verifications():
    """A number's verifications of the last 24 h, newest first."""
    return json_response(services().verifications.recent(request.args.get("phone_number")))

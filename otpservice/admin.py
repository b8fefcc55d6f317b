"""The admin API: opt-out lookup, list, block, unblock and sync, and a number's recent verifications.

Admin-token authentication (a client key gets 403). Views parse and validate, make one domain call and render.
A number in a path is parsed to E.164 before use and only ever becomes a digest or a set member, never a key
pattern, so `*`, `?` and `[` are just an invalid number (422).
"""
from __future__ import annotations

from flask import Blueprint, current_app, request

from otpservice import errors, phones
from otpservice.web import json_body, json_response, raw_body, require_admin

bp = Blueprint("admin", __name__, url_prefix="/admin")
DEFAULT_LIMIT, MAX_LIMIT = 50, 250
RECENT_MS = 86_400_000  # the contract: a number's verifications of the last 24 h


def ext(name: str):
    return current_app.extensions[f"otp.{name}"]


def number_of(raw: str | None) -> phones.PhoneNumber:
    """The path's or query's number in E.164, or 422 invalid_phone_number (400 when missing)."""
    return phones.normalize(raw, ext("settings").default_region)


def now_ms() -> int:
    return int(ext("clock")() * 1000)


@bp.get("/opt-outs/<phone_number>")
@require_admin
def lookup(phone_number: str):
    """A number's opt-out records; `?refresh=true` reads Telnyx's list first."""
    number = number_of(phone_number)
    refresh = request.args.get("refresh", "false").lower()
    if refresh not in ("true", "false", "1", "0"):
        raise errors.InvalidRequest("refresh must be true or false.", field="refresh")
    if refresh in ("true", "1"):
        return json_response(ext("optout_sync").refresh(number.e164))
    return json_response(ext("optouts").lookup(number.e164))


@bp.get("/opt-outs")
@require_admin
def list_opt_outs():
    """Opted-out numbers, paged by an opaque cursor."""
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise errors.InvalidRequest(f"limit must be an integer 1-{MAX_LIMIT}.", field="limit")
    return json_response(ext("optouts").page(limit=int(raw), cursor=request.args.get("cursor") or None))


@bp.put("/opt-outs/<phone_number>")
@require_admin
def block(phone_number: str):
    """Block a number (source `admin`); an optional JSON body may give a `keyword` note."""
    number = number_of(phone_number)
    keyword = json_body().get("keyword") if raw_body() else None
    if keyword is not None and not (isinstance(keyword, str) and len(keyword) <= 64):
        raise errors.InvalidRequest("keyword must be a string of at most 64 characters.", field="keyword")
    registry = ext("optouts")
    registry.add(number.e164, "admin", now_ms=now_ms(), keyword=keyword)
    return json_response(registry.lookup(number.e164))


@bp.delete("/opt-outs/<phone_number>")
@require_admin
def unblock(phone_number: str):
    """Remove the local `admin` and `inbound_stop` records; Telnyx's own block stays Telnyx's."""
    number = number_of(phone_number)
    registry = ext("optouts")
    registry.remove(number.e164, ("admin", "inbound_stop"))
    return json_response(registry.lookup(number.e164))


@bp.post("/opt-outs/sync")
@require_admin
def sync():
    """Pull Telnyx's whole opt-out list (every page) into the registry."""
    return json_response(ext("optout_sync").sync())


@bp.get("/verifications")
@require_admin
def verifications():
    """A number's verifications of the last 24 h, newest first."""
    number = number_of(request.args.get("phone_number"))
    service = ext("verifications")
    records = ext("store").recent_for_number(number.e164, now_ms=now_ms(), retention_ms=RECENT_MS)
    return json_response({"phone_number": number.e164, "data": [service.render(r) for r in records]})


# -- the contract of these routes, assembled into /openapi.json --------------------------------------------
from otpservice.openapi import error_responses, json_content, ref  # noqa: E402

ADMIN = [{"adminToken": []}]
PHONE_PATH = [{"name": "phone_number", "in": "path", "required": True, "schema": ref("PhoneNumber"),
               "description": "URL-encoded (`%2B13125550123`); never used as a pattern."}]
OPT_OUT_ERRORS = error_responses(401, 403, 422, 500, 503)
PROVIDER_ERROR = {"502": {"description": "`provider_error`: Telnyx refused the list request (key, profile).",
                          "content": json_content(ref("Error"))}}

OPENAPI_SCHEMAS = {
    "OptOutRecord": {
        "type": "object", "required": ["source", "keyword", "messaging_profile_id", "created_at"],
        "properties": {
            "source": {"type": "string", "enum": ["inbound_stop", "telnyx", "send_rejected", "admin"]},
            "keyword": {"type": ["string", "null"]}, "messaging_profile_id": {"type": ["string", "null"]},
            "created_at": ref("Timestamp")}},
    "OptOut": {
        "type": "object", "required": ["phone_number", "opted_out", "records"],
        "properties": {"phone_number": {"type": "string"}, "opted_out": {"type": "boolean"},
                       "records": {"type": "array", "items": ref("OptOutRecord")}}},
    "OptOutPage": {
        "type": "object", "required": ["data", "next_cursor"],
        "properties": {"data": {"type": "array", "items": ref("OptOut")},
                       "next_cursor": {"type": ["string", "null"]}}},
    "OptOutSyncResult": {
        "type": "object", "required": ["listed", "added", "removed"],
        "properties": {"listed": {"type": "integer", "minimum": 0,
                                  "description": "Numbers on Telnyx's list (of the messaging profile)."},
                       "added": {"type": "integer", "minimum": 0, "description": "Local records created."},
                       "removed": {"type": "integer", "minimum": 0,
                                   "description": "Local `telnyx`/`send_rejected` records of numbers Telnyx "
                                                  "no longer lists."}}},
    "VerificationList": {
        "type": "object", "required": ["phone_number", "data"],
        "properties": {"phone_number": {"type": "string"},
                       "data": {"type": "array", "items": ref("Verification")}}},
}

OPENAPI_PATHS = {
    "/admin/opt-outs/{phone_number}": {
        "get": {"summary": "A number's opt-out records", "operationId": "getOptOut", "security": ADMIN,
                "parameters": PHONE_PATH + [{"name": "refresh", "in": "query", "required": False,
                                             "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                                             "description": "Ask Telnyx's list live first."}],
                "responses": {"200": {"description": "The records (empty: not opted out).",
                                      "content": json_content(ref("OptOut"))},
                              **error_responses(400), **PROVIDER_ERROR, **OPT_OUT_ERRORS}},
        "put": {"summary": "Block a number (source `admin`)", "operationId": "blockNumber", "security": ADMIN,
                "parameters": PHONE_PATH,
                "requestBody": {"required": False, "content": json_content({
                    "type": "object", "properties": {"keyword": {"type": "string", "maxLength": 64}}})},
                "responses": {"200": {"description": "Blocked.", "content": json_content(ref("OptOut"))},
                              **error_responses(400), **OPT_OUT_ERRORS}},
        "delete": {"summary": "Remove the local admin and inbound_stop records", "operationId": "unblockNumber",
                   "security": ADMIN, "parameters": PHONE_PATH,
                   "responses": {"200": {"description": "What remains (Telnyx's own block stays).",
                                         "content": json_content(ref("OptOut"))}, **OPT_OUT_ERRORS}},
    },
    "/admin/opt-outs": {"get": {
        "summary": "Opted-out numbers, paged", "operationId": "listOptOuts", "security": ADMIN,
        "parameters": [{"name": "limit", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                       {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "One page.", "content": json_content(ref("OptOutPage"))},
                      **error_responses(400, 401, 403, 500, 503)}}},
    "/admin/opt-outs/sync": {"post": {
        "summary": "Pull Telnyx's whole opt-out list (every page)", "operationId": "syncOptOuts",
        "security": ADMIN,
        "responses": {"200": {"description": "Synced.", "content": json_content(ref("OptOutSyncResult"))},
                      **PROVIDER_ERROR, **error_responses(401, 403, 500, 503)}}},
    "/admin/verifications": {"get": {
        "summary": "A number's verifications of the last 24 h, newest first", "operationId": "listVerifications",
        "security": ADMIN,
        "parameters": [{"name": "phone_number", "in": "query", "required": True, "schema": ref("PhoneNumber")}],
        "responses": {"200": {"description": "Newest first.", "content": json_content(ref("VerificationList"))},
                      **error_responses(400, 401, 403, 422, 500, 503)}}},
}

"""The admin API: opt-out lookup, list, block, unblock and sync, a number's recent verifications, and the fraud
guard's blocks, allow list, conversion counts and spend.

Admin-token authentication (a client key gets 403). Views parse and validate, make one domain call and render.
A number in a path is parsed to E.164 before use and only ever becomes a digest or a set member, never a key
pattern, so `*`, `?` and `[` are just an invalid number (422).
"""
from __future__ import annotations

from flask import Blueprint, request

from otpservice import errors, vocabulary
from otpservice.core.fraud import allow_entry
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


# -- the fraud guard -----------------------------------------------------------------------------------------
SCOPE_VALUE_MAX = 64


def fraud_scope(raw: str) -> tuple[str, str]:
    """A block's scope as the records name it ("prefix:+371200", "country:LV", "device:<digest>"), or 422."""
    kind, sep, value = raw.partition(":")
    if not sep or kind not in vocabulary.FRAUD_SCOPES or not value or len(value) > SCOPE_VALUE_MAX \
            or not value.isprintable():
        raise errors.InvalidRequest(f"scope must be <kind>:<value> with kind one of "
                                    f"{', '.join(vocabulary.FRAUD_SCOPES)} (as GET /admin/fraud/blocks lists it).",
                                    field="scope")
    return kind, value


@bp.get("/fraud/blocks")
@require_admin
def fraud_blocks():
    """The fraud guard's live blocks (enforced, or recorded in shadow mode), newest first."""
    found = services()
    return json_response(found.guard.blocks(int(found.clock() * 1000)))


@bp.delete("/fraud/blocks/<path:scope>")
@require_admin
def lift_fraud_block(scope: str):
    """Lift a block: the scope's next request goes through, and the scope is exempt for a block's length."""
    fraud_scope(scope)
    found = services()
    lifted = found.guard.lift(scope, int(found.clock() * 1000))
    if lifted is None:
        raise errors.NotFound("No live block on this scope.")
    return json_response(lifted)


@bp.get("/fraud/conversion")
@require_admin
def fraud_conversion():
    """A scope's counts (texts, approved codes, failed deliveries) in the judging window and the history."""
    kind, value = fraud_scope(request.args.get("scope", ""))
    if kind not in ("prefix", "country", "route"):
        raise errors.InvalidRequest("Conversion is counted for prefix, country and route scopes.", field="scope")
    found = services()
    return json_response(found.guard.scope_counts(kind, value, int(found.clock() * 1000)))


@bp.get("/fraud/allow")
@require_admin
def fraud_allow_list():
    """Numbers and prefixes the fraud guard never blocks."""
    return json_response({"data": services().guard.allowed()})


@bp.put("/fraud/allow/<entry>")
@require_admin
def fraud_allow(entry: str):
    """Never block this E.164 number or prefix (a company's test phones, a partner's range); optional `note`."""
    note = json_body().get("note", "") if raw_body() else ""
    if not (isinstance(note, str) and len(note) <= 200):
        raise errors.InvalidRequest("note must be a string of at most 200 characters.", field="note")
    found = services()
    return json_response(found.guard.allow(allow_entry(entry), note, int(found.clock() * 1000)))


@bp.delete("/fraud/allow/<entry>")
@require_admin
def fraud_disallow(entry: str):
    if not services().guard.disallow(allow_entry(entry)):
        raise errors.NotFound("This entry is not on the allow list.")
    return json_response({"entry": entry, "removed": True})


@bp.get("/fraud/spend")
@require_admin
def fraud_spend():
    """Today's (UTC) spend on texts, in total and per country, against the caps."""
    found = services()
    return json_response(found.guard.spend_today(int(found.clock() * 1000)))

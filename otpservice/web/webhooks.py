"""POST /webhooks/telnyx: Telnyx's delivery updates and inbound messages, authenticated by Ed25519 alone."""
from __future__ import annotations

from flask import Blueprint

from otpservice.web.http import current, json_response, raw_body

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/telnyx")
def telnyx_webhook():
    """Hand the raw bytes and the signature's headers to the delivery service (it verifies before parsing)."""
    req, found = current()
    delivery = found.delivery
    # Only the headers the signature needs: reading every header of the request costs more than the lookup. A
    # header sent twice reaches the server as one comma-joined value, which no signature check accepts.
    headers = {name: value for name in delivery.header_names if (value := req.headers.get(name)) is not None}
    return json_response(delivery.receive(headers, raw_body(req)))

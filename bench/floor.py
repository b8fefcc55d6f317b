"""The floor: a minimal Flask app doing only the irreducible I/O of each route, served like the service.

/verify        parse JSON, one Redis round trip (GET), answer JSON.
/request-code  parse JSON, one Redis round trip (SET with expiry), one POST to the Telnyx simulator with
               the body the service sends (same fields, same text length), answer 202 JSON.
/webhooks/telnyx  one Ed25519 verification over timestamp|raw body (PyNaCl), one Redis round trip
               (SET NX with expiry, the event id), answer 200 JSON.
It reads the same OTP_* variables as the service, so the two run with identical settings. Like the service it
is preloaded (gunicorn --preload): the clients below are made in the master and connect only in a worker.
"""
from __future__ import annotations

import base64
import json
import os
import secrets

import nacl.signing
import redis
import requests
from flask import Flask, Response, request

app = Flask(__name__)
REDIS = redis.Redis.from_url(os.environ["OTP_REDIS_URL"], socket_timeout=1.0)
SESSION = requests.Session()
TELNYX_URL = os.environ["OTP_TELNYX_BASE_URL"].rstrip("/") + "/messages"
TELNYX_HEADERS = {"Authorization": f"Bearer {os.environ['OTP_TELNYX_API_KEY']}"}
FROM = os.environ.get("OTP_TELNYX_FROM", "+13125550100")
WEBHOOK_URL = os.environ.get("OTP_WEBHOOK_URL", "")
VERIFY_KEY = nacl.signing.VerifyKey(base64.b64decode(os.environ["OTP_TELNYX_PUBLIC_KEY"]))
TEXT = "otpservice: your verification code is {}. It expires in 10 minutes. Never share it with anyone."


def answer(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@app.post("/verify")
def verify():
    body = json.loads(request.get_data())
    REDIS.get("floor:v:" + body["phone_number"])
    return answer({"valid": False, "status": "pending"})


@app.post("/request-code")
def request_code():
    body = json.loads(request.get_data())
    code = f"{secrets.randbelow(10**6):06d}"
    REDIS.set("floor:c:" + body["phone_number"], code, px=600_000)
    sent = SESSION.post(TELNYX_URL, headers=TELNYX_HEADERS, timeout=(3.05, 10.0), json={
        "to": body["phone_number"], "text": TEXT.format(code), "from": FROM,
        "webhook_url": WEBHOOK_URL, "use_profile_webhooks": False})
    return answer({"status": "pending", "delivery": {"message_id": sent.json()["data"]["id"]}}, 202)


@app.post("/webhooks/telnyx")
def webhook():
    raw = request.get_data()
    stamp = request.headers["telnyx-timestamp"]
    VERIFY_KEY.verify(stamp.encode() + b"|" + raw, base64.b64decode(request.headers["telnyx-signature-ed25519"]))
    event_id = json.loads(raw)["data"]["id"]
    REDIS.set("floor:e:" + event_id, "1", nx=True, px=86_400_000)
    return answer({"status": "ok"})


@app.get("/readyz")
def readyz():
    return answer({"status": "ok"})

"""A login flow's backend calling otpservice: text a one-time code, let the user type it, check it.

    make run                                        # in another terminal: the sandbox on :8080 and :8081
    python examples/python/login.py +13125550123

In the sandbox the phone is the simulator's outbox: curl 'localhost:8081/sim/messages?to=%2B13125550123'.
Needs only `requests`. OTP_URL and OTP_API_KEY point it at another service. In a web app, `send_code` belongs
in the view that takes the number and `check_code` in the one that takes the code; `main` plays the user.
"""
from __future__ import annotations

import os
import sys
import time
import uuid

import requests

OTP_URL = os.environ.get("OTP_URL", "http://127.0.0.1:8080")
OTP_API_KEY = os.environ.get("OTP_API_KEY", "sandbox-client-key")
MAX_WAIT = 5  # the longest Retry-After worth waiting out while the user watches a spinner

session = requests.Session()
session.headers["Authorization"] = f"Bearer {OTP_API_KEY}"


class LoginStopped(Exception):
    """This login cannot go on; the message is for the user."""


class TypeAgain(Exception):
    """The user may type the code again; the message says why."""


def post(path: str, body: dict, headers: dict | None = None) -> tuple[int, dict, int]:
    """POST JSON to otpservice: (status, body, Retry-After seconds or 0). Every call has a timeout."""
    answer = session.post(OTP_URL + path, json=body, headers=headers, timeout=15)
    return answer.status_code, answer.json(), int(answer.headers.get("Retry-After", 0))


def send_code(phone_number: str, client_ip: str | None = None) -> str:
    """Text a code to the number; returns the verification id to check the code against."""
    # Pass the user's address as client_ip so the per-IP limits apply to them, not to this server.
    body = {"phone_number": phone_number, **({"client_ip": client_ip} if client_ip else {})}
    # One key per login: should the retry below repeat a request that did get through, the service
    # replays its first answer instead of texting twice.
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    status, answer, wait = post("/request-code", body, headers)
    if status == 503 and wait <= MAX_WAIT:  # the SMS provider or the store is briefly unavailable
        print(f"Texting is busy; trying again in {wait} s.")
        time.sleep(wait)
        status, answer, wait = post("/request-code", body, headers)
    if status == 202:
        return answer["verification_id"]
    error = answer["error"]["code"]
    if error == "rate_limited":  # the cooldown between texts, or a per-number, per-IP or global limit
        raise LoginStopped(f"Too many codes asked for: try again in {wait} s.")
    if error == "opted_out":
        raise LoginStopped("This number opted out of our texts (it replied STOP). Reply START to opt back in.")
    if error in ("invalid_phone_number", "unsupported_number_type"):
        raise LoginStopped("That is not a mobile number we can text: check it and try again.")
    if error == "country_not_allowed":
        raise LoginStopped("We do not text numbers in that country.")
    if status == 503:
        raise LoginStopped(f"Texting is unavailable right now: try again in {wait} s.")
    # 400, 401, 502: a mistake in this backend or in the service's configuration, not the user's.
    raise RuntimeError(f"otpservice answered {status}: {answer['error']['message']}")


def check_code(verification_id: str, code: str, client_ip: str | None = None) -> None:
    """Return when the code is right (it is now spent: start the session); else raise TypeAgain or LoginStopped."""
    body = {"verification_id": verification_id, "code": code, **({"client_ip": client_ip} if client_ip else {})}
    status, answer, wait = post("/verify", body)
    if status == 200 and answer["valid"]:
        return
    if status == 200 and answer["attempts_remaining"] > 0:
        raise TypeAgain(f"That code is wrong. Tries left: {answer['attempts_remaining']}.")
    if status == 200 or answer["error"]["code"] == "max_attempts_reached":
        raise LoginStopped("Too many wrong codes: ask for a new one.")
    if status == 400 and answer["error"].get("field") == "code":  # not the right shape: no try was used
        raise TypeAgain("Type the digits of the code, and nothing else.")
    if status == 404:
        raise LoginStopped("That code has expired: ask for a new one.")
    if status == 429:  # this address sent too many wrong codes
        raise LoginStopped(f"Too many wrong codes: try again in {wait} s.")
    if status == 503:  # nothing was checked and the code stays good
        raise TypeAgain("We cannot check codes right now: type it again in a moment.")
    raise RuntimeError(f"otpservice answered {status}: {answer['error']['message']}")


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python login.py +13125550123", file=sys.stderr)
        return 2
    try:
        verification_id = send_code(sys.argv[1])
        print("We texted you a code.")
        while True:
            try:
                check_code(verification_id, input("Code: ").strip())
                break
            except TypeAgain as reason:
                print(reason)
    except LoginStopped as reason:
        print(reason)
        return 1
    except EOFError:
        print("No code typed.")
        return 1
    print("Logged in.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

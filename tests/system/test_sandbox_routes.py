"""`otpservice run` with a routes file: the sandbox sends each country's code on its route (WhatsApp included),
and its simulator plays an account set up for that configuration, so `otpservice doctor` passes against it."""
from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.support.sandbox import OTPSERVICE, SANDBOX_CLIENT_KEY, Sandbox

pytestmark = pytest.mark.slow  # starts `otpservice run`, then `otpservice doctor`, each a process of its own

PROFILE = "4001767e-ce0f-4cae-9d5f-0d5e636e7809"  # config/sandbox.env's
UK_PROFILE = "7a1b2c3d-0000-4000-8000-00000000000b"
ROUTES = f"""\
GB:
  - name: uk-alpha
    endpoint: messages
    from: ACME
    messaging_profile_id: {UK_PROFILE}
default:
  - name: sms
    endpoint: messages
    from: +13125550100
  - name: wa
    endpoint: whatsapp
    from: +13125550199
"""


def test_the_sandbox_routes_each_country_and_its_account_passes_the_doctor(tmp_path):
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES, encoding="utf-8")
    settings = {"OTP_ROUTES_FILE": str(routes), "OTP_WHATSAPP_TEMPLATE": "otp_code"}
    with Sandbox(**settings) as sandbox:
        auth = {"Authorization": f"Bearer {SANDBOX_CLIENT_KEY}"}
        for number, body, sender in (("+447400123456", {}, "ACME"), ("+13125550150", {"channel": "whatsapp"},
                                                                       "+13125550199")):
            answer = requests.post(f"{sandbox.url}/request-code", json={"phone_number": number, **body},
                                   headers=auth, timeout=10)
            assert answer.status_code == 202, answer.text
            [message] = requests.get(f"{sandbox.sim_url}/sim/messages", params={"to": number},
                                     timeout=5).json()["data"]
            assert message["from"] == sender
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
        env = {**base, **settings, "OTP_TELNYX_API_KEY": "KEYsandbox", "OTP_TELNYX_BASE_URL": f"{sandbox.sim_url}/v2",
               "OTP_TELNYX_FROM": "+13125550100", "OTP_TELNYX_MESSAGING_PROFILE_ID": PROFILE,
               "OTP_WEBHOOK_URL": f"{sandbox.url}/webhooks/telnyx"}
        run = subprocess.run([str(OTPSERVICE), "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "route uk-alpha: alphanumeric sender ACME is profile" in run.stdout
    assert "route wa: sender +13125550199 is on profile" in run.stdout

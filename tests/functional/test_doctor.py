"""`otpservice doctor` against the real simulator with an inventory set for each case: a correct setup passes every
check and exits 0; each broken one names what is wrong (the sender, the profile) and exits non-zero."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from otpservice import wiring
from otpservice.config import Settings
from tests.support.app import PROFILE_ID, SIM_API_KEY
from tests.support.redis_server import free_port

OTPSERVICE = Path(sys.executable).with_name("otpservice")
UK_PROFILE = "7a1b2c3d-0000-4000-8000-00000000000b"
HOOK = "https://otp.example.com/webhooks/telnyx"
ROUTES = f"""\
US:
  - name: us-long
    endpoint: messages
    from: +13125550100
GB:
  - name: uk-alpha
    endpoint: messages
    from: ACME
    messaging_profile_id: {UK_PROFILE}
  - name: uk-pool
    endpoint: number_pool
    messaging_profile_id: {UK_PROFILE}
default:
  - name: pool
    endpoint: number_pool
    messaging_profile_id: {PROFILE_ID}
"""
GOOD = {
    "messaging_profiles": [
        {"id": PROFILE_ID, "name": "Main", "enabled": True, "webhook_url": HOOK,
         "whitelisted_destinations": ["US", "CA"], "number_pool": True},
        {"id": UK_PROFILE, "name": "UK", "enabled": True, "webhook_url": HOOK, "alpha_sender": "ACME",
         "whitelisted_destinations": ["GB"], "number_pool": True},
    ],
    "phone_numbers": [
        {"phone_number": "+13125550100", "messaging_profile_id": PROFILE_ID},
        {"phone_number": "+18445550001", "messaging_profile_id": PROFILE_ID, "type": "tollfree"},
        {"phone_number": "+447400123999", "messaging_profile_id": UK_PROFILE},
    ],
}


def env_for(sim, routes_file: str) -> dict[str, str]:
    return {"OTP_TELNYX_API_KEY": SIM_API_KEY, "OTP_TELNYX_BASE_URL": sim.base_url, "OTP_ROUTES_FILE": routes_file,
            "OTP_TELNYX_FROM": "+13125550100", "OTP_TELNYX_MESSAGING_PROFILE_ID": PROFILE_ID,
            "OTP_WEBHOOK_URL": HOOK}


def settings_for(sim, routes_file: str, **overrides) -> Settings:
    return Settings.from_env(env_for(sim, routes_file), **overrides)


def stock(sim, inventory: dict) -> None:
    requests.put(f"{sim.url}/sim/inventory", json=inventory, timeout=5).raise_for_status()


def failures(settings: Settings) -> list[str]:
    return [check.line() for check in wiring.doctor(settings) if not check.ok]


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTP_", "PROMETHEUS_"))}
    return subprocess.run([str(OTPSERVICE), "doctor"], env={**base, **env}, capture_output=True, text=True,
                          timeout=60)


def test_a_correct_setup_passes_every_check_and_exits_0(sim, routes_file):
    stock(sim, GOOD)
    run = doctor(env_for(sim, routes_file))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == f"{len(lines) - 1} of {len(lines) - 1} checks passed"
    assert all(line.startswith("ok    ") for line in lines[:-1])
    for subject in ("route us-long", "route uk-alpha", "route uk-pool", "route pool", f"profile {UK_PROFILE}",
                    "opt-out list", "OTP_WEBHOOK_URL"):
        assert any(line.startswith(f"ok    {subject}: ") for line in lines), subject


def test_a_sender_not_on_its_profile_is_named_and_exits_non_zero(sim, routes_file, tmp_path):
    inventory = copy.deepcopy(GOOD)
    inventory["phone_numbers"][0]["messaging_profile_id"] = UK_PROFILE
    stock(sim, inventory)
    routes = tmp_path / "pinned.yaml"  # the US route names the profile its sender must be on
    routes.write_text(ROUTES.replace("from: +13125550100\n", f"from: +13125550100\n    messaging_profile_id: "
                                                           f"{PROFILE_ID}\n"), encoding="utf-8")
    run = doctor(env_for(sim, str(routes)))
    assert run.returncode == 1
    [failed] = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == (f"FAIL  route us-long: sender +13125550100 is on profile {UK_PROFILE}, not on its route's "
                      f"profile {PROFILE_ID}: assign it to that profile, or fix the route")
    assert run.stdout.splitlines()[-1].endswith("; 1 to fix")


def broken(change) -> dict:
    inventory = copy.deepcopy(GOOD)
    change(inventory)
    return inventory


@pytest.mark.parametrize("change, expected", [
    (lambda i: i["phone_numbers"].pop(0),
     "FAIL  route us-long: sender +13125550100 is not a number of this account"),
    (lambda i: i["phone_numbers"][0].update(messaging_enabled=False),
     "FAIL  route us-long: sender +13125550100 is not enabled for messaging"),
    (lambda i: i["phone_numbers"][0].update(messaging_profile_id=None),
     "FAIL  route us-long: sender +13125550100 is on no messaging profile"),
    (lambda i: i["messaging_profiles"][1].update(alpha_sender="OTHER"),
     f"FAIL  route uk-alpha: alphanumeric sender ACME is not the alpha sender of profile {UK_PROFILE} (it has OTHER)"),
    (lambda i: i["phone_numbers"].pop(2),
     f"FAIL  route uk-pool: the pool of profile {UK_PROFILE} has no number enabled for messaging"),
    (lambda i: i["messaging_profiles"][1].update(number_pool=False),
     f"FAIL  route uk-pool: profile {UK_PROFILE} has no number pool"),
    (lambda i: i["messaging_profiles"][1].update(enabled=False),
     f"FAIL  profile {UK_PROFILE}: disabled"),
    (lambda i: i["messaging_profiles"][1].update(whitelisted_destinations=["FR"]),
     f"FAIL  route uk-alpha: profile {UK_PROFILE} does not send to GB"),
    (lambda i: i["messaging_profiles"][0].update(webhook_url=None),
     f"FAIL  profile {PROFILE_ID}: no webhook URL, so inbound STOP texts reach nobody: set it to {HOOK}"),
    (lambda i: i["messaging_profiles"].pop(1),
     f"FAIL  profile {UK_PROFILE}: no such messaging profile on this account (used by route uk-alpha, "
     "route uk-pool)"),
])
def test_each_broken_setup_names_what_to_fix(sim, routes_file, change, expected):
    stock(sim, broken(change))
    failed = failures(settings_for(sim, routes_file))
    assert any(line.startswith(expected) for line in failed), failed


def test_the_key_and_the_address_are_checked_first(sim, routes_file):
    stock(sim, GOOD)
    assert failures(settings_for(sim, routes_file, telnyx_api_key="KEYwrong")) == [
        "FAIL  credentials: Telnyx refused OTP_TELNYX_API_KEY (10009 Authentication failed): set an API v2 key of "
        "the account"]
    nowhere = f"http://127.0.0.1:{free_port()}/v2"
    assert failures(settings_for(sim, routes_file, telnyx_base_url=nowhere)) == [
        f"FAIL  telnyx: no answer from {nowhere}: check OTP_TELNYX_BASE_URL"]
    unset = failures(settings_for(sim, routes_file, webhook_url=""))
    assert unset == ["FAIL  OTP_WEBHOOK_URL: unset: delivery receipts go only where the profiles' webhook URLs "
                     "point; set it to this service's /webhooks/telnyx"]

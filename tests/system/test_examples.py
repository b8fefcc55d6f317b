"""The login examples (examples/python/login.py, examples/javascript/login.mjs) against `otpservice run`: each is
run as a reader would run it, types what a user types, and reads its code from the simulator's outbox."""
from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.support.sandbox import ROOT, SANDBOX_ADMIN_TOKEN, SANDBOX_CLIENT_KEY, Sandbox

NODE = shutil.which("node")
EXAMPLES = {"python": [sys.executable, str(ROOT / "examples" / "python" / "login.py")],
            "javascript": [NODE or "node", str(ROOT / "examples" / "javascript" / "login.mjs")]}
# One block of numbers per example, so that neither shares a number prefix budget with the other.
NUMBERS = {"python": "+1312555", "javascript": "+1312556"}
SUFFIXES = itertools.count(200)
WAIT = 20  # seconds an example may take to say what is expected

pytestmark = pytest.mark.slow  # starts `otpservice run`, and each example as a process of its own


def node_major() -> int:
    return int(subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.lstrip("v").split(".")[0])


@pytest.fixture(params=sorted(EXAMPLES))
def example(request):
    if request.param == "javascript" and (NODE is None or node_major() < 20):
        pytest.skip("the JavaScript example needs Node 20 or later on PATH (Debian: apt-get install nodejs)")
    return request.param


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as running:
        yield running


@pytest.fixture
def number(example):
    """A number of the example's block that no other test of the sandbox has used."""
    return f"{NUMBERS[example]}{next(SUFFIXES):04d}"


class Session:
    """One run of an example: what it printed so far, and a keyboard."""

    def __init__(self, sandbox: Sandbox, example: str, phone_number: str) -> None:
        env = {"PATH": "/usr/bin:/bin", "OTP_URL": sandbox.url, "OTP_API_KEY": SANDBOX_CLIENT_KEY}
        self.proc = subprocess.Popen([*EXAMPLES[example], phone_number], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output, self.seen = "", 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := self.proc.stdout.read(1):
            self.output += chunk

    def expect(self, text: str) -> None:
        """Wait until the example prints `text` (after what an earlier expect matched)."""
        deadline = time.monotonic() + WAIT
        while (found := self.output.find(text, self.seen)) < 0:
            assert time.monotonic() < deadline and (self.proc.poll() is None or self.reader.is_alive()), \
                f"never printed {text!r}:\n{self.output}"
            time.sleep(0.02)
        self.seen = found + len(text)

    def type(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ends(self, status: int) -> str:
        """Wait for the example to exit with `status`; everything it printed."""
        self.proc.stdin.close()
        assert self.proc.wait(WAIT) == status, self.output
        self.reader.join(WAIT)
        return self.output


def texts(sandbox: Sandbox, number: str) -> list[str]:
    answer = requests.get(sandbox.sim_url + "/sim/messages", params={"to": number}, timeout=5)
    return [message["text"] for message in answer.json()["data"]]


def code_in(text: str) -> str:
    return next(word for word in text.replace(".", " ").split() if word.isdigit() and len(word) == 6)


def verifications(sandbox: Sandbox, number: str) -> list[dict]:
    answer = requests.get(sandbox.url + "/admin/verifications", params={"phone_number": number},
                          headers={"Authorization": f"Bearer {SANDBOX_ADMIN_TOKEN}"}, timeout=5)
    return answer.json()["data"]


def test_a_login_with_a_typo_and_a_wrong_code_then_the_right_one(sandbox, example, number):
    session = Session(sandbox, example, number)
    session.expect("We texted you a code.")
    session.expect("Code: ")
    session.type("12")
    session.expect("Type the digits of the code")
    session.expect("Code: ")
    [text] = texts(sandbox, number)
    code = code_in(text)
    session.type("000000" if code != "000000" else "111111")
    session.expect("That code is wrong. Tries left: 4.")  # the typo used no try
    session.expect("Code: ")
    session.type(code)
    session.expect("Logged in.")
    session.ends(0)
    [verification] = verifications(sandbox, number)
    assert verification["status"] == "approved" and verification["attempts"] == 1
    assert len(texts(sandbox, number)) == 1


def test_five_wrong_codes_stop_the_login(sandbox, example, number):
    session = Session(sandbox, example, number)
    session.expect("Code: ")
    code = code_in(texts(sandbox, number)[0])
    for left in (4, 3, 2, 1):
        session.type("000000" if code != "000000" else "111111")
        session.expect(f"Tries left: {left}.")
    session.type("000000" if code != "000000" else "111111")
    session.expect("Too many wrong codes: ask for a new one.")
    session.ends(1)
    assert verifications(sandbox, number)[0]["status"] == "max_attempts_reached"


def test_a_second_login_inside_the_cooldown_is_told_when_to_try_again(sandbox, example, number):
    first = requests.post(sandbox.url + "/request-code", json={"phone_number": number}, timeout=5,
                          headers={"Authorization": f"Bearer {SANDBOX_CLIENT_KEY}"})
    assert first.status_code == 202
    session = Session(sandbox, example, number)
    session.expect("Too many codes asked for: try again in ")
    output = session.ends(1)
    wait = int(output.split("try again in ")[1].split(" s.")[0])
    assert 1 <= wait <= 30  # the service's Retry-After: what is left of the 30 s cooldown
    assert len(texts(sandbox, number)) == 1


def test_an_opted_out_number_is_told_so(sandbox, example, number):
    assert requests.post(sandbox.sim_url + "/sim/optouts", json={"to": number}, timeout=5).status_code == 201
    session = Session(sandbox, example, number)
    session.expect("This number opted out of our texts")
    session.ends(1)
    assert texts(sandbox, number) == []


def test_an_invalid_number_is_told_so(sandbox, example):
    session = Session(sandbox, example, "+1312")
    session.expect("That is not a mobile number we can text")
    session.ends(1)


def test_a_provider_that_is_briefly_unavailable_is_tried_once_more(sandbox, example, number):
    # The simulator answers the first request's sends with Telnyx's 429 (reset in 2 s): the service retries each
    # of its 3 attempts as told, then its 503 says when to come back; the example's second try goes through.
    fault = {"mode": "rate_limit", "count": 3, "to": number}
    assert requests.post(sandbox.sim_url + "/sim/faults", json=fault, timeout=5).status_code == 201
    session = Session(sandbox, example, number)
    session.expect("Texting is busy; trying again in ")
    session.expect("Code: ")
    session.type(code_in(texts(sandbox, number)[0]))
    session.expect("Logged in.")
    session.ends(0)
    assert len(texts(sandbox, number)) == 1


def test_a_provider_that_stays_unavailable_stops_the_login(sandbox, example, number):
    fault = {"mode": "rate_limit", "count": 6, "to": number}  # both tries, 3 attempts each
    assert requests.post(sandbox.sim_url + "/sim/faults", json=fault, timeout=5).status_code == 201
    session = Session(sandbox, example, number)
    session.expect("Texting is busy; trying again in ")
    session.expect("Texting is unavailable right now: try again in ")
    session.ends(1)
    assert texts(sandbox, number) == []
    requests.delete(sandbox.sim_url + "/sim/faults", timeout=5)

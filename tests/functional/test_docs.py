"""GET /docs: the API reference renders the service's real /openapi.json in a real browser (Debian's headless
Chromium, driven by Selenium), from files the service serves itself, and the browser asks no other origin."""
from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from otpservice.web.docs import ASSETS

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Without these Chromium calls Google at start (updates, sync, field trials) on a machine with no network.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}  # data:, blob: and chrome:// never leave the machine
RENDER_TIMEOUT = 30


def test_the_page_and_its_files_keep_the_service_headers_and_forbid_other_origins(client):
    answers = {"/docs": client.get("/docs")}
    answers.update({f"/docs/{name}": client.get(f"/docs/{name}") for name in ASSETS})
    for path, answer in answers.items():
        assert answer.status_code == 200, path
        assert answer.headers["Cache-Control"] == "no-store", path
        policy = dict(part.split(" ", 1) for part in answer.headers["Content-Security-Policy"].split("; "))
        assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'", path
        assert policy["connect-src"] == "'self'" and policy["img-src"] == "'self' data:", path
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
    assert answers["/docs"].mimetype == "text/html"
    for name, (package, file, media_type) in ASSETS.items():
        answer = answers[f"/docs/{name}"]
        assert answer.content_type == media_type
        assert answer.data == resources.files(package).joinpath(file).read_bytes() and len(answer.data) > 100


@pytest.mark.parametrize("name", ["index.html", "..%2Fdocs.py", "swagger-ui-bundle.js.map", "%2E%2E"])
def test_a_file_not_in_the_table_is_a_json_404(client, name):
    answer = client.get(f"/docs/{name}")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Debian's chromedriver, with a fresh profile and the console and
    network logs kept (CDP events through chromedriver's performance log)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} is absent: apt-get install chromium chromium-driver "
                    "(.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory(prefix="otp-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        try:
            yield driver
        finally:
            driver.quit()


def network_events(driver) -> list[tuple[str, dict]]:
    """Chromium's network events since the last call: (method, params), e.g. Network.requestWillBeSent."""
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return [(event["method"], event["params"]) for event in events if event["method"].startswith("Network.")]


def requested_urls(events: list[tuple[str, dict]]) -> list[str]:
    """Every URL the page asked for, whether it went out or was refused (a refusal is an event too)."""
    return [params["request"]["url"] if method == "Network.requestWillBeSent" else params["url"]
            for method, params in events if method in ("Network.requestWillBeSent", "Network.webSocketCreated")]


def open_page(driver, url: str) -> None:
    """Load /docs with the logs emptied first (Chromium's own start page is not the page under test)."""
    driver.get("about:blank")
    driver.get_log("performance")
    driver.get_log("browser")
    driver.get(url + "/docs")


@pytest.mark.slow
def test_the_page_renders_the_real_document_from_the_service_alone(browser, live):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    document = requests.get(live.url + "/openapi.json", timeout=5).json()
    operations = sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)
    open_page(browser, live.url)
    shown = WebDriverWait(browser, RENDER_TIMEOUT).until(lambda d: d.execute_script(
        "const ops = [...document.querySelectorAll('.opblock')];"
        "return ops.length >= arguments[0] && ops.map(o => [o.querySelector('.opblock-summary-method').textContent,"
        " o.querySelector('.opblock-summary-path').getAttribute('data-path')]);", len(operations)))
    assert sorted(map(tuple, shown)) == operations  # every operation of the document, and nothing else

    # An operation opens on its parameters, request body and every documented response.
    request_code = browser.find_element(By.CSS_SELECTOR, ".opblock-post:has([data-path='/request-code'])")
    request_code.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    codes = WebDriverWait(browser, RENDER_TIMEOUT).until(lambda d: [
        row.get_attribute("data-code") for row in request_code.find_elements(By.CSS_SELECTOR, "tr.response")])
    assert sorted(codes) == sorted(document["paths"]["/request-code"]["post"]["responses"])
    assert "Idempotency-Key" in request_code.text and "Request body" in request_code.text

    # Every schema is listed, and one expands to the properties the document gives it.
    schemas = {node.find_element(By.CSS_SELECTOR, ".json-schema-2020-12__title").text: node for node in
               browser.find_elements(By.CSS_SELECTOR, "section.models > div > article.json-schema-2020-12")}
    assert sorted(schemas) == sorted(document["components"]["schemas"])
    schemas["CodeRequest"].find_element(By.CSS_SELECTOR, ".json-schema-2020-12-accordion").click()
    properties = WebDriverWait(browser, RENDER_TIMEOUT).until(lambda d: [node.text for node in schemas[
        "CodeRequest"].find_elements(By.CSS_SELECTOR, ".json-schema-2020-12-property .json-schema-2020-12__title")])
    assert properties == list(document["components"]["schemas"]["CodeRequest"]["properties"])

    # "Try it out" calls the service from the page, same origin.
    healthz = browser.find_element(By.CSS_SELECTOR, ".opblock-get:has([data-path='/healthz'])")
    healthz.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(browser, RENDER_TIMEOUT).until(lambda d: healthz.find_element(By.CSS_SELECTOR, ".try-out__btn"))
    healthz.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
    healthz.find_element(By.CSS_SELECTOR, ".execute").click()
    WebDriverWait(browser, RENDER_TIMEOUT).until(
        lambda d: '"status": "ok"' in healthz.find_element(By.CSS_SELECTOR, ".live-responses-table").text)

    urls = requested_urls(network_events(browser))
    network = [url for url in urls if urlsplit(url).scheme in NETWORK_SCHEMES]
    origin = urlsplit(live.url)
    assert [url for url in network if urlsplit(url)[:2] != origin[:2]] == []
    asked = {urlsplit(url).path for url in network}
    assert asked >= {"/docs", "/openapi.json", "/healthz", *(f"/docs/{name}" for name in ASSETS)}, asked
    assert browser.get_log("browser") == []  # no refused load (CSP), no script error, no failed request


@pytest.mark.slow
def test_the_browser_enforces_the_policy(browser, live):
    from selenium.webdriver.support.ui import WebDriverWait

    open_page(browser, live.url)
    WebDriverWait(browser, RENDER_TIMEOUT).until(lambda d: d.execute_script("return window.ui !== undefined"))
    browser.set_script_timeout(10)
    refused = browser.execute_async_script("""
        const done = arguments[arguments.length - 1], seen = [];
        document.addEventListener("securitypolicyviolation", (e) => {
          seen.push(e.effectiveDirective + " " + e.blockedURI);
          if (seen.length === 3) done(seen.sort());
        });
        fetch("http://127.0.0.2:9/elsewhere").catch(() => {});
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.appendChild(script);
        const image = document.createElement("img");
        image.src = "http://127.0.0.2:9/pixel.png";
        document.body.appendChild(image);
    """)
    assert refused == ["connect-src http://127.0.0.2:9/elsewhere", "img-src http://127.0.0.2:9/pixel.png",
                       "script-src-elem inline"]
    assert browser.execute_script("return window.inlineRan === undefined")
    # The image was refused before it left: Chromium reports its request as blocked by the policy.
    events = network_events(browser)
    pixel = [params["requestId"] for method, params in events if method == "Network.requestWillBeSent"
             and params["request"]["url"] == "http://127.0.0.2:9/pixel.png"]
    assert [params.get("blockedReason") for method, params in events
            if method == "Network.loadingFailed" and params["requestId"] in pixel] == ["csp"]
    assert not [params for method, params in events
                if method == "Network.responseReceived" and params["requestId"] in pixel]

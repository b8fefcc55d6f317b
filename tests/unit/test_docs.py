"""The README documents the settings the code has: every OTP_* variable of config.Settings has a row in the
README's configuration table, with its default, and the table names no variable the code does not read; and it
lists every route of the Telnyx simulator."""
from __future__ import annotations

import re
from pathlib import Path

import nacl.signing

from otpservice.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| `(OTP_[A-Z0-9_]+)` \| (.*?) \|", re.MULTILINE)


def shown(default: object) -> str:
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if default in ("", (), {}):
        return "(unset)"
    return f"`{default}`"


def test_the_configuration_table_matches_the_settings():
    table = {name: default for name, default in ROW.findall(README.read_text())}
    settings = {row["env"]: row["default"] for row in Settings().describe()}
    assert set(table) == set(settings)
    assert {name: table[name] for name in settings} == {name: shown(d) for name, d in settings.items()}


def test_the_readmes_example_of_an_operators_texts_loads_as_it_says(tmp_path):
    """The JSON under "Your own texts" is a valid OTP_MESSAGES_FILE, and does what the paragraph after it says."""
    from otpservice.core.messages import Texts

    example = re.search(r"\*\*Your own texts\.\*\*.*?```json\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    path = tmp_path / "texts.json"
    path.write_text(example, encoding="utf-8")
    texts = Texts.from_settings(Settings(messages_file=str(path)))
    assert texts.render(code="123456", locale="en", region="US").startswith("123456 is your otpservice code.")
    assert texts.language(None, "KE") == "sw" and texts.language(None, "PT") == "pt-PT"
    assert texts.language(None, "BD") == "en"


def test_the_readme_lists_every_route_of_the_simulator():
    """Each route the simulator serves is in the README's simulator section, written as `METHOD /path`."""
    from otpservice.sandbox import create_sim_app

    readme = README.read_text()
    section = readme.split("## The Telnyx simulator", 1)[1].split("\n## ", 1)[0]
    app = create_sim_app(api_key="KEYdocs", signing_key=nacl.signing.SigningKey.generate())
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        paths = [rule.rule]
        if "<any(requests, webhooks):log_name>" in rule.rule:
            paths = [rule.rule.replace("<any(requests, webhooks):log_name>", name) for name in ("requests", "webhooks")]
        for path in paths:
            path = path.replace("<message_id>", "{id}").replace("<to>", "{number}")
            path = path.replace("<profile_id>", "{id}").replace("<path:number>", "{id}")
            routes |= {f"{method} {path}" for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(routes) > 15
    missing = sorted(route for route in routes if f"`{route}" not in section and f", {route}" not in section
                     and f"{route}`" not in section)
    assert not missing, f"README's simulator section lacks {missing}"
    assert "`http://127.0.0.1:8081/v2`" in section


def test_the_readmes_routes_file_loads_as_it_says(tmp_path):
    """The YAML under "The routes file" is a valid OTP_ROUTES_FILE, and routes as its comments say."""
    from otpservice.sending.routing import Router

    example = re.search(r"\*\*The routes file\.\*\*.*?```yaml\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    path = tmp_path / "routes.yaml"
    path.write_text(example, encoding="utf-8")
    router = Router.from_settings(Settings(routes_file=str(path), whatsapp_template="otp_code"))
    assert [route.name for route in router.routes(region="GB")[1]] == ["uk-alpha", "uk-pool"]
    assert router.routes(region="BR")[0] == "whatsapp"
    assert [route.name for route in router.routes(region="BR", channel="sms")[1]] == ["br-sms"]
    assert [route.endpoint for route in router.routes(region="DE")[1]] == ["number_pool"]

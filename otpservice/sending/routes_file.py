"""The routing table file (OTP_ROUTES_FILE): per country, the ordered routes a code is sent on, in YAML or JSON.

The file is read once at start-up and checked whole; a problem stops the service with a ConfigError naming the
file and the line. Every value is read as the string written (YAML's own typing would turn Norway's `NO` into
`false` and `+4712345678` into a number), so nothing needs quoting. The README shows the format.
"""
from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import phonenumbers
import yaml

from otpservice import vocabulary
from otpservice.config import ConfigError
from otpservice.sending.base import DEFAULT_ROUTE, Route

DEFAULT_COUNTRY = "default"
FAILOVER_ROUTE = "failover"  # the name of the settings' OTP_FAILOVER_ENDPOINT route
RESERVED_NAMES = (DEFAULT_ROUTE, FAILOVER_ROUTE)
ROUTE_FIELDS = ("name", "endpoint", "from", "messaging_profile_id")
MAX_ROUTES_PER_COUNTRY = 10  # the send deadline leaves room for a few failovers, not for dozens
MAX_ROUTES = 100  # route names are metric labels: their number stays bounded
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{1,14}$")
SHORT_CODE_RE = re.compile(r"^[0-9]{3,8}$")
# Telnyx's alphanumeric sender IDs: 1-11 letters, digits and spaces, at least one letter.
ALPHANUMERIC_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Telnyx sends no alphanumeric sender ID to these destinations.
NO_ALPHANUMERIC = ("US", "CA", "PR")
COUNTRY_HINTS = {"UK": "GB", "EL": "GR"}


class Located(dict):
    """A mapping read from the file, with the line of the mapping and of each key."""

    def __init__(self, *args: Any, line: int = 0) -> None:
        super().__init__(*args)
        self.line = line
        self.lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


class LocatedList(list):
    """A list read from the file, with its line and each item's."""

    def __init__(self, *args: Any, line: int = 0) -> None:
        super().__init__(*args)
        self.line = line
        self.lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


class _Problem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


# -- reading ----------------------------------------------------------------------------------------------
def _from_yaml(node: yaml.Node) -> Any:
    """The node as plain values, every scalar as the string written (a null as None), lines kept."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == "tag:yaml.org,2002:null" else node.value
    if isinstance(node, yaml.SequenceNode):
        items = LocatedList(line=line)
        for item in node.value:
            items.append(_from_yaml(item))
            items.lines.append(item.start_mark.line + 1)
        return items
    mapping = Located(line=line)
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Problem(key_line, "a key must be a plain word")
        if key_node.value in mapping:
            raise _Problem(key_line, f"{key_node.value!r} appears twice")
        mapping[key_node.value] = _from_yaml(value_node)
        mapping.lines[key_node.value] = key_line
    return mapping


def read_yaml(text: str) -> Any:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _Problem(mark.line + 1 if mark else 0, f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise _Problem(0, f"not valid YAML: {exc}") from None
    return None if node is None else _from_yaml(node)


class _LocatingDecoder(json.JSONDecoder):
    """json's own pure-Python scanner, with objects and arrays that remember the line they start on."""

    def __init__(self, text: str) -> None:
        super().__init__(object_pairs_hook=self._pairs)
        self.text = text
        self.parse_object = self._object
        self.parse_array = self._array
        self.scan_once = json.scanner.py_make_scanner(self)

    def _line(self, index: int) -> int:
        return self.text.count("\n", 0, index) + 1

    @staticmethod
    def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise _Problem(0, f"{key!r} appears twice")
            seen[key] = value
        return seen

    def _object(self, s_and_end: tuple[str, int], *args: Any) -> tuple[Located, int]:
        start = s_and_end[1] - 1
        try:
            value, end = json.decoder.JSONObject(s_and_end, *args)
        except _Problem as exc:
            raise _Problem(exc.line or self._line(start), exc.message) from None
        return Located(value, line=self._line(start)), end

    def _array(self, s_and_end: tuple[str, int], *args: Any) -> tuple[LocatedList, int]:
        value, end = json.decoder.JSONArray(s_and_end, *args)
        items = LocatedList(value, line=self._line(s_and_end[1] - 1))
        items.lines = [getattr(item, "line", items.line) for item in value]
        return items, end


def read_json(text: str) -> Any:
    try:
        return _LocatingDecoder(text).decode(text)
    except json.JSONDecodeError as exc:
        raise _Problem(exc.lineno, f"not valid JSON: {exc.msg}") from None


READERS = {".yaml": read_yaml, ".yml": read_yaml, ".json": read_json}


# -- checking ---------------------------------------------------------------------------------------------
def _country(key: str, line: int) -> str:
    if key == DEFAULT_COUNTRY:
        return key
    if key in phonenumbers.SUPPORTED_REGIONS:
        return key
    hint = COUNTRY_HINTS.get(key.upper()) or (key.upper() if key.upper() in phonenumbers.SUPPORTED_REGIONS else None)
    raise _Problem(line, f"{key!r} is not an ISO 3166 region code in capitals or `default`"
                         + (f" (write {hint})" if hint else ""))


def _text(route: Located, key: str) -> str | None:
    value = route.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Problem(route.line_of(key), f"{key} must be a non-empty string")
    return value.strip()


def _route(country: str, index: int, route: Any, line: int) -> Route:
    """One route of a country's list, checked as Telnyx would take it."""
    if not isinstance(route, Located):
        raise _Problem(line, "each route is a mapping of name, endpoint, from and messaging_profile_id")
    for key in route:
        if key not in ROUTE_FIELDS:
            raise _Problem(route.line_of(key), f"unknown field {key!r} (a route has {', '.join(ROUTE_FIELDS)})")
    name = _text(route, "name") or f"{country.lower()}-{index + 1}"
    endpoint, sender = _text(route, "endpoint"), _text(route, "from")
    profile = _text(route, "messaging_profile_id")
    if not NAME_RE.match(name):
        raise _Problem(route.line_of("name"), f"name {name!r} must be a letter then up to 31 letters, digits, "
                                              "_ or - (it is a metric label and goes on every send)")
    if endpoint not in vocabulary.ENDPOINTS:
        raise _Problem(route.line_of("endpoint"), f"endpoint must be one of {', '.join(vocabulary.ENDPOINTS)}")
    if profile is not None and not UUID_RE.match(profile):
        raise _Problem(route.line_of("messaging_profile_id"), "messaging_profile_id must be a profile's UUID")
    where = route.line_of("from")
    if endpoint == "number_pool":
        if sender is not None:
            raise _Problem(where, "a number_pool route has no `from`: the pool picks the sender")
        if profile is None:
            raise _Problem(route.line, "a number_pool route needs the messaging_profile_id of its pool")
    elif sender is None:
        raise _Problem(route.line, f"a {endpoint} route needs `from`")
    elif endpoint == "whatsapp" and not E164_RE.match(sender):
        raise _Problem(where, "a whatsapp route's `from` is its WhatsApp-enabled number in +E.164")
    elif endpoint == "messages" and not (E164_RE.match(sender) or SHORT_CODE_RE.match(sender)):
        if not ALPHANUMERIC_RE.match(sender):
            raise _Problem(where, "`from` must be a +E.164 number, a short code or an alphanumeric sender ID "
                                  "(1-11 letters, digits and spaces, at least one letter)")
        if profile is None:
            raise _Problem(route.line, "an alphanumeric sender needs the messaging_profile_id it is set up on")
        if country in NO_ALPHANUMERIC:
            raise _Problem(where, "Telnyx sends no alphanumeric sender ID to the US, Canada or Puerto Rico")
    return Route(endpoint=endpoint, sender=sender, messaging_profile_id=profile, name=name)


def check_table(document: Any) -> dict[str, tuple[Route, ...]]:
    """The routes of each country (and `default`), or a _Problem naming the line."""
    if not isinstance(document, Located) or not document:
        raise _Problem(getattr(document, "line", 1) or 1,
                       "the file must map countries (ISO codes, or `default`) to lists of routes")
    table: dict[str, tuple[Route, ...]] = {}
    names: dict[str, int] = {}
    for key, routes in document.items():
        line = document.line_of(key)
        country = _country(key, line)
        if not isinstance(routes, LocatedList) or not routes:
            raise _Problem(line, f"{key} must have a list of at least one route")
        if len(routes) > MAX_ROUTES_PER_COUNTRY:
            raise _Problem(line, f"{key} has {len(routes)} routes: at most {MAX_ROUTES_PER_COUNTRY}")
        built = []
        for index, route in enumerate(routes):
            built.append(_route(country, index, route, routes.line_of(index)))
            name, at = built[-1].name, route.line_of("name")
            if name in RESERVED_NAMES:
                raise _Problem(at, f"name {name!r} is kept for the route of the settings")
            if name in names:
                raise _Problem(at, f"name {name!r} is already the name of the route at line {names[name]}")
            names[name] = at
        table[country] = tuple(built)
    if len(names) > MAX_ROUTES:
        raise _Problem(document.line, f"{len(names)} routes: at most {MAX_ROUTES}")
    return table


def load_routes(path: str) -> dict[str, tuple[Route, ...]]:
    """Read and check OTP_ROUTES_FILE; ConfigError naming the file and the line of the first problem."""
    file = Path(path)
    reader = READERS.get(file.suffix.lower())
    if reader is None:
        raise ConfigError(f"OTP_ROUTES_FILE {path}: name a .yaml, .yml or .json file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"OTP_ROUTES_FILE {path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        return check_table(reader(text))
    except _Problem as exc:
        where = f", line {exc.line}" if exc.line else ""
        raise ConfigError(f"OTP_ROUTES_FILE {path}{where}: {exc.message}") from None


def all_names(table: Mapping[str, tuple[Route, ...]]) -> tuple[str, ...]:
    """Every route's name, each once, in the table's order."""
    return tuple(dict.fromkeys(route.name for routes in table.values() for route in routes))

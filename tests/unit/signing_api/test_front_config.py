"""deploy/nginx/tamga.conf agrees with the app: body sizes per route, and the client address."""

from __future__ import annotations

import re
from pathlib import Path

from werkzeug.routing import Map

from signing_api.app import create_app
from signing_api.config import Config
from signing_api.web.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT, MIB

CONF = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "tamga.conf"
_SIZE = re.compile(r"^\s*client_max_body_size\s+(\d+)m;", re.MULTILINE)
_LOCATION = re.compile(r"^\s*location\s+(=|~)\s+(\S+)\s*\{(.*?)^\s*\}", re.MULTILINE | re.DOTALL)


def _server_size(text: str) -> int:
    outside = _LOCATION.sub("", text)
    [size] = _SIZE.findall(outside)
    return int(size) * MIB


def _url_map(tmp_path: Path) -> Map:
    return create_app(Config.from_env({"TAMGA_HOME": str(tmp_path)})).url_map


def _example(rule: str) -> str:
    return re.sub(r"<[^>]+>", "7", rule)


def test_every_body_limit_has_its_location_with_the_same_size(tmp_path: Path) -> None:
    text = CONF.read_text()
    assert _server_size(text) == DEFAULT_BODY_LIMIT
    locations = [(kind, path, _SIZE.findall(body)) for kind, path, body in _LOCATION.findall(text)]
    rules = {r.endpoint: r.rule for r in _url_map(tmp_path).iter_rules()}
    for endpoint, limit in BODY_LIMITS.items():
        path = _example(rules[endpoint])
        matching = [
            sizes
            for kind, where, sizes in locations
            if (kind == "=" and where == path) or (kind == "~" and re.search(where, path))
        ]
        assert matching == [[str(limit // MIB)]], f"{endpoint} ({path}) in {CONF.name}"
    # and no location lets a larger body through than the app accepts
    sizes = {int(s) * MIB for _, _, found in locations for s in found}
    assert sizes <= set(BODY_LIMITS.values())


def test_the_front_alone_sets_x_forwarded_for() -> None:
    text = CONF.read_text()
    assert re.findall(r"proxy_set_header\s+X-Forwarded-For\s+(\S+);", text) == ["$remote_addr"]
    assert "proxy_request_buffering on;" in text and "proxy_buffering on;" in text


def test_the_commissions_page_gets_the_fronts_413_in_html() -> None:
    """/disputes/ answers people: nginx's own 413 for its routes is a page, not JSON."""
    text = CONF.read_text()
    bodies = {path: body for kind, path, body in _LOCATION.findall(text) if kind == "="}
    for path in ("/disputes/verify", "/disputes/report.pdf"):
        assert "error_page 413 = @page_too_large;" in bodies[path], path
    page = re.search(r"location @page_too_large \{(.*?)\n    \}", text, re.DOTALL)
    assert page and "default_type text/html;" in page[1] and "return 413" in page[1]

"""Rate limits, body limits and the failed-login journal (web/limits.py, web/failures.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from db import AuditEntry
from signing_api.app import create_app
from signing_api.clients import create_client
from signing_api.config import Config, ConfigError
from signing_api.runtime import Runtime
from signing_api.web.failures import SUMMARY_INTERVAL

PATH = "/api/v1/subscribers"
ATTACKER = "198.51.100.7"
OTHER = "192.0.2.44"


def _app(runtime: Runtime, **settings: Any) -> Flask:
    app = create_app(replace(runtime.config, **settings))
    app.extensions["tamga"] = runtime
    return app


def _token(runtime: Runtime, name: str = "officer") -> str:
    with runtime.transaction() as session:
        made = create_client(session, name=name, role="officer", now=runtime.now(), actor="test")
    return made.token


def _get(client: FlaskClient, token: str, address: str = ATTACKER, **headers: str) -> Any:
    return client.get(
        PATH,
        headers={"Authorization": f"Bearer {token}", **headers},
        environ_base={"REMOTE_ADDR": address},
    )


def _failures(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.transaction() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "login.failed").order_by(AuditEntry.id)
        ).all()
        return [{"actor": r.actor, **r.details_dict()} for r in rows]


def test_a_bad_token_burst_gets_429_and_a_bounded_journal(runtime: Runtime) -> None:
    client = _app(runtime).test_client()
    statuses = [_get(client, f"tmg_forged_{i}").status_code for i in range(50)]
    assert statuses == [401] * 10 + [429] * 40
    refused = _get(client, "tmg_forged_again")
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert refused.json["type"] == "urn:tamga:problem:too-many-requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    [opening] = _failures(runtime)  # the first failure at once; the rest counted in memory
    assert opening["actor"] == f"ip:{ATTACKER}" and opening["count"] == 1
    # the interval closes: the next request this worker handles journals the counts
    later = runtime.now() + SUMMARY_INTERVAL + timedelta(seconds=1)
    runtime.clock = lambda: later
    client.get("/cps", environ_base={"REMOTE_ADDR": OTHER})
    rows = _failures(runtime)
    assert [(r["count"], r["throttled"]) for r in rows] == [(1, 0), (9, 41)]
    assert rows[1]["reasons"] == [{"reason": "unknown or disabled bearer token", "count": 9}]
    with runtime.transaction() as session:
        journal = [e.details for e in session.scalars(select(AuditEntry))]
    assert not any("tmg_forged" in d for d in journal)


def test_a_good_client_is_not_held_back(runtime: Runtime) -> None:
    token, other = _token(runtime), _token(runtime, "second officer")
    client = _app(runtime).test_client()
    assert _get(client, token).status_code == 200  # this worker now knows the token
    for i in range(12):
        _get(client, f"tmg_forged_{i}")
    assert _get(client, "tmg_forged_x").status_code == 429
    assert _get(client, token).status_code == 200  # same address, a token it knows
    assert _get(client, other, address=OTHER).status_code == 200  # another address
    # a valid token this worker has not seen lately, from the attacker's address: held back too
    assert _get(client, _token(runtime, "third officer")).status_code == 429
    assert client.get("/cps", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 200


def test_x_forwarded_for_is_not_trusted_unless_configured(runtime: Runtime) -> None:
    client = _app(runtime).test_client()
    for i in range(12):  # a new forged address each time: still the socket peer that counts
        _get(client, "tmg_forged", **{"X-Forwarded-For": f"203.0.113.{i}"})
    assert _get(client, "tmg_forged", **{"X-Forwarded-For": "203.0.113.99"}).status_code == 429
    assert {r["actor"] for r in _failures(runtime)} == {f"ip:{ATTACKER}"}

    behind = _app(runtime, trusted_proxies=1).test_client()  # one proxy: its X-Forwarded-For
    response = _get(behind, "tmg_forged", address="127.0.0.1", **{"X-Forwarded-For": OTHER})
    assert response.status_code == 401
    assert _failures(runtime)[-1]["actor"] == f"ip:{OTHER}"


def test_public_routes_are_limited_per_address(runtime: Runtime) -> None:
    client = _app(runtime, limit_public="3/minute").test_client()
    for _ in range(3):
        assert client.get("/cps", environ_base={"REMOTE_ADDR": ATTACKER}).status_code == 200
    limited = client.get("/openapi.json", environ_base={"REMOTE_ADDR": ATTACKER})
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert client.get("/cps", environ_base={"REMOTE_ADDR": OTHER}).status_code == 200
    assert _get(client, "tmg_forged").status_code == 401  # authenticating routes: other limits


def test_a_credential_is_limited(runtime: Runtime) -> None:
    token = _token(runtime)
    client = _app(runtime, limit_client="3/minute").test_client()
    assert [_get(client, token).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert _get(client, _token(runtime, "another"), address=ATTACKER).status_code == 200


def test_bodies_are_bounded_per_route(runtime: Runtime) -> None:
    client = _app(runtime).test_client()
    big = client.post(
        "/csc/v1/info", data=b" " * (1024 * 1024 + 1), content_type="application/json"
    )
    assert big.status_code == 413 and big.mimetype == "application/problem+json"
    assert big.json["type"] == "urn:tamga:problem:payload-too-large"
    document = client.post(
        "/api/v1/signatures", data=b" " * (2 * 1024 * 1024), content_type="application/json"
    )
    assert document.status_code == 401  # 28 MiB accepted there; it is the token that is missing


def test_the_document_declares_429_everywhere_and_413_with_bodies(runtime: Runtime) -> None:
    doc = _app(runtime).test_client().get("/openapi.json").json
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op["responses"]["429"] == {"$ref": "#/components/responses/TooManyRequests"}
            if "requestBody" in op:
                assert "413" in op["responses"], (method, path)
    assert "Retry-After" in doc["components"]["responses"]["TooManyRequests"]["headers"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TAMGA_LIMIT_AUTH_FAILURES", "ten a minute"),
        ("TAMGA_LIMIT_PUBLIC", ""),
        ("TAMGA_TRUSTED_PROXIES", "-1"),
        ("TAMGA_TRUSTED_PROXIES", "x"),
        ("TAMGA_RATE_LIMITS", "maybe"),
    ],
)
def test_bad_limit_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: value})

"""The Flask app in-process (test client) over real SoftHSM2 and real databases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from cryptography import x509
from flask import Flask, jsonify
from openapi_spec_validator import validate
from sqlalchemy import select

from ca import ensure_hierarchy
from db import AuditEntry
from policies.roles import ClientRole
from signing_api.app import create_app
from signing_api.clients import create_client
from signing_api.config import Config
from signing_api.runtime import Runtime
from signing_api.web.auth import require_client
from signing_api.web.limits import flush_failures
from signing_api.web.public.health import ensure_health_key

pytestmark = [pytest.mark.hsm, pytest.mark.db]
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _app(runtime: Runtime) -> Flask:
    app = create_app(runtime.config)
    app.extensions["tamga"] = runtime

    @app.get("/api/v1/_test/officer-only")
    @require_client(ClientRole.OFFICER)
    def officer_only():  # type: ignore[no-untyped-def]
        return jsonify({"ok": True})

    @app.get("/_test/boom")
    def boom():  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    ensure_health_key(runtime.ca_token)
    ensure_health_key(runtime.cloud_token)
    return _app(runtime)


def _problem(response, status: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body: dict[str, object] = json.loads(response.data)
    assert body["status"] == status and str(body["type"]).startswith("urn:tamga:problem:")
    assert body["title"] and body["detail"]
    return body


def test_healthz_ok(app: Flask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.json
    checks = response.json["checks"]  # type: ignore[index]
    assert {k: v["status"] for k, v in checks.items()} == {
        "database": "ok",
        "ca_token": "ok",
        "cloud_token": "ok",
        "audit": "ok",  # the sequencer's backlog (docs/audit.md)
    }
    assert (
        checks["ca_token"]["label"] == "tamga-ca"
        and checks["cloud_token"]["label"] == "tamga-cloud"
    )


def test_healthz_503_when_database_is_down(runtime: Runtime) -> None:
    password = "Db-Pa55-Never-Shown"
    url = f"postgresql+psycopg://x:{password}@127.0.0.1:1/none"
    down = Runtime(Config(**{**runtime.config.__dict__, "database_url": url}))
    app = _app(down)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"  # type: ignore[index]
    database = response.json["checks"]["database"]  # type: ignore[index]
    assert database["status"] == "failed"
    shown = "postgresql+psycopg://x:***@127.0.0.1:1/none"
    assert database["error"].startswith(f"cannot connect to {shown}: "), database
    assert password not in response.get_data(as_text=True)  # nowhere in the answer


def test_healthz_503_when_a_pin_is_wrong(runtime: Runtime) -> None:
    config = Config(**{**runtime.config.__dict__, "cloud_pin": "wrong-pin"})
    app = _app(Runtime(config))
    app.extensions["tamga"].__dict__["engine"] = runtime.engine
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["cloud_token"]["status"] == "failed"  # type: ignore[index]
    assert "wrong-pin" not in response.get_data(as_text=True)


def test_ca_certificates_served_as_der(app: Flask, runtime: Runtime) -> None:
    client = app.test_client()
    _problem(client.get("/ca/root.crt"), 404)  # not installed yet
    with runtime.transaction() as session:
        status = ensure_hierarchy(session, runtime.ca_token, public_url="http://x", now=NOW)
    for name, expected in (("root", status.root), ("issuing", status.issuing)):
        response = client.get(f"/ca/{name}.crt")
        assert response.status_code == 200 and response.mimetype == "application/pkix-cert"
        assert x509.load_der_x509_certificate(response.data) == expected
    _problem(client.get("/ca/other.crt"), 404)


def test_errors_are_problem_json(app: Flask) -> None:
    client = app.test_client()
    _problem(client.get("/nothing-here"), 404)
    not_allowed = client.post("/healthz")
    _problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]
    boom = _problem(client.get("/_test/boom"), 500)
    assert "secret internals" not in json.dumps(boom)


def test_openapi_documents_every_route(app: Flask) -> None:
    doc = app.test_client().get("/openapi.json").json
    assert doc is not None
    validate(doc)
    real = create_app(app.extensions["tamga"].config)
    routes = {
        re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for rule in real.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    documented = set(doc["paths"])
    expanded = {r for r in routes if "{name}" not in r}
    expanded |= {"/ca/root.crt", "/ca/issuing.crt", "/ca/dispatch.crt", "/ca/audit.crt"}
    expanded |= {"/crl/root.crl", "/crl/issuing.crl", "/crl/issuing-delta.crl"}
    assert expanded == documented


def test_bearer_tokens_and_roles(app: Flask, runtime: Runtime) -> None:
    with runtime.transaction() as session:
        officer = create_client(session, name="officer 1", role="officer", now=NOW, actor="test")
        portal = create_client(session, name="portal", role="portal", now=NOW, actor="test")
    client = app.test_client()
    path = "/api/v1/_test/officer-only"
    _problem(client.get(path), 401)
    _problem(client.get(path, headers={"Authorization": "Bearer tmg_forged"}), 401)
    _problem(client.get(path, headers={"Authorization": f"Basic {officer.token}"}), 401)
    _problem(client.get(path, headers={"Authorization": f"Bearer {portal.token}"}), 403)
    ok = client.get(path, headers={"Authorization": f"Bearer {officer.token}"})
    assert ok.status_code == 200 and ok.json == {"ok": True}
    with runtime.transaction() as session:
        failed = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "login.failed")
        ).all()
        created = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "client.created")
        ).all()
    # the first failure of an address is journalled at once; the next ones are counted
    # (web/failures.py) and journalled as one row when the interval closes, here the app's end
    assert [e.details_dict()["count"] for e in failed] == [1]
    flush_failures(app)
    with runtime.transaction() as session:
        failed = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "login.failed")
        ).all()
    assert [e.details_dict()["count"] for e in failed] == [1, 2]
    assert all(e.outcome == "refused" and e.actor == "ip:127.0.0.1" for e in failed)
    reasons = [r for e in failed for r in e.details_dict()["reasons"]]
    assert sum(r["count"] for r in reasons) == 3
    assert {r["reason"] for r in reasons} >= {"no bearer token", "unknown or disabled bearer token"}
    assert len(created) == 2
    assert all(
        officer.token not in e.details and portal.token not in e.details for e in failed + created
    )


def test_cps_lists_every_role_policy(app: Flask) -> None:
    from policies.cert_profiles import CertRole, policy_oid

    response = app.test_client().get("/cps")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    for role in CertRole:
        assert f"{policy_oid(role)}  {role.value}" in text
    assert "/crl/issuing.crl" in text

"""``tamga clients list|disable|rotate|grant|revoke-grant`` (issue #12, finding 7), and
``tamga ca registration approve`` for an INN registered under another portal (finding 1).

Real ``tamga`` subprocesses on this test's database (SQLite and PostgreSQL), and the real app
over the same database: each change is journalled and takes effect on the very next request.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from db import AuditEntry
from signing_api.app import create_app
from signing_api.runtime import Runtime
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"
COMPANY = {
    "inn": INN,
    "name": 'ОсОО "Ала-Тоо"',
    "legal_form": "ОсОО",
    "locality": "Бишкек",
    "email": "office@alatoo.kg",
}
PERSON = {
    "full_name": "Чужаков Чужак",
    "position": "Директор",
    "passport_series": "ID7654321",
    "email": "boss@intruder.kg",
    "phone": "+996555000111",
}


@pytest.fixture
def tamga(run_tamga: RunTamga, tmp_path: Path, database_url: str) -> Any:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_tamga(tmp_path / "home", *args, database_url=database_url, check=check)

    return run


@pytest.fixture
def app(runtime: Runtime) -> Flask:
    made = create_app(runtime.config)
    made.extensions["tamga"] = runtime
    return made


def _token(created: subprocess.CompletedProcess[str]) -> str:
    return created.stdout.strip().splitlines()[-1]


def _get(app: Flask, path: str, token: str) -> Any:
    return app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})


def _post(app: Flask, path: str, token: str, body: dict[str, Any]) -> Any:
    return app.test_client().post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def _journal(runtime: Runtime, action: str) -> list[dict[str, Any]]:
    with runtime.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return [{"object": r.object, **r.details_dict()} for r in rows]


def _refused(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], lines


def test_clients_are_listed_disabled_rotated_and_their_grants_revoked(
    tamga: Any, app: Flask, runtime: Runtime
) -> None:
    officer = _token(tamga("clients", "create", "--name", "front office", "--role", "officer"))
    portal = _token(tamga("clients", "create", "--name", "portal A", "--role", "portal"))
    other = _token(tamga("clients", "create", "--name", "portal B", "--role", "portal"))
    assert _post(app, "/api/v1/subscribers", other, COMPANY).status_code == 201
    tamga("clients", "grant", "portal A", "--inn", INN)
    assert _get(app, f"/api/v1/subscribers/{INN}", portal).status_code == 200

    listed = json.loads(tamga("clients", "list", "--json").stdout)["clients"]
    assert [(c["name"], c["role"], c["disabled_at"], c["scope"]) for c in listed] == [
        ("front office", "officer", None, None),
        ("portal A", "portal", None, [INN]),
        ("portal B", "portal", None, [INN]),
    ]
    plain = tamga("clients", "list").stdout
    assert "(portal A): active; 1 in scope" in plain and "3 clients" in plain
    assert "(front office): active; every subscriber" in plain
    assert "tmg_" not in plain + json.dumps(listed)  # tokens are never shown again

    # A revoked grant: the subscriber is 404 to that client at once; the other keeps it.
    revoked = tamga("clients", "revoke-grant", "portal A", "--inn", INN).stdout
    assert revoked.strip() == f"revoked: client 2 (portal A) no longer sees subscriber {INN}"
    assert _get(app, f"/api/v1/subscribers/{INN}", portal).status_code == 404
    assert _get(app, f"/api/v1/accounts/{INN}", portal).status_code == 404
    assert _get(app, f"/api/v1/subscribers/{INN}", other).status_code == 200
    _refused(tamga("clients", "revoke-grant", "portal A", "--inn", INN, check=False),
             "not in the scope")  # fmt: skip
    _refused(tamga("clients", "revoke-grant", "front office", "--inn", INN, check=False),
             "officer client")  # fmt: skip
    assert _journal(runtime, "client.scope.revoked") == [{"object": "client:2", "inn": INN}]

    # A rotated token: the old one is refused on the next request, the new one works.
    rotated = tamga("clients", "rotate", "portal B")
    fresh = _token(rotated)
    assert fresh.startswith("tmg_") and fresh != other
    assert _get(app, f"/api/v1/subscribers/{INN}", other).status_code == 401
    assert _get(app, f"/api/v1/subscribers/{INN}", fresh).status_code == 200
    assert _journal(runtime, "client.token.rotated") == [{"object": "client:3", "name": "portal B"}]
    assert fresh not in json.dumps(_journal(runtime, "client.token.rotated"))

    # A disabled client: its token is refused on the next request; it cannot be rotated back.
    disabled = tamga("clients", "disable", "portal B").stdout
    assert disabled.startswith("client 3 (portal B) disabled since ")
    refused = _get(app, f"/api/v1/subscribers/{INN}", fresh)
    assert refused.status_code == 401 and "disabled" in refused.json["detail"]
    _refused(tamga("clients", "rotate", "portal B", check=False), "disabled")
    assert tamga("clients", "disable", "portal B").stdout == disabled  # again: unchanged
    assert len(_journal(runtime, "client.disabled")) == 1
    _refused(tamga("clients", "disable", "nobody", check=False), "no client named 'nobody'")
    shown = json.loads(tamga("clients", "list", "--json").stdout)["clients"][2]
    assert shown["disabled_at"] is not None
    assert _get(app, f"/api/v1/subscribers/{INN}", officer).status_code == 200


def test_approving_a_request_for_a_registered_inn_needs_an_explicit_scope_choice(
    tamga: Any, app: Flask, runtime: Runtime
) -> None:
    portal = _token(tamga("clients", "create", "--name", "portal A", "--role", "portal"))
    other = _token(tamga("clients", "create", "--name", "portal B", "--role", "portal"))
    assert _post(app, "/api/v1/subscribers", other, COMPANY).status_code == 201
    request = {"channel": "online", "subscriber": COMPANY, "holder": PERSON, "role": "head",
               "storage": "cloud"}  # fmt: skip
    submitted = _post(app, "/api/v1/registrations", portal, request)
    assert submitted.status_code == 201
    number = str(submitted.json["id"])

    shown = tamga("ca", "registration", "show", number).stdout
    assert "INN ALREADY REGISTERED (in scope of: portal B)" in shown, shown
    as_json = json.loads(tamga("ca", "registration", "show", number, "--json").stdout)
    assert as_json["existing_subscriber"] is True
    assert as_json["in_scope_of"] == [{"id": 2, "name": "portal B"}]

    _refused(tamga("ca", "registration", "approve", number, check=False), "grant_scope")
    assert (
        tamga("ca", "registration", "show", number, "--json").stdout
        == json.dumps(as_json, ensure_ascii=False, indent=2) + "\n"
    )  # nothing changed
    done = json.loads(
        tamga("ca", "registration", "approve", number, "--no-grant-scope", "--json").stdout
    )
    assert done["status"] == "approved" and done["in_scope_of"] == [{"id": 2, "name": "portal B"}]
    assert _get(app, f"/api/v1/subscribers/{INN}", portal).status_code == 404
    assert _journal(runtime, "client.scope.withheld") == [
        {"object": "client:1", "inn": INN, "registration": int(number)}
    ]
    # A later, explicit grant is the officer's own command.
    tamga("clients", "grant", "portal A", "--inn", INN)
    assert _get(app, f"/api/v1/subscribers/{INN}", portal).status_code == 200

"""The API clients' lifecycle of docs/registry.md, through the service the CLI calls and the app.

``tamga clients disable|rotate|revoke-grant`` (tests/e2e/test_clients_cli.py runs the real
subprocesses) call ``signing_api.clients``; here the same functions run in the test's process,
so that mutation testing (which records only in-process calls) sees them, and the effect is
checked through the Flask test client on the very next request: a revoked grant makes the
subscriber 404, a rotated token refuses the old one (401), a disabled client's token is refused
(401), disabling is final. Real database (SQLite and PostgreSQL), real SoftHSM.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ca.registry import create_subscriber
from db import AuditEntry
from signing_api.clients import (
    ClientError,
    authenticate,
    disable_client,
    grant,
    has_scope,
    revoke_grant,
    rotate_token,
)
from tests.ca_fixtures import CA_NOW, SUBSCRIBER, CaApi, register

pytestmark = [pytest.mark.hsm, pytest.mark.db]

INN = SUBSCRIBER["inn"]
OTHER_INN = "05234567890123"


def _get(api: CaApi, path: str, token: str) -> Any:
    return api.client.get(path, headers={"Authorization": f"Bearer {token}"})


def _journal(api: CaApi, action: str) -> list[dict[str, Any]]:
    with api.runtime.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return [
            {"object": r.object, "actor": r.actor, "at": r.occurred_at, **r.details_dict()}
            for r in rows
        ]


def test_a_revoked_grant_is_effective_at_the_next_request(ca_api: CaApi) -> None:
    """Only that client loses only that subscriber.

    Mutants killed: ``revoke_grant`` 12 (the subscriber left every client's scope) and 13 (every
    subscriber left the client's scope).
    """
    register(ca_api)  # INN in the portal's scope
    portal, other = ca_api.tokens["portal"], ca_api.tokens["portal_b"]
    client_id = ca_api.client_ids["portal"]
    with ca_api.runtime.transaction() as session:
        company = {**SUBSCRIBER, "inn": OTHER_INN, "name": 'ОсОО "Другое"'}
        create_subscriber(session, company, now=CA_NOW, actor="test")
        assert grant(session, client_id=client_id, inn=OTHER_INN, now=CA_NOW, actor="test")
        assert grant(
            session, client_id=ca_api.client_ids["portal_b"], inn=INN, now=CA_NOW, actor="test"
        )
    for token, inn in ((portal, INN), (portal, OTHER_INN), (other, INN)):
        assert _get(ca_api, f"/api/v1/subscribers/{inn}", token).status_code == 200
    with ca_api.runtime.transaction() as session:
        assert revoke_grant(session, client_id=client_id, inn=INN, now=CA_NOW, actor="cli:op")
    for path in (f"/api/v1/subscribers/{INN}", f"/api/v1/accounts/{INN}"):
        assert _get(ca_api, path, portal).status_code == 404, path
    listed = _get(ca_api, "/api/v1/subscribers", portal)
    assert listed.status_code == 200 and INN not in listed.get_data(as_text=True)
    with ca_api.runtime.transaction() as session:
        assert not has_scope(session, client_id, INN)
        # Not in the scope any more: False, nothing journalled again.
        assert not revoke_grant(session, client_id=client_id, inn=INN, now=CA_NOW, actor="x")
    assert _journal(ca_api, "client.scope.revoked") == [
        {"object": f"client:{client_id}", "actor": "cli:op", "at": CA_NOW, "inn": INN}
    ]
    # The client's other subscriber, and another client's grant of this one, are untouched.
    assert _get(ca_api, f"/api/v1/subscribers/{OTHER_INN}", portal).status_code == 200
    assert _get(ca_api, f"/api/v1/subscribers/{INN}", other).status_code == 200
    assert _get(ca_api, f"/api/v1/subscribers/{INN}", ca_api.tokens["officer"]).status_code == 200


def test_a_rotated_token_refuses_the_old_one_at_the_next_request(ca_api: CaApi) -> None:
    register(ca_api)
    old = ca_api.tokens["portal"]
    with ca_api.runtime.transaction() as session:
        made = rotate_token(session, " portal ", now=CA_NOW, actor="cli:op")
    assert made.token.startswith("tmg_") and made.token != old
    assert (made.client_id, made.name, made.role.value) == (
        ca_api.client_ids["portal"], "portal", "portal",
    )  # fmt: skip
    refused = _get(ca_api, f"/api/v1/subscribers/{INN}", old)
    assert refused.status_code == 401, refused.json
    assert _get(ca_api, f"/api/v1/subscribers/{INN}", made.token).status_code == 200
    journal = _journal(ca_api, "client.token.rotated")
    assert journal == [
        {
            "object": f"client:{made.client_id}",
            "actor": "cli:op",
            "at": CA_NOW,
            "name": "portal",
        }
    ]
    assert made.token not in repr(journal)


def test_a_disabled_client_is_refused_at_the_next_request_for_good(ca_api: CaApi) -> None:
    register(ca_api)
    token = ca_api.tokens["portal"]
    with ca_api.runtime.transaction() as session:
        row = disable_client(session, "portal", now=CA_NOW, actor="cli:op")
        assert row.disabled_at is not None
    refused = _get(ca_api, f"/api/v1/subscribers/{INN}", token)
    assert refused.status_code == 401 and "disabled" in refused.json["detail"], refused.json
    with ca_api.runtime.transaction() as session:
        with pytest.raises(ClientError, match="disabled"):
            authenticate(session, token)
        with pytest.raises(ClientError, match="disabled: its token cannot be rotated"):
            rotate_token(session, "portal", now=CA_NOW, actor="cli:op")
        again = disable_client(session, "portal", now=CA_NOW, actor="cli:other")
        assert again.disabled_at is not None
    assert _journal(ca_api, "client.disabled") == [
        {
            "object": f"client:{ca_api.client_ids['portal']}",
            "actor": "cli:op",
            "at": CA_NOW,
            "name": "portal",
            "role": "portal",
        }
    ]
    # The others are untouched.
    assert _get(ca_api, f"/api/v1/subscribers/{INN}", ca_api.tokens["officer"]).status_code == 200
    with (
        ca_api.runtime.transaction() as session,
        pytest.raises(ClientError, match="no client named 'nobody'"),
    ):
        disable_client(session, "nobody", now=CA_NOW, actor="cli:op")


def test_a_token_without_the_prefix_is_malformed(ca_api: CaApi) -> None:
    token = ca_api.tokens["portal"]
    for bad in (token[4:], "TMG_" + token[4:], "x" + token):
        refused = _get(ca_api, "/api/v1/subscribers", bad)
        assert refused.status_code == 401, (bad, refused.json)
        assert "malformed" in refused.json["detail"], refused.json

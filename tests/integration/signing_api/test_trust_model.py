"""The trust model (issue #12), attacked through the real interface (Flask test client, real
database on SQLite and PostgreSQL, real SoftHSM).

1. A portal cannot take over another portal's subscriber by submitting a registration request
   for its INN: the officer sees that the INN is registered and in whose scope; a routine
   approval widens no scope; the portal's answers read as for a new INN.
2. A portal cannot mint certificates without the registration authority: a holder registered
   directly has no verified identity and gets no certificate until an officer vouches for it.
(Terminating a contract revokes the certificates: ``test_termination.py``.)

Each test checks the database rows and the audit journal, not only the status code.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from billing.models import PaymentAccount
from ca.models import Certificate, Holder
from db import AuditEntry
from signing_api.clients import ClientSubscriber
from tests.ca_fixtures import SUBSCRIBER, CaApi, register

pytestmark = [pytest.mark.hsm, pytest.mark.db]

INN = SUBSCRIBER["inn"]
FRESH_INN = "05234567890123"
INTRUDER = {
    "full_name": "Чужаков Чужак Чужакович",
    "position": "Директор",
    "passport_series": "ID7654321",
    "email": "boss@intruder.kg",
    "phone": "+996555000111",
}
CERTIFICATES, REGISTRATIONS = "/api/v1/certificates", "/api/v1/registrations"


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = json.loads(response.data)
    assert body["type"] == f"urn:tamga:problem:{slug}", body
    return body


def _audit(api: CaApi, action: str) -> list[dict[str, Any]]:
    with api.runtime.transaction() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return [{"object": r.object, "actor": r.actor, **r.details_dict()} for r in rows]


def _count(api: CaApi, model: Any, *where: Any) -> int:
    with api.runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _issue_paid(api: CaApi, holder: int, who: str = "officer") -> str:
    """Issue a cloud head certificate for ``holder``, paying its first-certificate account."""
    body = {"holder_id": holder, "role": "head", "storage": "cloud"}
    unpaid = _problem(api.post(CERTIFICATES, body, who=who), 402, "payment-required")
    api.pay(unpaid["payment_account"], unpaid["amount_due"])
    done = api.post(CERTIFICATES, body, who=who)
    assert done.status_code == 201, done.json
    return str(done.json["serial"])


def _request(inn: str, **changes: Any) -> dict[str, Any]:
    body = {
        "channel": "online",
        "subscriber": {**SUBSCRIBER, "inn": inn},
        "holder": dict(INTRUDER),
        "role": "head",
        "storage": "cloud",
    }
    return {**body, **changes}


def _portal_view(view: dict[str, Any]) -> dict[str, Any]:
    """What may differ between two requests of a portal: their id, INN and its echo."""
    return {k: v for k, v in view.items() if k not in ("id", "inn", "subscriber")}


# --- finding 1: a registration request for somebody else's INN ----------------------------------


def test_a_registration_request_does_not_take_over_another_portals_subscriber(
    ca_api: CaApi,
) -> None:
    # Portal B's subscriber: registered by B, a verified holder, a certificate, some money.
    created = ca_api.post("/api/v1/subscribers", SUBSCRIBER, who="portal_b")
    assert created.status_code == 201
    holder_b = register(ca_api, grant_to="portal_b")
    serial_b = _issue_paid(ca_api, holder_b)
    ca_api.pay(INN, 500_00)

    # Portal A asks for B's INN (B's public requisites, a new holder) and for a new INN.
    taken = ca_api.post(REGISTRATIONS, _request(INN), who="portal")
    fresh = ca_api.post(REGISTRATIONS, _request(FRESH_INN), who="portal")
    assert taken.status_code == fresh.status_code == 201
    # The portal's answers do not tell a registered INN from a new one.
    assert _portal_view(taken.json) == _portal_view(fresh.json)
    assert "existing_subscriber" not in taken.json and "in_scope_of" not in taken.json
    path = f"{REGISTRATIONS}/{taken.json['id']}"
    read = ca_api.get(path, who="portal").json
    assert _portal_view(read) == _portal_view(ca_api.get(f"{REGISTRATIONS}/{fresh.json['id']}",
                                                         who="portal").json)  # fmt: skip
    listed = ca_api.get(REGISTRATIONS, who="portal").json["registrations"]
    assert [_portal_view(v) for v in listed] == [_portal_view(read)] * 2

    # The officer sees that the INN is registered, and whose it is.
    officer = ca_api.get(path).json
    assert officer["existing_subscriber"] is True
    assert officer["in_scope_of"] == [{"id": ca_api.client_ids["portal_b"], "name": "portal_b"}]
    other = ca_api.get(f"{REGISTRATIONS}/{fresh.json['id']}").json
    assert other["existing_subscriber"] is False and other["in_scope_of"] == []

    # A routine approval is refused until the officer decides about the scope; nothing written.
    before = _count(ca_api, Holder)
    refused = _problem(ca_api.post(f"{path}/approve", {"note": "documents checked"}), 409,
                       "conflict")  # fmt: skip
    assert "grant_scope" in refused["detail"] and "portal" in refused["detail"]
    assert _count(ca_api, Holder) == before
    assert ca_api.get(path).json["status"] == "pending"

    # Approved without a grant: the holder is registered for B, portal A gains nothing.
    approved = ca_api.post(f"{path}/approve", {"note": "documents checked", "grant_scope": False})
    assert approved.status_code == 200, approved.json
    assert approved.json["existing_subscriber"] is True
    assert _count(ca_api, Holder) == before + 1
    intruder_holder = approved.json["holder_id"]
    with ca_api.runtime.transaction() as session:
        assert session.get(ClientSubscriber, (ca_api.client_ids["portal"], INN)) is None
    withheld = _audit(ca_api, "client.scope.withheld")
    assert withheld == [
        {"object": f"client:{ca_api.client_ids['portal']}", "actor": approved.json["decided_by"],
         "inn": INN, "registration": taken.json["id"]}
    ]  # fmt: skip
    assert all(g["inn"] != INN or g["object"] != f"client:{ca_api.client_ids['portal']}"
               for g in _audit(ca_api, "client.scope.granted"))  # fmt: skip

    # Portal A reads nothing of B's: subscriber, balance, holders, certificates, credentials.
    mine = ca_api.get(path, who="portal").json
    assert mine["status"] == "approved"
    assert (mine["holder_id"], mine["payment"], mine["payment_account"]) == (None, None, None)
    for what in (f"/api/v1/subscribers/{INN}", f"/api/v1/accounts/{INN}",
                 f"/api/v1/subscribers/{INN}/holders", f"/api/v1/holders/{holder_b}",
                 f"/api/v1/holders/{intruder_holder}", f"{CERTIFICATES}/{serial_b}"):  # fmt: skip
        _problem(ca_api.get(what, who="portal"), 404, "not-found")
    assert ca_api.get(CERTIFICATES, who="portal", inn=INN).json["certificates"] == []
    csc = ca_api.post("/csc/v1/credentials/list", {"userID": str(holder_b)}, who="portal")
    assert csc.status_code == 400 and csc.json["error"] == "invalid_request"
    # ... and cannot suspend B's certificate, even naming its own new holder.
    hold = ca_api.post(f"{CERTIFICATES}/{serial_b}/suspend", {}, who="portal",
                       holder=intruder_holder)  # fmt: skip
    _problem(hold, 404, "not-found")
    with ca_api.runtime.transaction() as session:
        cert = session.scalars(select(Certificate).where(Certificate.serial == serial_b)).one()
        assert cert.status == "active"
    assert _audit(ca_api, "ca.certificate.suspended") == []


def test_an_officer_may_grant_the_scope_explicitly_and_a_new_inn_is_granted(
    ca_api: CaApi,
) -> None:
    assert ca_api.post("/api/v1/subscribers", SUBSCRIBER, who="portal_b").status_code == 201
    taken = ca_api.post(REGISTRATIONS, _request(INN), who="portal").json
    fresh = ca_api.post(REGISTRATIONS, _request(FRESH_INN), who="portal").json

    # The company asked at the office to use portal A too: an explicit, journalled grant.
    granted = ca_api.post(f"{REGISTRATIONS}/{taken['id']}/approve", {"grant_scope": True})
    assert granted.status_code == 200, granted.json
    assert granted.json["in_scope_of"] == [
        {"id": ca_api.client_ids["portal"], "name": "portal"},
        {"id": ca_api.client_ids["portal_b"], "name": "portal_b"},
    ]
    assert ca_api.get(f"/api/v1/subscribers/{INN}", who="portal").status_code == 200
    journal = [g for g in _audit(ca_api, "client.scope.granted") if g["inn"] == INN]
    assert journal[-1]["registration"] == taken["id"]
    assert journal[-1]["object"] == f"client:{ca_api.client_ids['portal']}"

    # A new INN: approval registers it in the submitting portal's scope, as before.
    done = ca_api.post(f"{REGISTRATIONS}/{fresh['id']}/approve", {})
    assert done.status_code == 200 and done.json["existing_subscriber"] is False
    assert ca_api.get(f"/api/v1/subscribers/{FRESH_INN}", who="portal").status_code == 200
    mine = ca_api.get(f"{REGISTRATIONS}/{fresh['id']}", who="portal").json
    assert mine["holder_id"] == done.json["holder_id"]
    assert mine["payment_account"] == done.json["payment_account"]


# --- finding 2 (issue finding 3): no certificate without the registration authority -------------


def test_a_portal_cannot_mint_a_certificate_for_a_holder_it_registered_itself(
    ca_api: CaApi,
) -> None:
    assert ca_api.post("/api/v1/subscribers", SUBSCRIBER, who="portal").status_code == 201
    made = ca_api.post("/api/v1/holders", {"inn": INN, **INTRUDER}, who="portal")
    assert made.status_code == 201
    holder = made.json["id"]
    assert made.json["identity_verified"] is False
    assert made.json["identity_verified_at"] is None
    ca_api.pay(INN, 5000_00)  # money on the balance changes nothing
    keys = len(ca_api.runtime.cloud_token.key_labels())

    body = {"holder_id": holder, "role": "head", "storage": "cloud"}
    refused = _problem(ca_api.post(CERTIFICATES, body, who="portal"), 409,
                       "identity-not-verified")  # fmt: skip
    assert f"holder {holder}" in refused["detail"]
    # Nothing issued, charged, held or generated; the refusal is journalled.
    assert _count(ca_api, Certificate) == 0
    assert _count(ca_api, PaymentAccount) == 0
    account = ca_api.get(f"/api/v1/accounts/{INN}").json
    assert (account["available"], account["held"]) == (5000_00, 0)
    assert len(ca_api.runtime.cloud_token.key_labels()) == keys
    refusals = _audit(ca_api, "ca.certificate.refused")
    assert [r["reason"] for r in refusals] == ["IdentityNotVerified"]
    # An officer would not do it either without a check.
    _problem(ca_api.post(CERTIFICATES, body), 409, "identity-not-verified")

    # A portal cannot vouch for the person; an officer can (with what was checked).
    verify = f"/api/v1/holders/{holder}/verify"
    _problem(ca_api.post(verify, {"document": "trust me"}, who="portal"), 403, "forbidden")
    assert _audit(ca_api, "ca.holder.verified") == []
    _problem(ca_api.post(verify, {"document": "passport ID 7654321"}), 422, "validation-failed")
    checked = ca_api.post(verify, {"document": "office file 2026/117"})
    assert checked.status_code == 200, checked.json
    assert checked.json["identity_verified"] is True
    assert checked.json["identity_document"] == "office file 2026/117"
    assert checked.json["identity_verified_by"] == f"client:{ca_api.client_ids['officer']}"
    assert ca_api.get(f"/api/v1/holders/{holder}", who="portal").json["identity_verified"]
    again = ca_api.post(verify, {"document": "another file"}).json
    assert again["identity_document"] == "office file 2026/117"  # the first check stays
    assert [e["document"] for e in _audit(ca_api, "ca.holder.verified")] == ["office file 2026/117"]
    assert _issue_paid(ca_api, holder, who="portal")


def test_an_online_registration_request_approved_by_an_officer_verifies_the_holder(
    ca_api: CaApi,
) -> None:
    # The portal's own holder, unverified; then the same person through an online request.
    assert ca_api.post("/api/v1/subscribers", SUBSCRIBER, who="portal").status_code == 201
    holder = ca_api.post("/api/v1/holders", {"inn": INN, **INTRUDER}, who="portal").json["id"]
    submitted = ca_api.post(REGISTRATIONS, _request(INN), who="portal").json
    approved = ca_api.post(f"{REGISTRATIONS}/{submitted['id']}/approve", {}).json
    assert approved["holder_id"] == holder  # the same person, now verified by the approval
    view = ca_api.get(f"/api/v1/holders/{holder}").json
    assert view["identity_verified"] is True
    assert view["identity_document"] == f"registration request {submitted['id']}"
    assert view["identity_verified_by"] == approved["decided_by"]
    serial = _issue_paid(ca_api, holder, who="portal")
    assert serial


def test_a_holder_never_verified_cannot_renew(ca_api: CaApi) -> None:
    """A certificate issued before §3.3 was enforced: its holder renews after an officer's check."""
    holder = register(ca_api)
    serial = _issue_paid(ca_api, holder)
    with ca_api.runtime.transaction() as session:  # as a holder registered before migration 0008
        row = session.get_one(Holder, holder)
        row.identity_verified_at = row.identity_verified_by = row.identity_document = None
        cert = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        not_after = cert.not_after
    ca_api.clock.now = not_after - timedelta(days=20)
    terms = ca_api.get(f"{CERTIFICATES}/{serial}/renewal-request", who="portal", holder=holder)
    _problem(terms, 409, "identity-not-verified")
    ca_api.post(f"/api/v1/holders/{holder}/verify", {"document": "office file 9"})
    terms = ca_api.get(f"{CERTIFICATES}/{serial}/renewal-request", who="portal", holder=holder)
    assert terms.status_code == 200

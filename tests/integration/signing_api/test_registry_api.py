"""The registry over HTTP (real database on SQLite and PostgreSQL, real SoftHSM): subscribers,
holders, registration requests with their §3.3 deadlines and approval into a payment account,
powers of attorney with the complex certificates' company limits, and each client's scope."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from billing.models import PaymentAccount
from ca import powers
from ca.errors import Conflict
from ca.models import Certificate, Holder, Subscriber
from db import AuditEntry
from policies.cert_profiles import CertRole
from policies.identifiers import is_payment_account
from policies.tariffs import TARIFFS
from tests.ca_fixtures import CA_NOW, CaApi

pytestmark = [pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"
OTHER_INN = "02234567890123"
COMPANY = {
    "inn": INN,
    "name": 'ОсОО "Ала-Тоо Консалтинг"',
    "legal_form": "ОсОО",
    "locality": "Бишкек",
    "email": "office@alatoo.kg",
}
PERSON = {
    "full_name": "Асанова Айгуль Бакытовна",
    "position": "Директор",
    "passport_series": "ID1234567",
    "email": "director@alatoo.kg",
    "phone": "+996 555 123-456",
}
TAXPAYER = {
    "taxpayer_inn": "11234567890123",
    "taxpayer_name": 'ОсОО "Береке"',
    "taxpayer_legal_form": "ОсОО",
    "taxpayer_locality": "Ош",
    "document_number": "Д-1",
    "issued_on": "2026-10-30",
    "valid_from": "2026-11-01",
    "valid_until": "2027-10-31",
}
SUBSCRIBERS, HOLDERS = "/api/v1/subscribers", "/api/v1/holders"
REGISTRATIONS, POWERS = "/api/v1/registrations", "/api/v1/powers-of-attorney"


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = json.loads(response.data)
    assert body["type"] == f"urn:tamga:problem:{slug}"
    return body


def _invalid(response: Any, field: str) -> None:
    """422 naming exactly ``field``."""
    body = _problem(response, 422, "validation-failed")
    assert [e["field"] for e in body["errors"]] == [field], body


def _patch(api: CaApi, path: str, body: dict[str, Any], who: str = "officer") -> Any:
    return api.client.patch(path, json=body, headers=api.headers(who))


def _registration(**changes: Any) -> dict[str, Any]:
    body = {
        "channel": "online",
        "subscriber": dict(COMPANY),
        "holder": dict(PERSON),
        "role": "head",
        "storage": "cloud",
    }
    return {**body, **changes}


def _holder(api: CaApi, who: str = "officer", inn: str = INN, **person: str) -> dict[str, Any]:
    response = api.post(HOLDERS, {"inn": inn, **PERSON, **person}, who=who)
    assert response.status_code == 201, response.json
    created: dict[str, Any] = response.json
    return created


def _audit(api: CaApi, action: str) -> list[AuditEntry]:
    with api.runtime.transaction() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


# --- subscribers -------------------------------------------------------------------------------


def test_subscribers_are_registered_replayed_changed_and_scoped(ca_api: CaApi) -> None:
    created = ca_api.post(SUBSCRIBERS, COMPANY, who="portal")
    assert created.status_code == 201 and created.headers["Location"] == f"{SUBSCRIBERS}/{INN}"
    assert created.json == {**COMPANY, "status": "active", "created_at": "2026-11-23T06:00:00Z"}
    replay = ca_api.post(SUBSCRIBERS, {**COMPANY, "name": f"  {COMPANY['name']} "})
    assert replay.status_code == 200 and replay.json == created.json
    assert ca_api.get(f"/api/v1/accounts/{INN}").json["available"] == 0  # billing account open

    # The portal that registered it sees it; the other portal learns nothing.
    assert ca_api.get(f"{SUBSCRIBERS}/{INN}", who="portal").json == created.json
    assert ca_api.get(SUBSCRIBERS, who="portal").json == {"subscribers": [created.json]}
    _problem(ca_api.get(f"{SUBSCRIBERS}/{INN}", who="portal_b"), 404, "not-found")
    assert ca_api.get(SUBSCRIBERS, who="portal_b").json == {"subscribers": []}
    hidden = ca_api.post(SUBSCRIBERS, {**COMPANY, "name": "Другое"}, who="portal_b")
    detail = _problem(hidden, 409, "conflict")["detail"]
    assert detail == f"INN {INN} is already registered"
    same = _problem(ca_api.post(SUBSCRIBERS, COMPANY, who="portal_b"), 409, "conflict")
    assert same["detail"] == detail  # an identical body gains no scope either
    assert ca_api.get(SUBSCRIBERS, who="portal_b").json == {"subscribers": []}

    # The officer sees everything; a visible INN with other data is a conflict.
    assert ca_api.post(SUBSCRIBERS, {**COMPANY, "inn": OTHER_INN}).status_code == 201
    listed = ca_api.get(SUBSCRIBERS).json["subscribers"]
    assert [s["inn"] for s in listed] == [INN, OTHER_INN]
    _problem(ca_api.post(SUBSCRIBERS, {**COMPANY, "email": "x@y.kg"}), 409, "conflict")

    _invalid(ca_api.post(SUBSCRIBERS, {**COMPANY, "inn": "0123"}), "inn")
    _invalid(ca_api.post(SUBSCRIBERS, {**COMPANY, "inn": "０１２３４５６７８９０１２３"}), "inn")
    _invalid(ca_api.post(SUBSCRIBERS, {**COMPANY, "email": "nope"}), "email")
    _invalid(ca_api.post(SUBSCRIBERS, {k: v for k, v in COMPANY.items() if k != "name"}), "name")
    _problem(ca_api.get(f"{SUBSCRIBERS}/123"), 404, "not-found")

    changed = _patch(ca_api, f"{SUBSCRIBERS}/{INN}", {"locality": "Кара-Балта"})
    assert changed.status_code == 200 and changed.json["locality"] == "Кара-Балта"
    by_portal = _patch(ca_api, f"{SUBSCRIBERS}/{INN}", {"locality": "Ош"}, "portal")
    _problem(by_portal, 403, "forbidden")
    _invalid(_patch(ca_api, f"{SUBSCRIBERS}/{INN}", {"inn": OTHER_INN}), "inn")
    granted = _audit(ca_api, "client.scope.granted")
    assert [e.object for e in granted] == [f"client:{ca_api.client_ids['portal']}"]


def test_foreign_access_registered_by_an_officer_and_listed(ca_api: CaApi) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY, who="portal").status_code == 201
    path = f"{SUBSCRIBERS}/{INN}/foreign-access"
    entry = {
        "address": "2001:db8::0:1",
        "location": "Алматы,  Казахстан",
        "valid_from": "2026-11-01",
        "valid_until": "2026-12-31",
    }
    created = ca_api.post(path, entry)
    assert created.status_code == 201, created.json
    view = created.json
    assert view == {
        "id": view["id"],
        "inn": INN,
        "address": "2001:db8::1",
        "location": "Алматы, Казахстан",
        "valid_from": "2026-11-01",
        "valid_until": "2026-12-31",
    }
    assert ca_api.get(path, who="portal").json == {"inn": INN, "foreign_access": [view]}
    _problem(ca_api.get(path, who="portal_b"), 404, "not-found")
    _problem(ca_api.post(path, entry, who="portal"), 403, "forbidden")
    _problem(ca_api.post(f"{SUBSCRIBERS}/{OTHER_INN}/foreign-access", entry), 404, "not-found")
    bad = {"address": "198.51.100.0/24", "valid_from": "01.11.2026", "valid_until": "2026-02-30"}
    refused = _problem(ca_api.post(path, {**entry, **bad}), 422, "validation-failed")
    assert sorted(e["field"] for e in refused["errors"]) == sorted(bad)
    _invalid(ca_api.post(path, {**entry, "valid_until": "2026-10-31"}), "valid_until")


# --- holders -----------------------------------------------------------------------------------


def test_holders_within_scope_and_passport_for_officers_only(ca_api: CaApi) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY, who="portal").status_code == 201
    by_portal = _holder(ca_api, who="portal")
    holder_id = by_portal["id"]
    assert by_portal == {
        "id": holder_id,
        "inn": INN,
        "full_name": PERSON["full_name"],
        "surname": "Асанова",
        "given_name": "Айгуль Бакытовна",
        "position": "Директор",
        "email": PERSON["email"],
        "phone": "+996555123456",
        "status": "active",
        "identity_verified": False,  # registered by a portal: no officer vouched for it (§3.3)
        "identity_verified_at": None,
    }  # no passport series for the portal
    as_officer = ca_api.get(f"{HOLDERS}/{holder_id}").json
    assert as_officer == {
        **by_portal,
        "passport_series": "ID1234567",
        "identity_verified_by": None,
        "identity_document": None,
    }
    assert ca_api.get(f"{HOLDERS}/{holder_id}", who="portal").json == by_portal
    listed = ca_api.get(f"{SUBSCRIBERS}/{INN}/holders", who="portal").json
    assert listed == {"inn": INN, "holders": [by_portal]}

    _problem(ca_api.get(f"{HOLDERS}/{holder_id}", who="portal_b"), 404, "not-found")
    _problem(ca_api.get(f"{SUBSCRIBERS}/{INN}/holders", who="portal_b"), 404, "not-found")
    _problem(ca_api.post(HOLDERS, {"inn": INN, **PERSON}, who="portal_b"), 404, "not-found")
    _problem(ca_api.get(f"{HOLDERS}/999999"), 404, "not-found")
    _problem(ca_api.get(f"{HOLDERS}/{2**64}"), 404, "not-found")
    _problem(ca_api.post(HOLDERS, {"inn": OTHER_INN, **PERSON}), 404, "not-found")
    _invalid(ca_api.post(HOLDERS, {"inn": "x", **PERSON}), "inn")
    _invalid(ca_api.post(HOLDERS, {"inn": INN, **PERSON, "phone": "12"}), "phone")
    _invalid(ca_api.post(HOLDERS, {"inn": INN, **PERSON, "full_name": "Асанова"}), "full_name")

    changed = _patch(ca_api, f"{HOLDERS}/{holder_id}", {"position": "Главный бухгалтер"})
    assert changed.status_code == 200 and changed.json["position"] == "Главный бухгалтер"
    assert changed.json["passport_series"] == "ID1234567"
    by_portal_patch = _patch(ca_api, f"{HOLDERS}/{holder_id}", {"position": "x"}, "portal")
    _problem(by_portal_patch, 403, "forbidden")
    registered = _audit(ca_api, "ca.holder.registered")
    assert len(registered) == 1 and "ID1234567" not in registered[0].details


# --- registration requests ---------------------------------------------------------------------


def test_online_deadline_is_seven_working_days_across_the_new_year_holidays(
    ca_api: CaApi,
) -> None:
    # Friday 25 December 2026, 12:00 in Bishkek. Working days after it: 28-31 December; 1-7
    # January are public holidays (New Year holidays and Orthodox Christmas in the `holidays`
    # package's KG calendar); so the 5th to 7th working days are 8, 11 and 12 January.
    ca_api.clock.now = datetime(2026, 12, 25, 6, 0, tzinfo=UTC)
    submitted = ca_api.post(REGISTRATIONS, _registration(), who="portal")
    assert submitted.status_code == 201, submitted.json
    view = submitted.json
    assert view["deadline_at"] == "2027-01-12T18:00:00Z"  # the end of 12 January in Bishkek
    assert view["status"] == "pending" and view["overdue"] is False and view["channel"] == "online"
    assert "passport_series" not in view["holder"] and view["payment_account"] is None
    assert view["submitted_by"] == f"client:{ca_api.client_ids['portal']}"
    path = f"{REGISTRATIONS}/{view['id']}"
    assert submitted.headers["Location"] == path

    ca_api.clock.now = datetime(2027, 1, 12, 17, 59, tzinfo=UTC)
    assert ca_api.get(path, who="portal").json["overdue"] is False
    ca_api.clock.now = datetime(2027, 1, 12, 18, 0, 1, tzinfo=UTC)
    assert ca_api.get(path, who="portal").json["overdue"] is True
    pending = ca_api.get(REGISTRATIONS, status="pending").json["registrations"]
    assert [(r["id"], r["overdue"]) for r in pending] == [(view["id"], True)]
    assert ca_api.get(path).json["holder"]["passport_series"] == "ID1234567"  # officer

    events = _audit(ca_api, "ca.registration.submitted")
    assert len(events) == 1 and "ID1234567" not in events[0].details


def test_office_deadline_is_24_hours_and_portals_submit_online_only(ca_api: CaApi) -> None:
    office = ca_api.post(REGISTRATIONS, _registration(channel="office"))
    assert office.status_code == 201
    assert office.json["deadline_at"] == "2026-11-24T06:00:00Z"  # CA_NOW + 24 h
    assert office.json["holder"]["passport_series"] == "ID1234567"
    refused = ca_api.post(REGISTRATIONS, _registration(channel="office"), who="portal")
    _problem(refused, 403, "forbidden")
    ca_api.clock.now = CA_NOW + timedelta(hours=24, seconds=1)
    assert ca_api.get(f"{REGISTRATIONS}/{office.json['id']}").json["overdue"] is True


def test_registration_refusals_name_the_field(ca_api: CaApi) -> None:
    def submit(**changes: Any) -> Any:
        return ca_api.post(REGISTRATIONS, _registration(**changes))

    _invalid(submit(role="boss"), "role")
    _invalid(submit(storage="usb"), "storage")
    _invalid(submit(channel="mail"), "channel")
    _invalid(submit(subscriber={**COMPANY, "inn": "1"}), "subscriber.inn")
    _invalid(submit(holder={**PERSON, "passport_series": "№?"}), "holder.passport_series")
    _invalid(submit(holder=None), "holder")
    _invalid(ca_api.get(REGISTRATIONS, status="done"), "status")
    _problem(ca_api.get(f"{REGISTRATIONS}/12345"), 404, "not-found")
    officer = ca_api.headers("officer")
    not_json = ca_api.client.post(REGISTRATIONS, data="[]", headers=officer)  # no Content-Type
    _problem(not_json, 415, "unsupported-media-type")
    _problem(ca_api.client.post(REGISTRATIONS, json=[], headers=officer), 400, "bad-request")
    assert ca_api.get(REGISTRATIONS).json == {"registrations": []}
    assert _audit(ca_api, "ca.registration.submitted") == []


def test_approval_issues_the_first_certificate_payment_account(ca_api: CaApi) -> None:
    submitted = ca_api.post(REGISTRATIONS, _registration(), who="portal").json
    path = f"{REGISTRATIONS}/{submitted['id']}"
    # Before approval the portal sees only its request; the other portal nothing.
    mine = ca_api.get(REGISTRATIONS, who="portal").json["registrations"]
    assert [r["id"] for r in mine] == [submitted["id"]]
    assert ca_api.get(REGISTRATIONS, who="portal_b").json == {"registrations": []}
    _problem(ca_api.get(path, who="portal_b"), 404, "not-found")
    _problem(ca_api.get(f"{SUBSCRIBERS}/{INN}", who="portal"), 404, "not-found")
    _problem(ca_api.post(f"{path}/approve", who="portal"), 403, "forbidden")
    _problem(ca_api.post(f"{path}/reject", {"note": "x"}, who="portal"), 403, "forbidden")

    approved = ca_api.post(f"{path}/approve", {"note": "documents checked"})
    assert approved.status_code == 200, approved.json
    view = approved.json
    price = TARIFFS.price("cert:head", CA_NOW.date()).price
    assert price == 151_000  # 1510 som (DOMAIN.md)
    assert view["status"] == "approved" and view["decision_note"] == "documents checked"
    assert view["tariff"] == "cert:head" and view["amount_due"] == price
    assert view["payment"] == "payment_account"
    number = view["payment_account"]
    assert len(number) == 16 and is_payment_account(number)
    assert view["decided_by"] == f"client:{ca_api.client_ids['officer']}"
    assert ca_api.post(f"{path}/approve").json == view  # idempotent
    _problem(ca_api.post(f"{path}/reject", {"note": "too late"}), 409, "conflict")

    # The registry rows exist, and the submitting portal now has the subscriber in scope.
    assert ca_api.get(f"{SUBSCRIBERS}/{INN}", who="portal").json["name"] == COMPANY["name"]
    holder = ca_api.get(f"{HOLDERS}/{view['holder_id']}", who="portal").json
    assert holder["full_name"] == PERSON["full_name"] and holder["inn"] == INN
    _problem(ca_api.get(f"{SUBSCRIBERS}/{INN}", who="portal_b"), 404, "not-found")
    with ca_api.runtime.transaction() as session:
        holders = session.scalars(select(Holder).where(Holder.subscriber_inn == INN)).all()
        assert [h.id for h in holders] == [view["holder_id"]]

    # Paying the payment account (service "EDS payment") holds the price for the certificate.
    receipt = ca_api.pay(number, price)
    assert receipt.inn == INN and receipt.amount == price
    account = ca_api.get(f"/api/v1/accounts/{INN}").json
    assert account["held"] == price and account["available"] == 0
    with ca_api.runtime.transaction() as session:
        paid = session.get_one(PaymentAccount, number)
        assert (paid.status, paid.purpose, paid.amount_due) == ("paid", f"cert:first:{INN}", price)
    approvals = _audit(ca_api, "ca.registration.approved")
    assert len(approvals) == 1 and approvals[0].details_dict()["payment_account"] == number


def test_approval_reuses_an_identical_subscriber_and_refuses_a_different_one(
    ca_api: CaApi,
) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY).status_code == 201
    first = ca_api.post(REGISTRATIONS, _registration(channel="office")).json
    done = ca_api.post(f"{REGISTRATIONS}/{first['id']}/approve").json
    assert done["status"] == "approved" and is_payment_account(done["payment_account"])
    # The same person again becomes the same holder.
    second = ca_api.post(REGISTRATIONS, _registration(channel="office")).json
    again = ca_api.post(f"{REGISTRATIONS}/{second['id']}/approve").json
    assert again["holder_id"] == done["holder_id"]
    with ca_api.runtime.transaction() as session:
        assert len(session.scalars(select(Subscriber)).all()) == 1

    renamed = _registration(subscriber={**COMPANY, "name": 'ОсОО "Другая"'})
    third = ca_api.post(REGISTRATIONS, renamed, who="portal").json
    refused = ca_api.post(f"{REGISTRATIONS}/{third['id']}/approve")
    assert "already registered" in _problem(refused, 409, "conflict")["detail"]
    assert ca_api.get(f"{REGISTRATIONS}/{third['id']}").json["status"] == "pending"
    _problem(ca_api.get(f"{SUBSCRIBERS}/{INN}", who="portal"), 404, "not-found")


def test_rejection_needs_a_reason_and_is_final(ca_api: CaApi) -> None:
    submitted = ca_api.post(REGISTRATIONS, _registration(), who="portal").json
    path = f"{REGISTRATIONS}/{submitted['id']}"
    _invalid(ca_api.post(f"{path}/reject", {}), "note")
    _invalid(ca_api.post(f"{path}/reject", {"note": "   "}), "note")
    rejected = ca_api.post(f"{path}/reject", {"note": "копия паспорта нечитаема"})
    assert rejected.status_code == 200
    assert rejected.json["status"] == "rejected" and rejected.json["payment"] is None
    assert rejected.json["decision_note"] == "копия паспорта нечитаема"
    assert ca_api.post(f"{path}/reject", {"note": "again"}).json == rejected.json
    _problem(ca_api.post(f"{path}/approve"), 409, "conflict")
    assert ca_api.get(path, who="portal").json["status"] == "rejected"
    listed = ca_api.get(REGISTRATIONS, status="rejected").json["registrations"]
    assert [r["id"] for r in listed] == [submitted["id"]]
    assert ca_api.get(REGISTRATIONS, status="approved").json == {"registrations": []}
    with ca_api.runtime.transaction() as session:
        assert session.get(Subscriber, INN) is None
    assert len(_audit(ca_api, "ca.registration.rejected")) == 1


def test_every_malformed_field_is_named_at_once(ca_api: CaApi) -> None:
    body = _registration(
        subscriber={**COMPANY, "inn": "1", "email": "nope"},
        holder={**PERSON, "email": "director@", "phone": "12", "nickname": "Айка"},
        role="boss",
        priority="high",
    )
    refused = _problem(ca_api.post(REGISTRATIONS, body), 422, "validation-failed")
    assert sorted(e["field"] for e in refused["errors"]) == [
        "holder.email",
        "holder.nickname",
        "holder.phone",
        "priority",
        "role",
        "subscriber.email",
        "subscriber.inn",
    ]
    # JSON types are not converted: a number is not an INN, a string is not an id.
    _invalid(ca_api.post(SUBSCRIBERS, {**COMPANY, "inn": int(INN)}), "inn")
    _invalid(ca_api.post(HOLDERS, {"inn": INN, **PERSON, "nickname": "Айка"}), "nickname")
    assert ca_api.post(SUBSCRIBERS, COMPANY).status_code == 201
    _invalid(_patch(ca_api, f"{SUBSCRIBERS}/{INN}", {"name": None}), "name")
    unchanged = _patch(ca_api, f"{SUBSCRIBERS}/{INN}", {})
    assert unchanged.status_code == 200 and unchanged.json["name"] == COMPANY["name"]
    # The domain normalises what the edge admits: capitals, digits only.
    holder = _holder(ca_api, passport_series="an 1234567", phone="+996-555-123 456")
    shown = ca_api.get(f"{HOLDERS}/{holder['id']}").json
    assert shown["passport_series"] == "AN 1234567" and shown["phone"] == "+996555123456"
    holder_id = holder["id"]
    for bad in ("+5", " 5", "1_0", "0", str(2**63)):
        _invalid(ca_api.get(POWERS, holder_id=bad), "holder_id")
    assert ca_api.get(POWERS, holder_id=str(holder_id)).json["holder_id"] == holder_id


def test_approval_without_a_body_and_notes_over_several_lines(ca_api: CaApi) -> None:
    first = ca_api.post(REGISTRATIONS, _registration(channel="office")).json
    officer = ca_api.headers("officer")
    approved = ca_api.client.post(f"{REGISTRATIONS}/{first['id']}/approve", headers=officer)
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved" and approved.json["decision_note"] is None
    empty_json = {**officer, "Content-Type": "application/json"}
    path = f"{REGISTRATIONS}/{first['id']}/approve"
    _problem(ca_api.client.post(path, data="[]", headers=empty_json), 400, "bad-request")
    _invalid(ca_api.post(path, {"note": "ok", "by": "me"}), "by")

    second = ca_api.post(REGISTRATIONS, _registration()).json
    note = "копия паспорта нечитаема;\n\tпросим прислать скан заново"
    rejected = ca_api.post(f"{REGISTRATIONS}/{second['id']}/reject", {"note": note})
    assert rejected.status_code == 200, rejected.json
    assert rejected.json["decision_note"] == "копия паспорта нечитаема; просим прислать скан заново"
    _invalid(ca_api.post(f"{REGISTRATIONS}/{second['id']}/reject", {"note": "a\x00b"}), "note")
    every = ca_api.client.get(f"{REGISTRATIONS}?status=", headers=officer).json["registrations"]
    assert [r["status"] for r in every] == ["approved", "rejected"]


# --- powers of attorney ------------------------------------------------------------------------


def test_powers_of_attorney_recorded_listed_and_revoked(ca_api: CaApi) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY, who="portal").status_code == 201
    holder_id = _holder(ca_api, who="portal")["id"]
    body = {"holder_id": holder_id, **TAXPAYER}
    created = ca_api.post(POWERS, body, who="portal")
    assert created.status_code == 201, created.json
    power = created.json
    assert {k: power[k] for k in body} == body
    assert power["valid_today"] is True and power["revoked_at"] is None
    assert ca_api.post(POWERS, body, who="portal").json == power  # a replay
    _problem(ca_api.post(POWERS, {**body, "valid_until": "2027-06-30"}), 409, "conflict")
    later = {**body, "taxpayer_inn": "21234567890123", "document_number": "Д-2"}
    assert ca_api.post(POWERS, {**later, "valid_from": "2027-01-01"}).status_code == 201

    listed = ca_api.get(POWERS, who="portal", holder_id=holder_id).json
    assert listed["holder_id"] == holder_id and listed["on"] == "2026-11-23"
    assert listed["valid_taxpayers"] == ["11234567890123"]  # the second starts in January
    assert [p["document_number"] for p in listed["powers"]] == ["Д-1", "Д-2"]
    _problem(ca_api.get(POWERS, who="portal_b", holder_id=holder_id), 404, "not-found")
    _problem(ca_api.post(POWERS, body, who="portal_b"), 404, "not-found")
    _invalid(ca_api.get(POWERS), "holder_id")
    _problem(ca_api.get(POWERS, holder_id=999999), 404, "not-found")
    _problem(ca_api.post(POWERS, {**body, "holder_id": 999999}), 404, "not-found")

    revoke = f"{POWERS}/{power['id']}/revoke"
    _problem(ca_api.post(revoke, {"note": "x"}, who="portal_b"), 404, "not-found")
    _invalid(ca_api.post(revoke, {}, who="portal"), "note")
    revoked = ca_api.post(revoke, {"note": "договор расторгнут"}, who="portal")
    assert revoked.status_code == 200
    assert revoked.json["revoked_at"] == "2026-11-23T06:00:00Z"
    assert revoked.json["valid_today"] is False
    _problem(ca_api.post(revoke, {"note": "again"}), 409, "conflict")
    _problem(ca_api.post(f"{POWERS}/999999/revoke", {"note": "x"}), 404, "not-found")
    # Revocation is final: recording the same document again is refused.
    _problem(ca_api.post(POWERS, body), 409, "conflict")
    assert ca_api.get(POWERS, holder_id=holder_id).json["valid_taxpayers"] == []
    assert len(_audit(ca_api, "ca.power.recorded")) == 2
    assert len(_audit(ca_api, "ca.power.revoked")) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"valid_until": "2026-10-31"}, "valid_until"),  # before valid_from
        ({"issued_on": "2026-11-02"}, "issued_on"),  # after valid_from
        ({"valid_from": "01.11.2026"}, "valid_from"),
        ({"valid_from": "2026-02-30"}, "valid_from"),
        ({"issued_on": None}, "issued_on"),
        ({"taxpayer_inn": "1123456789012"}, "taxpayer_inn"),
        ({"taxpayer_name": ""}, "taxpayer_name"),
        ({"holder_id": "1"}, "holder_id"),
    ],
)
def test_power_of_attorney_fields_are_checked(
    ca_api: CaApi, changes: dict[str, Any], field: str
) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY).status_code == 201
    body = {"holder_id": _holder(ca_api)["id"], **TAXPAYER, **changes}
    _invalid(ca_api.post(POWERS, body), field)
    assert _audit(ca_api, "ca.power.recorded") == []


def _active_certificate(api: CaApi, holder_id: int, role: CertRole) -> None:
    """A certificate row as issuance leaves it (issuing itself is tested elsewhere)."""
    with api.runtime.transaction() as session:
        session.add(
            Certificate(
                serial=f"{holder_id:04x}{role.value.encode().hex()}"[:40],
                subscriber_inn=INN,
                holder_id=holder_id,
                role=role.value,
                storage="cloud",
                key_spec="ec-p256",
                spki_sha256="0" * 64,
                subject="CN=test",
                requisites={},
                not_before=CA_NOW,
                not_after=CA_NOW + timedelta(days=365),
                status="active",
                tbs_sha256="0" * 64,
                tariff="cert:test",
                price=1,
                payment_key="test",
                created_at=CA_NOW,
                created_by="test",
            )
        )


def _taxpayer(number: int, **changes: str) -> dict[str, str]:
    return {
        **TAXPAYER,
        "taxpayer_inn": f"{number:014d}",
        "document_number": f"Д-{number}",
        **changes,
    }


def test_complex_certificate_limits_the_powers_of_attorney(ca_api: CaApi) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY).status_code == 201
    representative = _holder(ca_api)["id"]
    head = _holder(ca_api, full_name="Бекова Бермет", passport_series="ID7654321")["id"]
    _active_certificate(ca_api, representative, CertRole.COMPLEX_5)
    _active_certificate(ca_api, head, CertRole.HEAD)

    def record(holder_id: int, number: int, **changes: str) -> Any:
        return ca_api.post(POWERS, {"holder_id": holder_id, **_taxpayer(number, **changes)})

    for number in range(1, 6):
        assert record(representative, number).status_code == 201
    detail = _problem(record(representative, 6), 409, "conflict")["detail"]
    assert "complex_5 certificate serves at most 5 companies" in detail
    assert "on 2026-11-23 this power of attorney would make 6" in detail
    # A power that starts after the others end exceeds the limit on no day...
    next_year = {"issued_on": "2027-11-01", "valid_from": "2027-11-01"}
    assert record(representative, 7, **next_year, valid_until="2028-10-31").status_code == 201
    # ...one that starts later but overlaps them does.
    june = {"issued_on": "2027-06-01", "valid_from": "2027-06-01"}
    assert "on 2027-06-01" in _problem(record(representative, 8, **june), 409, "conflict")["detail"]
    # Another power from a taxpayer already served adds no company.
    same_company = {"holder_id": representative, **_taxpayer(1), "document_number": "Д-1/2"}
    assert ca_api.post(POWERS, same_company).status_code == 201
    # A holder without a complex certificate may hold powers: the limit is checked at signing.
    assert record(head, 1).status_code == 201 and record(head, 2).status_code == 201


def test_valid_taxpayers_and_the_company_limit(ca_api: CaApi) -> None:
    assert ca_api.post(SUBSCRIBERS, COMPANY).status_code == 201
    holder_id = _holder(ca_api)["id"]
    january = {"issued_on": "2026-12-01", "valid_from": "2027-01-01", "valid_until": "2027-01-31"}
    bodies = [_taxpayer(1), _taxpayer(2, **january), _taxpayer(3), _taxpayer(4)]
    ids = [ca_api.post(POWERS, {"holder_id": holder_id, **b}).json["id"] for b in bodies]
    ca_api.post(f"{POWERS}/{ids[3]}/revoke", {"note": "ended"})
    one, two, three = (f"{n:014d}" for n in (1, 2, 3))
    with ca_api.runtime.transaction() as session:
        valid = powers.valid_taxpayers
        assert valid(session, holder_id, date(2026, 10, 31)) == []
        assert valid(session, holder_id, date(2026, 11, 1)) == [one, three]
        assert valid(session, holder_id, date(2027, 1, 1)) == [one, two, three]
        assert valid(session, holder_id, date(2027, 1, 31)) == [one, two, three]
        assert valid(session, holder_id, date(2027, 2, 1)) == [one, three]
        assert valid(session, holder_id, date(2027, 10, 31)) == [one, three]
        assert valid(session, holder_id, date(2027, 11, 1)) == []

        check = powers.check_company_limit
        check(session, holder_id, CertRole.COMPLEX_5, date(2027, 1, 15))
        check(session, holder_id, CertRole.COMPLEX_UNLIMITED, date(2027, 1, 15))
        check(session, holder_id, CertRole.HEAD, date(2026, 10, 1))  # none valid yet
        with pytest.raises(Conflict, match=r"3 companies on 2027-01-15.*at most 1"):
            check(session, holder_id, CertRole.ACCOUNTANT, date(2027, 1, 15))
        with pytest.raises(Conflict, match="at most 1"):
            check(session, holder_id, CertRole.HEAD, date(2027, 3, 1))

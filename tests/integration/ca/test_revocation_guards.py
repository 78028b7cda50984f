"""Revocation guarantees (docs/certificates.md, docs/crl.md, docs/architecture.md) that mutation
testing (``make mutation``, area ``revocation``) found unproved, through the API on SQLite and
PostgreSQL:

* a company's head acts on the company's other certificates only while its head certificate is
  valid: from its notBefore (inclusive), not suspended, not past its notAfter (exclusive) — a
  head whose certificate ended is refused (403) before the target's own state is looked at,
  and so is a head whose only head certificate is a renewal waiting for its notBefore;
* a refused ``reason`` names the field ``reason``;
* the note and the reason of a suspension or resumption are kept in the status history, and
  a suspended cloud certificate keeps its key;
* ``status_at`` answers the serial, the moment, the invalidity date and the validity period;
* ``invalidity_date`` may be now or notBefore, not later nor earlier (refusals name the field);
  a revocation keeps its note and ends automatic renewal;
* a status change makes the issuing CA's CRL due (``crl_due``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from ca.models import Certificate, CertificateEvent
from ca.renewal import Issuers, renew_due
from ca.revocation import Actor, suspend
from crl import Status, crl_due, status_at
from db import AuditEntry
from tests.ca_fixtures import CA_NOW, CA_URL, SUBSCRIBER, CaApi, register
from tests.integration.ca.test_issuance import _paid_first, _problem
from tests.integration.ca.test_revocation import URL, _issue

pytestmark = [pytest.mark.hsm, pytest.mark.db]


def _company(api: CaApi) -> tuple[int, str, int, str]:
    """(head, its certificate's serial, accountant, its serial), both issued at CA_NOW."""
    head = register(api)
    accountant = register(api, full_name="Счетова Анна", position="Главный бухгалтер",
                          email="acc@test.kg", passport_series="ID7654321")  # fmt: skip
    _paid_first(api, head)
    head_serial = _issue(api, head)
    api.pay(SUBSCRIBER["inn"], 100_000_00)
    return head, head_serial, accountant, _issue(api, accountant, role="accountant")


def _not_after(api: CaApi, serial: str) -> datetime:
    shown = api.get(f"{URL}/{serial}").json
    return datetime.fromisoformat(shown["not_after"].replace("Z", "+00:00")).astimezone(UTC)


def _as_head(api: CaApi, head: int, serial: str, action: str) -> Any:
    return api.post(f"{URL}/{serial}/{action}", {}, who="portal", holder=head)


def test_a_heads_right_lasts_while_its_head_certificate_is_valid(ca_api: CaApi) -> None:
    head, head_serial, _accountant, serial = _company(ca_api)
    assert ca_api.clock.now == CA_NOW  # the head certificate's notBefore: already valid
    assert _as_head(ca_api, head, serial, "suspend").status_code == 200
    assert _as_head(ca_api, head, serial, "resume").status_code == 200

    # A suspended head certificate gives no right.
    ca_api.clock.now += timedelta(minutes=1)
    assert ca_api.post(f"{URL}/{head_serial}/suspend", {}).status_code == 200
    _problem(_as_head(ca_api, head, serial, "suspend"), 403, "forbidden")
    assert ca_api.post(f"{URL}/{head_serial}/resume", {}).status_code == 200
    assert _as_head(ca_api, head, serial, "suspend").status_code == 200
    assert _as_head(ca_api, head, serial, "resume").status_code == 200

    # From its notAfter on the head is no head: refused for that (403), not because the
    # target certificate has expired too (409).
    end = _not_after(ca_api, head_serial)
    for moment in (end, end + timedelta(minutes=1)):
        ca_api.clock.now = moment
        _problem(_as_head(ca_api, head, serial, "suspend"), 403, "forbidden")


def test_a_head_whose_only_head_certificate_is_not_yet_valid_is_no_head(ca_api: CaApi) -> None:
    """docs/certificates.md: a head acts on the company's other certificates while its head
    certificate is *valid*. The daily job renews the head's certificate (the new one starts at
    the old one's notAfter), then an officer revokes the old one: until the renewal's notBefore
    the head is no head (403; with ``head_holders``' ``not_before <= now`` dropped, the waiting
    renewal gave the right at once), from it on the head acts again."""
    head, head_serial, _accountant, serial = _company(ca_api)
    ca_api.clock.now = datetime(2027, 10, 25, 6, 0, tzinfo=UTC)  # the cancellation deadline passed
    rt = ca_api.runtime
    issuers = Issuers(rt.ca_token, rt.cloud_token, CA_URL)
    outcomes = renew_due(rt.transaction, issuers, now=ca_api.clock.now, actor="job")
    renewed = {o.serial: o.new_serial for o in outcomes}
    assert renewed.keys() == {head_serial, serial}, renewed
    new_head, new_serial = renewed[head_serial], renewed[serial]
    assert new_head is not None and new_serial is not None
    starts = _not_after(ca_api, head_serial)
    assert ca_api.get(f"{URL}/{new_head}").json["state"] == "not_yet_valid"

    assert _as_head(ca_api, head, serial, "suspend").status_code == 200  # the old one is valid
    assert _as_head(ca_api, head, serial, "resume").status_code == 200
    revoked = ca_api.post(f"{URL}/{head_serial}/revoke", {"reason": "superseded"})
    assert revoked.status_code == 200, revoked.json
    ca_api.clock.now += timedelta(minutes=1)
    _problem(_as_head(ca_api, head, serial, "suspend"), 403, "forbidden")
    ca_api.clock.now = starts - timedelta(seconds=1)
    _problem(_as_head(ca_api, head, serial, "suspend"), 403, "forbidden")
    ca_api.clock.now = starts  # the renewal's notBefore: a head again
    assert _as_head(ca_api, head, new_serial, "suspend").status_code == 200


@pytest.mark.parametrize("reason", ["certificateHold", "certificate_hold", "whim", 7])
def test_a_refused_reason_names_the_reason_field(ca_api: CaApi, reason: object) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial = _issue(ca_api, head)
    refused = _problem(
        ca_api.post(f"{URL}/{serial}/revoke", {"reason": reason}), 422, "validation-failed"
    )
    assert [e["field"] for e in refused["errors"]] == ["reason"], refused


def test_notes_and_reasons_are_kept_in_the_history(ca_api: CaApi) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial = _issue(ca_api, head)
    ca_api.clock.now += timedelta(hours=1)
    path = f"{URL}/{serial}"
    assert ca_api.post(f"{path}/suspend", {"note": "на  время\nотпуска"}).status_code == 200
    ca_api.clock.now += timedelta(hours=1)
    assert ca_api.post(f"{path}/resume", {"note": "вернулась"}).status_code == 200
    with ca_api.runtime.transaction() as session:
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        events = session.scalars(
            select(CertificateEvent)
            .where(CertificateEvent.certificate_id == row.id)
            .order_by(CertificateEvent.id)
        ).all()
        assert [(e.action, e.reason, e.note) for e in events] == [
            ("issued", None, None),
            ("suspended", "certificate_hold", "на время отпуска"),
            ("resumed", None, "вернулась"),
        ]
        # A suspension is lifted: the cloud key must outlive it (only revocation destroys it).
        assert row.key_label is not None and row.key_destroyed_at is None
        label = row.key_label
    assert ca_api.runtime.cloud_token.has_key(label)


def test_status_at_answers_the_whole_status(ca_api: CaApi) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial_hex = _issue(ca_api, head)
    serial = int(serial_hex, 16)
    end = _not_after(ca_api, serial_hex)
    ca_api.clock.now = CA_NOW + timedelta(hours=3)
    body = {"reason": "keyCompromise", "invalidity_date": "2026-11-23T06:30:00Z"}
    assert ca_api.post(f"{URL}/{serial_hex}/revoke", body).status_code == 200
    invalid = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)
    with ca_api.runtime.transaction() as session:
        good = status_at(session, serial, CA_NOW + timedelta(hours=1))
        assert (good.serial, good.at, good.status) == (
            serial,
            CA_NOW + timedelta(hours=1),
            Status.GOOD,
        )
        assert (good.not_before, good.not_after) == (CA_NOW, end)
        assert good.in_validity_period
        revoked = status_at(session, serial, ca_api.clock.now)
        assert (revoked.status, revoked.invalidity_date) == (Status.REVOKED, invalid)
        unknown = status_at(session, serial + 1, CA_NOW)
        assert (unknown.serial, unknown.at, unknown.status) == (serial + 1, CA_NOW, Status.UNKNOWN)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_invalidity_date_bounds_are_inclusive_and_refusals_name_the_field(ca_api: CaApi) -> None:
    """docs/certificates.md: ``invalidity_date`` must not be in the future nor before notBefore;
    now and notBefore themselves are accepted. A revocation keeps its note and ends the
    certificate's automatic renewal."""
    _head, head_serial, _accountant, serial = _company(ca_api)
    ca_api.clock.now = CA_NOW + timedelta(hours=3)
    for wrong in (ca_api.clock.now + timedelta(seconds=1), CA_NOW - timedelta(seconds=1)):
        body = {"reason": "keyCompromise", "invalidity_date": _iso(wrong)}
        refused = _problem(ca_api.post(f"{URL}/{serial}/revoke", body), 422, "validation-failed")
        assert [e["field"] for e in refused["errors"]] == ["invalidity_date"], refused
    at_now = {"reason": "keyCompromise", "invalidity_date": _iso(ca_api.clock.now),
              "note": "ключ  утерян"}  # fmt: skip
    revoked = ca_api.post(f"{URL}/{serial}/revoke", at_now)
    assert revoked.status_code == 200, revoked.json
    assert revoked.json["auto_renew"] is False
    at_start = {"reason": "keyCompromise", "invalidity_date": _iso(CA_NOW)}
    assert ca_api.post(f"{URL}/{head_serial}/revoke", at_start).status_code == 200
    with ca_api.runtime.transaction() as session:
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        event = session.scalars(
            select(CertificateEvent).where(
                CertificateEvent.certificate_id == row.id, CertificateEvent.action == "revoked"
            )
        ).one()
        assert (event.reason, event.note) == ("key_compromise", "ключ утерян")


def test_a_status_change_makes_the_issuing_crl_due(ca_api: CaApi) -> None:
    """docs/crl.md: a CRL is due as soon as a certificate changed status after its thisUpdate
    (``crl_due``); the root's is not."""
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial = _issue(ca_api, head)
    for issuer in ("root", "issuing"):
        assert ca_api.client.get(f"/crl/{issuer}.crl").status_code == 200
    ca_api.clock.now += timedelta(minutes=1)
    with ca_api.runtime.transaction() as session:
        assert not crl_due(session, "issuing", ca_api.clock.now)
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        suspend(session, row, now=ca_api.clock.now, who=Actor("officer", officer=True))
    with ca_api.runtime.transaction() as session:
        assert crl_due(session, "issuing", ca_api.clock.now)
        assert not crl_due(session, "root", ca_api.clock.now)


def test_at_its_not_after_a_certificate_has_expired(ca_api: CaApi) -> None:
    """A certificate is expired from its notAfter on: no status change then (409)."""
    head = register(ca_api)
    _paid_first(ca_api, head)
    serial = _issue(ca_api, head)
    ca_api.clock.now = _not_after(ca_api, serial)
    _problem(ca_api.post(f"{URL}/{serial}/suspend", {}), 409, "conflict")


def test_every_status_change_is_journalled_with_who_why_and_when(ca_api: CaApi) -> None:
    """docs/architecture.md: every state change is journalled. A head's suspension through the
    portal and an officer's revocation each leave one ``ca.certificate.<change>`` row and one
    history event, with the calling client, the service's time and the facts of the change:
    serial, company, reason, invalidity date, the note (its first 500 characters) and the
    acting holder when a holder acted.

    Mutants killed: ``_record``'s audit details, actor and time, and the event's actor and time.
    """
    head, _head_serial, _accountant, serial = _company(ca_api)
    portal, officer = (f"client:{ca_api.client_ids[w]}" for w in ("portal", "officer"))
    inn = SUBSCRIBER["inn"]
    ca_api.clock.now += timedelta(hours=1)
    suspended_at = ca_api.clock.now
    note = "в отпуске " * 70  # 700 characters
    done = ca_api.post(f"{URL}/{serial}/suspend", {"note": note}, who="portal", holder=head)
    assert done.status_code == 200, done.json
    kept = " ".join(note.split())
    ca_api.clock.now += timedelta(hours=1)
    revoked_at = ca_api.clock.now
    invalid = suspended_at - timedelta(minutes=30)
    body = {"reason": "keyCompromise", "invalidity_date": _iso(invalid), "note": "утерян"}
    done = ca_api.post(f"{URL}/{serial}/revoke", body)
    assert done.status_code == 200, done.json
    with ca_api.runtime.transaction() as session:
        journal = [
            (e.action, e.actor, e.object, e.occurred_at, e.details_dict())
            for e in session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.action.in_(["ca.certificate.suspended", "ca.certificate.revoked"])
                )
                .order_by(AuditEntry.id)
            )
        ]
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        events = [
            (e.action, e.actor, e.at, e.invalidity_date)
            for e in session.scalars(
                select(CertificateEvent)
                .where(CertificateEvent.certificate_id == row.id)
                .order_by(CertificateEvent.id)
            )
        ][1:]  # after "issued"
    target = f"certificate:{serial}"
    assert journal == [
        ("ca.certificate.suspended", portal, target, suspended_at,
         {"serial": serial, "inn": inn, "reason": "certificate_hold", "note": kept[:500],
          "acting_holder": head}),
        ("ca.certificate.revoked", officer, target, revoked_at,
         {"serial": serial, "inn": inn, "reason": "key_compromise",
          "invalidity_date": invalid.isoformat(), "note": "утерян"}),
    ]  # fmt: skip
    assert events == [
        ("suspended", portal, suspended_at, None),
        ("revoked", officer, revoked_at, invalid),
    ]

"""Filing through the HTTP API (issue #13): file, two signatures, charge, deliver, receipts.

Real database (SQLite and PostgreSQL) and real SoftHSM: the head signs with a cloud key through
a SAD, the accountant with a RuToken key through ``openssl cms -sign``; the agency's receipts
and results are signed with its own key by pyca. Every refusal checks that nothing was written
(no signature, event, ledger transaction or journal entry) and no money moved.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import filing
from policies.tariffs import TARIFFS
from tests.ca_fixtures import CaApi, register
from tests.filing_fixtures import (
    INN,
    OTHER_INN,
    AgencyKey,
    Company,
    balance,
    counts,
    file,
    osmp_top_up,
    rutoken_certificate,
    sign_cms,
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]

DOC = "<report form='STI-091' period='2026-10'>НДС: 12 345,67</report>".encode()


def _price(code: str) -> int:
    return TARIFFS.price(code, date(2026, 11, 23)).price


REPORT = _price("report:tax:monthly")
STORAGE = _price("storage:monthly")


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.json)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert body["type"] == f"urn:tamga:problem:{slug}", body
    return body


def _filed(api: CaApi, document: bytes = DOC, **over: Any) -> dict[str, Any]:
    done = file(api, document, **over)
    assert done.status_code == 201, done.json
    report: dict[str, Any] = done.json
    return report


def _complete(company: Company, tmp_path: Path, document: bytes = DOC) -> dict[str, Any]:
    api = company.api
    report = _filed(api, document)
    head = company.sign_cloud(report, document)
    assert head.status_code == 201, head.json
    assert head.json["delivery_status"] == "awaiting_accountant"
    done = sign_cms(api, report["id"], company.accountant_signer.cms(document, tmp_path))
    assert done.status_code == 201, done.json
    return dict(done.json)


# --- filing --------------------------------------------------------------------------------


def test_filing_names_every_bad_field_and_writes_nothing(ca_api: CaApi, company: Company) -> None:
    before = counts(ca_api)
    malformed = _problem(file(ca_api, DOC, period="2026-13"), 422, "validation-failed")
    assert {e["field"] for e in malformed["errors"]} == {"period"}
    bad = file(
        ca_api,
        b"",
        kind="STI-100",  # a yearly form, filed for a month
        office="999",
        file_name="../etc/passwd",
    )
    body = _problem(bad, 422, "validation-failed")
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"period", "office", "document", "file_name"}, body
    wrong_period = _problem(file(ca_api, DOC, kind="STI-100"), 422, "validation-failed")
    assert "yearly" in json.dumps(wrong_period, ensure_ascii=False)
    wrong_agency = _problem(file(ca_api, DOC, kind="SF-01"), 422, "validation-failed")
    assert {e["field"] for e in wrong_agency["errors"]} == {"agency"}
    assert counts(ca_api) == before


def test_portal_scope_and_idempotency(ca_api: CaApi, company: Company) -> None:
    # Another portal neither files for this company nor sees its reports.
    _problem(file(ca_api, DOC, who="portal_b"), 404, "not-found")
    first = file(ca_api, DOC, key="k-1")
    assert first.status_code == 201, first.json
    again = file(ca_api, DOC, key="k-1")
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    _problem(file(ca_api, DOC + b" ", key="k-1"), 422, "idempotency-conflict")
    report_id = first.json["id"]
    _problem(ca_api.get(f"/api/v1/reports/{report_id}", who="portal_b"), 404, "not-found")
    _problem(ca_api.get(f"/api/v1/reports/{report_id}/package", who="portal_b"), 404, "not-found")
    stop = ca_api.post(f"/api/v1/reports/{report_id}/stop", {"reason": "x"}, who="portal_b")
    _problem(stop, 404, "not-found")
    assert ca_api.get("/api/v1/reports", who="portal_b").json["reports"] == []
    listed = ca_api.get("/api/v1/reports", who="portal").json["reports"]
    assert [r["id"] for r in listed] == [report_id]
    # The bytes are kept exactly as received.
    with ca_api.runtime.transaction() as session:
        assert session.get_one(filing.Report, report_id).document == DOC


# --- signatures and the charge ----------------------------------------------------------------


def test_two_signatures_complete_charge_and_queue(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    before = balance(ca_api)
    done = _complete(company, tmp_path)
    assert done["delivery_status"] == "queued"
    assert {(s["role"], s["form"]) for s in done["signatures"]} == {
        ("head", "cloud"),
        ("accountant", "cms"),
    }
    cloud = next(s for s in done["signatures"] if s["form"] == "cloud")
    rutoken = next(s for s in done["signatures"] if s["form"] == "cms")
    assert cloud["time_source"] == "signature-time-stamp"
    assert rutoken["time_source"] in ("intake", "claimed")
    # The report's price and the month's cloud-storage fee, once.
    assert done["charges"]["price"] == REPORT
    assert balance(ca_api) == before - REPORT - STORAGE
    events = [e["event"] for e in ca_api.get(f"/api/v1/reports/{done['id']}").json["events"]]
    assert events == ["filed", "signed", "signed", "charged"]
    # A second report the same month pays no storage fee again.
    second = _complete(company, tmp_path, DOC + b"<!-- 2 -->")
    assert second["delivery_status"] == "queued"
    assert balance(ca_api) == before - 2 * REPORT - STORAGE


def test_signature_refusals_change_nothing(ca_api: CaApi, company: Company, tmp_path: Path) -> None:
    report = _filed(ca_api)
    rid = report["id"]
    signer = company.accountant_signer
    stranger = register(ca_api, inn=OTHER_INN, email="x@other.kg", position="Бухгалтер")
    ca_api.pay(OTHER_INN, 5_000_00)
    foreign_signer = _foreign_rutoken(ca_api, stranger)
    before, money = counts(ca_api), balance(ca_api)
    # A signature over other bytes.
    other = sign_cms(ca_api, rid, signer.cms(b"another report", tmp_path))
    assert "8.2.2" in json.dumps(_problem(other, 422, "validation-failed"))
    # Garbage, and neither or both forms.
    _problem(sign_cms(ca_api, rid, b"not a cms"), 422, "validation-failed")
    _problem(
        ca_api.post(f"/api/v1/reports/{rid}/signatures", {}, who="portal"), 422, "validation-failed"
    )
    # The accountant's certificate does not sign as head.
    as_head = sign_cms(ca_api, rid, signer.cms(DOC, tmp_path), role="head")
    _problem(as_head, 422, "validation-failed")
    # Another company's accountant.
    foreign = sign_cms(ca_api, rid, foreign_signer.cms(DOC, tmp_path))
    assert "own company" in _problem(foreign, 422, "validation-failed")["detail"]
    assert counts(ca_api) == before and balance(ca_api) == money
    accountant = sign_cms(ca_api, rid, signer.cms(DOC, tmp_path))
    assert accountant.status_code == 201
    # The same CMS again is a replay; another accountant signature is a conflict.
    replay = sign_cms(ca_api, rid, signer.cms(DOC, tmp_path))
    assert replay.status_code == 200, replay.json
    after_one = counts(ca_api)
    second = rutoken_certificate(ca_api, company.accountant, "accountant")
    _problem(sign_cms(ca_api, rid, second.cms(DOC, tmp_path)), 409, "conflict")
    assert counts(ca_api)["signatures"] == after_one["signatures"]


def _foreign_rutoken(api: CaApi, holder: int) -> Any:
    from tests.filing_fixtures import cloud_certificate

    cloud_certificate(api, holder, "accountant")  # the first is paid through its account
    return rutoken_certificate(api, holder, "accountant")


def test_a_third_signature_and_a_sad_for_another_report(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    done = _complete(company, tmp_path)
    before, money = counts(ca_api), balance(ca_api)
    third = sign_cms(ca_api, done["id"], company.accountant_signer.cms(DOC, tmp_path))
    assert third.status_code in (200, 409)  # the same CMS is a replay at most
    new = rutoken_certificate(ca_api, company.accountant, "accountant")
    money = balance(ca_api)
    before = counts(ca_api)
    _problem(sign_cms(ca_api, done["id"], new.cms(DOC, tmp_path)), 409, "conflict")
    # A SAD for another document's hash signs nothing on this report.
    fresh = _filed(ca_api, DOC + b" v2")
    sad = company.authorize(b"something else")
    wrong = ca_api.post(
        f"/api/v1/reports/{fresh['id']}/signatures",
        {"credentialID": company.head_serial, "SAD": sad},
        who="portal",
    )
    _problem(wrong, 422, "validation-failed")
    after = counts(ca_api)
    assert after["signatures"] == before["signatures"] and balance(ca_api) == money


# --- awaiting payment ------------------------------------------------------------------------


def _drain(ca_api: CaApi) -> None:
    """Spend the balance down to less than one report (a charge the test does not care for)."""
    import billing
    from policies.tariffs import Revenue

    with ca_api.runtime.transaction() as session:
        left = billing.balance(session, INN).available
        billing.charge(
            session,
            inn=INN,
            amount=left - REPORT // 2,
            key="test-drain",
            revenue_kind=Revenue.REPORTS,
            description="test",
            now=ca_api.clock.now,
            actor="test",
        )


def test_awaiting_payment_then_a_top_up_releases_in_order(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    from signing_api.worker import Worker

    _complete(company, tmp_path)  # the month's storage fee is paid
    _drain(ca_api)
    first = _complete(company, tmp_path, DOC + b" a")
    second = _complete(company, tmp_path, DOC + b" b")
    assert first["delivery_status"] == second["delivery_status"] == "awaiting_payment"
    assert first["charges"]["transaction"] is None
    assert balance(ca_api) == REPORT // 2  # no money moved
    # A terminal top-up (OSMP) for one report: the oldest goes first, the other keeps waiting.
    osmp_top_up(ca_api, REPORT)
    worker = Worker(ca_api.runtime, mail=False)
    tally = worker.run_once()
    assert tally.released == 1
    one = ca_api.get(f"/api/v1/reports/{first['id']}").json
    two = ca_api.get(f"/api/v1/reports/{second['id']}").json
    assert one["delivery_status"] in ("queued", "sent")
    assert two["delivery_status"] == "awaiting_payment"
    assert balance(ca_api) == REPORT // 2
    # A later report cannot jump the queue, even with money for itself.
    osmp_top_up(ca_api, REPORT // 2)
    third = _complete(company, tmp_path, DOC + b" c")
    assert third["delivery_status"] == "awaiting_payment"
    osmp_top_up(ca_api, 2 * REPORT)
    assert worker.run_once().released == 2
    assert balance(ca_api) == REPORT  # half + half + two reports' worth - two reports


# --- stop ------------------------------------------------------------------------------------


def test_stop_reverses_the_charge_until_the_report_leaves(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    before = balance(ca_api)
    done = _complete(company, tmp_path)
    assert balance(ca_api) == before - REPORT - STORAGE
    stopped = ca_api.post(f"/api/v1/reports/{done['id']}/stop", {"reason": "ошибка в отчете"})
    assert stopped.status_code == 200, stopped.json
    assert stopped.json["delivery_status"] == "stopped"
    assert stopped.json["charges"]["reversal_transaction"] is not None
    assert balance(ca_api) == before - STORAGE  # the month's storage fee stays
    again = ca_api.post(f"/api/v1/reports/{done['id']}/stop", {"reason": "again"})
    assert again.status_code == 200 and balance(ca_api) == before - STORAGE
    # A stopped report takes no signature and is never delivered.
    with ca_api.runtime.transaction() as session:
        assert filing.claim_due(session, now=ca_api.clock.now, owner="w") == []


# --- delivery, receipts, results, package -------------------------------------------------------


def _deliver(ca_api: CaApi, agency: AgencyKey, report: dict[str, Any]) -> None:
    """What a worker does, with the agency's answer signed by the agency's key."""
    from ca.dispatch import confirm_dispatch

    rt = ca_api.runtime
    with rt.transaction() as session:
        assert filing.claim_due(session, now=ca_api.clock.now, owner="w") == [report["id"]]
    with rt.transaction() as session:

        def confirm(statement: Any) -> bytes:
            return confirm_dispatch(
                session,
                rt.dispatch_signer,
                statement=statement,
                tsa=rt.tsa_signer,
                tsa_clock=rt.now,
                now=ca_api.clock.now,
                actor="w",
            )

        outgoing = filing.prepare_dispatch(
            session, report["id"], owner="w", confirm=confirm, now=ca_api.clock.now, actor="w"
        )
    sent = json.loads(outgoing.body)
    assert base64.b64decode(sent["document"]) == DOC
    assert len(sent["signatures"]) == 2
    with rt.transaction() as session:
        filing.record_receipt(
            session, report["id"], agency.receipt(report), now=ca_api.clock.now, actor="w"
        )


def test_receipt_result_and_package_verify_with_openssl(
    ca_api: CaApi, company: Company, agency: AgencyKey, tmp_path: Path
) -> None:
    report = _complete(company, tmp_path)
    _deliver(ca_api, agency, report)
    shown = ca_api.get(f"/api/v1/reports/{report['id']}").json
    assert (shown["delivery_status"], shown["check_status"]) == ("delivered", "awaiting_check")
    assert shown["registration_number"].startswith("TAX-")

    url = "/api/v1/agency-results"
    headers = {"Content-Type": "application/pkcs7-mime"}
    # A result signed by another key, or naming another report, is refused and changes nothing.
    impostor = AgencyKey.make("Impostor")
    refused = ca_api.client.post(url, data=impostor.result(report), headers=headers)
    _problem(refused, 422, "validation-failed")
    unknown = ca_api.client.post(url, data=agency.result({**report, "id": "nope"}), headers=headers)
    _problem(unknown, 404, "not-found")
    assert ca_api.get(f"/api/v1/reports/{report['id']}").json["check_status"] == "awaiting_check"
    accepted = ca_api.client.post(url, data=agency.result(report), headers=headers)
    assert accepted.status_code == 200, accepted.json
    assert accepted.json == {"report_id": report["id"], "check_status": "accepted"}
    # Twice (the gateway retried): nothing changes, even a contrary verdict.
    twice = ca_api.client.post(url, data=agency.result(report, "rejected"), headers=headers)
    assert twice.status_code == 200 and twice.json["check_status"] == "accepted"

    package = ca_api.get(f"/api/v1/reports/{report['id']}/package")
    assert package.status_code == 200 and package.mimetype == "application/zip"
    out = tmp_path / "package"
    zipfile.ZipFile(io.BytesIO(package.data)).extractall(out)
    document = out / "document" / report["file_name"]
    assert document.read_bytes() == DOC
    for slot in ("head", "accountant"):
        _openssl(
            "cms", "-verify", "-binary", "-inform", "DER",
            "-in", out / "signatures" / f"{slot}.p7s", "-content", document,
            "-CAfile", out / "ca.pem", "-purpose", "any", "-out", "/dev/null",
        )  # fmt: skip
    statement = _openssl(
        "cms", "-verify", "-inform", "DER", "-in", out / "dispatch-confirmation.p7m",
        "-CAfile", out / "ca.pem", "-purpose", "any",
    )  # fmt: skip
    assert json.loads(statement)["report_id"] == report["id"]
    for name in ("receipt.p7m", "check-result.p7m"):
        _openssl(
            "cms", "-verify", "-inform", "DER", "-in", out / name, "-CAfile", out / "agency.pem",
            "-partial_chain", "-purpose", "any",
        )  # fmt: skip
    history = json.loads((out / "events.json").read_text())
    assert [e["event"] for e in history["events"]] == [
        "filed", "signed", "signed", "charged", "sent", "delivered", "checked",
    ]  # fmt: skip


def _openssl(*args: Any) -> str:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def test_events_and_signatures_are_append_only(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    from sqlalchemy.exc import DBAPIError

    done = _complete(company, tmp_path)
    for model in (filing.ReportEvent, filing.ReportSignature):
        with pytest.raises(DBAPIError), ca_api.runtime.transaction() as session:
            row = session.scalars(select(model).where(model.report_id == done["id"])).first()
            session.delete(row)
            session.flush()


def test_delivery_failures_back_off_and_a_dead_workers_lease_runs_out(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    done = _complete(company, tmp_path)
    rt, clock = ca_api.runtime, ca_api.clock
    with rt.transaction() as session:
        assert filing.claim_due(session, now=clock.now, owner="dead") == [done["id"]]
    # The worker died holding it: nobody else takes it until the lease runs out.
    with rt.transaction() as session:
        assert filing.claim_due(session, now=clock.now, owner="other") == []
    later = clock.now + timedelta(seconds=61)
    with rt.transaction() as session:
        assert filing.claim_due(session, now=later, owner="other") == [done["id"]]
        filing.record_failure(session, done["id"], "HTTP 503", owner="other", now=later, actor="w")
    with rt.transaction() as session:
        report = session.get_one(filing.Report, done["id"])
        assert report.next_attempt_at is not None and report.next_attempt_at > later
        assert filing.claim_due(session, now=later, owner="third") == []


def test_cloud_signature_replay_and_a_sad_for_another_role(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    report = _filed(ca_api)
    sad = company.authorize(DOC)
    url = f"/api/v1/reports/{report['id']}/signatures"
    before = counts(ca_api)
    # The SAD signs as head: asking for the accountant's slot with it signs nothing.
    as_accountant = {"credentialID": company.head_serial, "SAD": sad, "role": "accountant"}
    wrong = ca_api.post(url, as_accountant, who="portal")
    _problem(wrong, 422, "validation-failed")
    assert counts(ca_api) == before
    body = {"credentialID": company.head_serial, "SAD": sad}
    first = ca_api.post(url, body, who="portal")
    assert first.status_code == 201, first.json
    # A retried request: the same answer, nothing signed again.
    again = ca_api.post(url, body, who="portal")
    assert again.status_code == 200 and again.json["signatures"] == first.json["signatures"]
    # Another SAD of the head for the same report: the slot is taken, the key is not used.
    another = {"credentialID": company.head_serial, "SAD": company.authorize(DOC)}
    signed = counts(ca_api)
    _problem(ca_api.post(url, another, who="portal"), 409, "conflict")
    assert counts(ca_api) == signed


def test_after_it_left_a_report_cannot_be_stopped(
    ca_api: CaApi, company: Company, agency: AgencyKey, tmp_path: Path
) -> None:
    report = _complete(company, tmp_path)
    _deliver(ca_api, agency, report)
    money, before = balance(ca_api), counts(ca_api)
    refused = ca_api.post(f"/api/v1/reports/{report['id']}/stop", {"reason": "too late"})
    _problem(refused, 409, "conflict")
    assert balance(ca_api) == money and counts(ca_api) == before
    # A receipt signed by another key, or for other bytes, is refused too.
    impostor = AgencyKey.make("Impostor")
    with pytest.raises(filing.AgencyAnswerInvalid), ca_api.runtime.transaction() as session:
        filing.record_receipt(
            session, report["id"], impostor.receipt(report), now=ca_api.clock.now, actor="w"
        )
    with pytest.raises(filing.AgencyAnswerInvalid), ca_api.runtime.transaction() as session:
        filing.record_receipt(
            session,
            report["id"],
            agency.receipt(report, document_sha256="0" * 64),
            now=ca_api.clock.now,
            actor="w",
        )


def test_one_certificate_fills_both_slots_only_without_an_accountant(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    """The documented slot policy: a head acting as accountant signs in both slots only when
    the company has no valid accountant's certificate."""
    lone = register(ca_api, inn=OTHER_INN, email="solo@other.kg", grant_to="portal")
    from tests.filing_fixtures import cloud_certificate

    cloud_certificate(ca_api, lone, "head_as_accountant")
    ca_api.pay(OTHER_INN, 5_000_00)
    solo = rutoken_certificate(ca_api, lone, "head_as_accountant")
    report = _filed(ca_api, inn=OTHER_INN)
    head = sign_cms(ca_api, report["id"], solo.cms(DOC, tmp_path))
    assert head.status_code == 201 and head.json["delivery_status"] == "awaiting_accountant"
    # The same CMS again is only a replay, not the second slot.
    assert sign_cms(ca_api, report["id"], solo.cms(DOC, tmp_path)).status_code == 200
    # A new signature by the same certificate fills the accountant's slot: no accountant here.
    both = sign_cms(ca_api, report["id"], solo.cms(DOC, tmp_path, fresh=True))
    assert both.status_code == 201, both.json
    assert both.json["delivery_status"] == "queued"
    # With the company's own accountant's certificate, the head no longer fills both.
    report2 = _filed(ca_api, DOC + b"2", inn=OTHER_INN)
    assert sign_cms(ca_api, report2["id"], solo.cms(DOC + b"2", tmp_path)).status_code == 201
    accountant = register(ca_api, inn=OTHER_INN, email="acc@other.kg", position="Бухгалтер")
    rutoken_certificate(ca_api, accountant, "accountant")
    before = counts(ca_api)
    again = solo.cms(DOC + b"2", tmp_path, fresh=True)
    refused = sign_cms(ca_api, report2["id"], again, role="accountant")
    assert "one slot" in _problem(refused, 422, "validation-failed")["detail"]
    assert counts(ca_api) == before


def test_agency_registration_refuses_bad_endpoints_and_certificates(
    ca_api: CaApi, agency: AgencyKey
) -> None:
    good = {
        "code": "social-fund",
        "name": "Социальный фонд",
        "endpoint": "https://gateway.sf.kg/reports",
        "receipt_certificate": agency.pem().decode(),
    }
    before = counts(ca_api)
    for field, value in (
        ("endpoint", "http://[::1/"),  # found by schemathesis: a 500 before
        ("endpoint", "http://gateway.kg:0"),
        ("endpoint", "http://gateway.kg:99999"),
        ("endpoint", "ftp://gateway.kg"),
        ("receipt_certificate", "-----BEGIN CERTIFICATE-----\nnot one"),
    ):
        refused = ca_api.post("/api/v1/agencies", {**good, field: value})
        body = _problem(refused, 422, "validation-failed")
        assert {e["field"] for e in body["errors"]} == {field}, (value, body)
    _problem(ca_api.post("/api/v1/agencies", good, who="portal"), 403, "forbidden")
    assert counts(ca_api) == before
    done = ca_api.post("/api/v1/agencies", good)
    assert done.status_code == 200 and done.json["endpoint"] == good["endpoint"]


def test_the_dispatch_certificate_is_published(ca_api: CaApi, company: Company) -> None:
    from cryptography import x509

    from ca.dispatch import dispatch_certificate

    served = ca_api.client.get("/ca/dispatch.crt")
    assert served.status_code == 200 and served.mimetype == "application/pkix-cert"
    with ca_api.runtime.transaction() as session:
        assert x509.load_der_x509_certificate(served.data) == dispatch_certificate(session)


def test_a_forms_own_tariff_beats_the_agencys_price_for_the_period(
    ca_api: CaApi, company: Company, tmp_path: Path
) -> None:
    """Prices by form, period type and agency: a row for the form itself wins."""
    from policies.tariffs import Revenue, Tariff

    table = TARIFFS.with_tariffs(
        Tariff("report:tax:monthly:STI-091", Revenue.REPORTS, 7_300, date(2024, 1, 1), "НДС")
    )
    report = _filed(ca_api)
    assert company.sign_cloud(report, DOC).status_code == 201
    before = balance(ca_api)
    with ca_api.runtime.transaction() as session:
        filing.add_signature(
            session,
            report["id"],
            cms=company.accountant_signer.cms(DOC, tmp_path),
            form="cms",
            role=None,
            now=ca_api.clock.now,
            actor="test",
            tariffs=table,
        )
    shown = ca_api.get(f"/api/v1/reports/{report['id']}").json
    assert shown["charges"]["tariff"] == "report:tax:monthly:STI-091"
    assert shown["charges"]["price"] == 7_300
    assert balance(ca_api) == before - 7_300 - STORAGE

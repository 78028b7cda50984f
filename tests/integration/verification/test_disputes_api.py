"""The disputes API (§8, §8.5): open a case on uploaded material, charge its fee, read it back.

Real database (SQLite and PostgreSQL) and real SoftHSM: the subscriber's RuToken certificate is
issued by our CA, the disputed signature made by ``openssl cms -sign`` with its key, and the
CRLs signed by the CA and kept in ``crl_issues`` (the trust of every API verification). Every
refusal checks that nothing was written: no case, no journal entry, no ledger transaction, and
the balance unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

import billing
from billing.models import LedgerTransaction
from db import AuditEntry
from policies.tariffs import PLACEHOLDERS, TARIFFS
from signing_api.clients import create_client
from signing_api.verification.cases import stored_report
from signing_api.verification.models import DisputeCase
from signing_api.verification.stored import canonical_json
from tests.ca_fixtures import CaApi, register
from tests.filing_fixtures import INN, Company, Signer, file, sign_cms

pytestmark = [pytest.mark.hsm, pytest.mark.db]

FEE = TARIFFS.price("dispute", date(2026, 12, 1)).price
DOC = "<report form='STI-091' period='2026-11'>НДС: 12 345,67</report>".encode()
PATH = "/api/v1/disputes"


@dataclass
class Party:
    """The subscriber (its RuToken head), the disputed document and its signature."""

    api: CaApi
    signer: Signer
    signature: bytes

    def open(
        self,
        who: str | None = "commission",
        *,
        key: str | None = None,
        data: dict[str, Any] | None = None,
        **files: Any,
    ) -> Any:
        """POST a case: the genuine document and signature unless ``data`` says otherwise."""
        if data is None:
            data = {"subscriber_inn": INN}
            files = files or {
                "document": (DOC, "nds.xml"),
                "signature": (self.signature, "nds.p7s"),
            }
        body: dict[str, Any] = dict(data)
        for name, (content, filename) in files.items():
            body[name] = (io.BytesIO(content), filename)
        headers = self.api.headers(who, extra={"Idempotency-Key": key} if key else None)
        return self.api.client.post(
            PATH, data=body, headers=headers, content_type="multipart/form-data"
        )


def _rutoken(api: CaApi, holder: int) -> Signer:
    """The subscriber's first certificate, on a RuToken, paid through its payment account."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    body = {"holder_id": holder, "role": "head", "storage": "rutoken", "csr_pem": csr}
    done = api.post("/api/v1/certificates", body)
    if done.status_code == 402:
        api.pay(done.json["payment_account"], done.json["amount_due"])
        done = api.post("/api/v1/certificates", body)
    assert done.status_code == 201, done.json
    return Signer(done.json["serial"], done.json["certificate_pem"], key)


def _fresh_crls(api: CaApi) -> None:
    """The CA signs current CRLs (into ``crl_issues``, the archive the engine trusts)."""
    api.clock.now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    for name in ("root", "issuing"):
        assert api.client.get(f"/crl/{name}.crl").status_code == 200


@pytest.fixture
def party(ca_api: CaApi, tmp_path: Path) -> Party:
    """A subscriber with a RuToken head certificate, no money, a signed document, fresh CRLs,
    and two more API clients: a dispute commission and an agency."""
    ca_api.clock.now = datetime.now(UTC).replace(microsecond=0)  # openssl signs at real time
    signer = _rutoken(ca_api, register(ca_api))
    with ca_api.runtime.transaction() as session:
        for name in ("commission", "agency"):
            made = create_client(session, name=name, role=name, now=ca_api.clock.now, actor="test")
            ca_api.tokens[name] = made.token
            ca_api.client_ids[name] = made.client_id
    signature = signer.cms(DOC, tmp_path)
    _fresh_crls(ca_api)
    return Party(ca_api, signer, signature)


def _balance(api: CaApi) -> int:
    with api.runtime.transaction() as session:
        return billing.balance(session, INN).available


def _counts(api: CaApi) -> dict[str, int]:
    """What a refusal must leave unchanged."""
    with api.runtime.transaction() as session:
        found = {
            name: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in (
                ("cases", DisputeCase),
                ("ledger", LedgerTransaction),
                ("journal", AuditEntry),
            )
        }
        found["balance"] = billing.balance(session, INN).available
    return found


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.data[:2000])
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert body["type"] == f"urn:tamga:problem:{slug}", body
    return body


def _fields(problem: dict[str, Any]) -> set[str]:
    return {e["field"] for e in problem.get("errors", [])}


# --- a genuine signature ---------------------------------------------------------------------


def test_a_genuine_signature_is_authentic_the_fee_charged_once_and_the_case_kept(
    party: Party,
) -> None:
    api = party.api
    api.pay(INN, FEE + 500)
    before = _counts(api)
    done = party.open()
    assert done.status_code == 201, done.json
    case = done.json
    assert done.headers["Location"] == f"{PATH}/{case['id']}"
    assert case["indication"] == "TOTAL-PASSED", json.dumps(case["report"], indent=1)
    assert case["sub_indication"] is None
    assert case["subscriber_inn"] == INN and case["opened_as"] == "commission"
    assert case["opened_by"] == f"client:{api.client_ids['commission']}"
    assert case["form"] == "cms"
    assert case["document"] == {
        "name": "nds.xml",
        "sha256": hashlib.sha256(DOC).hexdigest(),
        "size": len(DOC),
    }
    assert case["signature"]["sha256"] == hashlib.sha256(party.signature).hexdigest()
    assert case["links"] == {
        "self": f"{PATH}/{case['id']}",
        "report_json": f"{PATH}/{case['id']}/report.json",
        "report_pdf": f"{PATH}/{case['id']}/report.pdf",
    }
    # The fee: exactly once, the dispute tariff, from the subscriber's balance (§8.5).
    assert case["fee"]["amount"] == FEE and case["fee"]["tariff"] == "dispute"
    assert case["fee"]["ledger_key"] == f"dispute:{case['id']}"
    after = _counts(api)
    assert after["balance"] == before["balance"] - FEE == 500
    assert after["cases"] == before["cases"] + 1
    assert after["ledger"] == before["ledger"] + 1
    with api.runtime.transaction() as session:
        posting = billing.posting_for(session, f"dispute:{case['id']}")
        assert posting is not None and posting.amount == FEE
        assert posting.transaction_id == case["fee"]["transaction"]
        opened = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "dispute.case.opened")
        ).one()
        assert opened.object == f"dispute:{case['id']}"
        details = opened.details_dict()
        assert details["report_sha256"] == case["report_sha256"]
        assert details["fee"] == FEE and details["transaction"] == posting.transaction_id
        # The stored material is the upload, byte for byte.
        row = session.get_one(DisputeCase, case["id"])
        assert (row.document, row.signature) == (DOC, party.signature)
        # The stored report reads back as the same values (what the PDF is rendered from).
        assert canonical_json(stored_report(row)) == row.report

    # report.json: the stored bytes exactly, the ones the POST answered with.
    stored = api.get(case["links"]["report_json"], who="commission")
    assert stored.status_code == 200 and stored.mimetype == "application/json"
    assert hashlib.sha256(stored.data).hexdigest() == case["report_sha256"]
    assert stored.headers["ETag"] == f'"{case["report_sha256"]}"'
    assert json.loads(stored.data) == case["report"]
    assert case["report"]["indication"] == "TOTAL-PASSED"
    assert case["report"]["document_sha256"] == hashlib.sha256(DOC).hexdigest()
    # report.pdf: rendered from the stored report.
    pdf = api.get(case["links"]["report_pdf"], who="officer")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    printed = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf.data, capture_output=True, check=True
    ).stdout.decode()
    flat = "".join(printed.split())
    for fact in (case["id"], INN, case["opened_by"], case["report"]["document_sha256"]):
        assert fact in flat, fact
    # The case itself, to officers and commissions alike; nothing more was charged.
    for who in ("commission", "officer"):
        shown = api.get(case["links"]["self"], who=who)
        assert shown.status_code == 200 and shown.json == case
    assert _counts(api) == after


def test_an_officer_opens_a_case_too_and_lists_show_the_newest_first_by_pages(
    party: Party,
) -> None:
    api = party.api
    api.pay(INN, 3 * FEE)
    ids = []
    for who in ("officer", "commission", "officer"):
        done = party.open(who)
        assert done.status_code == 201, done.json
        assert done.json["opened_as"] == ("officer" if who == "officer" else "commission")
        ids.append(done.json["id"])
        api.clock.now += timedelta(seconds=1)
    assert _balance(api) == 0
    first = api.get(PATH, who="commission", limit=2)
    assert first.status_code == 200, first.json
    assert [c["id"] for c in first.json["disputes"]] == ids[:0:-1]
    assert all("report" not in c for c in first.json["disputes"])
    assert first.json["next"] == ids[1]
    rest = api.get(PATH, who="officer", limit=2, before=first.json["next"])
    assert [c["id"] for c in rest.json["disputes"]] == ids[:1]
    assert rest.json["next"] is None
    assert api.get(PATH, inn="09876543210987").json["disputes"] == []
    unknown = api.get(PATH, before=str(uuid.uuid4()))
    assert "before" in _fields(_problem(unknown, 422, "validation-failed"))


def test_a_signature_that_does_not_hold_is_still_a_case_and_still_paid(party: Party) -> None:
    """§8.5: the fee pays for the procedure, whatever its verdict."""
    api = party.api
    api.pay(INN, FEE)
    forged = DOC.replace(b"345", b"945")
    done = party.open(document=(forged, "nds.xml"), signature=(party.signature, "nds.p7s"))
    assert done.status_code == 201, done.json
    assert done.json["indication"] == "TOTAL-FAILED", done.json["report"]
    assert done.json["sub_indication"] == done.json["report"]["sub_indication"] is not None
    assert done.json["document"]["sha256"] == hashlib.sha256(forged).hexdigest()
    assert _balance(api) == 0
    pdf = api.get(done.json["links"]["report_pdf"], who="commission")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def _signed_pdf(signer: Signer) -> bytes:
    """A one-page PDF signed (PAdES) with the subscriber's key by pyHanko, as a PDF tool would."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore
    from reportlab.pdfgen import canvas

    page = io.BytesIO()
    drawing = canvas.Canvas(page)
    drawing.drawString(72, 720, "Act of reconciliation, November 2026")
    drawing.save()
    cert = asn1_x509.Certificate.load(
        x509.load_pem_x509_certificate(signer.cert_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
    )
    key = asn1_keys.PrivateKeyInfo.load(
        signer.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pdf_signer = signers.SimpleSigner(
        signing_cert=cert,
        signing_key=key,
        cert_registry=SimpleCertificateStore.from_certs([cert]),  # type: ignore[no-untyped-call]
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(page.getvalue())),
        signers.PdfSignatureMetadata(field_name="Signature1"),
        signer=pdf_signer,
    )
    return bytes(out.getvalue())


def test_a_signed_pdf_is_a_case_of_its_own_form(party: Party) -> None:
    api = party.api
    api.pay(INN, FEE)
    pdf = _signed_pdf(party.signer)
    _fresh_crls(api)
    done = party.open(data={"subscriber_inn": INN}, pdf=(pdf, "act.pdf"))
    assert done.status_code == 201, done.json
    case = done.json
    assert case["form"] == "pdf" and case["signature"] is None
    assert case["document"] == {
        "name": "act.pdf",
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "size": len(pdf),
    }
    assert case["indication"] == "TOTAL-PASSED", json.dumps(case["report"], indent=1)
    assert len(case["report"]["signatures"]) == 1
    with api.runtime.transaction() as session:
        row = session.get_one(DisputeCase, case["id"])
        assert (row.document, row.signature) == (pdf, None)
    assert _balance(api) == 0


def test_a_filed_reports_evidence_package_is_a_case_of_its_own_form(
    company: Company, tmp_path: Path
) -> None:
    """The commission takes the package Tamga gives for a report (both signatures in it)."""
    api = company.api
    with api.runtime.transaction() as session:
        made = create_client(
            session, name="commission", role="commission", now=api.clock.now, actor="t"
        )
        api.tokens["commission"] = made.token
    filed = file(api, DOC)
    assert filed.status_code == 201, filed.json
    report = filed.json
    assert company.sign_cloud(report, DOC).status_code == 201
    signed = sign_cms(api, report["id"], company.accountant_signer.cms(DOC, tmp_path))
    assert signed.status_code == 201, signed.json
    package = api.get(f"/api/v1/reports/{report['id']}/package")
    assert package.status_code == 200, package.data[:500]
    _fresh_crls(api)
    paid = _balance(api)
    body = {
        "subscriber_inn": INN,
        "package": (io.BytesIO(package.data), f"report-{report['id']}.zip"),
    }
    done = api.client.post(
        PATH, data=body, headers=api.headers("commission"), content_type="multipart/form-data"
    )
    assert done.status_code == 201, done.json
    case: dict[str, Any] = done.json or {}
    assert case["form"] == "package" and case["signature"] is None
    assert case["document"]["sha256"] == hashlib.sha256(package.data).hexdigest()
    assert case["indication"] == "TOTAL-PASSED", json.dumps(case["report"], indent=1)
    assert len(case["report"]["signatures"]) == 2
    assert _balance(api) == paid - FEE


# --- idempotency -----------------------------------------------------------------------------


def test_a_replay_answers_the_first_case_and_charges_once(party: Party, tmp_path: Path) -> None:
    api = party.api
    api.pay(INN, 2 * FEE)
    first = party.open(key="case-1")
    assert first.status_code == 201, first.json
    after_first = _counts(api)
    again = party.open(key="case-1")
    assert again.status_code == 200, again.json
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotency-Key"] == "case-1"
    assert _counts(api) == after_first
    assert after_first["balance"] == FEE  # charged once
    # The same key with other material is refused, and writes nothing.
    other = party.signer.cms(DOC + b" ", tmp_path)
    conflict = party.open(
        key="case-1", document=(DOC + b" ", "nds.xml"), signature=(other, "nds.p7s")
    )
    assert "Idempotency-Key" in _fields(_problem(conflict, 422, "idempotency-conflict"))
    assert _counts(api) == after_first
    # Another client's same key is its own request.
    theirs = party.open("officer", key="case-1")
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]


# --- money -----------------------------------------------------------------------------------


def test_a_balance_short_of_the_fee_is_402_and_nothing_is_written(party: Party) -> None:
    api = party.api
    api.pay(INN, FEE - 1 - _balance(api))
    before = _counts(api)
    assert before["balance"] == FEE - 1
    refused = party.open(key="poor")
    body = _problem(refused, 402, "payment-required")
    assert body["amount_due"] == 1 and body["payment_account"] is None
    assert _counts(api) == before
    # Topped up, the same request (same key) goes through: the refusal kept nothing.
    api.pay(INN, 1)
    done = party.open(key="poor")
    assert done.status_code == 201, done.json
    assert _balance(api) == 0


def test_the_dispute_tariff_is_a_placeholder() -> None:
    assert "dispute" in PLACEHOLDERS
    assert not any(code.startswith("cert:") for code in PLACEHOLDERS)


# --- who may call ----------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "status"), [("portal", 403), ("agency", 403), (None, 401)])
def test_only_commissions_and_officers_open_or_read_cases(
    party: Party, who: str | None, status: int
) -> None:
    api = party.api
    api.pay(INN, 2 * FEE)
    opened = party.open().json["id"]
    before = _counts(api)
    slug = "forbidden" if status == 403 else "unauthorized"
    _problem(party.open(who), status, slug)
    for path in (PATH, f"{PATH}/{opened}", f"{PATH}/{opened}/report.json"):
        _problem(api.get(path, who=who), status, slug)
    counts = _counts(api)
    if status == 401:  # a failed authentication is counted in the journal, not charged
        counts["journal"] = before["journal"]
    assert counts == before


# --- bad requests ----------------------------------------------------------------------------


_NOT_CMS = b"this is not a CMS signature"


def _corrupted(der: bytes) -> bytes:
    """The signature with its first signed attribute claiming one byte more than it has: the
    CMS still loads, the damage shows only when the attributes are read."""
    from asn1crypto import cms

    attrs = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["signed_attrs"]
    raw = attrs.dump()
    first = der.index(raw) + len(raw) - len(attrs.contents)
    assert der[first] == 0x30 and der[first + 1] < 0x7F
    return der[: first + 1] + bytes([der[first + 1] + 1]) + der[first + 2 :]


@pytest.mark.parametrize(
    ("data", "files", "fields"),
    [
        ({"subscriber_inn": INN}, {}, {"signature", "pdf", "package"}),
        ({}, {}, {"subscriber_inn", "signature", "pdf", "package"}),
        ({"subscriber_inn": "09876543210987"}, "genuine", {"subscriber_inn"}),
        ({"subscriber_inn": "12345"}, "genuine", {"subscriber_inn"}),
        ({"subscriber_inn": INN}, {"document": (DOC, "nds.xml")}, {"signature"}),
        ({"subscriber_inn": INN}, {"signature": (_NOT_CMS, "x.p7s")}, {"signature"}),
        (
            {"subscriber_inn": INN},
            {"signature": (_NOT_CMS, "x.p7s"), "pdf": (b"%PDF-1.7", "x.pdf")},
            {"signature", "pdf"},
        ),
        (
            {"subscriber_inn": "09876543210987"},
            {"pdf": (b"%PDF-1.7", "x.pdf"), "package": (b"PK", "x.zip")},
            {"subscriber_inn", "pdf", "package"},
        ),
        ({"subscriber_inn": INN}, {"signature": (b"", "empty.p7s")}, {"signature"}),
        ({"subscriber_inn": INN, "colour": "red"}, "genuine", {"colour"}),
        ({"subscriber_inn": INN, "signature": "text, not a file"}, {}, {"signature"}),
        ({"subscriber_inn": INN}, {"pdf": (b"%PDF-1.7 but nothing more", "x.pdf")}, {"pdf"}),
        ({"subscriber_inn": INN}, {"package": (b"not a zip", "p.zip")}, {"package"}),
    ],
    ids=[
        "no-files",
        "nothing",
        "unknown-inn",
        "malformed-inn",
        "document-alone",
        "not-a-cms",
        "two-forms",
        "two-forms-and-unknown-inn",
        "empty-file",
        "unknown-field",
        "file-as-text",
        "not-a-pdf",
        "not-a-package",
    ],
)
def test_bad_requests_name_every_bad_field_and_write_nothing(
    party: Party, data: dict[str, str], files: Any, fields: set[str]
) -> None:
    api = party.api
    api.pay(INN, FEE)
    before = _counts(api)
    if files == "genuine":
        files = {"document": (DOC, "nds.xml"), "signature": (party.signature, "nds.p7s")}
    refused = party.open(data=data, **files)
    body = _problem(refused, 422, "validation-failed")
    assert _fields(body) == fields, body
    assert _counts(api) == before


def test_a_signature_malformed_inside_is_a_format_failure_not_a_crash(party: Party) -> None:
    """The CMS loads, its signed attributes do not: the engine's verdict is TOTAL-FAILED with
    FORMAT_FAILURE for that signature (ETSI: it is not a signature), never a 500."""
    api = party.api
    api.pay(INN, FEE)
    done = party.open(document=(DOC, "nds.xml"), signature=(_corrupted(party.signature), "c.p7s"))
    assert done.status_code == 201, done.json
    assert (done.json["indication"], done.json["sub_indication"]) == (
        "TOTAL-FAILED",
        "FORMAT_FAILURE",
    )


def test_a_body_that_is_not_multipart_is_415(party: Party) -> None:
    api = party.api
    refused = api.post(PATH, {"subscriber_inn": INN}, who="commission")
    _problem(refused, 415, "unsupported-media-type")


def test_material_over_the_body_limit_is_413_before_it_is_read(party: Party) -> None:
    from signing_api.web.limits import BODY_LIMITS

    api = party.api
    api.pay(INN, FEE)
    before = _counts(api)
    limit = BODY_LIMITS["disputes.open_dispute"]
    big = api.client.post(
        PATH,
        data=b"-" * (limit + 1),
        headers=api.headers("commission"),
        content_type="multipart/form-data; boundary=x",
    )
    _problem(big, 413, "payload-too-large")
    assert _counts(api) == before


UNKNOWN_CASE = "5d0a4d8e-2b7e-4c31-9a53-0f3c1e7b9a11"  # fixed: xdist workers collect alike


@pytest.mark.parametrize(
    "path",
    [
        f"{PATH}/{UNKNOWN_CASE}",
        f"{PATH}/{UNKNOWN_CASE}/report.json",
        f"{PATH}/{UNKNOWN_CASE}/report.pdf",
        f"{PATH}/{'x' * 300}",
    ],
)
def test_an_unknown_case_is_404(party: Party, path: str) -> None:
    _problem(party.api.get(path, who="commission"), 404, "not-found")


# --- the database keeps cases as they were --------------------------------------------------


def test_cases_are_append_only_in_the_database(party: Party) -> None:
    api = party.api
    api.pay(INN, FEE)
    case_id = party.open().json["id"]
    with pytest.raises(DBAPIError, match="append-only"), api.runtime.transaction() as session:
        row = session.get_one(DisputeCase, case_id)
        row.indication = "TOTAL-FAILED"
        session.flush()
    with pytest.raises(DBAPIError, match="append-only"), api.runtime.transaction() as session:
        session.delete(session.get_one(DisputeCase, case_id))
        session.flush()
    with pytest.raises(DBAPIError, match="append-only"), api.runtime.transaction() as session:
        session.execute(text("UPDATE dispute_cases SET fee = 1"))
    if api.runtime.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), api.runtime.transaction() as s:
            s.execute(text("TRUNCATE dispute_cases CASCADE"))
    with api.runtime.transaction() as session:
        row = session.get_one(DisputeCase, case_id)
        assert (row.indication, row.fee) == ("TOTAL-PASSED", FEE)

"""The commission's page ``/disputes/`` through the Flask test client, on real signatures.

Real database (SQLite and PostgreSQL), real SoftHSM: a cloud CAdES-B-T signature from
``POST /api/v1/signatures`` (time-stamped by our TSA), the CRLs issued after it, and the page's
verdict, steps and inputs; the PDF it offers read back with poppler's ``pdftotext``; every page
checked by HTML Tidy (HTML5, no warnings); bad input answered with the form and a 4xx, and
nothing written to the database by any of it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from crl import CRLIssue, refresh_crl
from db import AuditEntry
from signing_api.verification.pdf import render_report_pdf
from signing_api.verification.wording import moment
from signing_api.web.limits import MIB
from tests.ca_fixtures import CaApi
from tests.filing_fixtures import Company, file, sign_cms
from tests.integration.signing_api.test_csc import _authorize, _hash, _setup
from tests.unit.verification.sample import sample_report

pytestmark = [pytest.mark.hsm, pytest.mark.db]

DOCUMENT = "<report form='STI-091' period='2026-10'>НДС: 12 345,67 сом</report>".encode()
CLAUSES = ("8.2.1", "8.2.2", "8.2.3", "8.2.4", "8.2.5", "8.2.6", "8.2.7")
CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: make system-packages installs it")
    return path


def tidy(page: str) -> None:
    """HTML Tidy's HTML5 check: no error and no warning."""
    done = subprocess.run(
        [_tool("tidy"), "-q", "-e", "--show-warnings", "yes", "--show-info", "no"],
        input=page.encode(), capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    source = tmp_path / "report.pdf"
    source.write_bytes(pdf)
    done = subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(source), "-"], capture_output=True, check=True
    )
    return re.sub(r"\s+", " ", done.stdout.decode("utf-8"))


def signed_document(api: CaApi, document: bytes = DOCUMENT) -> bytes:
    """A head's cloud signature (CAdES-B-T), then both CRLs issued a minute later."""
    holder = _setup(api)
    sad = _authorize(api, holder, [_hash(document)]).json["SAD"]
    body = {
        "credentialID": holder.serial,
        "SAD": sad,
        "document": base64.b64encode(document).decode(),
    }
    done = api.post("/api/v1/signatures", body, who="portal")
    assert done.status_code == 201, done.json
    publish_crls(api)
    return base64.b64decode(done.json["signature"])


def publish_crls(api: CaApi) -> None:
    api.clock.now += timedelta(minutes=1)
    with api.runtime.transaction() as session:
        for issuer in ("root", "issuing"):
            refresh_crl(
                session, issuer=issuer, token=api.runtime.ca_token, now=api.clock.now,
                actor="test", force=True,
            )  # fmt: skip
    api.clock.now += timedelta(minutes=1)


def files(**named: tuple[bytes, str]) -> dict[str, Any]:
    return {field: (io.BytesIO(data), name) for field, (data, name) in named.items()}


def post(api: CaApi, path: str, **named: tuple[bytes, str]) -> Any:
    return api.client.post(path, data=files(**named), content_type="multipart/form-data")


def written(api: CaApi) -> tuple[int, int]:
    """What a check must never add to: the journal and the CRLs."""
    with api.runtime.transaction() as session:
        return (
            int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0),
            int(session.scalar(select(func.count()).select_from(CRLIssue)) or 0),
        )


def page_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    page: str = response.get_data(as_text=True)
    assert "<script" not in page.lower() and " style=" not in page and "<style" not in page
    tidy(page)
    return page


def hidden_fields(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([a-z_0-9]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found}


def test_the_form_and_its_style_sheet(ca_api: CaApi) -> None:
    page = page_of(ca_api.client.get("/disputes/"), 200)
    assert 'enctype="multipart/form-data"' in page and 'action="/disputes/verify"' in page
    assert 'name="signed"' in page and 'name="document"' in page
    assert "Проверка электронной подписи" in page and "Signature verification" in page
    css = ca_api.client.get("/disputes/disputes.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "#1b7f3b" in css.get_data(as_text=True)


def test_a_genuine_signature_is_total_passed_with_its_steps_and_pdf(
    ca_api: CaApi, tmp_path: Path
) -> None:
    signature = signed_document(ca_api)
    before = written(ca_api)
    answer = post(
        ca_api, "/disputes/verify",
        signed=(signature, "head.p7s"), document=(DOCUMENT, "nds-2026-10.xml"),
    )  # fmt: skip
    page = page_of(answer, 200)
    assert answer.headers["Cache-Control"] == "no-store"
    assert '<section class="verdict passed"' in page and "TOTAL-PASSED" in page
    assert "подпись подлинная" in page and "§8.4" in page
    for clause in CLAUSES:
        assert f'<td class="clause">{clause}</td>' in page
    assert hashlib.sha256(DOCUMENT).hexdigest() in page
    assert hashlib.sha256(signature).hexdigest() in page
    assert "Проверкина Проверка Проверковна" in page  # the signer, from its certificate
    assert "signature-time-stamp" in page  # what proves the signing time
    assert "nds-2026-10.xml" in page and "head.p7s" in page
    assert moment(ca_api.clock.now) in page  # validated at the server's clock

    # The download button re-posts the same files (hidden fields) for the PDF.
    fields = hidden_fields(page)
    assert base64.b64decode(fields["signed_b64"]) == signature
    assert base64.b64decode(fields["document_b64"]) == DOCUMENT
    ca_api.clock.now += timedelta(minutes=5)  # the PDF is a new check, at its own time
    pdf = ca_api.client.post(
        "/disputes/report.pdf", data=fields, content_type="multipart/form-data"
    )
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    disposition = pdf.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".pdf" in disposition
    text = pdf_text(pdf.data, tmp_path)
    assert "Заключение о проверке электронной подписи (§8)" in text
    assert "TOTAL-PASSED" in text and "Проверкина Проверка Проверковна" in text
    assert hashlib.sha256(DOCUMENT).hexdigest() in text
    assert moment(ca_api.clock.now) in text
    # the same files uploaded straight to the PDF route give the same verdict
    direct = post(
        ca_api, "/disputes/report.pdf",
        signed=(signature, "head.p7s"), document=(DOCUMENT, "nds-2026-10.xml"),
    )  # fmt: skip
    assert direct.status_code == 200 and "TOTAL-PASSED" in pdf_text(direct.data, tmp_path)
    assert written(ca_api) == before  # nothing stored, charged or journalled


def test_a_changed_document_is_total_failed_in_red(ca_api: CaApi) -> None:
    signature = signed_document(ca_api)
    changed = DOCUMENT.replace(b"12 345", b"92 345")
    answer = post(
        ca_api, "/disputes/verify", signed=(signature, "head.p7s"), document=(changed, "nds.xml")
    )
    page = page_of(answer, 200)
    assert '<section class="verdict failed"' in page and "TOTAL-FAILED" in page
    assert "HASH_FAILURE" in page


def test_bad_input_gets_the_form_again_with_a_4xx(ca_api: CaApi) -> None:
    before = written(ca_api)
    nothing = page_of(ca_api.client.post("/disputes/verify", data={}), 400)
    assert 'role="alert"' in nothing and "choose the signed file" in nothing
    garbage = page_of(post(ca_api, "/disputes/verify", signed=(b"not a signature", "x.p7s")), 422)
    assert 'role="alert"' in garbage and "x.p7s" in garbage
    # a PDF with no signature in it (the commission's own report, unsigned)
    unsigned = render_report_pdf(sample_report())
    no_signature = page_of(post(ca_api, "/disputes/verify", signed=(unsigned, "report.pdf")), 422)
    assert 'role="alert"' in no_signature and "report.pdf" in no_signature
    # a PDF carries its document: a second file is a mistake
    both = post(ca_api, "/disputes/verify", signed=(unsigned, "a.pdf"), document=(b"x", "b.xml"))
    assert "carries its document" in page_of(both, 422)
    zipped = post(
        ca_api, "/disputes/verify", signed=(b"PK\x03\x04" + b"\0" * 26, "r.zip"),
        document=(b"x", "b.xml"),
    )  # fmt: skip
    assert "carries its document" in page_of(zipped, 422)
    empty = page_of(post(ca_api, "/disputes/verify", signed=(b"", "empty.p7s")), 422)
    assert "empty" in empty
    # a body over the route's limit: refused before it is read, with the form
    too_large = ca_api.client.post(
        "/disputes/verify", data=b"x" * (13 * MIB + 1),
        content_type="multipart/form-data; boundary=x",
    )  # fmt: skip
    assert "too large" in page_of(too_large, 413)
    # one file over its own limit, in a body under the route's
    one_file = post(ca_api, "/disputes/verify", signed=(b"x" * (12 * MIB + 1), "big.p7s"))
    assert "larger than 12 MiB" in page_of(one_file, 413)
    # a file name and content with markup: printed, never interpreted
    hostile = post(
        ca_api, "/disputes/verify", signed=(b"<b>x</b>", '<script>alert("x")</script>.p7s')
    )
    page = page_of(hostile, 422)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    # the PDF route refuses the same way, with the form, never a PDF
    refused = post(ca_api, "/disputes/report.pdf", signed=(b"not a signature", "x.p7s"))
    page_of(refused, 422)
    bad_base64 = ca_api.client.post(
        "/disputes/report.pdf", data={"signed_b64": "***", "signed_name": "x.p7s"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert "base64" in page_of(bad_base64, 400)
    too_large_again = ca_api.client.post(
        "/disputes/report.pdf", data=b"x" * (18 * MIB + 1),
        content_type="multipart/form-data; boundary=x",
    )  # fmt: skip
    assert "too large" in page_of(too_large_again, 413)
    assert written(ca_api) == before


def test_a_filed_reports_package_is_checked_signature_by_signature(
    company: Company, tmp_path: Path
) -> None:
    """The evidence ZIP of a report signed by a cloud head and a RuToken accountant."""
    api = company.api
    done = file(api, DOCUMENT)
    assert done.status_code == 201, done.json
    report = done.json
    assert company.sign_cloud(report, DOCUMENT).status_code == 201
    signed = sign_cms(api, report["id"], company.accountant_signer.cms(DOCUMENT, tmp_path))
    assert signed.status_code == 201, signed.json
    package = api.get(f"/api/v1/reports/{report['id']}/package", who="portal")
    assert package.status_code == 200 and package.mimetype == "application/zip"
    publish_crls(api)
    page = page_of(post(api, "/disputes/verify", signed=(package.data, "report.zip")), 200)
    assert "пакет отчёта / report package" in page
    assert page.count('<section class="signature"') == 2
    assert hashlib.sha256(DOCUMENT).hexdigest() in page
    assert hashlib.sha256(package.data).hexdigest() in page
    assert '<section class="verdict passed"' in page, re.findall(r"<li>.*?</li>", page)[:5]
    assert "operator-evidence" in page  # the operator's records of the filed signatures
    # the accountant's filed RuToken signature alone: its intake is the proof of its time, as
    # the disputes API would find it
    cms = company.accountant_signer.cms(DOCUMENT, tmp_path)  # the same bytes as filed
    alone = post(api, "/disputes/verify", signed=(cms, "accountant.p7s"), document=(DOCUMENT, "r"))
    single = page_of(alone, 200)
    assert "TOTAL-PASSED" in single
    assert "записи оператора / operator-evidence" in single


def test_an_attached_signature_needs_no_document(company: Company, tmp_path: Path) -> None:
    """``openssl cms -sign -nodetach`` by the RuToken accountant: the content is inside."""
    signer = company.accountant_signer
    (tmp_path / "doc.xml").write_bytes(DOCUMENT)
    (tmp_path / "cert.pem").write_text(signer.cert_pem)
    (tmp_path / "key.pem").write_bytes(
        signer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    attached = subprocess.run(
        ["openssl", "cms", "-sign", "-nodetach", "-binary", "-md", "sha256", "-outform", "DER",
         "-in", tmp_path / "doc.xml", "-signer", tmp_path / "cert.pem",
         "-inkey", tmp_path / "key.pem"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    publish_crls(company.api)
    page = page_of(post(company.api, "/disputes/verify", signed=(attached, "attached.p7s")), 200)
    assert "TOTAL-PASSED" in page and '<section class="verdict passed"' in page
    assert hashlib.sha256(DOCUMENT).hexdigest() in page
    assert "Бухгалтерова Анна" in page

"""Interoperability: pyHanko's ``CSCSigner`` (a client nobody here wrote) signs a PDF through
Tamga's CSC API on real gunicorn, and pyHanko's validator accepts the result against our root.

The holder's authorisation (PIN + the current TOTP code + what the signature is for) is the
part of the CSC flow a client application supplies: pyHanko leaves it to a
``CSCAuthorizationManager`` subclass, written here as the portal would.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from signing_api.mail import read_mailbox
from tests.e2e.serving import call, osmp_pay
from tests.e2e.test_serve import server  # noqa: F401 - the real-gunicorn fixture
from tests.integration.signing_api.test_csc import PIN, totp
from tests.tamga_fixtures import RunTamga

pytestmark = [pytest.mark.slow, pytest.mark.hsm, pytest.mark.db]

INN = "01234567890123"


def _blank_pdf() -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, "Tax report, Q4 2026")
    page.save()
    return out.getvalue()


def test_pyhanko_csc_signer_signs_a_pdf_that_validates(
    server: tuple[str, Path, str],  # noqa: F811
    run_tamga: RunTamga,
    tmp_path: Path,
) -> None:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.signers import csc_signer
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    base, home, database_url = server

    def client(name: str, role: str) -> str:
        made = run_tamga(
            home, "clients", "create", "--name", name, "--role", role, database_url=database_url
        )
        return made.stdout.strip().splitlines()[-1]

    portal = client("portal", "portal")
    status, _ = call(
        base,
        "/api/v1/subscribers",
        portal,
        {
            "inn": INN,
            "name": 'ОсОО "Ала-Тоо"',
            "legal_form": "ОсОО",
            "locality": "Бишкек",
            "email": "office@alatoo.kg",
        },
    )
    assert status == 201
    status, holder = call(
        base,
        "/api/v1/holders",
        portal,
        {
            "inn": INN,
            "full_name": "Асанова Айгуль",
            "position": "Директор",
            "passport_series": "ID1234567",
            "email": "a@alatoo.kg",
            "phone": "+996555123456",
        },
    )
    assert status == 201, holder
    # The portal cannot vouch for the person (§3.3); an officer checks the documents.
    assert not holder["identity_verified"]
    status, _ = call(base, f"/api/v1/holders/{holder['id']}/verify", portal, {"document": "x"})
    assert status == 403
    officer = client("front office", "officer")
    status, checked = call(
        base, f"/api/v1/holders/{holder['id']}/verify", officer, {"document": "office file 1"}
    )
    assert status == 200 and checked["identity_verified"], checked
    ask = {"holder_id": holder["id"], "role": "head", "storage": "cloud"}
    status, unpaid = call(base, "/api/v1/certificates", portal, ask)
    assert status == 402, unpaid
    osmp_pay(base, "1", unpaid["payment_account"], "1510.00")
    osmp_pay(base, "2", INN, "1000.00")  # a zero balance stops services (§3.9.2)
    status, issued = call(base, "/api/v1/certificates", portal, ask)
    assert status == 201, issued
    serial = issued["serial"]
    # The holder reads the activation code from its mailbox and, through the portal, sets the PIN.
    (mail,) = read_mailbox(home / "mail", "a@alatoo.kg")
    code = re.search(r"Activation code: ([0-9A-Z-]+)", mail.get_content())
    assert code is not None and serial in mail.get_content()
    status, activated = call(
        base, f"/api/v1/certificates/{serial}/activation", portal,
        {"activation_code": code.group(1), "pin": PIN},
    )  # fmt: skip
    assert status == 201, activated
    uri = activated["otpauth_uri"]

    class PortalAuthorization(csc_signer.CSCAuthorizationManager):
        """What the portal does: ask the holder for PIN and code, say what is signed."""

        async def authorize_signature(self, hash_b64s: list[str]) -> Any:
            body = self.format_csc_auth_request(
                pin=PIN,
                otp=totp(uri, datetime.now(UTC)),
                hash_b64s=hash_b64s,
                client_data=json.dumps({"inn": INN, "role": "head", "userIP": "203.0.113.9"}),
            )
            async with self.session.post(
                self.csc_session_info.endpoint_url("credentials/authorize"),
                headers=self.auth_headers,
                json=body,
                raise_for_status=True,
            ) as response:
                return self.parse_csc_auth_response(await response.json())

    async def sign() -> bytes:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            info = csc_signer.CSCServiceSessionInfo(
                service_url=base, credential_id=serial, oauth_token=portal
            )
            credential = await csc_signer.fetch_certs_in_csc_credential(session, info)
            auth = PortalAuthorization(info, credential)
            auth.session = session  # type: ignore[attr-defined]
            signer = csc_signer.CSCSigner(session, auth_manager=auth)
            writer = IncrementalPdfFileWriter(io.BytesIO(_blank_pdf()))
            out = await signers.async_sign_pdf(
                writer,
                signers.PdfSignatureMetadata(field_name="Tamga", md_algorithm="sha256"),
                signer=signer,
            )
            return out.getvalue()

    signed = asyncio.run(sign())
    (tmp_path / "signed.pdf").write_bytes(signed)
    reader = PdfFileReader(io.BytesIO(signed))
    root_der = urllib.request.urlopen(f"{base}/ca/root.crt", timeout=30).read()  # noqa: S310
    issuing_der = urllib.request.urlopen(f"{base}/ca/issuing.crt", timeout=30).read()  # noqa: S310
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(root_der)],
        other_certs=[asn1_x509.Certificate.load(issuing_der)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    status_ = validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status_.intact and status_.valid, status_.pretty_print_details()
    assert status_.trusted, status_.pretty_print_details()
    assert format(status_.signing_cert.serial_number, "x") == serial

    # The dispute engine (§8) judges the same PDF TOTAL-PASSED from the server's certificates
    # and CRLs, in process and through the offline command a commission runs.
    from signing_api.verification import Indication, NamedBytes, load_trust, verify_pdf

    crls = {
        name: urllib.request.urlopen(f"{base}/crl/{name}.crl", timeout=30).read()  # noqa: S310
        for name in ("root", "issuing")
    }
    trust = load_trust(
        [NamedBytes("root.crt", root_der)],
        [NamedBytes("issuing.crt", issuing_der)],
        [NamedBytes(f"{name}.crl", der) for name, der in crls.items()],
    )
    report = verify_pdf(NamedBytes("signed.pdf", signed), trust, now=datetime.now(UTC))
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.signatures[0].signer_serial == int(serial, 16)
    (tmp_path / "root.crt").write_bytes(root_der)
    (tmp_path / "issuing.crt").write_bytes(issuing_der)
    for name, der in crls.items():
        (tmp_path / f"{name}.crl").write_bytes(der)
    offline = subprocess.run(
        [sys.executable, "-c", "from signing_api.cli import main; main()", "verify", "signature",
         "--pdf", "signed.pdf", "--trust", "root.crt", "--intermediate", "issuing.crt",
         "--crl", "root.crl", "--crl", "issuing.crl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("TAMGA_")},
    )  # fmt: skip
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.startswith("verdict: TOTAL-PASSED")

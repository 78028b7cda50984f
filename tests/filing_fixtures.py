"""Fixtures for filing (issue #13): a company with a cloud head and a RuToken accountant, an
agency whose receipts are signed by its own key, and helpers to file and sign reports.

The agency here is a software key and pyca's ``PKCS7SignatureBuilder``: code Tamga did not
write makes the receipts Tamga verifies (the e2e tests run the gateway stub as its own process).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

import billing
import filing
from db import AuditEntry
from tests.ca_fixtures import SUBSCRIBER, CaApi, register

INN = SUBSCRIBER["inn"]
PIN = "482913"
OTHER_INN = "09876543210987"
_NUMBERS = itertools.count(1)


@dataclass
class AgencyKey:
    """An agency's own CA and receipt-signing key (not ours), signing like its gateway."""

    root: x509.Certificate
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, name: str = "State Tax Service") -> AgencyKey:
        now = datetime.now(UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA"),
            ]
        )
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
                        x509.NameAttribute(NameOID.COMMON_NAME, f"{name} receipts"),
                    ]
                )
            )
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root, cert, key)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, statement: dict[str, Any]) -> bytes:
        """An encapsulated CMS over the JSON statement, as the agency's gateway makes it."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(json.dumps(statement).encode())
            .add_signer(self.cert, self.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
        )

    def receipt(self, report: dict[str, Any], **over: Any) -> bytes:
        return self.sign(
            {
                "type": "delivery-receipt",
                "report_id": report["id"],
                "agency": report["agency"],
                "office": report["office"],
                "document_sha256": report["document_sha256"],
                "received_at": datetime.now(UTC).isoformat(),
                "registration_number": f"TAX-2026-{next(_NUMBERS):06d}",
            }
            | over
        )

    def result(self, report: dict[str, Any], result: str = "accepted", **over: Any) -> bytes:
        return self.sign(
            {
                "type": "check-result",
                "report_id": report["id"],
                "agency": report["agency"],
                "result": result,
                "message": "" if result == "accepted" else "Ошибка в строке 12",
                "checked_at": datetime.now(UTC).isoformat(),
            }
            | over
        )


@dataclass
class Signer:
    """A RuToken holder: its certificate was issued from a CSR; the key never reached us."""

    serial: str
    cert_pem: str
    key: ec.EllipticCurvePrivateKey

    def cms(self, document: bytes, tmp: Path, *, fresh: bool = False) -> bytes:
        """``openssl cms -sign`` on the holder's machine: detached, SHA-256, cert included.

        The same document gives the same bytes again (a retried upload) unless ``fresh``: a
        new signature, with its own signing-time and ECDSA nonce.
        """
        tag = hashlib.sha256(document + self.serial.encode()).hexdigest()[:16]
        doc, cert, key, out = (tmp / f"{tag}.{ext}" for ext in ("doc", "crt", "key", "p7s"))
        if out.exists() and not fresh:
            return out.read_bytes()
        doc.write_bytes(document)
        cert.write_text(self.cert_pem)
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        subprocess.run(
            ["openssl", "cms", "-sign", "-binary", "-md", "sha256", "-in", doc,
             "-signer", cert, "-inkey", key, "-outform", "DER", "-out", out],
            check=True, capture_output=True,
        )  # fmt: skip
        return out.read_bytes()


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def rutoken_certificate(api: CaApi, holder: int, role: str) -> Signer:
    """A RuToken certificate for ``holder`` (the balance pays it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    done = api.post(
        "/api/v1/certificates",
        {"holder_id": holder, "role": role, "storage": "rutoken", "csr_pem": _csr(key)},
    )
    assert done.status_code == 201, done.json
    return Signer(done.json["serial"], done.json["certificate_pem"], key)


def cloud_certificate(api: CaApi, holder: int, role: str) -> str:
    """A cloud certificate (paid through the first payment account if it is the first)."""
    body = {"holder_id": holder, "role": role, "storage": "cloud"}
    done = api.post("/api/v1/certificates", body)
    if done.status_code == 402:
        api.pay(done.json["payment_account"], done.json["amount_due"])
        done = api.post("/api/v1/certificates", body)
    assert done.status_code == 201, done.json
    return str(done.json["serial"])


def register_agency(api: CaApi, agency: AgencyKey, code: str = "tax") -> None:
    done = api.post(
        "/api/v1/agencies",
        {
            "code": code,
            "name": "Государственная налоговая служба",
            "endpoint": "http://127.0.0.1:9/agency",
            "receipt_certificate": agency.pem().decode(),
        },
    )
    assert done.status_code == 200, done.json
    for office, name in (("003", "УГНС по Ленинскому району"), ("004", "УГНС по Октябрьскому")):
        added = api.post(f"/api/v1/agencies/{code}/offices", {"code": office, "name": name})
        assert added.status_code == 200, added.json


def file(
    api: CaApi,
    document: bytes,
    *,
    who: str = "portal",
    key: str | None = None,
    **over: Any,
) -> Any:
    body = {
        "inn": INN,
        "kind": "STI-091",
        "period": "2026-10",
        "agency": "tax",
        "office": "003",
        "file_name": "nds-2026-10.xml",
        "document": base64.b64encode(document).decode(),
    } | over
    headers = {"Idempotency-Key": key} if key else None
    return api.post("/api/v1/reports", body, who=who, headers=headers)


def sign_cms(api: CaApi, report_id: str, cms: bytes, who: str = "portal", **over: Any) -> Any:
    body = {"cms": base64.b64encode(cms).decode()} | over
    return api.post(f"/api/v1/reports/{report_id}/signatures", body, who=who)


def osmp_top_up(api: CaApi, amount: int, inn: str = INN) -> None:
    """A terminal pays ``amount`` tyiyn to the subscriber's balance (OSMP ``pay``, SOChI)."""
    local = api.clock.now + timedelta(hours=6)  # txn_date is Bishkek time
    answer = api.client.get(
        "/payments/osmp/quickpay",
        query_string={
            "command": "pay",
            "txn_id": str(next(_NUMBERS) + 7_000_000),
            "account": inn,
            "sum": f"{amount // 100}.{amount % 100:02d}",
            "txn_date": local.strftime("%Y%m%d%H%M%S"),
        },
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert b"<result>0</result>" in answer.data, answer.data


def balance(api: CaApi, inn: str = INN) -> int:
    with api.runtime.transaction() as session:
        return billing.balance(session, inn).available


def counts(api: CaApi) -> dict[str, int]:
    """What a refusal must leave unchanged: signatures, events, ledger rows, journal rows."""
    from billing.models import LedgerTransaction

    with api.runtime.transaction() as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(model)) or 0)
            for name, model in (
                ("signatures", filing.ReportSignature),
                ("events", filing.ReportEvent),
                ("ledger", LedgerTransaction),
                ("journal", AuditEntry),
            )
        }


@dataclass
class Company:
    api: CaApi
    head: int  # holder ids
    accountant: int
    head_serial: str  # a cloud certificate
    head_uri: str  # its authenticator's otpauth:// URI
    accountant_signer: Signer  # a RuToken certificate

    def authorize(self, document: bytes, role: str = "head", inn: str = INN) -> str:
        """The head authorises one signature of ``document``'s SHA-256 (PIN + a fresh OTP)."""
        from tests.integration.signing_api.test_csc import totp

        self.api.clock.now += timedelta(seconds=30)
        digest = base64.b64encode(hashlib.sha256(document).digest()).decode()
        done = self.api.post(
            "/csc/v1/credentials/authorize",
            {
                "credentialID": self.head_serial,
                "numSignatures": 1,
                "hash": [digest],
                "PIN": PIN,
                "OTP": totp(self.head_uri, self.api.clock.now),
                "clientData": json.dumps({"inn": inn, "role": role, "userIP": "203.0.113.7"}),
            },
            who="portal",
        )
        assert done.status_code == 200, done.json
        return str(done.json["SAD"])

    def sign_cloud(self, report: dict[str, Any], document: bytes, **over: Any) -> Any:
        body = {"credentialID": self.head_serial, "SAD": self.authorize(document)} | over
        return self.api.post(f"/api/v1/reports/{report['id']}/signatures", body, who="portal")


@pytest.fixture
def agency() -> AgencyKey:
    return AgencyKey.make()


@pytest.fixture
def company(ca_api: CaApi, agency: AgencyKey) -> Company:
    """A company (in the portal's scope) with a cloud head and a RuToken accountant, money on
    its balance, and the tax service registered with two offices.

    The clock starts at the real time: RuToken signatures are made by openssl, whose
    signing-time is the real one, and a signature claimed after the intake is refused.
    """
    from ca.dispatch import ensure_dispatch
    from tests.ca_fixtures import CA_URL

    ca_api.clock.now = datetime.now(UTC).replace(microsecond=0)
    with ca_api.runtime.transaction() as session:
        ensure_dispatch(
            session, ca_api.runtime.ca_token, public_url=CA_URL, now=ca_api.clock.now, actor="test"
        )
    head = register(ca_api)
    accountant = register(
        ca_api, full_name="Бухгалтерова Анна", email="acc@test.kg", position="Главный бухгалтер"
    )
    head_serial = cloud_certificate(ca_api, head, "head")
    uri = ca_api.activate(head_serial, PIN)
    ca_api.pay(INN, 10_000_00)
    signer = rutoken_certificate(ca_api, accountant, "accountant")
    register_agency(ca_api, agency)
    return Company(ca_api, head, accountant, head_serial, uri, signer)

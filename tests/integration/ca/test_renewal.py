"""Renewal (seed 003, §18.2) through the API, with the request signed by the key in the HSM.

The holder's current cloud key signs the served request text as detached CMS (what the signing
API will do for cloud holders); the new certificate starts when the old one ends and passes
``openssl verify`` at that time; tampering, changed requisites, an empty balance and the
auto-renewal job behave as the contract says.
"""

from __future__ import annotations

import base64
import io
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

import billing
from ca.cms import sign_detached
from ca.models import Certificate, RenewalRequest
from ca.pricing import certificate_price
from ca.registry import update_holder
from ca.renewal import Issuers, renew_due
from db import AuditEntry
from policies.cert_profiles import CertRole, Storage
from tests.ca_fixtures import CA_NOW, CA_URL, SUBSCRIBER, CaApi, register
from tests.integration.ca.test_issuance import _paid_first, _problem

pytestmark = [pytest.mark.hsm, pytest.mark.db]

INN = SUBSCRIBER["inn"]
PRICE = certificate_price(CertRole.HEAD, Storage.CLOUD, CA_NOW)[1]
EXPIRY = datetime(2027, 11, 23, 6, 0, tzinfo=UTC)


def _issue(api: CaApi, holder: int) -> dict[str, Any]:
    done = api.post(
        "/api/v1/certificates", {"holder_id": holder, "role": "head", "storage": "cloud"}
    )
    assert done.status_code == 201, done.json
    return dict(done.json)


def _signed(api: CaApi, serial: str, holder: int) -> dict[str, Any]:
    """The served request text, signed by the certificate's key in tamga-cloud."""
    served = api.get(f"/api/v1/certificates/{serial}/renewal-request", who="portal", holder=holder)
    assert served.status_code == 200, served.json
    assert served.content_type == "text/plain; charset=utf-8"
    text = served.data.decode("utf-8")
    with api.runtime.transaction() as session:
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        label, der = row.key_label, row.der
    assert label is not None and der is not None
    cert = x509.load_der_x509_certificate(der)
    key = api.runtime.cloud_token.private_key(label)
    signature = sign_detached(text.encode(), cert, key, signing_time=api.clock.now)
    return {"serial": serial, "document": text, "signature": base64.b64encode(signature).decode()}


def _renewals(api: CaApi) -> int:
    with api.runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(RenewalRequest)) or 0)


def test_signed_renewal_is_accepted_and_starts_at_expiry(ca_api: CaApi, tmp_path: Path) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    old = _issue(ca_api, holder)
    serial = old["serial"]
    path = f"/api/v1/certificates/{serial}/renewal-request"
    _problem(ca_api.get(path, who="portal", holder=holder), 409, "conflict")  # opens at 30 days

    ca_api.clock.now = datetime(2027, 11, 1, 6, 0, tzinfo=UTC)  # 22 days before expiry
    listed = ca_api.get("/api/v1/certificates", who="portal", expiring_within_days=30).json
    assert [(c["serial"], c["days_left"]) for c in listed["certificates"]] == [(serial, 22)]
    body = _signed(ca_api, serial, holder)
    text = body["document"]
    assert text.startswith("ЗАЯВКА НА ПРОДЛЕНИЕ ЭЦП") and "до 23.11.2028" in text
    assert "ИНН компании: 01234567890123" in text

    # An empty balance: refused with the amount, nothing recorded but the audit entry.
    short = _problem(ca_api.post("/api/v1/renewals", body, who="portal", holder=holder), 402,
                     "payment-required")  # fmt: skip
    assert short["amount_due"] == PRICE and _renewals(ca_api) == 0
    with ca_api.runtime.transaction() as session:
        refused = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "ca.renewal.refused")
        )
        assert refused == 1

    # Tampering with the text or the signature; somebody else's holder; another portal.
    forged = dict(body, document=text.replace("Руководитель", "Бухгалтер"))
    bad = _problem(ca_api.post("/api/v1/renewals", forged, who="portal", holder=holder), 422,
                   "validation-failed")  # fmt: skip
    assert {e["field"] for e in bad["errors"]} == {"document"}
    raw = bytearray(base64.b64decode(body["signature"]))
    raw[-5] ^= 0x01
    tampered = dict(body, signature=base64.b64encode(bytes(raw)).decode())
    bad = _problem(ca_api.post("/api/v1/renewals", tampered, who="portal", holder=holder), 422,
                   "validation-failed")  # fmt: skip
    assert {e["field"] for e in bad["errors"]} == {"signature"}
    other = register(ca_api, full_name="Другой Человек", email="other@test.kg")
    _problem(ca_api.post("/api/v1/renewals", body, who="portal", holder=other), 403, "forbidden")
    _problem(ca_api.post("/api/v1/renewals", body, who="portal_b"), 404, "not-found")
    assert _renewals(ca_api) == 0

    ca_api.pay(INN, PRICE)
    done = ca_api.post("/api/v1/renewals", body, who="portal", holder=holder)
    assert done.status_code == 201, done.json
    renewal = done.json
    assert (renewal["status"], renewal["late"], renewal["changed"]) == ("issued", False, [])
    new = ca_api.get(f"/api/v1/certificates/{renewal['new_serial']}").json
    assert (
        new["not_before"] == "2027-11-23T06:00:00Z" and new["not_after"] == "2028-11-23T06:00:00Z"
    )
    assert new["state"] == "not_yet_valid" and new["renewal_of"] == serial
    new_cert = x509.load_pem_x509_certificate(new["certificate_pem"].encode())
    old_cert = x509.load_pem_x509_certificate(old["certificate_pem"].encode())
    assert new_cert.public_key() != old_cert.public_key()  # a cloud renewal gets a new key
    _openssl_verify_at(tmp_path, new, EXPIRY + timedelta(hours=1))
    with ca_api.runtime.transaction() as session:
        assert billing.balance(session, INN).posted == 0  # charged once, at the current price
    again = _problem(ca_api.post("/api/v1/renewals", body, who="portal", holder=holder), 409,
                     "conflict")  # fmt: skip
    assert "already has a renewal" in again["detail"]


def _openssl_verify_at(tmp_path: Path, view: dict[str, Any], at: datetime) -> None:
    issuing, root = x509.load_pem_x509_certificates(view["chain_pem"].encode())
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "issuing.pem").write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_text(view["certificate_pem"])
    result = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-attime", str(int(at.timestamp())),
         "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem"),
         str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr


def test_changed_requisite_goes_to_review_and_late_is_flagged(ca_api: CaApi) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    serial = _issue(ca_api, holder)["serial"]
    with ca_api.runtime.transaction() as session:
        update_holder(session, holder, {"position": "Директор"}, now=CA_NOW, actor="test")
    ca_api.clock.now = datetime(2027, 11, 19, 6, 0, tzinfo=UTC)  # Friday: 1 working day left
    body = _signed(ca_api, serial, holder)
    assert "Должность: Директор" in body["document"]
    done = ca_api.post("/api/v1/renewals", body, who="portal", holder=holder)
    assert done.status_code == 201, done.json
    renewal = done.json
    assert (renewal["status"], renewal["changed"], renewal["late"]) == (
        "review",
        ["position"],
        True,
    )
    rid = renewal["id"]
    _problem(ca_api.post(f"/api/v1/renewals/{rid}/approve", {}, who="portal"), 403, "forbidden")
    bare = ca_api.client.post(f"/api/v1/renewals/{rid}/approve", headers=ca_api.headers("officer"))
    assert "supporting document" in _problem(bare, 409, "conflict")["detail"]  # no body: no note
    _problem(ca_api.post(f"/api/v1/renewals/{rid}/approve", {"note": 5}), 422, "validation-failed")
    _problem(ca_api.post(f"/api/v1/renewals/{rid}/reject", {"note": " "}), 422, "validation-failed")
    _problem(ca_api.get("/api/v1/renewals", status="lost"), 422, "validation-failed")
    assert (
        "supporting document"
        in _problem(ca_api.post(f"/api/v1/renewals/{rid}/approve", {}), 409, "conflict")["detail"]
    )
    upload = ca_api.client.post(
        f"/api/v1/renewals/{rid}/documents",
        data={"file": (io.BytesIO(b"%PDF-1.4 order"), "приказ.pdf", "application/pdf")},
        headers=ca_api.headers("portal", holder),
        content_type="multipart/form-data",
    )
    assert upload.status_code == 201, upload.json
    short = _problem(ca_api.post(f"/api/v1/renewals/{rid}/approve", {}), 402, "payment-required")
    assert short["amount_due"] == PRICE
    assert ca_api.get(f"/api/v1/renewals/{rid}").json["status"] == "review"
    ca_api.pay(INN, PRICE)
    approved = ca_api.post(f"/api/v1/renewals/{rid}/approve", {"note": "приказ №5 проверен"})
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "issued" and approved.json["documents"][0]["size"] == 14
    new = ca_api.get(f"/api/v1/certificates/{approved.json['new_serial']}").json
    assert "title=Директор" in new["subject"]
    listed = ca_api.get("/api/v1/renewals", who="portal", status="issued").json
    assert listed["count"] == 1
    assert ca_api.get("/api/v1/renewals", who="portal_b").json["count"] == 0


def test_renew_due_and_cancellation(ca_api: CaApi) -> None:
    holders = [
        register(ca_api, full_name=f"Держатель {n}", email=f"h{i}@test.kg")
        for i, n in enumerate("АБВГ")
    ]
    _paid_first(ca_api, holders[0])
    serials = [_issue(ca_api, holders[0])["serial"]]
    ca_api.pay(INN, 3 * PRICE)
    serials += [_issue(ca_api, h)["serial"] for h in holders[1:]]
    # One cancels in time; one changes its e-mail; the balance covers one renewal only.
    ca_api.clock.now = datetime(2027, 10, 20, 6, 0, tzinfo=UTC)
    cancel = ca_api.post(f"/api/v1/certificates/{serials[1]}/auto-renewal", {"enabled": False},
                         who="portal", holder=holders[1])  # fmt: skip
    assert cancel.status_code == 200 and cancel.json["auto_renew"] is False
    refused = ca_api.post(f"/api/v1/certificates/{serials[1]}/auto-renewal", {"enabled": "no"})
    assert {e["field"] for e in _problem(refused, 422, "validation-failed")["errors"]} == {
        "enabled"
    }
    with ca_api.runtime.transaction() as session:
        update_holder(session, holders[2], {"email": "new@test.kg"}, now=CA_NOW, actor="test",
                      document="заявление №3")  # fmt: skip
    ca_api.pay(INN, PRICE)
    ca_api.clock.now = datetime(2027, 10, 25, 6, 0, tzinfo=UTC)  # cancellation deadline passed
    late_cancel = ca_api.post(f"/api/v1/certificates/{serials[0]}/auto-renewal",
                              {"enabled": False})  # fmt: skip
    assert "until 2027-10-24" in _problem(late_cancel, 409, "conflict")["detail"]
    rt = ca_api.runtime
    issuers = Issuers(rt.ca_token, rt.cloud_token, CA_URL)
    outcomes = renew_due(rt.transaction, issuers, now=ca_api.clock.now, actor="job")
    by_serial = {o.serial: o for o in outcomes}
    assert [by_serial[s].outcome for s in serials] == ["renewed", "skipped", "skipped", "skipped"]
    assert "cancelled" in by_serial[serials[1]].reason
    assert "email" in by_serial[serials[2]].reason
    assert "balance" in by_serial[serials[3]].reason
    again = renew_due(rt.transaction, issuers, now=ca_api.clock.now, actor="job")
    assert serials[0] not in {o.serial for o in again}  # renewed once
    with rt.transaction() as session:
        automatic = session.scalars(select(RenewalRequest)).one()
        assert automatic.automatic and automatic.status == "issued"


def test_rutoken_renewal_at_the_office_signed_by_openssl(ca_api: CaApi, tmp_path: Path) -> None:
    """The request is signed by ``openssl cms`` with the token's key; a new CSR comes with it."""
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    _issue(ca_api, holder)  # the first (cloud) certificate used the payment account
    ca_api.pay(INN, 10 * PRICE)
    old_key = ec.generate_private_key(ec.SECP256R1())
    made = ca_api.post(
        "/api/v1/certificates",
        {"holder_id": holder, "role": "head", "storage": "rutoken", "csr_pem": _csr(old_key)},
    )
    assert made.status_code == 201, made.json
    serial = made.json["serial"]
    ca_api.clock.now = datetime(2027, 11, 2, 6, 0, tzinfo=UTC)
    text = ca_api.get(f"/api/v1/certificates/{serial}/renewal-request").data
    (tmp_path / "request.txt").write_bytes(text)
    (tmp_path / "signer.pem").write_text(made.json["certificate_pem"])
    (tmp_path / "key.pem").write_bytes(
        old_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signed = subprocess.run(
        [
            "openssl",
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-outform",
            "DER",
            "-in",
            str(tmp_path / "request.txt"),
            "-signer",
            str(tmp_path / "signer.pem"),
            "-inkey",
            str(tmp_path / "key.pem"),
        ],
        capture_output=True,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    new_key = ec.generate_private_key(ec.SECP384R1())
    body = {
        "serial": serial,
        "document": text.decode(),
        "signature": base64.b64encode(signed.stdout).decode(),
        "csr_pem": _csr(new_key),
    }
    # A RuToken renewal is made at the office: not through the portal.
    _problem(ca_api.post("/api/v1/renewals", body, who="portal", holder=holder), 403, "forbidden")
    no_csr = {k: v for k, v in body.items() if k != "csr_pem"}
    _problem(ca_api.post("/api/v1/renewals", no_csr), 422, "validation-failed")
    done = ca_api.post("/api/v1/renewals", body)
    assert done.status_code == 201, done.json
    new = ca_api.get(f"/api/v1/certificates/{done.json['new_serial']}").json
    cert = x509.load_pem_x509_certificate(new["certificate_pem"].encode())
    assert cert.public_key() == new_key.public_key() and new["storage"] == "rutoken"
    assert new["not_before"] == made.json["not_after"]


def _csr(key: Any) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "token")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_a_signed_cloud_renewal_request_pays_the_months_storage_fee_once(ca_api: CaApi) -> None:
    """FAQ: the cloud-storage fee is debited at the month's first report or signed renewal
    request; what the balance cannot cover after the renewal's price waits for the first
    report (the request is not refused for it)."""
    from policies.tariffs import TARIFFS

    storage = TARIFFS.price("storage:monthly", EXPIRY.date()).price
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    serial = _issue(ca_api, holder)["serial"]
    second = _issue_paid(ca_api, holder)
    ca_api.clock.now = datetime(2027, 11, 1, 6, 0, tzinfo=UTC)
    key = f"storage:{INN}:2027-11"
    ca_api.pay(INN, PRICE)  # the renewal's price only: no storage fee yet
    body = _signed(ca_api, serial, holder)
    done = ca_api.post("/api/v1/renewals", body, who="portal", holder=holder)
    assert done.status_code == 201, done.json
    with ca_api.runtime.transaction() as session:
        assert billing.posting_for(session, key) is None
    ca_api.pay(INN, PRICE + storage)
    body = _signed(ca_api, second, holder)
    done = ca_api.post("/api/v1/renewals", body, who="portal", holder=holder)
    assert done.status_code == 201, done.json
    with ca_api.runtime.transaction() as session:
        fee = billing.posting_for(session, key)
        assert fee is not None and fee.amount == storage
        assert billing.balance(session, INN).available == 0


def _issue_paid(api: CaApi, holder: int) -> str:
    api.pay(INN, PRICE)
    return str(_issue(api, holder)["serial"])

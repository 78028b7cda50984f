"""Issuing subscriber certificates through ``POST /api/v1/certificates`` (issue #4).

Real database (SQLite and PostgreSQL), real SoftHSM tokens, real billing. Every certificate
issued here is checked by ``openssl verify`` against root + issuing and by pkilint's console
script; the refusals check that nothing was signed, held or left in the HSM.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

import billing
from ca.errors import LintFailed
from ca.issuance import issue_certificate
from ca.models import Certificate, CertificateEvent
from ca.pricing import certificate_price
from ca.profiles import Finding, Severity
from ca.requests import IssueRequest
from db import AuditEntry
from hsm import HSMError, HSMToken
from policies.cert_profiles import CertRole, Storage
from tests.ca_fixtures import CA_NOW, CA_URL, SUBSCRIBER, CaApi, register
from tests.pki_tools import openssl_verify, pkilint

pytestmark = [pytest.mark.hsm, pytest.mark.db]

INN = SUBSCRIBER["inn"]
HEAD_CLOUD = certificate_price(CertRole.HEAD, Storage.CLOUD, CA_NOW)[1]
RUTOKEN = certificate_price(CertRole.ACCOUNTANT, Storage.RUTOKEN, CA_NOW)[1]


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert body["type"].endswith(slug), body
    return body


def _fields(problem: dict[str, Any]) -> set[str]:
    return {error["field"] for error in problem.get("errors", [])}


def _verify(tmp_path: Path, body: dict[str, Any]) -> x509.Certificate:
    """openssl verify (root trusted, issuing untrusted) and pkilint; the parsed certificate."""
    chain = x509.load_pem_x509_certificates(body["chain_pem"].encode())
    issuing, root = chain
    leaf = tmp_path / f"{body['serial']}.pem"
    leaf.write_text(body["certificate_pem"])
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "issuing.pem").write_bytes(issuing.public_bytes(serialization.Encoding.PEM))
    assert "OK" in openssl_verify(
        tmp_path / "root.pem", leaf, "-untrusted", str(tmp_path / "issuing.pem")
    )
    pkilint(leaf)
    return x509.load_pem_x509_certificate(body["certificate_pem"].encode())


def _paid_first(api: CaApi, holder: int, role: str = "head") -> str:
    """Pay the first certificate's payment account after the 402 that names it."""
    unpaid = _problem(
        api.post("/api/v1/certificates", {"holder_id": holder, "role": role, "storage": "cloud"}),
        402,
        "payment-required",
    )
    api.pay(unpaid["payment_account"], unpaid["amount_due"])
    return str(unpaid["payment_account"])


def _count(api: CaApi, model: Any, *where: Any) -> int:
    with api.runtime.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _csr(key: Any, cn: str = "Someone Else", algorithm: Any = None) -> str:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .sign(key, algorithm or hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_first_certificate_is_paid_through_its_payment_account(
    ca_api: CaApi, tmp_path: Path
) -> None:
    holder = register(ca_api)
    keys = _cloud_keys(ca_api)
    body = {"holder_id": holder, "role": "head", "storage": "cloud"}
    unpaid = _problem(ca_api.post("/api/v1/certificates", body), 402, "payment-required")
    account = unpaid["payment_account"]
    assert len(account) == 16 and account.isdigit() and unpaid["amount_due"] == HEAD_CLOUD
    again = _problem(ca_api.post("/api/v1/certificates", body), 402, "payment-required")
    assert again["payment_account"] == account  # one account for the purpose
    assert _count(ca_api, Certificate) == 0
    assert _cloud_keys(ca_api) == keys  # refused before any key was generated

    ca_api.pay(account, HEAD_CLOUD)
    done = ca_api.post("/api/v1/certificates", body)
    assert done.status_code == 201, done.json
    issued = done.json
    assert issued["serial"] == issued["serial"].lower() and int(issued["serial"], 16) > 2**64
    assert (issued["status"], issued["state"], issued["role"], issued["storage"]) == (
        "active",
        "valid",
        "head",
        "cloud",
    )
    assert done.headers["Location"] == f"/api/v1/certificates/{issued['serial']}"
    cert = _verify(tmp_path, issued)
    assert cert.not_valid_before_utc == CA_NOW
    assert cert.not_valid_after_utc == datetime(2027, 11, 23, 6, 0, tzinfo=UTC)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "Проверкина Проверка Проверковна"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)

    with ca_api.runtime.transaction() as session:
        row = session.scalars(select(Certificate)).one()
        assert row.payment_key == f"pa:{account}" and row.key_label is not None
        label = row.key_label
        balance = billing.balance(session, INN)
        assert (balance.posted, balance.held) == (0, 0)  # the payment was spent on it
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object == f"certificate:{row.serial}")
                .order_by(AuditEntry.id)
            )
        )
        assert actions == [
            "ca.certificate.signing",
            "ca.certificate.issued",
            "csc.activation_code.sent",  # a cloud key: the holder's code is mailed
        ]
    # The key is in tamga-cloud, and its public half is the certificate's.
    cloud: HSMToken = ca_api.runtime.cloud_token
    assert cloud.public_key(label) == cert.public_key()

    shown = ca_api.get(f"/api/v1/certificates/{issued['serial']}", who="portal")
    assert shown.status_code == 200 and shown.json["certificate_pem"] == issued["certificate_pem"]
    _problem(
        ca_api.get(f"/api/v1/certificates/{issued['serial']}", who="portal_b"), 404, "not-found"
    )


def test_later_certificates_are_paid_from_the_balance(ca_api: CaApi, tmp_path: Path) -> None:
    head = register(ca_api)
    _paid_first(ca_api, head)
    assert (
        ca_api.post(
            "/api/v1/certificates", {"holder_id": head, "role": "head", "storage": "cloud"}
        ).status_code
        == 201
    )
    accountant = register(ca_api, full_name="Счетова Анна", position="Главный бухгалтер",
                          email="acc@test.kg", passport_series="ID7654321")  # fmt: skip
    body = {"holder_id": accountant, "role": "accountant", "storage": "cloud",
            "key_spec": "rsa-2048"}  # fmt: skip
    ca_api.pay(INN, 500_00)
    short = _problem(
        ca_api.post("/api/v1/certificates", body, who="portal"), 402, "payment-required"
    )
    price = certificate_price(CertRole.ACCOUNTANT, Storage.CLOUD, CA_NOW)[1]
    assert short["payment_account"] is None and short["amount_due"] == price - 500_00
    assert _count(ca_api, Certificate) == 1  # nothing written for the refused one
    ca_api.pay(INN, price)
    headers = {"Idempotency-Key": "acc-1"}
    done = ca_api.post("/api/v1/certificates", body, who="portal", headers=headers)
    assert done.status_code == 201, done.json
    cert = _verify(tmp_path, done.json)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    replay = ca_api.post("/api/v1/certificates", body, who="portal", headers=headers)
    assert replay.status_code == 200 and replay.json["serial"] == done.json["serial"]
    with ca_api.runtime.transaction() as session:
        assert billing.balance(session, INN).posted == 500_00  # charged exactly once
    listed = ca_api.get("/api/v1/certificates", who="portal").json
    assert listed["count"] == 2
    assert ca_api.get("/api/v1/certificates", who="portal_b").json["count"] == 0


def test_rutoken_csr_checks(ca_api: CaApi, tmp_path: Path) -> None:
    holder = register(ca_api, position="Главный бухгалтер")
    other = register(ca_api, full_name="Другой Человек", email="other@test.kg")
    _paid_first(ca_api, holder, role="accountant")  # the first is a cloud certificate
    rutoken_first = ca_api.post(
        "/api/v1/certificates",
        {
            "holder_id": holder,
            "role": "accountant",
            "storage": "rutoken",
            "csr_pem": _csr(ec.generate_private_key(ec.SECP256R1())),
        },
    )
    assert "paid as cert:accountant" in _problem(rutoken_first, 409, "conflict")["detail"]
    _issue(ca_api, holder, role="accountant")
    ca_api.pay(INN, 10 * RUTOKEN)
    url = "/api/v1/certificates"

    def ask(csr: str, who: int = holder) -> Any:
        return ca_api.post(url, {"holder_id": who, "role": "accountant", "storage": "rutoken",
                                 "csr_pem": csr})  # fmt: skip

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key refused
    refused = _problem(ask(_csr(weak)), 422, "certificate-refused")
    assert _fields(refused) == {"csr_pem"}
    p521 = ec.generate_private_key(ec.SECP521R1())
    _problem(ask(_csr(p521, algorithm=hashes.SHA512())), 422, "certificate-refused")
    key = ec.generate_private_key(ec.SECP256R1())
    good = _csr(key)
    tampered = x509.load_pem_x509_csr(good.encode())
    der = bytearray(tampered.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature: no proof of possession any more
    no_pop = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    assert "proof of possession" in _problem(ask(no_pop), 422, "certificate-refused")["detail"]
    _problem(ask("not a csr"), 422, "certificate-refused")
    missing = ca_api.post(url, {"holder_id": holder, "role": "accountant", "storage": "rutoken"})
    assert _fields(_problem(missing, 422, "validation-failed")) == {"csr_pem"}
    assert _count(ca_api, Certificate) == 1

    done = ask(good)
    assert done.status_code == 201, done.json
    cert = _verify(tmp_path, done.json)
    assert cert.public_key() == key.public_key()
    # The subject comes from the registry, never from the CSR.
    assert "Someone Else" not in cert.subject.rfc4514_string()
    assert done.json["key_spec"] == "ec-p256" and done.json["storage"] == "rutoken"
    duplicate = _problem(ask(good, who=other), 422, "certificate-refused")
    assert "another holder" in duplicate["detail"]


def test_bad_requests_name_the_field(ca_api: CaApi) -> None:
    holder = register(ca_api)
    url = "/api/v1/certificates"
    cases = [
        ({"holder_id": "1", "role": "head", "storage": "cloud"}, "holder_id"),
        ({"holder_id": holder, "role": "boss", "storage": "cloud"}, "role"),
        ({"holder_id": holder, "role": "head", "storage": "usb"}, "storage"),
        (
            {"holder_id": holder, "role": "head", "storage": "cloud", "key_spec": "rsa-1024"},
            "key_spec",
        ),
        ({"holder_id": holder, "role": "head", "storage": "cloud", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        refused = _problem(ca_api.post(url, body), 422, "validation-failed")
        assert _fields(refused) == {field}, (body, refused)
    _problem(ca_api.post(url, {"holder_id": 999999, "role": "head", "storage": "cloud"}),
             404, "not-found")  # fmt: skip
    # Another portal cannot even learn that the holder exists.
    _problem(ca_api.post(url, {"holder_id": holder, "role": "head", "storage": "cloud"},
                         who="portal_b"), 404, "not-found")  # fmt: skip
    _problem(ca_api.post(url, {"holder_id": holder}, who=None), 401, "unauthorized")


def test_activation_is_by_the_mailed_code_once(ca_api: CaApi) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    done = ca_api.post(
        "/api/v1/certificates", {"holder_id": holder, "role": "head", "storage": "cloud"}
    )
    assert done.status_code == 201 and "otpauth_uri" not in done.json
    assert done.json["activation"]["sent_to"] == "h***@test.kg", done.json
    serial = done.json["serial"]
    code = ca_api.activation_code(serial)
    path = f"/api/v1/certificates/{serial}/activation"
    body = {"activation_code": code, "pin": "246813"}
    _problem(ca_api.post(path, {"pin": "246813"}, who="portal"), 422, "validation-failed")
    bad = ca_api.post(path, {"activation_code": "!", "pin": "12", "colour": "red"}, who="portal")
    assert _fields(_problem(bad, 422, "validation-failed")) == {"activation_code", "pin", "colour"}
    _problem(ca_api.post(path, body, who="portal_b"), 404, "not-found")  # out of its scope
    lowercase = {"activation_code": code.lower().replace("-", " "), "pin": "246813"}
    activated = ca_api.post(path, lowercase, who="portal")
    assert activated.status_code == 201, activated.json
    assert activated.json["otpauth_uri"].startswith("otpauth://totp/")
    again = _problem(ca_api.post(path, body, who="portal"), 422, "validation-failed")
    assert "no activation code is open" in again["detail"]
    unknown = "/api/v1/certificates/not-hex/activation"
    _problem(ca_api.post(unknown, body, who="portal"), 404, "not-found")


class _BrokenToken:
    """The CA token, except that signing fails (a dead HSM between reserve and sign)."""

    def __init__(self, token: HSMToken) -> None:
        self.token = token

    def private_key(self, label: str) -> Any:
        raise HSMError("the token went away")


def _issue(api: CaApi, holder: int, **more: Any) -> Any:
    rt = api.runtime
    request = IssueRequest.parse(
        holder_id=holder, role=more.pop("role", "head"), storage="cloud",
        key_spec=more.pop("key_spec", None),
    )  # fmt: skip
    return issue_certificate(
        rt.transaction, ca_token=more.pop("ca_token", rt.ca_token), cloud_token=rt.cloud_token,
        request=request, public_url=CA_URL, now=api.clock.now, actor="test", **more,
    )  # fmt: skip


def _cloud_keys(api: CaApi) -> set[str]:
    return {k for k in api.runtime.cloud_token.key_labels() if k.startswith("cloud-")}


def test_lint_failure_and_hsm_failure_leave_nothing_behind(ca_api: CaApi) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    _issue(ca_api, holder)  # the first certificate used the payment account
    ca_api.pay(INN, 5 * HEAD_CLOUD)
    keys = _cloud_keys(ca_api)
    finding = Finding(Severity.ERROR, "test.refused", "certificate", "test", "refused by test")
    with pytest.raises(LintFailed):
        _issue(ca_api, holder, lint=lambda _cert: [finding])
    assert _cloud_keys(ca_api) == keys  # the generated key was destroyed
    assert _count(ca_api, Certificate) == 1  # the reservation rolled back with the lint
    with ca_api.runtime.transaction() as session:
        assert billing.balance(session, INN).held == 0
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "ca.certificate.refused")
        ).all()
        assert refused and "LintFailed" in refused[-1].details

    with pytest.raises(HSMError):
        _issue(ca_api, holder, ca_token=_BrokenToken(ca_api.runtime.ca_token))
    assert _cloud_keys(ca_api) == keys
    with ca_api.runtime.transaction() as session:
        failed = session.scalars(select(Certificate).where(Certificate.status == "failed")).one()
        assert failed.der is None and failed.key_destroyed_at is not None
        assert billing.balance(session, INN).held == 0  # the hold was voided
        assert billing.balance(session, INN).posted == 5 * HEAD_CLOUD
        assert session.scalar(
            select(func.count()).select_from(CertificateEvent).where(
                CertificateEvent.certificate_id == failed.id
            )
        ) == 0  # fmt: skip
    listed = ca_api.get("/api/v1/certificates").json
    assert listed["count"] == 1  # failed reservations are not listed


def test_29_february_and_the_expiry_listing(ca_api: CaApi, tmp_path: Path) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    leap = datetime(2028, 2, 29, 4, 0, tzinfo=UTC)
    issued = _issue(ca_api, holder, not_before=leap).certificate
    assert issued.not_after == datetime(2029, 2, 28, 4, 0, tzinfo=UTC)
    ca_api.pay(INN, HEAD_CLOUD)
    soon = _issue(ca_api, holder).certificate  # 2026-11-23 → 2027-11-23
    ca_api.clock.now = datetime(2027, 11, 3, 6, 0, tzinfo=UTC)
    expiring = ca_api.get("/api/v1/certificates", expiring_within_days=30).json
    assert [c["serial"] for c in expiring["certificates"]] == [soon.serial]
    assert expiring["certificates"][0]["days_left"] == 20
    assert ca_api.get("/api/v1/certificates", expiring_within_days=19).json["count"] == 0
    _problem(ca_api.get("/api/v1/certificates", expiring_within_days="-1"), 422,
             "validation-failed")  # fmt: skip
    ca_api.clock.now = datetime(2027, 11, 23, 6, 0, tzinfo=UTC)
    assert ca_api.get(f"/api/v1/certificates/{soon.serial}").json["state"] == "expired"
    assert ca_api.get(f"/api/v1/certificates/{issued.serial}").json["state"] == "not_yet_valid"


def test_a_terminated_subscriber_gets_no_certificate(ca_api: CaApi) -> None:
    holder = register(ca_api)
    with ca_api.runtime.transaction() as session:
        billing.terminate(session, inn=INN, reason="test", now=CA_NOW, actor="test")
    refused = _problem(
        ca_api.post("/api/v1/certificates", {"holder_id": holder, "role": "head",
                                             "storage": "cloud"}), 409, "conflict")  # fmt: skip
    assert "terminated" in refused["detail"]


def test_the_certificate_view_says_what_the_certificate_says(ca_api: CaApi) -> None:
    """Issue #12 finding 13: after a PATCH of the holder, the JSON showed the registry's new name
    as the certificate's holder. ``holder`` is the certificate's; ``registry_holder`` is apart."""
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    done = ca_api.post(
        "/api/v1/certificates", {"holder_id": holder, "role": "head", "storage": "cloud"}
    )
    assert done.status_code == 201, done.json
    renamed = ca_api.client.patch(
        f"/api/v1/holders/{holder}", json={"full_name": "Проверкина Новая Фамилия"},
        headers=ca_api.headers("officer"),
    )  # fmt: skip
    assert renamed.status_code == 200, renamed.json
    serial = done.json["serial"]
    for who in ("officer", "portal"):
        shown = ca_api.get(f"/api/v1/certificates/{serial}", who=who).json
        cert = x509.load_pem_x509_certificate(shown["certificate_pem"].encode())
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        assert shown["holder"] == cn == "Проверкина Проверка Проверковна", shown
        assert shown["registry_holder"] == "Проверкина Новая Фамилия"
        listed = ca_api.get("/api/v1/certificates", who=who).json["certificates"]
        assert [(c["holder"], c["registry_holder"]) for c in listed] == [
            (cn, "Проверкина Новая Фамилия")
        ]

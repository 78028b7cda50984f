"""Subscriber certificate profiles end to end: built, pre-linted, signed in SoftHSM2, checked.

Every role × storage is issued for a P-256 and an RSA-2048 key (cloud keys generated in the
``tamga-cloud`` token, RuToken keys in software standing for the token), then checked by
``openssl verify`` against root + issuing CA, by pkilint's console script and by ``openssl x509
-text``. Runs on SQLite and PostgreSQL (the serial registry and the CA certificates live there).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca import ensure_hierarchy, reserve_serial
from ca.errors import CAError, CertificateMismatch, LintFailed
from ca.profiles import (
    CertificateRequest,
    Severity,
    SubjectIdentity,
    build_certificate,
    check_subscriber_key,
    lint_certificate,
    matches_linted,
    organization_identifier,
    prelint,
    signature_hash,
)
from hsm import HSMToken, PublicKey
from policies.ca_profiles import ISSUING_CA
from policies.cert_profiles import (
    EKU_DOCUMENT_SIGNING,
    CertRole,
    KeyRejected,
    Storage,
    policy_oid,
)
from policies.keys import KeySpec
from signing_api.runtime import Runtime
from tests.pki_tools import openssl_verify, pkilint, write_pem

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
URL = "http://ca.example.kg"
IDENTITY = SubjectIdentity(
    full_name="Асанов Бакыт Токтогулович",
    surname="Асанов",
    given_name="Бакыт Токтогулович",
    position="Главный бухгалтер",
    company="ОсОО «Ала-Тоо Трейд»",
    company_inn="01234567890123",
    locality="Бишкек",
    email="b.asanov@example.kg",
)


def _hierarchy(runtime: Runtime) -> tuple[x509.Certificate, x509.Certificate]:
    with runtime.transaction() as session:
        status = ensure_hierarchy(session, runtime.ca_token, public_url=URL, now=NOW)
    assert status.issuing is not None
    return status.root, status.issuing


def _serial(runtime: Runtime) -> int:
    with runtime.transaction() as session:
        return reserve_serial(session, issuer="issuing", purpose="test certificate", now=NOW)


def _sign_in_hsm(
    runtime: Runtime, request: CertificateRequest, issuing: x509.Certificate
) -> x509.Certificate:
    """Phase two as the issuance service will do it: one signature by the issuing key."""
    builder = build_certificate(request, issuing, URL)
    key = runtime.ca_token.private_key(ISSUING_CA.key_label)
    return builder.sign(key, signature_hash(issuing))


@pytest.fixture
def cloud_keys(cloud_token: HSMToken) -> Iterator[list[PublicKey]]:
    labels = [f"test-cert-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    keys = [
        cloud_token.generate_key(label, KeySpec.parse(spec)).public_key
        for label, spec in zip(labels, ("ec-p256", "rsa-2048"), strict=True)
    ]
    yield keys
    for label in labels:
        cloud_token.destroy_key(label)


def _rutoken_keys() -> list[PublicKey]:
    return [
        ec.generate_private_key(ec.SECP256R1()).public_key(),
        rsa.generate_private_key(65537, 2048).public_key(),
    ]


def _openssl_text(path: Path) -> str:
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-nameopt", "oneline,-esc_msb", "-in", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.mark.hsm
@pytest.mark.db
def test_every_role_and_storage_issues_a_clean_certificate(
    runtime: Runtime, cloud_keys: list[PublicKey], tmp_path: Path
) -> None:
    root, issuing = _hierarchy(runtime)
    chain = write_pem(tmp_path / "root.pem", root)
    untrusted = write_pem(tmp_path / "issuing.pem", issuing)
    keys = {Storage.CLOUD: cloud_keys, Storage.RUTOKEN: _rutoken_keys()}
    for storage, role in [(s, r) for s in Storage for r in CertRole]:
        for public_key in keys[storage]:
            request = CertificateRequest(
                IDENTITY, role, storage, public_key, NOW + timedelta(minutes=5), _serial(runtime)
            )
            linted = prelint(request, issuing, URL)
            assert linted.issuer == issuing.subject
            final = _sign_in_hsm(runtime, request, issuing)
            matches_linted(final, linted)
            final.verify_directly_issued_by(issuing)
            assert lint_certificate(final) == []
            path = write_pem(tmp_path / f"{role.value}-{storage.value}.pem", final)
            assert "OK" in openssl_verify(chain, path, "-untrusted", str(untrusted))
            pkilint(path)
            text = _openssl_text(path)
            assert f"Policy: {policy_oid(role)}" in text
            assert "CPS: http://ca.example.kg/cps" in text
            assert "title = Главный бухгалтер" in text
            assert "organizationIdentifier = NTRKG-01234567890123" in text
            assert "X509v3 Key Usage: critical" in text
            assert "Digital Signature, Non Repudiation" in text
            assert "E-mail Protection" in text
            assert EKU_DOCUMENT_SIGNING in text or "Document Signing" in text
            assert "email:b.asanov@example.kg" in text
            assert "CA:FALSE" in text
            assert (
                f"URI:{URL}/crl/issuing.crl" in text
                and f"CA Issuers - URI:{URL}/ca/issuing.crt" in text
            )


@pytest.mark.hsm
@pytest.mark.db
def test_certificate_content(runtime: Runtime) -> None:
    _, issuing = _hierarchy(runtime)
    key = _rutoken_keys()[0]
    request = CertificateRequest(
        IDENTITY, CertRole.COMPLEX_10, Storage.RUTOKEN, key, NOW, _serial(runtime)
    )
    cert = _sign_in_hsm(runtime, request, issuing)
    subject = {a.oid: a.value for a in cert.subject}
    assert subject == {
        NameOID.COUNTRY_NAME: "KG",
        NameOID.LOCALITY_NAME: "Бишкек",
        NameOID.ORGANIZATION_NAME: "ОсОО «Ала-Тоо Трейд»",
        NameOID.ORGANIZATION_IDENTIFIER: organization_identifier(IDENTITY.company_inn),
        NameOID.TITLE: "Главный бухгалтер",
        NameOID.SURNAME: "Асанов",
        NameOID.GIVEN_NAME: "Бакыт Токтогулович",
        NameOID.COMMON_NAME: "Асанов Бакыт Токтогулович",
    }
    assert cert.not_valid_before_utc == NOW
    assert cert.not_valid_after_utc == NOW.replace(year=2027)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).critical
    assert not ext.get_extension_for_class(x509.BasicConstraints).value.ca
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign and not ku.value.key_encipherment
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical
    assert [o.dotted_string for o in eku.value] == ["1.3.6.1.5.5.7.3.36", "1.3.6.1.5.5.7.3.4"]
    policies = ext.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [
        policy_oid(CertRole.COMPLEX_10)
    ]
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["b.asanov@example.kg"]
    issuer_ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key)


@pytest.mark.hsm
@pytest.mark.db
def test_a_lint_failure_refuses_before_the_hsm(runtime: Runtime) -> None:
    _, issuing = _hierarchy(runtime)
    hsm_signatures: list[int] = []

    def issue(request: CertificateRequest) -> x509.Certificate:
        linted = prelint(request, issuing, URL)  # phase one: raises before any HSM use
        hsm_signatures.append(request.serial)
        final = _sign_in_hsm(runtime, request, issuing)
        matches_linted(final, linted)
        return final

    key = _rutoken_keys()[0]
    long_title = SubjectIdentity(**{**IDENTITY.__dict__})
    object.__setattr__(long_title, "position", "Д" * 65)  # ub-title is 64
    bad_email = SubjectIdentity(**{**IDENTITY.__dict__})
    object.__setattr__(bad_email, "email", "not an address")
    cases = [(long_title, "itu.invalid_asn1_syntax"), (bad_email, "invalid_email_address_syntax")]
    for identity, code in cases:
        request = CertificateRequest(identity, CertRole.HEAD, Storage.RUTOKEN, key, NOW, 2**100)
        with pytest.raises(LintFailed, match=code) as caught:
            issue(request)
        assert caught.value.findings
        assert all(f.severity <= Severity.ERROR for f in caught.value.findings)
    assert hsm_signatures == []
    good = CertificateRequest(IDENTITY, CertRole.HEAD, Storage.RUTOKEN, key, NOW, _serial(runtime))
    issue(good)
    assert len(hsm_signatures) == 1


@pytest.mark.hsm
@pytest.mark.db
def test_matches_linted_refuses_a_different_body(runtime: Runtime) -> None:
    _, issuing = _hierarchy(runtime)
    key = _rutoken_keys()[0]
    request = CertificateRequest(IDENTITY, CertRole.HEAD, Storage.RUTOKEN, key, NOW, 2**100)
    linted = prelint(request, issuing, URL)
    other_serial = CertificateRequest(IDENTITY, CertRole.HEAD, Storage.RUTOKEN, key, NOW, 2**101)
    with pytest.raises(CertificateMismatch, match=r"differs in serial\)"):
        matches_linted(_sign_in_hsm(runtime, other_serial, issuing), linted)
    other_role = CertificateRequest(
        IDENTITY, CertRole.ACCOUNTANT, Storage.RUTOKEN, key, NOW, 2**100
    )
    with pytest.raises(CertificateMismatch, match=r"differs in extensions\)"):
        matches_linted(_sign_in_hsm(runtime, other_role, issuing), linted)
    later = CertificateRequest(
        IDENTITY, CertRole.HEAD, Storage.RUTOKEN, key, NOW + timedelta(seconds=1), 2**100
    )
    with pytest.raises(CertificateMismatch, match="validity"):
        matches_linted(_sign_in_hsm(runtime, later, issuing), linted)
    outliving = CertificateRequest(
        IDENTITY, CertRole.HEAD, Storage.RUTOKEN, key, NOW.replace(year=2036), 2**100
    )
    with pytest.raises(CAError, match="does not fit"):
        build_certificate(outliving, issuing, URL)


# ---- request validation: no database, no HSM ---------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("full_name", "А" * 65, "longer than 64"),
        ("position", "Д" * 65, "longer than 64"),
        ("company", "C" * 65, "longer than 64"),
        ("locality", "L" * 129, "longer than 128"),
        ("surname", "  ", "must not be empty"),
        ("given_name", "Бакыт\n", "control characters"),
        ("company_inn", "1234567890123", "14 digits"),
        ("company_inn", "0123456789012a", "14 digits"),
        ("email", "no-at-sign.kg", "plausible"),
        ("email", "a@localhost", "plausible"),
        ("email", "асанов@example.kg", "plausible"),
        ("email", "a..b@example.kg", "plausible"),
        ("email", "x" * 65 + "@example.kg", "plausible"),
    ],
)
def test_identity_validation(field: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SubjectIdentity(**{**IDENTITY.__dict__, field: value})


def test_request_validation() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    request = CertificateRequest(
        IDENTITY, CertRole.HEAD, Storage.CLOUD, p256, NOW.replace(microsecond=123456), 1
    )
    assert request.not_before == NOW and request.not_after == NOW.replace(year=2027)
    CertificateRequest(IDENTITY, CertRole.HEAD, Storage.RUTOKEN, p384, NOW, 2**159 - 1)
    with pytest.raises(KeyRejected, match="cloud keys must be one of"):
        CertificateRequest(IDENTITY, CertRole.HEAD, Storage.CLOUD, p384, NOW, 1)
    with pytest.raises(ValueError, match="serial"):
        CertificateRequest(IDENTITY, CertRole.HEAD, Storage.RUTOKEN, p256, NOW, 2**159)
    with pytest.raises(ValueError, match="serial"):
        CertificateRequest(IDENTITY, CertRole.HEAD, Storage.RUTOKEN, p256, NOW, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        CertificateRequest(
            IDENTITY, CertRole.HEAD, Storage.RUTOKEN, p256, NOW.replace(tzinfo=None), 1
        )


def test_subscriber_key_policy() -> None:
    for odd_size in (3072, 2304):
        key = rsa.generate_private_key(65537, odd_size).public_key()
        check_subscriber_key(key, Storage.RUTOKEN)
        with pytest.raises(KeyRejected, match="cloud keys"):
            check_subscriber_key(key, Storage.CLOUD)
    with pytest.raises(KeyRejected, match="1024"):
        check_subscriber_key(rsa.generate_private_key(65537, 1024).public_key(), Storage.RUTOKEN)  # noqa: S505
    with pytest.raises(KeyRejected, match="exponent 3"):
        check_subscriber_key(rsa.generate_private_key(3, 2048).public_key(), Storage.RUTOKEN)
    with pytest.raises(KeyRejected, match="secp521r1"):
        check_subscriber_key(ec.generate_private_key(ec.SECP521R1()).public_key(), Storage.RUTOKEN)
    with pytest.raises(KeyRejected, match="RSA or EC only"):
        check_subscriber_key(object(), Storage.RUTOKEN)

"""The CA hierarchy on real SoftHSM2 and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from ca import (
    CACertificate,
    CertificateMismatch,
    InvalidCertificate,
    active_certificate,
    ensure_hierarchy,
    import_issuer_certificate,
    issuer_csr,
)
from db import AuditEntry, verify_chain
from hsm import HSMToken
from policies.ca_profiles import ISSUING_CA, ROOT_CA
from signing_api.runtime import Runtime
from tests.pki_tools import openssl_verify, pkilint, write_pem

pytestmark = [pytest.mark.hsm, pytest.mark.db]

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
URL = "http://ca.example.kg"


def _hierarchy(
    runtime: Runtime, **kwargs: object
) -> tuple[x509.Certificate, x509.Certificate | None, tuple[str, ...]]:
    with runtime.transaction() as session:
        status = ensure_hierarchy(session, runtime.ca_token, public_url=URL, now=NOW, **kwargs)  # type: ignore[arg-type]
    return status.root, status.issuing, status.created


def test_hierarchy_is_created_once(runtime: Runtime) -> None:
    root, issuing, created = _hierarchy(runtime)
    assert "root certificate" in created and "issuing certificate" in created
    again_root, again_issuing, again_created = _hierarchy(runtime)
    assert again_created == ()
    assert (again_root, again_issuing) == (root, issuing)
    with runtime.transaction() as session:
        assert session.scalar(select(func.count()).select_from(CACertificate)) == 2
        assert active_certificate(session, "issuing") == issuing
        assert verify_chain(session) >= 2
        actions = session.scalars(select(AuditEntry.action)).all()
    assert actions.count("certificate.issued") == 2


def test_certificate_contents(runtime: Runtime) -> None:
    root, issuing, _ = _hierarchy(runtime)
    assert issuing is not None
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    assert root.subject == root.issuer
    assert root.not_valid_after_utc == NOW.replace(year=NOW.year + 20)
    assert issuing.not_valid_after_utc == NOW.replace(year=NOW.year + 10)
    assert issuing.issuer == root.subject
    for cert in (root, issuing):
        assert 64 < cert.serial_number.bit_length() <= 159
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert bc.critical and bc.value.ca
        assert (
            ku.critical
            and ku.value.key_cert_sign
            and ku.value.crl_sign
            and not ku.value.digital_signature
        )
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length is None
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = issuing.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest
    cdp = issuing.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == f"{URL}/crl/root.crl"  # type: ignore[index]
    aia = issuing.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia[0].access_location.value == f"{URL}/ca/root.crt"
    assert (
        issuing.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value
        == "NTRKG-00211200910051"
    )
    assert root.public_key() == runtime.ca_token.public_key(ROOT_CA.key_label)
    assert issuing.public_key() == runtime.ca_token.public_key(ISSUING_CA.key_label)


def test_openssl_and_pkilint_accept_both(runtime: Runtime, tmp_path: Path) -> None:
    root, issuing, _ = _hierarchy(runtime)
    assert issuing is not None
    root_pem = write_pem(tmp_path / "root.pem", root)
    issuing_pem = write_pem(tmp_path / "issuing.pem", issuing)
    assert "OK" in openssl_verify(root_pem, root_pem)
    assert "OK" in openssl_verify(root_pem, issuing_pem)
    pkilint(root_pem)
    pkilint(issuing_pem)


def _national_root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A software 'national root' standing for Infocom's, as in production."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Test National Root"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365 * 25))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return cert, key


def _sign_csr(
    csr: x509.CertificateSigningRequest,
    root: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    ca: bool = True,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(root.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)  # type: ignore[arg-type]
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA384())
    )


def test_production_path_csr_and_import(
    runtime: Runtime, ca_token: HSMToken, tmp_path: Path
) -> None:
    national, national_key = _national_root()
    root, issuing, _ = _hierarchy(runtime, external_root=national)
    assert root == national and issuing is None
    csr = issuer_csr(ca_token)
    assert csr.is_signature_valid
    assert csr.public_key() == ca_token.public_key(ISSUING_CA.key_label)
    signed = _sign_csr(csr, national, national_key)
    with runtime.transaction() as session:
        installed = import_issuer_certificate(
            session, ca_token, signed.public_bytes(Encoding.PEM), now=NOW, actor="test"
        )
    assert installed == signed
    _, issuing_after, created = _hierarchy(runtime, external_root=national)
    assert issuing_after == signed and created == ()
    openssl_verify(
        write_pem(tmp_path / "nat.pem", national), write_pem(tmp_path / "iss.pem", signed)
    )


def test_import_refuses_what_does_not_fit(runtime: Runtime, ca_token: HSMToken) -> None:
    national, national_key = _national_root()
    _hierarchy(runtime, external_root=national)
    csr = issuer_csr(ca_token)
    other_root, other_key = _national_root()
    stranger = ec.generate_private_key(ec.SECP384R1())
    wrong_key_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(csr.subject)
        .sign(stranger, hashes.SHA384())
    )
    cases = [
        (_sign_csr(csr, other_root, other_key), CertificateMismatch, "does not chain"),
        (
            _sign_csr(wrong_key_csr, national, national_key),
            CertificateMismatch,
            "not for the issuing key",
        ),
        (_sign_csr(csr, national, national_key, ca=False), InvalidCertificate, "not a CA"),
    ]
    with runtime.transaction() as session:
        for cert, error, message in cases:
            with pytest.raises(error, match=message):
                import_issuer_certificate(
                    session, ca_token, cert.public_bytes(Encoding.PEM), now=NOW, actor="test"
                )
        with pytest.raises(InvalidCertificate):
            import_issuer_certificate(
                session, ca_token, b"not a certificate", now=NOW, actor="test"
            )
        assert (
            session.scalar(
                select(func.count())
                .select_from(CACertificate)
                .where(CACertificate.name == "issuing")
            )
            == 0
        )


def test_a_different_configured_root_is_refused(runtime: Runtime) -> None:
    _hierarchy(runtime)
    national, _ = _national_root()
    with pytest.raises(Exception, match="differs from the root already installed"):
        _hierarchy(runtime, external_root=national)

"""The CA hierarchy: national root (or its development stand-in) → the operator's issuing CA.

``ensure_hierarchy`` is what ``tamga init`` calls; it is idempotent: keys already on the token
and certificates already in the database are reused, never duplicated. The production path
replaces the stand-in root by the real national root's certificate (``external_root``) and
installs the issuing certificate that root signs from our CSR (``import_issuer_certificate``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ca.errors import CAError, CertificateMismatch, HierarchyNotReady, InvalidCertificate
from ca.models import CACertificate
from ca.serials import reserve_serial
from db import audit
from hsm import HSMToken, PublicKey
from policies.ca_profiles import ISSUING_CA, ROOT_CA, CAProfile

__all__ = [
    "HierarchyStatus",
    "active_certificate",
    "ensure_hierarchy",
    "import_issuer_certificate",
    "issuer_csr",
    "load_certificate",
    "store_certificate",
]

_NAME_OIDS = {
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "CN": NameOID.COMMON_NAME,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
}
_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class HierarchyStatus:
    """What ``ensure_hierarchy`` found or made. ``issuing`` is None while awaiting import."""

    root: x509.Certificate
    issuing: x509.Certificate | None
    created: tuple[str, ...]  # e.g. ("root key", "root certificate", ...)


def _name(profile: CAProfile) -> x509.Name:
    return x509.Name([x509.NameAttribute(_NAME_OIDS[k], v) for k, v in profile.subject])


def _hash(profile: CAProfile) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    return _HASHES[profile.key_spec.default_scheme.hash_name]()


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February → 28 February
        return moment.replace(year=moment.year + years, day=28)


def load_certificate(data: bytes) -> x509.Certificate:
    """Read one certificate, PEM or DER."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as ex:
        raise InvalidCertificate(f"not an X.509 certificate: {ex}") from ex


def _row(session: Session, name: str) -> CACertificate | None:
    query = select(CACertificate).where(CACertificate.name == name, CACertificate.active.is_(True))
    return session.scalars(query.order_by(CACertificate.id.desc())).first()


def active_certificate(session: Session, name: str) -> x509.Certificate:
    """The certificate currently used as ``name`` ("root" or "issuing")."""
    row = _row(session, name)
    if row is None:
        raise HierarchyNotReady(f"no {name} CA certificate is installed (run `tamga init`)")
    return x509.load_der_x509_certificate(row.der)


def _store(
    session: Session, name: str, cert: x509.Certificate, key_label: str | None, now: datetime
) -> None:
    der = cert.public_bytes(serialization.Encoding.DER)
    session.execute(update(CACertificate).where(CACertificate.name == name).values(active=False))
    session.add(
        CACertificate(
            name=name,
            serial=format(cert.serial_number, "x"),
            subject=cert.subject.rfc4514_string(),
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_label=key_label,
            der=der,
            active=True,
            created_at=now,
        )
    )
    session.flush()


def store_certificate(
    session: Session, name: str, cert: x509.Certificate, *, key_label: str | None, now: datetime
) -> None:
    """Install ``cert`` as the active ``name`` certificate (e.g. "tsa"); older ones go inactive."""
    _store(session, name, cert, key_label, now)


def _ensure_key(
    session: Session, token: HSMToken, profile: CAProfile, actor: str, created: list[str]
) -> PublicKey:
    if token.has_key(profile.key_label):
        return token.public_key(profile.key_label)
    info = token.generate_key(profile.key_label, profile.key_spec)
    created.append(f"{profile.name} key")
    audit.append(
        session,
        actor=actor,
        action="key.generated",
        object=f"hsm:{token.label}/{profile.key_label}",
        details={"algorithm": profile.key_spec.name, "key_id": info.key_id.hex()},
    )
    return info.public_key


def _same_key(a: CertificatePublicKeyTypes, b: CertificatePublicKeyTypes) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*spki) == b.public_bytes(*spki)


def _ca_builder(
    session: Session,
    profile: CAProfile,
    public: PublicKey,
    issuer: x509.Name,
    now: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    serial = reserve_serial(session, issuer=profile.name, purpose=f"{profile.name} CA", now=now)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(profile))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=profile.path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _make_root(
    session: Session, token: HSMToken, public: PublicKey, now: datetime
) -> x509.Certificate:
    # A self-signed trust anchor carries no CRL distribution point or caIssuers: nothing above
    # it can revoke it or issue it (RFC 5280 §6.1.1: trust anchors are given, not validated).
    builder = _ca_builder(
        session, ROOT_CA, public, _name(ROOT_CA), now, _add_years(now, ROOT_CA.validity_years)
    )
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
    )
    return builder.sign(token.private_key(ROOT_CA.key_label), _hash(ROOT_CA))


def _make_issuing(
    session: Session,
    token: HSMToken,
    public: PublicKey,
    root: x509.Certificate,
    public_url: str,
    now: datetime,
) -> x509.Certificate:
    # An issuing CA must not outlive the root that vouches for it.
    not_after = min(_add_years(now, ISSUING_CA.validity_years), root.not_valid_after_utc)
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = _ca_builder(session, ISSUING_CA, public, root.subject, now, not_after)
    builder = (
        builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(f"{public_url}/crl/root.crl")],
                        None,
                        None,
                        None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{public_url}/ca/root.crt"),
                    ),
                    # The root's own key answers for the issuing CA at the same responder URL.
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(f"{public_url}/ocsp"),
                    ),
                ]
            ),
            critical=False,
        )
    )
    return builder.sign(token.private_key(ROOT_CA.key_label), _hash(ROOT_CA))


def _audit_certificate(
    session: Session, actor: str, name: str, cert: x509.Certificate, action: str
) -> None:
    audit.append(
        session,
        actor=actor,
        action=action,
        object=f"ca:{name}",
        details={
            "serial": format(cert.serial_number, "x"),
            "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        },
    )


def _ensure_root(
    session: Session,
    token: HSMToken,
    now: datetime,
    actor: str,
    external_root: x509.Certificate | None,
    created: list[str],
) -> x509.Certificate:
    row = _row(session, "root")
    if row is not None:
        root = x509.load_der_x509_certificate(row.der)
        if external_root is not None and root != external_root:
            raise CAError(
                "TAMGA_ROOT_CERT differs from the root already installed; "
                "a different national root needs a new installation"
            )
        if row.key_label is not None and not _same_key(
            token.public_key(row.key_label), root.public_key()
        ):
            raise CertificateMismatch(
                "the root key on the token does not match the installed root certificate"
            )
        return root
    if external_root is not None:
        _check_is_ca(external_root, "TAMGA_ROOT_CERT")
        try:
            external_root.verify_directly_issued_by(external_root)
        except (ValueError, TypeError, InvalidSignature) as ex:
            raise InvalidCertificate(
                "TAMGA_ROOT_CERT is not a self-signed root certificate"
            ) from ex
        _store(session, "root", external_root, None, now)
        _audit_certificate(session, actor, "root", external_root, "ca.root.configured")
        created.append("root certificate (configured)")
        return external_root
    public = _ensure_key(session, token, ROOT_CA, actor, created)
    root = _make_root(session, token, public, now)
    _store(session, "root", root, ROOT_CA.key_label, now)
    _audit_certificate(session, actor, "root", root, "certificate.issued")
    created.append("root certificate")
    return root


def ensure_hierarchy(
    session: Session,
    token: HSMToken,
    *,
    public_url: str,
    now: datetime,
    actor: str = "tamga-init",
    external_root: x509.Certificate | None = None,
) -> HierarchyStatus:
    """Make sure the root and issuing CA exist, creating only what is missing.

    With ``external_root`` (production) no root key is made: the issuing key is generated and
    its certificate must come from the national root through ``import_issuer_certificate``.
    """
    now = now.astimezone(UTC).replace(microsecond=0)
    created: list[str] = []
    root = _ensure_root(session, token, now, actor, external_root, created)
    issuing_public = _ensure_key(session, token, ISSUING_CA, actor, created)
    row = _row(session, "issuing")
    if row is not None:
        issuing = x509.load_der_x509_certificate(row.der)
        if not _same_key(issuing.public_key(), issuing_public):
            raise CertificateMismatch(
                "the issuing key on the token does not match the installed certificate"
            )
        return HierarchyStatus(root=root, issuing=issuing, created=tuple(created))
    root_row = _row(session, "root")
    if root_row is None or root_row.key_label is None:
        # The national root's key is not ours: the issuing certificate comes through import.
        return HierarchyStatus(root=root, issuing=None, created=tuple(created))
    issuing = _make_issuing(session, token, issuing_public, root, public_url.rstrip("/"), now)
    _store(session, "issuing", issuing, ISSUING_CA.key_label, now)
    _audit_certificate(session, actor, "issuing", issuing, "certificate.issued")
    created.append("issuing certificate")
    return HierarchyStatus(root=root, issuing=issuing, created=tuple(created))


def issuer_csr(token: HSMToken) -> x509.CertificateSigningRequest:
    """A CSR for the issuing key, for the national root to sign (production path)."""
    if not token.has_key(ISSUING_CA.key_label):
        raise HierarchyNotReady("the issuing key does not exist yet (run `tamga init`)")
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_name(ISSUING_CA))
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=ISSUING_CA.path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    )
    return builder.sign(token.private_key(ISSUING_CA.key_label), _hash(ISSUING_CA))


def _check_is_ca(cert: x509.Certificate, what: str) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as ex:
        raise InvalidCertificate(f"{what} lacks basicConstraints or keyUsage") from ex
    if not bc.ca or not ku.key_cert_sign:
        raise InvalidCertificate(f"{what} is not a CA certificate (cA and keyCertSign required)")
    try:  # RFC 5280 §4.2.1.2: CA certificates MUST carry a subject key identifier
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound as ex:
        raise InvalidCertificate(
            f"{what} lacks a subject key identifier (RFC 5280 §4.2.1.2)"
        ) from ex


def import_issuer_certificate(
    session: Session, token: HSMToken, data: bytes, *, now: datetime, actor: str
) -> x509.Certificate:
    """Install the issuing certificate returned by the root, after checking it fits.

    It must certify the issuing key on our token, be a CA certificate, be signed by the
    installed root and be valid now.
    """
    cert = load_certificate(data)
    root = active_certificate(session, "root")
    _check_is_ca(cert, "the certificate")
    if not _same_key(cert.public_key(), token.public_key(ISSUING_CA.key_label)):
        raise CertificateMismatch("the certificate is not for the issuing key on the token")
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as ex:
        raise CertificateMismatch(
            f"the certificate does not chain to the installed root {root.subject.rfc4514_string()}"
        ) from ex
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateMismatch("the certificate is not valid now")
    if cert.not_valid_after_utc - now < timedelta(days=1):
        raise CertificateMismatch("the certificate expires within a day")
    _store(session, "issuing", cert, ISSUING_CA.key_label, now)
    _audit_certificate(session, actor, "issuing", cert, "ca.issuing.imported")
    return cert

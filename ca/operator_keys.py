"""The operator's own end-entity keys in the CA token, certified by the issuing CA.

The TSA key (``ca.tsa``) and the dispatch-confirmation key (``ca.dispatch``) are made the same
way at ``tamga init``: the key generated on the token (sensitive, never extractable) if missing,
then its certificate issued two-phase — the body linted as signed by a throwaway key of the
issuing key's type, and only a clean body signed by the issuing key on the HSM, which must be
the linted one — stored and journalled. What differs between them is an
:class:`OperatorCertificate`: names, key, validity, subject, key usage and the extensions
proper to the purpose.

A short-lived certificate (the OCSP responder's: ``validity`` in days, ``renew_before``) is
renewed by the same call once less than ``renew_before`` of it is left: a new certificate for
the same key, journalled with the serial it replaces; the old one stays in ``ca_certificates``
(inactive), valid until its own notAfter.

Every certificate names the issuing CA's certificate (caIssuers) and its OCSP responder
(id-ad-ocsp, ``<public_url>/ocsp``) in authorityInformationAccess — except a certificate with
id-pkix-ocsp-nocheck, which no client asks about (RFC 6960 §4.2.2.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from sqlalchemy.orm import Session

from ca.errors import CAError, CertificateMismatch, HierarchyNotReady, LintFailed
from ca.hierarchy import active_certificate, store_certificate
from ca.profiles import lint_certificate, matches_linted, signature_hash
from ca.serials import reserve_serial
from db import audit
from hsm import HSMToken, PublicKey
from policies.ca_profiles import ISSUING_CA
from policies.keys import KeySpec

__all__ = ["OperatorCertificate", "ensure_operator_certificate", "same_key"]

NAME_OIDS = {
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "CN": NameOID.COMMON_NAME,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
}
_SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


@dataclass(frozen=True)
class OperatorCertificate:
    """What makes one operator key's certificate what it is."""

    name: str  # the certificate's name in ca_certificates ("tsa", "dispatch")
    title: str  # how messages name it ("TSA", "dispatch")
    purpose: str  # the journal's word for what the key is for
    key_label: str
    key_spec: KeySpec
    subject: tuple[tuple[str, str], ...]
    key_usage: x509.KeyUsage
    # Extensions proper to the purpose, after the key usage (extendedKeyUsage, policies).
    extensions: Sequence[tuple[x509.ExtensionType, bool]]
    validity_years: int = 0  # long-lived certificates (TSA, dispatch): whole years
    validity: timedelta | None = None  # short-lived ones (OCSP responder), instead of years
    renew_before: timedelta | None = None  # renewed when less than this is left; None: never

    def __post_init__(self) -> None:
        if (self.validity_years > 0) == (self.validity is not None):
            raise ValueError("give validity_years or validity, not both")
        if self.validity is not None and self.validity <= timedelta(0):
            raise ValueError("validity must be positive")
        if self.renew_before is not None and not (
            timedelta(0) < self.renew_before < (self.validity or timedelta(days=366))
        ):
            raise ValueError("renew_before must be positive and shorter than the validity")

    def not_after(self, now: datetime) -> datetime:
        """The end of a certificate issued ``now``, before the issuing CA's cap."""
        if self.validity is not None:
            return now + self.validity
        return _add_years(now, self.validity_years)

    @property
    def no_check(self) -> bool:
        """id-pkix-ocsp-nocheck among the extensions: a responder certificate."""
        return any(isinstance(ext, x509.OCSPNoCheck) for ext, _ in self.extensions)

    def due_for_renewal(self, cert: x509.Certificate, now: datetime) -> bool:
        """Less than ``renew_before`` of ``cert``'s validity is left (never for long-lived)."""
        if self.renew_before is None:
            return False
        return cert.not_valid_after_utc - now < self.renew_before


def same_key(cert: x509.Certificate, public: PublicKey) -> bool:
    return bool(cert.public_key().public_bytes(*_SPKI) == public.public_bytes(*_SPKI))


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February → 28 February
        return moment.replace(year=moment.year + years, day=28)


def _ensure_key(
    session: Session, token: HSMToken, spec: OperatorCertificate, actor: str, now: datetime
) -> PublicKey:
    if token.has_key(spec.key_label):
        return token.public_key(spec.key_label)
    info = token.generate_key(spec.key_label, spec.key_spec)  # sensitive, never extractable
    audit.append(
        session,
        actor=actor,
        action="key.generated",
        object=f"hsm:{token.label}/{spec.key_label}",
        details={
            "algorithm": spec.key_spec.name,
            "key_id": info.key_id.hex(),
            "purpose": spec.purpose,
        },
        now=now,
    )
    return info.public_key


def _builder(
    session: Session,
    spec: OperatorCertificate,
    issuing: x509.Certificate,
    public: PublicKey,
    public_url: str,
    now: datetime,
) -> x509.CertificateBuilder:
    # The certificate must not outlive the issuing CA that vouches for it.
    not_after = min(spec.not_after(now), issuing.not_valid_after_utc)
    serial = reserve_serial(
        session, issuer=ISSUING_CA.name, purpose=f"{spec.name} certificate", now=now
    )
    ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    uri = x509.UniformResourceIdentifier
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, uri(f"{public_url}/ca/issuing.crt")
        )
    ]
    if not spec.no_check:
        access.append(
            x509.AccessDescription(AuthorityInformationAccessOID.OCSP, uri(f"{public_url}/ocsp"))
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NAME_OIDS[k], v) for k, v in spec.subject]))
        .issuer_name(issuing.subject)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(spec.key_usage, critical=True)
    )
    for extension, critical in spec.extensions:
        builder = builder.add_extension(extension, critical=critical)
    return (
        builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([uri(f"{public_url}/crl/issuing.crl")], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(x509.AuthorityInformationAccess(access), critical=False)
    )


def _throwaway_key(issuing: x509.Certificate) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = issuing.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(key.curve)
    if isinstance(key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=key.key_size)
    raise CAError(f"unsupported issuing key type {type(key).__name__}")


def _issue(
    session: Session,
    token: HSMToken,
    spec: OperatorCertificate,
    issuing: x509.Certificate,
    public: PublicKey,
    public_url: str,
    now: datetime,
) -> x509.Certificate:
    # 1. the body, linted as signed by a throwaway key of the issuing key's type;
    # 2. only a clean body is signed by the issuing key on the HSM, and must be the linted one.
    builder = _builder(session, spec, issuing, public, public_url, now)
    algorithm = signature_hash(issuing)
    linted = builder.sign(_throwaway_key(issuing), algorithm)
    findings = lint_certificate(linted)
    if findings:
        raise LintFailed(findings)
    cert = builder.sign(token.private_key(ISSUING_CA.key_label), algorithm)
    matches_linted(cert, linted)
    return cert


def ensure_operator_certificate(
    session: Session,
    ca_token: HSMToken,
    spec: OperatorCertificate,
    *,
    public_url: str,
    now: datetime,
    actor: str,
) -> x509.Certificate:
    """The key's certificate, making the key and the certificate first if they are missing.

    Idempotent: an installed certificate for the key on the token is returned unchanged, unless
    ``spec.renew_before`` says it is due for renewal (less than that left, or issued by another
    issuing CA certificate than the active one): then a new one for the same key replaces it.
    Raises ``HierarchyNotReady`` while the issuing CA has no certificate (production path
    before ``tamga ca issuer-import``) and ``CertificateMismatch`` when the installed
    certificate is not for the key on the token.
    """
    now = now.astimezone(UTC).replace(microsecond=0)
    issuing = active_certificate(session, ISSUING_CA.name)
    public = _ensure_key(session, ca_token, spec, actor, now)
    try:
        current = active_certificate(session, spec.name)
    except HierarchyNotReady:
        current = None
    if current is not None:
        if not same_key(current, public):
            raise CertificateMismatch(
                f"the {spec.title} key on the token does not match the installed {spec.title}"
                " certificate"
            )
        if not _due(spec, current, issuing, now):
            return current
    cert = _issue(session, ca_token, spec, issuing, public, public_url.rstrip("/"), now)
    store_certificate(session, spec.name, cert, key_label=spec.key_label, now=now)
    audit.append(
        session,
        actor=actor,
        action="certificate.issued",
        object=f"ca:{spec.name}",
        details={
            "serial": format(cert.serial_number, "x"),
            "subject": cert.subject.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            **({"renews": format(current.serial_number, "x")} if current is not None else {}),
        },
        now=now,
    )
    return cert


def _due(
    spec: OperatorCertificate, current: x509.Certificate, issuing: x509.Certificate, now: datetime
) -> bool:
    """A renewable certificate near its end, or certified by an issuing CA no longer active."""
    if spec.renew_before is None:
        return False
    return (
        spec.due_for_renewal(current, now)
        or current.issuer != issuing.subject
        or (
            current.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier
            ).value.key_identifier
            != issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        )
    )

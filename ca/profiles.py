"""Subscriber certificate content and the pre-issuance lint (the pure half of issuance).

``build_certificate`` turns a validated ``CertificateRequest`` into the certificate body the
profile prescribes (docs/certificate-profiles.md). Issuance is two-phase, as Boulder does it:

1. ``prelint`` signs a copy of the body with a throwaway key of the issuing key's algorithm and
   lints it with pkilint; any ERROR or FATAL finding raises ``LintFailed`` and nothing is signed
   by the CA key (``prelint`` never sees the HSM);
2. the caller signs the same builder once with the issuing key in the HSM and calls
   ``matches_linted``, which refuses a final certificate whose to-be-signed body is not the one
   that was linted.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID, ObjectIdentifier
from pkilint import loader
from pkilint.pkix import certificate as pkix_certificate
from pkilint.pkix import extension as pkix_extension
from pkilint.pkix import name as pkix_name

from ca.errors import CAError, CertificateMismatch, LintFailed
from hsm import PublicKey
from policies.ca_profiles import SERIAL_BITS
from policies.cert_profiles import (
    CLOUD_ALLOWED_KEY_SPECS,
    EKU_DOCUMENT_SIGNING,
    EKU_EMAIL_PROTECTION,
    RUTOKEN_KEY_POLICY,
    CertRole,
    KeyRejected,
    Storage,
    policy_oid,
    validity,
)
from policies.identifiers import is_inn

__all__ = [
    "CertificateRequest",
    "Finding",
    "Severity",
    "SubjectFieldError",
    "SubjectIdentity",
    "build_certificate",
    "check_subscriber_key",
    "key_spec_name",
    "lint_certificate",
    "matches_linted",
    "organization_identifier",
    "prelint",
    "signature_hash",
]

# X.520 / RFC 5280 Appendix A upper bounds (ub-common-name, ub-title, ub-organization-name,
# ub-locality-name); surname and givenName share ub-name = 32768 but a person's name part that
# does not fit in a 64-character CN is a typing error, so they get the CN bound too.
_MAX = {"full_name": 64, "surname": 64, "given_name": 64, "position": 64, "company": 64}
_MAX |= {"locality": 128, "email": 254}  # RFC 5321 §4.5.3.1.3: a path holds 254 characters
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# rfc822Name is an IA5String: an internationalised mailbox would need SmtpUTF8Mailbox (RFC 9598),
# which relying parties here do not read, so addresses are ASCII dot-atoms.
_EMAIL = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")

# ETSI EN 319 412-1 §5.1.4 semantics identifier: "NTR" (national trade register) + ISO 3166
# country + "-" + the register number, as the operator's own issuing CA carries it.
_ORG_ID_PREFIX = "NTRKG-"


def organization_identifier(inn: str) -> str:
    """The organizationIdentifier value for a company INN: ``NTRKG-<14 digits>``."""
    if not is_inn(inn):
        raise ValueError("an INN is 14 digits")
    return _ORG_ID_PREFIX + inn


class SubjectFieldError(ValueError):
    """A value that would not make a valid certificate subject; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SubjectIdentity:
    """Who the certificate names: the holder, its position and the company it acts for."""

    full_name: str  # "Surname Given Patronymic", as in the passport
    surname: str
    given_name: str  # given name (with patronymic, if the registry keeps it there)
    position: str  # → title
    company: str  # → O
    company_inn: str  # → organizationIdentifier NTRKG-<inn>
    locality: str  # city or village → L
    email: str  # → subjectAltName rfc822Name

    def __post_init__(self) -> None:
        for field, limit in _MAX.items():
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise SubjectFieldError(field, f"{field} must not be empty")
            if value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise SubjectFieldError(
                    field, f"{field} has surrounding spaces or control characters"
                )
            if len(value) > limit:
                raise SubjectFieldError(field, f"{field} is longer than {limit} characters")
        if not is_inn(self.company_inn):
            raise SubjectFieldError("company_inn", "company_inn must be 14 digits")
        local = self.email.rpartition("@")[0]
        if not _EMAIL.match(self.email) or len(local) > 64:
            raise SubjectFieldError(
                "email", f"email {self.email!r} is not a plausible ASCII e-mail address"
            )


def key_spec_name(public_key: PublicKey) -> str:
    """``rsa-2048``, ``ec-p256``... as ``KeySpec.name`` spells it."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    return "ec-" + public_key.curve.name.replace("secp", "p").replace("r1", "")


def check_subscriber_key(public_key: object, storage: Storage) -> None:
    """Raise ``KeyRejected`` unless ``public_key`` may be certified for ``storage``.

    Cloud keys are the ones Tamga generates (``CLOUD_ALLOWED_KEY_SPECS``); RuToken keys follow
    ``RUTOKEN_KEY_POLICY``. Both: RSA exponents odd and within (2^16, 2^256).
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        RUTOKEN_KEY_POLICY.check_rsa(public_key.key_size, numbers.e)
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        RUTOKEN_KEY_POLICY.check_ec(public_key.curve.name)
    else:
        raise KeyRejected(f"{type(public_key).__name__} keys are not certified (RSA or EC only)")
    allowed = [spec.name for spec in CLOUD_ALLOWED_KEY_SPECS]
    if storage is Storage.CLOUD and key_spec_name(public_key) not in allowed:
        raise KeyRejected(f"cloud keys must be one of {allowed}")


@dataclass(frozen=True)
class CertificateRequest:
    """Everything a subscriber certificate says, decided before anything is signed.

    ``not_before`` is normalised to UTC with seconds precision (what the certificate records);
    ``serial`` comes from ``ca.serials.reserve_serial``.
    """

    identity: SubjectIdentity
    role: CertRole
    storage: Storage
    public_key: PublicKey
    not_before: datetime
    serial: int

    def __post_init__(self) -> None:
        if not isinstance(self.identity, SubjectIdentity):
            raise TypeError("identity must be a SubjectIdentity")
        if not isinstance(self.role, CertRole) or not isinstance(self.storage, Storage):
            raise TypeError("role must be a CertRole and storage a Storage")
        check_subscriber_key(self.public_key, self.storage)
        if self.not_before.tzinfo is None:
            raise ValueError("not_before must be timezone-aware")
        object.__setattr__(
            self, "not_before", self.not_before.astimezone(UTC).replace(microsecond=0)
        )
        if not 0 < self.serial < 2**SERIAL_BITS:
            raise ValueError(f"serial must be positive and below 2^{SERIAL_BITS}")

    @property
    def not_after(self) -> datetime:
        return validity(self.not_before)


def signature_hash(issuer_cert: x509.Certificate) -> hashes.SHA256 | hashes.SHA384:
    """The hash the issuer signs with: SHA-384 for a P-384 key, SHA-256 otherwise."""
    key = issuer_cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _subject(identity: SubjectIdentity) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, identity.locality),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.company),
            x509.NameAttribute(
                NameOID.ORGANIZATION_IDENTIFIER, organization_identifier(identity.company_inn)
            ),
            x509.NameAttribute(NameOID.TITLE, identity.position),
            x509.NameAttribute(NameOID.SURNAME, identity.surname),
            x509.NameAttribute(NameOID.GIVEN_NAME, identity.given_name),
            x509.NameAttribute(NameOID.COMMON_NAME, identity.full_name),
        ]
    )


_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,  # nonRepudiation: the signature binds its author (§1.5)
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
_EKU = x509.ExtendedKeyUsage(
    [ObjectIdentifier(EKU_DOCUMENT_SIGNING), ObjectIdentifier(EKU_EMAIL_PROTECTION)]
)


def _issuer_ski(issuer_cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound as ex:
        raise CAError("the issuing CA certificate has no subject key identifier") from ex


def build_certificate(
    request: CertificateRequest, issuer_cert: x509.Certificate, public_url: str
) -> x509.CertificateBuilder:
    """The subscriber certificate body for ``request``, issued under ``issuer_cert``.

    ``public_url`` is where relying parties fetch the CRL, the issuer certificate and the CPS.
    Refuses (CAError) a certificate that would start before or outlive its issuer.
    """
    url = public_url.rstrip("/")
    not_after = request.not_after
    if not (
        issuer_cert.not_valid_before_utc <= request.not_before
        and not_after <= issuer_cert.not_valid_after_utc
    ):
        raise CAError(
            f"a certificate valid {request.not_before:%Y-%m-%d} to {not_after:%Y-%m-%d} does not"
            f" fit in the issuing CA's validity (ends {issuer_cert.not_valid_after_utc:%Y-%m-%d})"
        )
    policy = x509.PolicyInformation(ObjectIdentifier(policy_oid(request.role)), [f"{url}/cps"])
    crl = x509.DistributionPoint(
        [x509.UniformResourceIdentifier(f"{url}/crl/issuing.crl")], None, None, None
    )
    # RFC 5280 §4.2.1.15: where the delta CRLs of the issuing CA are (docs/crl.md).
    delta = x509.DistributionPoint(
        [x509.UniformResourceIdentifier(f"{url}/crl/issuing-delta.crl")], None, None, None
    )
    ca_issuers = x509.AccessDescription(
        AuthorityInformationAccessOID.CA_ISSUERS,
        x509.UniformResourceIdentifier(f"{url}/ca/issuing.crt"),
    )
    ocsp = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(f"{url}/ocsp")
    )
    return (
        x509.CertificateBuilder()
        .subject_name(_subject(request.identity))
        .issuer_name(issuer_cert.subject)
        .public_key(request.public_key)
        .serial_number(request.serial)
        .not_valid_before(request.not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_KEY_USAGE, critical=True)
        .add_extension(_EKU, critical=False)
        .add_extension(x509.CertificatePolicies([policy]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(request.identity.email)]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(request.public_key), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                _issuer_ski(issuer_cert)
            ),
            critical=False,
        )
        .add_extension(x509.CRLDistributionPoints([crl]), critical=False)
        .add_extension(x509.AuthorityInformationAccess([ca_issuers, ocsp]), critical=False)
        .add_extension(x509.FreshestCRL([delta]), critical=False)
    )


# ---- lint -----------------------------------------------------------------------------------


class Severity(enum.IntEnum):
    """pkilint's severities, most severe first (a lower value is worse)."""

    FATAL = 0
    ERROR = 1
    WARNING = 2
    NOTICE = 3
    INFO = 4
    DEBUG = 5


@dataclass(frozen=True)
class Finding:
    """One pkilint finding: how bad, which rule, where in the certificate, and pkilint's words."""

    severity: Severity
    code: str  # e.g. "pkix.invalid_email_address_syntax"
    path: str  # e.g. "certificate.tbsCertificate.extensions.4.extnValue.subjectAltName.0"
    validator: str
    message: str | None = None

    def __str__(self) -> str:
        detail = f": {self.message}" if self.message else ""
        return f"{self.severity.name} {self.code} at {self.path}{detail}"


@functools.cache
def _validator() -> Any:
    # The same validator set as pkilint's own RFC 5280 console script (lint_pkix_cert), so that
    # the pre-issuance lint and the test suite's independent check agree.
    return pkix_certificate.create_pkix_certificate_validator_container(
        pkix_certificate.create_decoding_validators(
            pkix_name.ATTRIBUTE_TYPE_MAPPINGS, pkix_extension.EXTENSION_MAPPINGS
        ),
        [
            pkix_certificate.create_issuer_validator_container([]),
            pkix_certificate.create_validity_validator_container(),
            pkix_certificate.create_subject_validator_container([]),
            pkix_certificate.create_extensions_validator_container([]),
            pkix_certificate.create_spki_validator_container([]),
        ],
    )


def lint_certificate(cert: x509.Certificate, threshold: Severity = Severity.ERROR) -> list[Finding]:
    """pkilint's RFC 5280 findings at ``threshold`` or worse (default: ERROR and FATAL).

    ``lint_certificate(cert, Severity.WARNING)`` also returns the warnings.
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    try:
        document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
    except ValueError as ex:  # pkilint could not even decode it
        return [Finding(Severity.FATAL, "tamga.undecodable", "certificate", "loader", str(ex))]
    findings = []
    for result in _validator().validate(document.root):
        for description in result.finding_descriptions:
            severity = Severity(int(description.finding.severity))
            if severity <= threshold:
                findings.append(
                    Finding(
                        severity=severity,
                        code=str(description.finding.code),
                        path=str(result.node.path),
                        validator=str(result.validator),
                        message=None if description.message is None else str(description.message),
                    )
                )
    return findings


def _throwaway_key(issuer_cert: x509.Certificate) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = issuer_cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(key.curve)
    if isinstance(key, rsa.RSAPublicKey):
        return rsa.generate_private_key(public_exponent=65537, key_size=key.key_size)
    raise CAError(f"unsupported issuing key type {type(key).__name__}")


def prelint(
    request: CertificateRequest,
    issuer_cert: x509.Certificate,
    public_url: str,
    *,
    lint: Callable[[x509.Certificate], list[Finding]] = lint_certificate,
) -> x509.Certificate:
    """Phase one: the certificate signed by a throwaway key, linted; LintFailed if not clean.

    The throwaway key has the issuing key's algorithm and size, and the signature hash is the
    issuer's, so the linted to-be-signed body is byte for byte the one the HSM will sign.
    """
    builder = build_certificate(request, issuer_cert, public_url)
    linted = builder.sign(_throwaway_key(issuer_cert), signature_hash(issuer_cert))
    findings = lint(linted)
    if findings:
        raise LintFailed(findings)
    return linted


def _extensions(cert: x509.Certificate) -> list[tuple[str, bool, bytes]]:
    return [(e.oid.dotted_string, e.critical, e.value.public_bytes()) for e in cert.extensions]


def matches_linted(final: x509.Certificate, linted: x509.Certificate) -> None:
    """Phase two's check: raise CertificateMismatch unless ``final`` is the linted body.

    The to-be-signed bytes must be identical (the AKI is taken from the issuer certificate in
    both, so only the signature differs); on a difference the first differing field is named.
    """
    if final.tbs_certificate_bytes == linted.tbs_certificate_bytes:
        return
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    fields: list[tuple[str, Callable[[x509.Certificate], object]]] = [
        ("subject", lambda c: c.subject.public_bytes()),
        ("issuer", lambda c: c.issuer.public_bytes()),
        ("serial", lambda c: c.serial_number),
        ("validity", lambda c: (c.not_valid_before_utc, c.not_valid_after_utc)),
        ("public key", lambda c: c.public_key().public_bytes(*spki)),
        ("signature algorithm", lambda c: c.signature_algorithm_oid),
        ("extensions", _extensions),
    ]
    differing = [name for name, read in fields if read(final) != read(linted)]
    raise CertificateMismatch(
        "the signed certificate is not the linted one (differs in "
        + (", ".join(differing) or "encoding")
        + ")"
    )

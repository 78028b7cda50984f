"""A small PKI in memory for the dispute engine's tests: a root, an issuing CA, a TSA, CRLs.

Every time is chosen by the test, so a certificate can be revoked before or after a signature's
time-stamp, suspended and resumed, or expired. Signatures are made by ``ca.cms.sign_detached``
(the code that makes our CAdES signatures) with software keys; time-stamp tokens are RFC 3161
tokens built here and cross-checked with ``openssl ts -verify`` in the tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.cms import sign_detached

CRL_URL = "http://pki.example.test/issuing.crl"
ROOT_CRL_URL = "http://pki.example.test/root.crl"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KG"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Тест PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: Issued | None,
    not_before: datetime,
    not_after: datetime,
    *,
    ca: bool,
    eku: list[x509.ObjectIdentifier] | None = None,
    crl_url: str | None = None,
    serial: int | None = None,
) -> x509.Certificate:
    issuer_name = issuer.cert.subject if issuer else _name(subject)
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca and eku is None,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(crl_url)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


@dataclass
class PKI:
    """Root → issuing CA → subscribers and a TSA; CRLs issued on demand at chosen times."""

    name: str = "Test"
    root: Issued = field(init=False)
    issuing: Issued = field(init=False)
    tsa: Issued = field(init=False)
    revoked: dict[int, tuple[datetime, x509.ReasonFlags]] = field(default_factory=dict)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    root_crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    _number: int = 0

    def __post_init__(self) -> None:
        root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = Issued(
            _cert(f"{self.name} Root CA", root_key, None, at(-400), at(3650), ca=True), root_key
        )
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        self.issuing = Issued(
            _cert(
                f"{self.name} Issuing CA",
                issuing_key,
                self.root,
                at(-300),
                at(3000),
                ca=True,
                crl_url=ROOT_CRL_URL,
            ),
            issuing_key,
        )
        self.tsa = self.subscriber(
            f"{self.name} TSA", at(-200), at(2000), eku=[ExtendedKeyUsageOID.TIME_STAMPING]
        )

    def subscriber(
        self,
        cn: str,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        *,
        eku: list[x509.ObjectIdentifier] | None = None,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(
            cn,
            key,
            self.issuing,
            not_before or at(-100),
            not_after or at(700),
            ca=False,
            eku=eku,
            crl_url=CRL_URL,
        )
        return Issued(cert, key)

    # --- status and CRLs ---------------------------------------------------------------------

    def revoke(
        self,
        who: Issued,
        when: datetime,
        reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
    ) -> None:
        self.revoked[who.cert.serial_number] = (when, reason)

    def resume(self, who: Issued) -> None:
        self.revoked.pop(who.cert.serial_number, None)

    def issue_crl(
        self, this_update: datetime, next_update: datetime | None = None
    ) -> x509.CertificateRevocationList:
        """The issuing CA's CRL and the root's, as of ``this_update`` (entries dated up to it)."""
        self._number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.cert.subject)
            .last_update(this_update)
            .next_update(next_update or this_update + timedelta(days=1))
            .add_extension(x509.CRLNumber(self._number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuing.key.public_key()),
                critical=False,
            )
        )
        for serial, (when, reason) in self.revoked.items():
            if when > this_update:
                continue
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when)
                .add_extension(x509.CRLReason(reason), critical=False)
                .build()
            )
        crl = builder.sign(self.issuing.key, hashes.SHA256())
        self.crls.append(crl)
        root_crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.root.cert.subject)
            .last_update(this_update)
            .next_update(next_update or this_update + timedelta(days=1))
            .add_extension(x509.CRLNumber(self._number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root.key.public_key()),
                critical=False,
            )
            .sign(self.root.key, hashes.SHA256())
        )
        self.root_crls.append(root_crl)
        return crl

    def daily_crls(self, start: datetime, days: int) -> None:
        for day in range(days):
            self.issue_crl(start + timedelta(days=day))

    def crl_ders(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.crls + self.root_crls]

    # --- signatures ----------------------------------------------------------------------------

    def timestamp(self, signature_value: bytes, gen_time: datetime) -> bytes:
        """An RFC 3161 TimeStampToken over SHA-256(signature_value), by this PKI's TSA."""
        return self.timestamp_digest(hashlib.sha256(signature_value).digest(), gen_time)

    def timestamp_digest(self, imprint: bytes, gen_time: datetime) -> bytes:
        """An RFC 3161 TimeStampToken whose messageImprint is ``imprint`` (SHA-256)."""
        info = tsp.TSTInfo(
            {
                "version": "v1",
                "policy": "1.3.6.1.4.1.99999.2.1",
                "message_imprint": {
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": imprint,
                },
                "serial_number": x509.random_serial_number(),
                "gen_time": gen_time,
                "accuracy": {"seconds": 1},
            }
        )
        econtent = info.dump()
        tsa_der = self.tsa.der
        signed_attrs = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]},
                {
                    "type": "signing_certificate_v2",
                    "values": [{"certs": [{"cert_hash": hashlib.sha256(tsa_der).digest()}]}],
                },
            ]
        )
        signature = self.tsa.key.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
        asn_cert = asn1_x509.Certificate.load(tsa_der)
        signed = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [{"algorithm": "sha256"}],
                "encap_content_info": {
                    "content_type": "tst_info",
                    "content": core.ParsableOctetString(econtent),
                },
                "certificates": [asn_cert],
                "signer_infos": [
                    {
                        "version": "v1",
                        "sid": {
                            "issuer_and_serial_number": {
                                "issuer": asn_cert.issuer,
                                "serial_number": asn_cert.serial_number,
                            }
                        },
                        "digest_algorithm": {"algorithm": "sha256"},
                        "signed_attrs": signed_attrs,
                        "signature_algorithm": algos.SignedDigestAlgorithm(
                            {"algorithm": "sha256_ecdsa"}
                        ),
                        "signature": signature,
                    }
                ],
            }
        )
        return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()

    def sign(
        self,
        content: bytes,
        signer: Issued,
        signing_time: datetime,
        *,
        stamp_at: datetime | None = None,
        stamp_by: PKI | None = None,
    ) -> bytes:
        """A detached CAdES signature (B-T when ``stamp_at`` is given) by ``signer``.

        The time-stamp comes from this PKI's TSA, or from ``stamp_by``'s.
        """
        timestamper: Any = None
        tsa = stamp_by or self
        if stamp_at is not None:

            def timestamper(digest: bytes, hash_name: str) -> bytes:
                # ca.cms hands over the digest of the signature value
                assert hash_name == "sha256"
                return tsa.timestamp_digest(digest, stamp_at)

        return sign_detached(
            content,
            signer.cert,
            signer.key,
            [self.issuing.cert],
            signing_time=signing_time,
            timestamper=timestamper,
        )

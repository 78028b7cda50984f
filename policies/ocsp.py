"""The OCSP responder (RFC 6960, lightweight profile RFC 5019): its key, certificate and timing.

The issuing CA's statuses are answered by a delegated responder: a short-lived certificate from
the issuing CA for the ``tamga-ocsp`` key in the ``tamga-ca`` token (extendedKeyUsage
id-kp-OCSPSigning, id-pkix-ocsp-nocheck). The root's status of the issuing CA certificate is
signed by the root key itself (no delegation to keep alive for one certificate).

| what                 | value                                                              |
|----------------------|--------------------------------------------------------------------|
| key                  | ``tamga-ocsp``, ECDSA P-256, responses signed with SHA-256         |
| responder validity   | 30 days, capped at the issuing CA's notAfter                       |
| renewed              | when less than 10 days (a third) of it are left: worker and init  |
| response validity    | nextUpdate = thisUpdate + 24 h (never past the responder's notAfter) |
| refresh margin       | the worker re-signs stored responses 8 h before their nextUpdate   |
| nonce                | 1 to 32 octets (RFC 8954 §2.1); longer is a malformedRequest       |

Why no-check is safe with 30 days: a relying party cannot ask about the responder itself
(RFC 6960 §4.2.2.2.1), so the window a compromised responder key stays trusted is its
remaining validity; 30 days keeps that short while renewal needs no human.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from policies.keys import KeyAlgorithm, KeySpec

__all__ = ["OCSP", "OCSPProfile"]


@dataclass(frozen=True)
class OCSPProfile:
    """The responder: who it is, which key signs, how long its certificate and answers last."""

    name: str  # database name of its certificate and its file name (/ca/<name>.crt)
    key_label: str  # CKA_LABEL in the CA token
    key_spec: KeySpec
    subject: tuple[tuple[str, str], ...]  # (attribute, value), as in CAProfile
    validity: timedelta  # of the responder certificate
    renew_before: timedelta  # a new certificate when less than this is left
    response_validity: timedelta  # nextUpdate − thisUpdate of every answer
    refresh_margin: timedelta  # stored answers are re-signed this long before their nextUpdate
    refresh_batch: int  # stored answers re-signed per worker transaction
    max_nonce_octets: int  # RFC 8954 §2.1: 32
    max_request_bytes: int  # an OCSPRequest with one CertID and a nonce is ~100 bytes

    def __post_init__(self) -> None:
        if self.key_spec.algorithm is not KeyAlgorithm.EC:
            raise ValueError("the OCSP responder key must be an EC key")
        if not self.subject:
            raise ValueError("the OCSP responder needs a subject name")
        if not timedelta(0) < self.renew_before < self.validity:
            raise ValueError("renew_before must be positive and shorter than the validity")
        if not timedelta(0) < self.refresh_margin < self.response_validity:
            raise ValueError("refresh_margin must be positive and shorter than response_validity")
        if self.response_validity >= self.renew_before:
            # An answer must not outlive the certificate that signed it once it is renewed.
            raise ValueError("response_validity must be shorter than renew_before")
        if self.refresh_batch <= 0 or self.max_request_bytes <= 0:
            raise ValueError("refresh_batch and max_request_bytes must be positive")
        if not 1 <= self.max_nonce_octets <= 32:
            raise ValueError("RFC 8954 nonces are 1 to 32 octets")

    @property
    def signature_hash(self) -> str:
        """The hash of the responder's signatures (matched to the curve, RFC 5480 §4)."""
        return self.key_spec.default_scheme.hash_name


OCSP = OCSPProfile(
    name="ocsp",
    key_label="tamga-ocsp",
    key_spec=KeySpec.parse("ec-p256"),
    subject=(
        ("C", "KG"),
        ("O", "DOS TEK GROUP LLC"),
        ("organizationIdentifier", "NTRKG-00211200910051"),
        ("CN", "DOS TEK GROUP OCSP Responder"),
    ),
    validity=timedelta(days=30),
    renew_before=timedelta(days=10),
    response_validity=timedelta(hours=24),
    refresh_margin=timedelta(hours=8),
    refresh_batch=500,
    max_nonce_octets=32,
    max_request_bytes=64 * 1024,
)

"""The OCSP responder's certificate: the ``tamga-ocsp`` key, certified by the issuing CA.

``ensure_ocsp_responder`` (called by ``tamga init`` and by every ``tamga worker`` pass) makes the
key in the CA token (ECDSA P-256, sensitive, never extractable) if missing and has the issuing
CA certify it through :func:`ca.operator_keys.ensure_operator_certificate`, linted by pkilint
before the issuing key signs, as the TSA's is. The certificate (RFC 6960 §4.2.2.2):

- extendedKeyUsage id-kp-OCSPSigning (the delegation), keyUsage digitalSignature;
- id-pkix-ocsp-nocheck: clients do not ask about the responder itself; hence no OCSP URL in its
  authorityInformationAccess, and a short validity (:data:`policies.ocsp.OCSP`: 30 days);
- renewed, same key, once less than ``renew_before`` (10 days) is left, or when the issuing CA
  certificate changed: the new certificate is journalled with the serial it renews.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy.orm import Session

from ca.operator_keys import OperatorCertificate, ensure_operator_certificate
from hsm import HSMToken
from policies.ocsp import OCSP

__all__ = ["OCSP_RESPONDER_CERTIFICATE", "ensure_ocsp_responder"]

OCSP_RESPONDER_CERTIFICATE = OperatorCertificate(
    name=OCSP.name,
    title="OCSP responder",
    purpose="ocsp",
    key_label=OCSP.key_label,
    key_spec=OCSP.key_spec,
    subject=OCSP.subject,
    key_usage=x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    ),
    extensions=(
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False),
        (x509.OCSPNoCheck(), False),
    ),
    validity=OCSP.validity,
    renew_before=OCSP.renew_before,
)


def ensure_ocsp_responder(
    session: Session, ca_token: HSMToken, *, public_url: str, now: datetime, actor: str
) -> x509.Certificate:
    """The responder certificate in force, made or renewed first when needed (idempotent
    otherwise; ``HierarchyNotReady`` before the issuing CA has a certificate)."""
    return ensure_operator_certificate(
        session, ca_token, OCSP_RESPONDER_CERTIFICATE, public_url=public_url, now=now, actor=actor
    )

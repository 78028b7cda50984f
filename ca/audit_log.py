"""Signed checkpoints of the audit journal: the Merkle tree head, signed with ``tamga-audit``.

The key (ECDSA P-256 in ``tamga-ca``, sensitive, never extractable) and its certificate from
the issuing CA are made by ``tamga init`` like the dispatch key's (:mod:`ca.operator_keys`):
digitalSignature and nonRepudiation, the operator's policy ``<arc>.3.2``, no EKU. A checkpoint's
signed text follows the transparency-log checkpoint layout (C2SP tlog-checkpoint): origin, tree
size, base64 root hash, then a timestamp line; its signature is a DER ECDSA-with-SHA256
signature over exactly those UTF-8 bytes, so that ``openssl dgst -sha256 -verify`` checks it
with the public key of ``/ca/audit.crt``::

    tamga.example/audit
    1234
    3q2+7w...=
    timestamp 2026-12-03T19:00:00Z

Anyone holding a checkpoint asks ``GET /audit/consistency`` for the proof that a later one
extends it, and anyone holding an entry ``GET /audit/proof/<sequence>`` for its inclusion: once
a checkpoint is published, the journal up to it cannot be rewritten without a proof failing,
even by someone with full database access (the key stays in the HSM).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ObjectIdentifier
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca.hierarchy import active_certificate
from ca.models import CACertificate
from ca.operator_keys import OperatorCertificate, ensure_operator_certificate
from db.audit import AuditCheckpoint
from db.sequencer import latest_checkpoint, tree_head
from hsm import HSMToken
from policies.audit import AUDIT_LOG_POLICY, AuditLogPolicy
from policies.ca_profiles import AUDIT_LOG
from policies.keys import SignatureScheme

__all__ = [
    "AUDIT_LOG_CERTIFICATE",
    "CheckpointView",
    "checkpoint_body",
    "ensure_audit_signer",
    "origin_of",
    "sign_checkpoint",
    "verify_checkpoint_signatures",
]

AUDIT_LOG_CERTIFICATE = OperatorCertificate(
    name=AUDIT_LOG.name,
    title="audit log",
    purpose="audit checkpoints",
    key_label=AUDIT_LOG.key_label,
    key_spec=AUDIT_LOG.key_spec,
    validity_years=AUDIT_LOG.validity_years,
    subject=AUDIT_LOG.subject,
    key_usage=x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,  # the operator stands by the history it publishes
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    ),
    extensions=(
        (
            x509.CertificatePolicies(
                [x509.PolicyInformation(ObjectIdentifier(AUDIT_LOG.policy_oid), None)]
            ),
            False,
        ),
    ),
)


def ensure_audit_signer(
    session: Session, ca_token: HSMToken, *, public_url: str, now: datetime, actor: str
) -> x509.Certificate:
    """The checkpoint key's certificate, made first when missing (idempotent)."""
    return ensure_operator_certificate(
        session, ca_token, AUDIT_LOG_CERTIFICATE, public_url=public_url, now=now, actor=actor
    )


def origin_of(public_url: str) -> str:
    """The log's name in its checkpoints: the public host (and path) followed by ``/audit``."""
    parts = urlsplit(public_url)
    return f"{parts.netloc}{parts.path.rstrip('/')}/audit"


def checkpoint_body(origin: str, size: int, root: bytes, signed_at: datetime) -> str:
    """The signed text of a checkpoint (UTF-8, each line ending in a newline)."""
    stamp = signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\ntimestamp {stamp}\n"


@dataclass(frozen=True)
class CheckpointView:
    """A checkpoint as it is published."""

    tree_size: int
    root_hash: bytes
    signed_at: datetime
    body: str
    signature: bytes
    certificate_sha256: str

    @classmethod
    def of(cls, row: AuditCheckpoint) -> CheckpointView:
        return cls(
            tree_size=row.tree_size,
            root_hash=bytes.fromhex(row.root_hash),
            signed_at=row.signed_at,
            body=row.body,
            signature=bytes(row.signature),
            certificate_sha256=row.certificate_sha256,
        )


def sign_checkpoint(
    session: Session,
    ca_token: HSMToken,
    *,
    public_url: str,
    now: datetime,
    policy: AuditLogPolicy = AUDIT_LOG_POLICY,
    force: bool = False,
) -> AuditCheckpoint | None:
    """Sign and store a checkpoint of the tree as it stands, when one is due: the tree grew
    and the last is ``checkpoint_interval`` old, or the last is ``checkpoint_max_age`` old (or
    ``force``). None when none was due. Not journalled: a checkpoint is itself a signed,
    append-only record, and an entry for it would grow the tree it signs."""
    now = now.astimezone(UTC).replace(microsecond=0)
    size, root = tree_head(session)
    last = latest_checkpoint(session)
    if not force and last is not None:
        age = now - last.signed_at
        grown = size != last.tree_size
        if not (grown and age >= policy.checkpoint_interval) and age < policy.checkpoint_max_age:
            return None
    certificate = active_certificate(session, AUDIT_LOG.name)
    body = checkpoint_body(origin_of(public_url), size, root, now)
    digest = hashlib.sha256(body.encode("utf-8")).digest()
    signature = ca_token.sign_digest(AUDIT_LOG.key_label, digest, SignatureScheme.ECDSA_SHA256)
    row = AuditCheckpoint(
        tree_size=size,
        root_hash=root.hex(),
        signed_at=now,
        body=body,
        signature=signature,
        certificate_sha256=_fingerprint(certificate),
    )
    session.add(row)
    session.flush()
    return row


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def verify_checkpoint_signatures(session: Session) -> int:
    """Check every stored checkpoint's signature with the audit certificate it names, and that
    its text says its own size and root; the number checked. ``ValueError`` names the first
    bad one."""
    certificates = {
        _fingerprint(cert): cert
        for cert in (
            x509.load_der_x509_certificate(der)
            for der in session.scalars(
                select(CACertificate.der).where(CACertificate.name == AUDIT_LOG.name)
            )
        )
    }
    checked = 0
    for row in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)):
        certificate = certificates.get(row.certificate_sha256)
        if certificate is None:
            raise ValueError(f"checkpoint {row.id}: signed by an unknown certificate")
        lines = row.body.split("\n")
        root = base64.b64encode(bytes.fromhex(row.root_hash)).decode("ascii")
        if len(lines) != 5 or lines[1] != str(row.tree_size) or lines[2] != root:
            raise ValueError(f"checkpoint {row.id}: its text does not say its size and root")
        public = certificate.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ValueError(f"checkpoint {row.id}: the certificate's key is not ECDSA")
        try:
            public.verify(bytes(row.signature), row.body.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError(f"checkpoint {row.id}: the signature does not verify") from None
        checked += 1
    return checked


def certificate_pem(session: Session) -> bytes:
    """The audit certificate in force, PEM."""
    return active_certificate(session, AUDIT_LOG.name).public_bytes(serialization.Encoding.PEM)

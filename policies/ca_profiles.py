"""Profiles of the CA hierarchy: names, lifetimes and keys of the root and the issuing CA.

The national root ("Infocom" state enterprise, contract §1.2.5) is external in production; for
development Tamga creates a stand-in with the profile below. The operator's issuing CA chains to
it with path length 0 (it issues only end-entity certificates).

``DISPATCH`` is the operator's own end-entity signer in the CA token: the key that signs Tamga's
dispatch confirmations (a report left for an agency at a stated time), certified by the issuing
CA with digitalSignature + nonRepudiation under its own policy ``<arc>.3.1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policies.cert_profiles import POLICY_ARC
from policies.keys import KeyAlgorithm, KeySpec

__all__ = [
    "AUDIT_LOG",
    "AUDIT_LOG_POLICY_OID",
    "CA_TOKEN",
    "CLOUD_TOKEN",
    "DISPATCH",
    "DISPATCH_POLICY_OID",
    "ISSUING_CA",
    "ROOT_CA",
    "SERIAL_BITS",
    "CAProfile",
    "OperatorSignerProfile",
]

# Token labels: CA keys and subscribers' cloud keys never share a token (DESIGN.md).
CA_TOKEN = "tamga-ca"  # noqa: S105 - a token label, not a password
CLOUD_TOKEN = "tamga-cloud"  # noqa: S105

# RFC 5280 §4.1.2.2 allows 20 octets; 159 bits keeps the DER INTEGER positive within 20 octets
# while leaving far more than the CA/B Forum's 64 bits of CSPRNG output.
SERIAL_BITS = 159


@dataclass(frozen=True)
class CAProfile:
    """One CA certificate: who it is, how long it lives, which key it has in the CA token."""

    name: str  # "root" or "issuing": file names (/ca/<name>.crt) and database key
    key_label: str  # CKA_LABEL in the CA token
    key_spec: KeySpec
    validity_years: int
    path_length: int | None
    subject: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (attribute, value)

    def __post_init__(self) -> None:
        if self.validity_years <= 0:
            raise ValueError("validity_years must be positive")
        if not self.subject:
            raise ValueError("a CA needs a subject name")


ROOT_CA = CAProfile(
    name="root",
    key_label="tamga-root-ca",
    key_spec=KeySpec.parse("ec-p384"),
    validity_years=20,
    path_length=None,
    subject=(
        ("C", "KG"),
        ("O", "Infocom (development stand-in)"),
        ("CN", "Tamga Stand-in National Root CA"),
    ),
)

ISSUING_CA = CAProfile(
    name="issuing",
    key_label="tamga-issuing-ca",
    key_spec=KeySpec.parse("ec-p384"),
    validity_years=10,
    path_length=0,
    subject=(
        ("C", "KG"),
        ("L", "Bishkek"),
        ("O", "DOS TEK GROUP LLC"),
        ("organizationIdentifier", "NTRKG-00211200910051"),
        ("CN", "DOS TEK GROUP Certification Authority"),
    ),
)


# <arc>.3 is the branch of the operator's own statements (.1 role policies, .2 time-stamping);
# .3.1: dispatch confirmations, signed by an HSM key of the operator in the CA token.
DISPATCH_POLICY_OID = f"{POLICY_ARC}.3.1"
# .3.2: checkpoints of the audit journal (signed Merkle tree heads, db.sequencer).
AUDIT_LOG_POLICY_OID = f"{POLICY_ARC}.3.2"


@dataclass(frozen=True)
class OperatorSignerProfile:
    """An end-entity key of the operator in the CA token, certified by the issuing CA.

    It signs the operator's own statements (not subscribers' documents): digitalSignature and
    nonRepudiation, no CA, no extendedKeyUsage, one certificate policy.
    """

    name: str  # database name of its certificate and its file name (/ca/<name>.crt)
    key_label: str  # CKA_LABEL in the CA token
    key_spec: KeySpec
    validity_years: int  # capped at the issuing CA's notAfter
    subject: tuple[tuple[str, str], ...]  # (attribute, value), as in CAProfile
    policy_oid: str

    def __post_init__(self) -> None:
        if self.validity_years <= 0:
            raise ValueError("validity_years must be positive")
        if not any(attribute == "CN" for attribute, _ in self.subject):
            raise ValueError("an operator signer needs a subject with a CN")
        if self.key_spec.algorithm is not KeyAlgorithm.EC:
            raise ValueError("an operator signer key must be an EC key")
        if not self.policy_oid.startswith(POLICY_ARC + "."):
            raise ValueError("the policy must sit under the operator's arc")


# P-256 as the TSA: one signature per report sent, SHA-256, verified by every CMS client.
DISPATCH = OperatorSignerProfile(
    name="dispatch",
    key_label="tamga-dispatch",
    key_spec=KeySpec.parse("ec-p256"),
    validity_years=5,
    subject=(
        ("C", "KG"),
        ("O", "DOS TEK GROUP LLC"),
        ("organizationIdentifier", "NTRKG-00211200910051"),
        ("CN", "Tamga dispatch confirmations"),
    ),
    policy_oid=DISPATCH_POLICY_OID,
)


# The audit journal's checkpoints: P-256 like the other operator signers; a checkpoint is a
# short text signed with ECDSA-SHA256, checked with the certificate from /ca/audit.crt.
AUDIT_LOG = OperatorSignerProfile(
    name="audit",
    key_label="tamga-audit",
    key_spec=KeySpec.parse("ec-p256"),
    validity_years=5,
    subject=(
        ("C", "KG"),
        ("O", "DOS TEK GROUP LLC"),
        ("organizationIdentifier", "NTRKG-00211200910051"),
        ("CN", "Tamga audit log checkpoints"),
    ),
    policy_oid=AUDIT_LOG_POLICY_OID,
)

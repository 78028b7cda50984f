"""The operator's RFC 3161 Time-Stamping Authority: its key, certificate, policy and accuracy.

One time-stamping unit signs every token. Its key lives in the ``tamga-ca`` token beside the CA
keys (DESIGN.md: CA, OCSP and TSA signers share that token; subscribers' cloud keys never do),
and its certificate comes from the operator's issuing CA.

| what                  | value                                                            |
|-----------------------|------------------------------------------------------------------|
| key                   | ``tamga-tsa``, ECDSA P-256, tokens signed with SHA-256           |
| certificate           | 5 years, capped at the issuing CA's notAfter; EKU timeStamping   |
| TSA policy            | ``<arc>.2.1`` (``POLICY_ARC`` + ``.2.1``) in every TSTInfo        |
| accuracy              | 1 second                                                         |
| message imprints      | SHA-256, SHA-384, SHA-512 (SHA-1, MD5, anything else: badAlg)    |
| nonce                 | 0 to 2^160 − 1 (RFC 3161: "a large random number", e.g. 64 bits) |

P-256 rather than the CAs' P-384: the TSA signs one token per request, at the signing service's
rate, and P-256 signatures are cheaper on the HSM and verified by every RFC 3161 client; its
128-bit strength outlasts the 5-year certificate, and evidence meant to outlive that is
re-time-stamped (archive time-stamps) rather than trusted to one key forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.cert_profiles import POLICY_ARC
from policies.keys import KeyAlgorithm, KeySpec

__all__ = ["MAX_NONCE_BITS", "TSA", "TSA_POLICY_OID", "TSAProfile"]

# A nonce only has to be unique to its client: 64 random bits are the usual size, 160 leave room.
# A negative one, or thousands of bits echoed into a signed token, is a malformed request.
MAX_NONCE_BITS = 160

# <arc>.2 is the time-stamping branch of the operator's arc (cert_profiles reserves .2 and up);
# .2.1 is this TSA policy: tokens from an HSM key, UTC from the host clock, accuracy below.
TSA_POLICY_OID = f"{POLICY_ARC}.2.1"

_SUPPORTED_HASHES = frozenset({"sha256", "sha384", "sha512"})


@dataclass(frozen=True)
class TSAProfile:
    """The time-stamping unit: who it is, which key signs, what its tokens say."""

    name: str  # database name of its certificate and its file name (/ca/<name>.crt)
    key_label: str  # CKA_LABEL in the CA token
    key_spec: KeySpec
    validity_years: int
    subject: tuple[tuple[str, str], ...]  # (attribute, value), as in CAProfile
    policy_oid: str
    accuracy_seconds: int
    accepted_hashes: tuple[str, ...]  # hashlib names of message imprints we time-stamp

    def __post_init__(self) -> None:
        if self.validity_years <= 0:
            raise ValueError("validity_years must be positive")
        if not self.subject:
            raise ValueError("a TSA needs a subject name")
        if self.key_spec.algorithm is not KeyAlgorithm.EC:
            raise ValueError("the TSA key must be an EC key")
        if not self.policy_oid.startswith(POLICY_ARC + "."):
            raise ValueError("the TSA policy must sit under the operator's arc")
        if self.accuracy_seconds <= 0:
            raise ValueError("accuracy_seconds must be positive")
        if not self.accepted_hashes or not set(self.accepted_hashes) <= _SUPPORTED_HASHES:
            raise ValueError(f"accepted hashes must be among {sorted(_SUPPORTED_HASHES)}")

    @property
    def signature_hash(self) -> str:
        """The hash of the TSA's own signatures (matched to the curve, RFC 5480 §4)."""
        return self.key_spec.default_scheme.hash_name


TSA = TSAProfile(
    name="tsa",
    key_label="tamga-tsa",
    key_spec=KeySpec.parse("ec-p256"),
    validity_years=5,
    subject=(
        ("C", "KG"),
        ("O", "DOS TEK GROUP LLC"),
        ("organizationIdentifier", "NTRKG-00211200910051"),
        ("CN", "DOS TEK GROUP Time-Stamping Authority"),
    ),
    policy_oid=TSA_POLICY_OID,
    accuracy_seconds=1,
    accepted_hashes=("sha256", "sha384", "sha512"),
)

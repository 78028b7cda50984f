"""Rules of the §8 dispute engine as data: which algorithms were strong enough, and when.

Algorithm strength is judged at the signing time (ETSI EN 319 102-1 §5.2.8): a signature made
with SHA-1 in 2015 is judged by 2015's rules, provided something proves it existed then (a
time-stamp, the operator's record). The dates follow ETSI TS 119 312 and the CA/Browser Forum's
deprecations; they are the operator's policy, not the seeds'.

| algorithm | acceptable for signatures made before |
|---|---|
| MD5, MD2 | never |
| SHA-1 | 2017-01-01 |
| SHA-224 | 2026-01-01 |
| SHA-256, SHA-384, SHA-512, SHA3-* | no end set |
| RSA keys below 2048 bits | 2017-01-01 (below 1024: never) |
| EC keys below 256 bits | never |
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "CLOCK_TOLERANCE_SECONDS",
    "DIGEST_SUNSET",
    "MAX_SIGNERS",
    "MIN_EC_BITS",
    "RSA_SMALL_SUNSET",
    "digest_acceptable_at",
    "key_acceptable_at",
]

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)

# digest name (asn1crypto's spelling) -> signatures made at or after this moment are too weak.
DIGEST_SUNSET: dict[str, datetime | None] = {
    "md2": _NEVER,
    "md5": _NEVER,
    "sha1": datetime(2017, 1, 1, tzinfo=UTC),
    "sha224": datetime(2026, 1, 1, tzinfo=UTC),
    "sha256": None,
    "sha384": None,
    "sha512": None,
    "sha512_224": datetime(2026, 1, 1, tzinfo=UTC),
    "sha512_256": None,
    "sha3_256": None,
    "sha3_384": None,
    "sha3_512": None,
}
RSA_SMALL_SUNSET = datetime(2017, 1, 1, tzinfo=UTC)  # 1024 ≤ bits < 2048
MIN_EC_BITS = 256

# A claimed time or a time-stamp may lie this far after "now" (clocks drift).
CLOCK_TOLERANCE_SECONDS = 300

# A CMS with more signers than this is refused as unreadable input (nobody co-signs 33 times).
MAX_SIGNERS = 32


def digest_acceptable_at(digest: str, moment: datetime) -> bool:
    """Whether ``digest`` was acceptable for a signature made at ``moment`` (unknown: no)."""
    if digest not in DIGEST_SUNSET:
        return False
    sunset = DIGEST_SUNSET[digest]
    return sunset is None or moment < sunset


def key_acceptable_at(algorithm: str, bits: int, moment: datetime) -> bool:
    """Whether a signer key (``"rsa"``, ``"ec"``, ``"ed25519"``, ``"ed448"``) was strong enough."""
    if algorithm == "rsa":
        if bits >= 2048:
            return True
        return bits >= 1024 and moment < RSA_SMALL_SUNSET
    if algorithm == "ec":
        return bits >= MIN_EC_BITS
    return algorithm in ("ed25519", "ed448")

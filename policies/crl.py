"""When CRLs are issued and how long relying parties may trust one (issue #4, RFC 5280 §5).

A CRL is reissued every ``reissue_every`` and announces its successor no later than
``next_update`` after its own ``thisUpdate``: the gap between the two is what a relying party
survives of a publishing outage. A revocation or suspension must reach a CRL within
``after_revocation_within``.

Delta CRLs (RFC 5280 §5.2.4) of the issuing CA are issued at every status change, inside its
transaction, and at least every ``delta_every``; each is good for ``delta_next_update``. The
full CRL is also reissued right after a status change only while the last one listed at most
``full_after_change_up_to`` entries: beyond that the delta is what is published at once, and
the full CRL keeps its daily schedule. ``freshest_in_base`` puts freshestCRL in the full CRLs as
well (off: see the field).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["CRL_ISSUERS", "CRL_POLICY", "DELTA_ISSUERS", "CRLPolicy", "delta_name"]

# The CAs that publish a CRL: /crl/<name>.crl, named like /ca/<name>.crt.
CRL_ISSUERS = ("root", "issuing")
# The CAs that also publish delta CRLs, at /crl/<name>-delta.crl (nothing revokes the root's
# only subject, the issuing CA, in the daily course of business).
DELTA_ISSUERS = ("issuing",)


def delta_name(issuer: str) -> str:
    """``issuing`` → ``issuing-delta``: the delta CRL's file and URL name."""
    return f"{issuer}-delta"


@dataclass(frozen=True)
class CRLPolicy:
    """The CRL schedule."""

    next_update: timedelta = timedelta(hours=48)
    reissue_every: timedelta = timedelta(hours=24)
    after_revocation_within: timedelta = timedelta(minutes=5)
    delta_every: timedelta = timedelta(hours=1)
    delta_next_update: timedelta = timedelta(hours=2)
    full_after_change_up_to: int = 50_000
    # freshestCRL in the full CRLs too (RFC 5280 §5.2.6). Off: pyhanko-certvalidator (the
    # dispute engine) then requires a delta CRL beside every full CRL and takes the issuer's
    # first one whatever its base; subscriber certificates carry freshestCRL, which is where
    # OpenSSL looks (docs/crl.md).
    freshest_in_base: bool = False

    def __post_init__(self) -> None:
        names = ("next_update", "reissue_every", "after_revocation_within", "delta_every",
                 "delta_next_update")  # fmt: skip
        for name in names:
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.reissue_every >= self.next_update:
            # Otherwise every CRL would be stale before its successor appears.
            raise ValueError("reissue_every must be shorter than next_update")
        if self.delta_every >= self.delta_next_update:
            raise ValueError("delta_every must be shorter than delta_next_update")
        if self.full_after_change_up_to < 0:
            raise ValueError("full_after_change_up_to must not be negative")


CRL_POLICY = CRLPolicy()

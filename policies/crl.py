"""When CRLs are issued and how long relying parties may trust one (issue #4, RFC 5280 §5).

A CRL is reissued every ``reissue_every`` and announces its successor no later than
``next_update`` after its own ``thisUpdate``: the gap between the two is what a relying party
survives of a publishing outage. A revocation or suspension must reach a CRL within
``after_revocation_within``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["CRL_ISSUERS", "CRL_POLICY", "CRLPolicy"]

# The CAs that publish a CRL: /crl/<name>.crl, named like /ca/<name>.crt.
CRL_ISSUERS = ("root", "issuing")


@dataclass(frozen=True)
class CRLPolicy:
    """The CRL schedule."""

    next_update: timedelta = timedelta(hours=48)
    reissue_every: timedelta = timedelta(hours=24)
    after_revocation_within: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        for name in ("next_update", "reissue_every", "after_revocation_within"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.reissue_every >= self.next_update:
            # Otherwise every CRL would be stale before its successor appears.
            raise ValueError("reissue_every must be shorter than next_update")


CRL_POLICY = CRLPolicy()

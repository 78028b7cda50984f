"""The status-change hook: what a suspension, resumption or revocation publishes, in its
transaction.

Every path that changes a certificate's status (the CA routes and commands, a contract's
termination) calls :func:`status_changed` inside the transaction of the change, after the
change is journaled: the delta CRL that says so is signed and recorded in the same commit, so
no status change is ever committed without a CRL that lists it, and no CRL lists a change that
was rolled back. The OCSP answers of the changed certificates are re-signed and stored in the
same commit (``crl.ocsp.sign_statuses``): OCSP and the CRLs never disagree, and the next OCSP
request about them is a lookup. The caller writes the delta's file (``write_crl_files``) after
the commit.

Lock order: the caller's transaction already holds the certificate rows it changed and the
audit journal's head (``audit.append``); the delta takes the head again (a no-op) and only then
the CRL number (``crl.builder``), as every CRL issuance does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from crl.builder import IssuedCRL, issue_delta_crl, newest_base_number, refresh_crl
from crl.ocsp import sign_statuses
from hsm import HSMToken
from policies.ca_profiles import ISSUING_CA
from policies.crl import CRL_POLICY, CRLPolicy

__all__ = ["StatusPublished", "status_changed"]


@dataclass(frozen=True)
class StatusPublished:
    """What :func:`status_changed` signed in the transaction: the delta CRL, and the first full
    CRL when there was none to be the delta's base (a fresh installation)."""

    delta: IssuedCRL
    full: IssuedCRL | None
    serials: tuple[int, ...]
    ocsp_answers: int = 0  # OCSP answers re-signed and stored for ``serials``


def status_changed(
    session: Session,
    *,
    token: HSMToken,
    now: datetime,
    actor: str,
    serials: Iterable[int] = (),
    policy: CRLPolicy = CRL_POLICY,
    public_url: str | None = None,
) -> StatusPublished:
    """Issue the issuing CA's delta CRL inside the caller's transaction, after the status of
    the certificates ``serials`` changed in it. ``public_url``: for the first full CRL's
    freshestCRL, when one must be issued as the base."""
    changed = tuple(serials)
    full = None
    if _no_base(session):
        full, _ = refresh_crl(session, issuer=ISSUING_CA.name, token=token, now=now, actor=actor,
                              policy=policy, public_url=public_url)  # fmt: skip
    delta = issue_delta_crl(
        session, issuer=ISSUING_CA.name, token=token, now=now, actor=actor, policy=policy
    )
    # The same commit stores the OCSP answers that say so: the next request is a lookup, and
    # OCSP and the CRLs never disagree (0 when no responder certificate exists yet).
    answers = sign_statuses(session, serials=changed, token=token, now=now, actor=actor)
    return StatusPublished(delta=delta, full=full, serials=changed, ocsp_answers=answers)


def _no_base(session: Session) -> bool:

    return newest_base_number(session, ISSUING_CA.name) is None

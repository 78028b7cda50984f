"""The end of a subscriber's contract (§18.5) as the CA carries it out.

``billing`` closes the account (balance to refunds payable, debt recorded, no more payments or
charges) and knows nothing of certificates: it may not import ``ca`` (the layers contract).
The CA is the layer above, so the orchestration is here: in the same transaction as the billing
termination, every certificate of the subscriber that is still valid or suspended is revoked
with reason ``cessationOfOperation`` (a renewal not yet valid too), each with its status event
and journal entry. As for any revocation, the caller then reissues the issuing CA's CRL and
destroys the revoked cloud keys after the commit (``ca.revocation.destroy_revoked_key``), so a
rollback never leaves a certificate valid without its key.

Terminating again with the same reason is a replay for billing, and revokes whatever is still
valid: it repairs a termination made before this rule existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

import billing
from ca.models import Certificate
from ca.revocation import Actor, revoke
from policies.statuses import CertificateStatus

__all__ = ["Terminated", "terminate_subscriber"]

REASON = x509.ReasonFlags.cessation_of_operation
_NOTE_LIMIT = 900


@dataclass(frozen=True)
class Terminated:
    """The billing termination and the certificates revoked by it now (ids and serials)."""

    info: billing.TerminationInfo
    revoked_ids: tuple[int, ...]
    revoked_serials: tuple[str, ...]


def terminate_subscriber(
    session: Session, *, inn: str, reason: str, debt: int = 0, now: datetime, actor: str
) -> Terminated:
    """Terminate subscriber ``inn``'s contract and revoke its live certificates (an officer)."""
    info = billing.terminate(session, inn=inn, reason=reason, debt=debt, now=now, actor=actor)
    who = Actor(actor, officer=True)
    live = (
        select(Certificate)
        .where(
            Certificate.subscriber_inn == inn,
            Certificate.status.in_((CertificateStatus.ACTIVE, CertificateStatus.SUSPENDED)),
            Certificate.not_after > now,
        )
        .order_by(Certificate.id)
    )
    note = f"contract terminated: {info.reason}"[:_NOTE_LIMIT]
    ids, serials = [], []
    for row in session.scalars(live).all():
        done = revoke(session, row, reason=REASON.value, note=note, now=now, who=who)
        ids.append(done.id)
        serials.append(done.serial)
    return Terminated(info, tuple(ids), tuple(serials))

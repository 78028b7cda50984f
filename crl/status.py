"""``status_at``: a certificate's revocation status at a moment, from its whole history.

The one answer that CRLs, OCSP and the dispute procedure share (RFC 5280 §5.3, RFC 6960 §2.2,
contract §8.3): *good*, *revoked* (with the time and reason), *on hold* (suspended:
certificateHold, which RFC 6960 answers as revoked with that reason) or *unknown* (never issued by
this CA). The status at a past moment comes from the append-only ``certificate_events``, so a
later resumption or revocation never rewrites what the status was then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from ca.revocation import certificate_history
from policies.statuses import CertificateChange

__all__ = ["CertificateStatus", "Status", "status_at"]


class Status(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    ON_HOLD = "on_hold"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CertificateStatus:
    """What was true of ``serial`` at ``at``; ``since``/``reason`` for revoked and on hold."""

    serial: int
    at: datetime
    status: Status
    since: datetime | None = None
    reason: str | None = None
    invalidity_date: datetime | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None

    @property
    def in_validity_period(self) -> bool:
        """``not_before <= at < not_after`` (False for an unknown certificate)."""
        if self.not_before is None or self.not_after is None:
            return False
        return self.not_before <= self.at < self.not_after


def status_at(session: Session, serial: int, at: datetime) -> CertificateStatus:
    """The revocation status of the issuing CA's certificate ``serial`` at moment ``at``.

    Only events at or before ``at`` count: a certificate revoked after ``at`` was good at ``at``
    (§8.3). Revocation is final; a suspension lasts until the next ``resumed``.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    history = certificate_history(session, serial)
    if history is None:
        return CertificateStatus(serial, at, Status.UNKNOWN)
    status, since, reason, invalidity = Status.GOOD, None, None, None
    for event in history.events:
        if event.at > at:
            break
        if event.action == CertificateChange.REVOKED:
            status, since, reason, invalidity = (
                Status.REVOKED,
                event.at,
                event.reason or "unspecified",
                event.invalidity_date,
            )
            break
        if event.action == CertificateChange.SUSPENDED:
            status, since, reason, invalidity = (
                Status.ON_HOLD,
                event.at,
                "certificate_hold",
                event.invalidity_date,
            )
        elif event.action == CertificateChange.RESUMED:
            status, since, reason, invalidity = Status.GOOD, None, None, None
    return CertificateStatus(
        serial,
        at,
        status,
        since,
        reason,
        invalidity,
        history.not_before,
        history.not_after,
    )

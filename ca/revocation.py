"""Suspending, resuming and revoking subscriber certificates (RFC 5280 reasons).

Who may (§ "Suspension and revocation" of issue #4): an officer any certificate; a holder its
own; a company's head (a holder with an active ``head`` or ``head_as_accountant`` certificate
of that company) the company's other certificates. Suspension is ``certificateHold`` and can be
lifted; revocation is final. A revoked cloud key is destroyed in ``tamga-cloud`` by the caller
after the commit (``destroy_revoked_key``), so that a rollback never leaves a certificate
active without its key.

Every change is a ``certificate_events`` row (append-only) and an audit entry; the row keeps the
latest reason and dates, which is what the CRL entry says (``crl_entries``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from cryptography import x509
from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from ca.errors import Conflict, InvalidField, NotAllowed
from ca.models import Certificate, CertificateEvent, Holder
from db import audit
from hsm import HSMError, HSMToken, KeyNotFound
from policies.statuses import CertificateChange, CertificateStatus

__all__ = [
    "HEAD_ROLES",
    "REVOCATION_REASONS",
    "Actor",
    "CertificateHistory",
    "CrlEntry",
    "StatusChange",
    "StatusEvent",
    "authorise",
    "certificate_history",
    "crl_entries",
    "crl_rows",
    "destroy_revoked_key",
    "head_holders",
    "last_status_change",
    "parse_reason",
    "resume",
    "revoke",
    "status_changes_since",
    "suspend",
]

HEAD_ROLES = ("head", "head_as_accountant")

# The reasons a subscriber certificate can be revoked with; certificateHold is ``suspend``.
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    flag.name: flag
    for flag in (
        x509.ReasonFlags.unspecified,
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
    )
}
_HOLD = x509.ReasonFlags.certificate_hold


@dataclass(frozen=True)
class Actor:
    """Who asks: an officer, or a holder (``holder_id``) through a portal; ``name`` journals."""

    name: str
    officer: bool = False
    holder_id: int | None = None


def parse_reason(value: object) -> x509.ReasonFlags:
    """An RFC 5280 reason by its RFC name (``keyCompromise``) or ours (``key_compromise``)."""
    if isinstance(value, str):
        for name, flag in REVOCATION_REASONS.items():
            if value in (name, flag.value):
                return flag
        if value in (_HOLD.name, _HOLD.value):
            raise InvalidField("reason", "certificateHold is a suspension: use suspend")
    choices = ", ".join(flag.value for flag in REVOCATION_REASONS.values())
    raise InvalidField("reason", f"one of {choices}")


def head_holders(session: Session, inn: str, now: datetime) -> set[int]:
    """Holders who head company ``inn``: they have a valid head certificate of it."""
    query = select(Certificate.holder_id).where(
        Certificate.subscriber_inn == inn,
        Certificate.role.in_(HEAD_ROLES),
        Certificate.status == CertificateStatus.ACTIVE,
        Certificate.not_before <= now,
        Certificate.not_after > now,
    )
    return set(session.scalars(query))


def authorise(session: Session, row: Certificate, who: Actor, now: datetime) -> None:
    """NotAllowed unless ``who`` may change ``row``'s status (see the module docstring)."""
    if who.officer:
        return
    if who.holder_id is None:
        raise NotAllowed("name the acting holder (X-Tamga-Holder) or ask an officer")
    holder = session.get(Holder, who.holder_id)
    if holder is None or holder.subscriber_inn != row.subscriber_inn:
        raise NotAllowed("a holder may act only on its own company's certificates")
    if row.holder_id == who.holder_id:
        return
    if who.holder_id in head_holders(session, row.subscriber_inn, now):
        return
    raise NotAllowed("only the holder, its company's head or an officer may do this")


def _locked(session: Session, row: Certificate) -> Certificate:
    locked = session.get_one(Certificate, row.id, with_for_update=True)
    session.refresh(locked)
    return locked


def _record(
    session: Session,
    row: Certificate,
    *,
    action: CertificateChange,
    reason: str | None,
    invalidity_date: datetime | None,
    note: str | None,
    now: datetime,
    who: Actor,
) -> None:
    session.add(
        CertificateEvent(
            certificate_id=row.id,
            action=action,
            reason=reason,
            invalidity_date=invalidity_date,
            note=note,
            at=now,
            actor=who.name,
        )
    )
    details: dict[str, object] = {"serial": row.serial, "inn": row.subscriber_inn}
    if reason:
        details["reason"] = reason
    if invalidity_date is not None:
        details["invalidity_date"] = invalidity_date.isoformat()
    if note:
        details["note"] = note[:500]
    if who.holder_id is not None:
        details["acting_holder"] = who.holder_id
    audit.append(
        session,
        actor=who.name,
        action=f"ca.certificate.{action}",
        object=f"certificate:{row.serial}",
        details=details,
        now=now,
    )
    session.flush()


def _require_live(
    row: Certificate, now: datetime, *, allowed: tuple[CertificateStatus, ...]
) -> None:
    if row.status == CertificateStatus.REVOKED:
        raise Conflict(f"certificate {row.serial} is revoked (final)")
    if row.status not in allowed:
        raise Conflict(f"certificate {row.serial} is {row.status}")
    if row.not_after <= now:
        raise Conflict(f"certificate {row.serial} expired on {row.not_after:%Y-%m-%d}")


def _note(note: object) -> str | None:
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > 1000:
        raise InvalidField("note", "a text of at most 1000 characters")
    return " ".join(note.split()) or None


def revoke(
    session: Session,
    row: Certificate,
    *,
    reason: object,
    invalidity_date: datetime | None = None,
    note: object = None,
    now: datetime,
    who: Actor,
) -> Certificate:
    """Revoke an active or suspended certificate for good (Conflict if revoked already)."""
    flag = parse_reason(reason)
    text = _note(note)
    if invalidity_date is not None:
        if invalidity_date.tzinfo is None:
            raise InvalidField("invalidity_date", "give a time zone (e.g. 2026-11-23T08:00:00Z)")
        if invalidity_date > now:
            raise InvalidField("invalidity_date", "must not be in the future")
        if invalidity_date < row.not_before:
            raise InvalidField("invalidity_date", "is before the certificate was valid")
    authorise(session, row, who, now)
    row = _locked(session, row)
    _require_live(row, now, allowed=(CertificateStatus.ACTIVE, CertificateStatus.SUSPENDED))
    row.status, row.revoked_at, row.revocation_reason = CertificateStatus.REVOKED, now, flag.name
    row.invalidity_date = invalidity_date
    row.auto_renew = False
    _record(session, row, action=CertificateChange.REVOKED, reason=flag.name,
            invalidity_date=invalidity_date, note=text, now=now, who=who)  # fmt: skip
    return row


def suspend(
    session: Session, row: Certificate, *, note: object = None, now: datetime, who: Actor
) -> Certificate:
    """Put an active certificate on hold (certificateHold); ``resume`` lifts it."""
    text = _note(note)
    authorise(session, row, who, now)
    row = _locked(session, row)
    _require_live(row, now, allowed=(CertificateStatus.ACTIVE,))
    row.status, row.revoked_at, row.revocation_reason = CertificateStatus.SUSPENDED, now, _HOLD.name
    row.invalidity_date = None
    _record(session, row, action=CertificateChange.SUSPENDED, reason=_HOLD.name,
            invalidity_date=None, note=text, now=now, who=who)  # fmt: skip
    return row


def resume(
    session: Session, row: Certificate, *, note: object = None, now: datetime, who: Actor
) -> Certificate:
    """Lift a suspension: the certificate is valid again and leaves the next CRL."""
    text = _note(note)
    authorise(session, row, who, now)
    row = _locked(session, row)
    _require_live(row, now, allowed=(CertificateStatus.SUSPENDED,))
    row.status, row.revoked_at, row.revocation_reason = CertificateStatus.ACTIVE, None, None
    _record(session, row, action=CertificateChange.RESUMED, reason=None, invalidity_date=None,
            note=text, now=now, who=who)  # fmt: skip
    return row


def destroy_revoked_key(
    transaction_session: Session, row: Certificate, cloud_token: HSMToken, *, now: datetime
) -> bool:
    """Destroy a revoked cloud certificate's key; True when it is gone (now or before).

    Call after the revocation committed, with a new session; it records ``key_destroyed_at``
    and journals ``ca.key.destroyed``.
    """
    if (
        row.status != CertificateStatus.REVOKED
        or row.key_label is None
        or row.key_destroyed_at is not None
    ):
        return row.key_destroyed_at is not None
    try:
        cloud_token.destroy_key(row.key_label)
    except KeyNotFound:
        pass  # destroyed by an earlier attempt that could not record it
    except HSMError:
        return False
    locked = transaction_session.get_one(Certificate, row.id, with_for_update=True)
    locked.key_destroyed_at = now
    audit.append(
        transaction_session,
        actor="ca",
        action="ca.key.destroyed",
        object=f"certificate:{row.serial}",
        details={"serial": row.serial, "key_label": row.key_label},
        now=now,
    )
    return True


@dataclass(frozen=True)
class CrlEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags
    invalidity_date: datetime | None
    not_after: datetime


def crl_entries(session: Session, now: datetime) -> list[CrlEntry]:
    """Revoked and suspended certificates of the issuing CA that have not expired at ``now``."""
    query = (
        select(Certificate)
        .where(
            Certificate.status.in_((CertificateStatus.REVOKED, CertificateStatus.SUSPENDED)),
            Certificate.not_after > now,
            Certificate.revoked_at <= now,
        )
        .order_by(Certificate.id)
    )
    return [
        CrlEntry(
            serial=int(row.serial, 16),
            revoked_at=row.revoked_at,  # type: ignore[arg-type]  # set with the status
            reason=x509.ReasonFlags[row.revocation_reason or "unspecified"],
            invalidity_date=row.invalidity_date,
            not_after=row.not_after,
        )
        for row in session.scalars(query)
    ]


_RawRow = tuple[str, str, str | None, str | None]


def _utc_text(column: Any, dialect: str) -> Any:
    """A time column as UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``, made by the database: what
    SQLAlchemy stores on SQLite already; ``to_char`` of the UTC time on PostgreSQL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI:SS")
    return type_coerce(column, String)


def crl_rows(session: Session, now: datetime) -> Iterator[_RawRow]:
    """What ``crl_entries`` says, as raw rows from the database, for large CRLs: (serial hex,
    revoked_at, reason name, invalidity_date), no ORM object per certificate, and the two
    times as UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]`` made by the database, not as datetimes
    (a million rows; ``crl.der.time`` reads that text)."""
    dialect = session.get_bind().dialect.name
    query = select(
        Certificate.serial,
        _utc_text(Certificate.revoked_at, dialect),
        Certificate.revocation_reason,
        _utc_text(Certificate.invalidity_date, dialect),
    ).where(
        Certificate.status.in_((CertificateStatus.REVOKED, CertificateStatus.SUSPENDED)),
        Certificate.not_after > now,
        Certificate.revoked_at <= now,
    )
    # A client-side cursor read in batches: psycopg holds the rows as PostgreSQL sent them
    # (about 100 MB for a million); a server-side one (yield_per) cost a round trip per batch,
    # and Connection.execution_options() would change the transaction's connection for good
    # (a later SAVEPOINT inside a server-side cursor). SQLite steps through its rows.
    result = session.connection().execute(query)
    for batch in result.partitions(10_000):
        yield from cast("list[_RawRow]", batch)


@dataclass(frozen=True)
class StatusChange:
    """A certificate whose status changed at or after some moment, as it stands now."""

    serial: int
    status: str  # CertificateStatus: active (resumed), suspended or revoked
    revoked_at: datetime | None
    reason: str | None
    invalidity_date: datetime | None
    not_after: datetime
    changed_at: datetime  # its latest suspension, resumption or revocation


def status_changes_since(session: Session, since: datetime | None) -> list[StatusChange]:
    """Every certificate suspended, resumed or revoked at or after ``since`` (None: ever),
    with its status now — what a delta CRL relative to a CRL of ``since`` must say."""
    changes = select(
        CertificateEvent.certificate_id, func.max(CertificateEvent.at).label("changed_at")
    ).where(
        CertificateEvent.action.in_(
            (CertificateChange.SUSPENDED, CertificateChange.RESUMED, CertificateChange.REVOKED)
        )
    )
    if since is not None:
        changes = changes.where(CertificateEvent.at >= since)
    latest = changes.group_by(CertificateEvent.certificate_id).subquery()
    query = select(
        Certificate.serial,
        Certificate.status,
        Certificate.revoked_at,
        Certificate.revocation_reason,
        Certificate.invalidity_date,
        Certificate.not_after,
        latest.c.changed_at,
    ).join(latest, latest.c.certificate_id == Certificate.id)
    return [
        StatusChange(int(serial, 16), str(status), revoked_at, reason, invalid, not_after, at)
        for serial, status, revoked_at, reason, invalid, not_after, at in session.execute(query)
    ]


@dataclass(frozen=True)
class StatusEvent:
    """One change of a certificate's status: issued, suspended, resumed or revoked."""

    action: str
    at: datetime
    reason: str | None
    invalidity_date: datetime | None


@dataclass(frozen=True)
class CertificateHistory:
    """A certificate's validity period and every change of its status, oldest first."""

    serial: int
    not_before: datetime
    not_after: datetime
    events: tuple[StatusEvent, ...]


def certificate_history(session: Session, serial: int) -> CertificateHistory | None:
    """The history of the issued certificate with this serial; None if none was issued."""
    row = session.scalars(
        select(Certificate).where(Certificate.serial == f"{serial:x}")
    ).one_or_none()
    if row is None or row.status in (CertificateStatus.PENDING, CertificateStatus.FAILED):
        return None
    events = session.scalars(
        select(CertificateEvent)
        .where(CertificateEvent.certificate_id == row.id)
        .order_by(CertificateEvent.at, CertificateEvent.id)
    )
    return CertificateHistory(
        serial=serial,
        not_before=row.not_before,
        not_after=row.not_after,
        events=tuple(StatusEvent(e.action, e.at, e.reason, e.invalidity_date) for e in events),
    )


def last_status_change(session: Session) -> datetime | None:
    """When a certificate was last suspended, resumed or revoked (the CRL must follow)."""
    query = select(func.max(CertificateEvent.at)).where(
        CertificateEvent.action.in_(
            (CertificateChange.SUSPENDED, CertificateChange.RESUMED, CertificateChange.REVOKED)
        )
    )
    return session.scalar(query)

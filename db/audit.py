"""The hash-chained, append-only audit journal.

Every entry stores the SHA-256 of its own content chained onto the hash of the entry before it,
so that a changed, removed, inserted or reordered row breaks the chain at a known sequence
number. The single ``audit_head`` row holds the last sequence number and hash: writers lock it
to serialise appends across processes and nodes, and it lets :func:`verify_chain` notice rows
removed from the end of the journal. The database itself refuses UPDATE and DELETE on the
journal (triggers created by migration 0001).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Integer, Row, String, Text, exists, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from db.base import Base, UTCDateTime
from db.errors import AuditChainBroken

__all__ = ["GENESIS_HASH", "AuditEntry", "AuditHead", "append", "lock_head", "verify_chain"]

GENESIS_HASH = "0" * 64
HEAD_ID = 1

# Substrings of detail keys that may carry a secret. Matching is deliberately broad: a false
# positive costs a renamed key, a false negative puts a PIN into a permanent record.
SECRET_KEY_MARKERS = ("pin", "password", "secret", "token", "private")

_VERIFY_BATCH = 1000


class AuditEntry(Base):
    """One journal row. Never updated or deleted (the database enforces it)."""

    __tablename__ = "audit_journal"

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    object: Mapped[str] = mapped_column(Text, index=True)
    outcome: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def details_dict(self) -> dict[str, Any]:
        """The details as a dictionary."""
        loaded: dict[str, Any] = json.loads(self.details)
        return loaded


class AuditHead(Base):
    """The single row (``id`` = 1) naming the last entry of the journal."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint(f"id = {HEAD_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


def lock_head(session: Session) -> None:
    """Take the journal head's lock now (FOR UPDATE), as :func:`append` will.

    For a writer that must take other locks after it, so that every path takes them in one
    order: the CRL issuers lock the head before they choose a CRL number (crl.builder).
    """
    session.execute(select(AuditHead.id).where(AuditHead.id == HEAD_ID).with_for_update())


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object: str,  # the journal's column name; keyword-only, so it shadows nothing that matters
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry within the caller's transaction (flushed, not committed).

    Raises ``ValueError`` before touching the database when ``details`` is not JSON or has a key
    that looks like a secret, or when ``now`` is naive.
    """
    details_json = _canonical_details(details or {})
    occurred_at = _utc(now or datetime.now(UTC))
    # Lock the head row: concurrent writers queue here, so sequences stay gapless and the chain
    # unbroken. populate_existing: a head object cached in this session may be stale.
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    entry = AuditEntry(
        sequence=head.last_sequence + 1,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object=object,
        outcome=outcome,
        details=details_json,
        prev_hash=head.last_hash,
    )
    entry.hash = _entry_hash(
        sequence=entry.sequence,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object=object,
        outcome=outcome,
        details_json=details_json,
        prev_hash=head.last_hash,
    )
    session.add(entry)
    head.last_sequence, head.last_hash = entry.sequence, entry.hash
    session.flush()
    return entry


def _entry_hash(
    *,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    object: str,
    outcome: str,
    details_json: str,
    prev_hash: str,
) -> str:
    """SHA-256 hex of the entry's canonical JSON (UTF-8) followed by the previous hash."""
    content = {
        "sequence": sequence,
        "occurred_at": _utc(occurred_at).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "object": object,
        "outcome": outcome,
        "details": json.loads(details_json),
    }
    payload = _canonical_json(content).encode("utf-8") + prev_hash.encode("ascii")
    return hashlib.sha256(payload).hexdigest()


def verify_chain(session: Session) -> int:
    """Walk the journal in sequence order; return its length, or raise AuditChainBroken.

    Rows are streamed with the head row read by the same statement, so that on PostgreSQL both
    come from one snapshot and appends committed meanwhile cannot look like tampering.
    """
    walk = _walk_rows(session)
    if walk.count == 0:
        # No row carried the head along: read it on its own, with (same snapshot) whether the
        # journal has rows by now. If it has, they were committed after our walk: walk again.
        head = session.execute(_head_and_journal_has_rows()).one_or_none()
        if head is not None and head.journal_has_rows:
            walk = _walk_rows(session)
        if walk.count == 0:
            walk.head = None if head is None else (head.last_sequence, head.last_hash)
    walk.finish()
    return walk.count


def _walk_rows(session: Session) -> _ChainWalk:
    walk = _ChainWalk()
    rows = session.execute(_rows_with_head(), execution_options={"yield_per": _VERIFY_BATCH})
    try:
        for row in rows:
            walk.check(row)
    except ValueError as ex:  # a tampered value that cannot even be parsed (JSON, timestamp)
        raise AuditChainBroken(walk.count + 1, f"entry cannot be read back: {ex}") from ex
    return walk


@dataclass
class _ChainWalk:
    """State of :func:`verify_chain` while it streams the rows; each check names its reason."""

    count: int = 0
    prev_hash: str = GENESIS_HASH
    head: tuple[int, str] | None = None

    def check(self, row: Row[Any]) -> None:
        expected = self.count + 1
        if row.head_sequence is None:
            raise AuditChainBroken(0, "the audit_head row is missing")
        self.head = (row.head_sequence, row.head_hash)
        if row.sequence < expected:
            raise AuditChainBroken(row.sequence, f"unexpected sequence number {row.sequence}")
        if row.sequence > expected:
            raise AuditChainBroken(expected, f"entry {expected} is missing (deleted)")
        if expected > row.head_sequence:
            raise AuditChainBroken(
                expected, f"entry {expected} lies beyond the head ({row.head_sequence}): forged"
            )
        if row.prev_hash != self.prev_hash:
            raise AuditChainBroken(expected, "prev_hash does not match the previous entry's hash")
        if _recompute(row) != row.hash:
            raise AuditChainBroken(expected, "content does not match its hash (changed)")
        if expected == row.head_sequence and row.hash != row.head_hash:
            raise AuditChainBroken(expected, "audit_head names a different last hash")
        self.count, self.prev_hash = expected, row.hash

    def finish(self) -> None:
        if self.head is None:
            raise AuditChainBroken(0, "the audit_head row is missing")
        head_sequence, head_hash = self.head
        if self.count < head_sequence:
            raise AuditChainBroken(
                self.count + 1,
                f"entries {self.count + 1}..{head_sequence} are missing (deleted at the end)",
            )
        if self.count == 0 and head_hash != GENESIS_HASH:
            raise AuditChainBroken(0, "audit_head of an empty journal is not the genesis hash")


def _rows_with_head() -> Any:
    head_sequence = select(AuditHead.last_sequence).where(AuditHead.id == HEAD_ID)
    head_hash = select(AuditHead.last_hash).where(AuditHead.id == HEAD_ID)
    # Columns, not entities: the walk must read the database, not objects cached in the session.
    return select(
        *AuditEntry.__table__.columns,
        head_sequence.scalar_subquery().label("head_sequence"),
        head_hash.scalar_subquery().label("head_hash"),
    ).order_by(AuditEntry.sequence)


def _head_and_journal_has_rows() -> Any:
    return select(
        AuditHead.last_sequence,
        AuditHead.last_hash,
        exists(select(AuditEntry.sequence)).label("journal_has_rows"),
    ).where(AuditHead.id == HEAD_ID)


def _recompute(row: Row[Any]) -> str:
    return _entry_hash(
        sequence=row.sequence,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        object=row.object,
        outcome=row.outcome,
        details_json=row.details,
        prev_hash=row.prev_hash,
    )


def _canonical_details(details: Mapping[str, Any]) -> str:
    _refuse_secret_keys(details)
    try:
        return _canonical_json(details)
    except (TypeError, ValueError) as ex:
        raise ValueError(f"audit details must be JSON-serialisable: {ex}") from ex


def _refuse_secret_keys(value: Any, path: str = "details") -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings, got {key!r}")
            lowered = key.lower()
            if any(marker in lowered for marker in SECRET_KEY_MARKERS):
                raise ValueError(f"{path}: key {key!r} looks like a secret; never journal secrets")
            _refuse_secret_keys(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_secret_keys(item, f"{path}[{index}]")


def _canonical_json(value: Any) -> str:
    # allow_nan=False: NaN and Infinity are not JSON, and would not round-trip through it.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC)

"""The append-only audit journal: entries written without a shared lock, sequenced in batches.

A writer inserts its entry inside its own business transaction (so it commits or rolls back
with it) with the SHA-256 of its content, and takes no shared row: appends never wait for each
other. The **sequencer** (:mod:`db.sequencer`, one at a time cluster-wide under the
``audit_head`` row lock; in ``tamga worker``, and inline after each commit in the embedded
SQLite mode) then gives committed entries gapless sequence numbers in batches, chains them —
each entry's hash covers its content, its sequence and the previous entry's hash, so a changed,
removed, inserted or reordered row breaks the chain at a known sequence number — and adds them
as leaves to a Merkle tree (RFC 9162, :mod:`db.merkle`) whose heads are signed as checkpoints.

The database refuses DELETE and TRUNCATE of the journal, and every UPDATE except the
sequencer's single one per entry (sequence, prev_hash and hash set from NULL, content unchanged):
triggers of migrations 0001 and 0014. The ``audit_head`` row holds the last sequence number and
hash and the tree's size, so that :func:`verify_chain` notices rows removed from the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    LargeBinary,
    Row,
    SmallInteger,
    String,
    Text,
    exists,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from db.base import Base, UTCDateTime
from db.errors import AuditChainBroken
from db.merkle import EMPTY_ROOT, Frontier, leaf_hash, perfect_subtrees, range_hash

__all__ = [
    "GENESIS_HASH",
    "AuditCheckpoint",
    "AuditEntry",
    "AuditHead",
    "AuditTreeNode",
    "JournalCheck",
    "append",
    "chain_hash",
    "content_hash",
    "content_hash_of",
    "leaf_data",
    "leaf_of",
    "tree_nodes",
    "verify_chain",
    "verify_journal",
]

GENESIS_HASH = "0" * 64
HEAD_ID = 1
PENDING_KEY = "tamga.audit.pending"  # Session.info flag: this transaction appended entries

# Substrings of detail keys that may carry a secret. Matching is deliberately broad: a false
# positive costs a renamed key, a false negative puts a PIN into a permanent record.
SECRET_KEY_MARKERS = ("pin", "password", "secret", "token", "private")

_VERIFY_BATCH = 1000
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: an alias of the rowid


class AuditEntry(Base):
    """One journal row. Its content is never updated and the row never deleted (the database
    enforces it); ``sequence``, ``prev_hash`` and ``hash`` are NULL until the sequencer sets
    them, once."""

    __tablename__ = "audit_journal"
    __table_args__ = (
        Index(
            "ix_audit_journal_pending",
            "id",
            postgresql_where=text("sequence IS NULL"),
            sqlite_where=text("sequence IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    sequence: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    object: Mapped[str] = mapped_column(Text, index=True)
    outcome: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as hashed
    # SHA-256 of the content as the writer saw it; NULL for entries older than migration 0014.
    content_hash: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    def details_dict(self) -> dict[str, Any]:
        """The details as a dictionary."""
        loaded: dict[str, Any] = json.loads(self.details)
        return loaded


class AuditHead(Base):
    """The single row (``id`` = 1) naming the last sequenced entry and the Merkle tree's size.

    Only the sequencer writes it; its row lock is the sequencer's cluster-wide mutex."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint(f"id = {HEAD_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    tree_size: Mapped[int] = mapped_column(BigInteger, server_default="0")


class AuditTreeNode(Base):
    """The hash of one complete subtree of the journal's Merkle tree: leaves
    ``[index * 2**level, (index + 1) * 2**level)``; level 0 are the leaf hashes (RFC 9162)."""

    __tablename__ = "audit_tree"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed tree head: the journal's Merkle root at a size, signed by the audit key."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)  # the exact signed text (UTF-8)
    signature: Mapped[bytes] = mapped_column(LargeBinary)  # DER ECDSA-with-SHA256
    certificate_sha256: Mapped[str] = mapped_column(String(64))  # the signer's certificate


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
    """Add one entry to the caller's transaction, unsequenced; no lock is taken.

    The sequencer numbers and chains it once the transaction has committed; a rollback takes
    it away with the rest. Raises ``ValueError`` before touching the database when ``details``
    is not JSON or has a key that looks like a secret, or when ``now`` is naive.
    """
    details_json = _canonical_details(details or {})
    occurred_at = _utc(now or datetime.now(UTC))
    entry = AuditEntry(
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object=object,
        outcome=outcome,
        details=details_json,
        content_hash=content_hash(
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            object=object,
            outcome=outcome,
            details_json=details_json,
        ),
    )
    session.add(entry)
    session.info[PENDING_KEY] = True
    return entry


def _content(
    *,
    sequence: int | None,
    occurred_at: datetime,
    actor: str,
    action: str,
    object: str,
    outcome: str,
    details_json: str,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "occurred_at": _utc(occurred_at).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "object": object,
        "outcome": outcome,
        "details": json.loads(details_json),
    }
    if sequence is not None:
        content["sequence"] = sequence
    return content


def content_hash(
    *, occurred_at: datetime, actor: str, action: str, object: str, outcome: str, details_json: str
) -> str:
    """SHA-256 hex of the entry's canonical JSON without its sequence (what a writer knows)."""
    content = _content(
        sequence=None,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object=object,
        outcome=outcome,
        details_json=details_json,
    )
    return hashlib.sha256(_canonical_json(content).encode("utf-8")).hexdigest()


def leaf_data(
    *,
    sequence: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    object: str,
    outcome: str,
    details_json: str,
) -> bytes:
    """The bytes of the entry's Merkle leaf: its canonical JSON with its sequence (UTF-8).

    The chain hash is the SHA-256 of these bytes followed by the previous entry's hash."""
    content = _content(
        sequence=sequence,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        object=object,
        outcome=outcome,
        details_json=details_json,
    )
    return _canonical_json(content).encode("utf-8")


def chain_hash(leaf: bytes, prev_hash: str) -> str:
    """SHA-256 hex of the leaf bytes followed by the previous hash (ASCII hex)."""
    return hashlib.sha256(leaf + prev_hash.encode("ascii")).hexdigest()


def verify_chain(session: Session) -> int:
    """Walk the sequenced journal; return its length, or raise AuditChainBroken.

    See :func:`verify_journal` for the Merkle tree and the checkpoints as well."""
    return verify_journal(session).entries


@dataclass(frozen=True)
class JournalCheck:
    """What :func:`verify_journal` found: all of it consistent."""

    entries: int  # sequenced entries, chain intact
    pending: int  # committed entries the sequencer has not numbered yet
    tree_size: int  # leaves in the Merkle tree (entries older than 0014 join it in batches)
    root_hash: str  # hex MTH of those leaves
    checkpoints: int  # checkpoints whose root matched the recomputed tree at their size


def verify_journal(session: Session) -> JournalCheck:
    """Walk the journal in sequence order: the chain, then the Merkle tree recomputed from the
    entries against the stored nodes and against every checkpoint's root. Raise
    AuditChainBroken naming the first bad sequence number (0 for the head or the tree).

    Rows are streamed with the head row read by the same statement, so that on PostgreSQL both
    come from one snapshot and entries sequenced meanwhile cannot look like tampering.
    Checkpoint signatures are the caller's to check (they need the signer's certificate).
    """
    checkpoints = session.execute(
        select(AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.id).order_by(
            AuditCheckpoint.tree_size, AuditCheckpoint.id
        )
    ).all()
    walk = _walk_rows(session, checkpoints)
    if walk.count == 0:
        # No row carried the head along: read it on its own, with (same snapshot) whether the
        # journal has rows by now. If it has, they were sequenced after our walk: walk again.
        head = session.execute(_head_and_journal_has_rows()).one_or_none()
        if head is not None and head.journal_has_rows:
            walk = _walk_rows(session, checkpoints)
        if walk.count == 0:
            walk.head = None if head is None else (head.last_sequence, head.last_hash, 0)
    walk.finish()
    _check_stored_tree(session, walk)
    pending = session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.sequence.is_(None))
    )
    return JournalCheck(
        entries=walk.count,
        pending=int(pending or 0),
        tree_size=walk.tree_size,
        root_hash=walk.tree_root.hex(),
        checkpoints=walk.checkpoints_checked,
    )


def _walk_rows(session: Session, checkpoints: Sequence[Any]) -> _ChainWalk:
    walk = _ChainWalk(checkpoints=list(checkpoints))
    rows = session.execute(_rows_with_head(), execution_options={"yield_per": _VERIFY_BATCH})
    try:
        for row in rows:
            walk.check(row)
    except ValueError as ex:  # a tampered value that cannot even be parsed (JSON, timestamp)
        raise AuditChainBroken(walk.count + 1, f"entry cannot be read back: {ex}") from ex
    return walk


@dataclass
class _ChainWalk:
    """State of :func:`verify_journal` while it streams the rows; each check names its reason."""

    checkpoints: list[Row[Any]]
    count: int = 0
    prev_hash: str = GENESIS_HASH
    head: tuple[int, str, int] | None = None  # last_sequence, last_hash, tree_size
    frontier: Frontier = field(default_factory=Frontier)
    tree_root: bytes = EMPTY_ROOT
    checkpoints_checked: int = 0

    @property
    def tree_size(self) -> int:
        return 0 if self.head is None else min(self.head[2], self.count)

    def check(self, row: Row[Any]) -> None:
        expected = self.count + 1
        if row.head_sequence is None:
            raise AuditChainBroken(0, "the audit_head row is missing")
        self.head = (row.head_sequence, row.head_hash, row.head_tree_size)
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
        leaf = leaf_of(row)
        if chain_hash(leaf, row.prev_hash) != row.hash:
            raise AuditChainBroken(expected, "content does not match its hash (changed)")
        if expected == row.head_sequence and row.hash != row.head_hash:
            raise AuditChainBroken(expected, "audit_head names a different last hash")
        self.count, self.prev_hash = expected, row.hash
        if expected <= row.head_tree_size:
            if self.frontier.size == 0:
                self._check_checkpoints()  # checkpoints of the empty tree
            self.frontier.append(leaf_hash(leaf))
            self._check_checkpoints()

    def _check_checkpoints(self) -> None:
        size = self.frontier.size
        while self.checkpoints and self.checkpoints[0].tree_size <= size:
            checkpoint = self.checkpoints.pop(0)
            root = self.frontier.root() if checkpoint.tree_size == size else EMPTY_ROOT
            if root.hex() != checkpoint.root_hash:
                raise AuditChainBroken(
                    size,
                    f"checkpoint {checkpoint.id} (tree size {size}) signed another root: "
                    "the journal was rewritten after it was published",
                )
            self.checkpoints_checked += 1

    def finish(self) -> None:
        if self.head is None:
            raise AuditChainBroken(0, "the audit_head row is missing")
        head_sequence, head_hash, tree_size = self.head
        if self.count < head_sequence:
            raise AuditChainBroken(
                self.count + 1,
                f"entries {self.count + 1}..{head_sequence} are missing (deleted at the end)",
            )
        if self.count == 0 and head_hash != GENESIS_HASH:
            raise AuditChainBroken(0, "audit_head of an empty journal is not the genesis hash")
        if tree_size > self.count:
            raise AuditChainBroken(0, f"audit_head counts {tree_size} leaves, beyond the entries")
        self._check_checkpoints()  # those of the empty tree, when there is no leaf
        if self.checkpoints:
            late = self.checkpoints[0]
            raise AuditChainBroken(
                0, f"checkpoint {late.id} signs tree size {late.tree_size}, beyond the tree"
            )
        self.tree_root = self.frontier.root()


def _check_stored_tree(session: Session, walk: _ChainWalk) -> None:
    """The stored nodes (what proofs are made of) must give the root recomputed from entries."""
    size = walk.tree_size
    if size == 0:
        return
    wanted = perfect_subtrees(0, size)
    stored = tree_nodes(session, wanted)
    missing = [node for node in wanted if node not in stored]
    if missing:
        raise AuditChainBroken(0, f"Merkle tree nodes missing: {missing[:3]}")
    if range_hash(0, size, stored) != walk.tree_root:
        raise AuditChainBroken(0, "the stored Merkle tree does not match the entries")


def tree_nodes(session: Session, nodes: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of ``nodes`` (``(level, index)`` pairs), in one query per 500."""
    wanted = sorted(set(nodes))
    found: dict[tuple[int, int], bytes] = {}
    table = AuditTreeNode.__table__
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(table.c.level, table.c.idx, table.c.hash).where(
                tuple_(table.c.level, table.c.idx).in_(chunk)
            )
        )
        found.update({(row.level, row.idx): bytes(row.hash) for row in rows})
    return found


def _rows_with_head() -> Any:
    head = AuditHead.__table__
    by_id = head.c.id == HEAD_ID
    # Columns, not entities: the walk must read the database, not objects cached in the session.
    return (
        select(
            *AuditEntry.__table__.columns,
            select(head.c.last_sequence).where(by_id).scalar_subquery().label("head_sequence"),
            select(head.c.last_hash).where(by_id).scalar_subquery().label("head_hash"),
            select(head.c.tree_size).where(by_id).scalar_subquery().label("head_tree_size"),
        )
        .where(AuditEntry.sequence.is_not(None))
        .order_by(AuditEntry.sequence)
    )


def _head_and_journal_has_rows() -> Any:
    return select(
        AuditHead.last_sequence,
        AuditHead.last_hash,
        exists(select(AuditEntry.id).where(AuditEntry.sequence.is_not(None))).label(
            "journal_has_rows"
        ),
    ).where(AuditHead.id == HEAD_ID)


def leaf_of(row: Any, sequence: int | None = None) -> bytes:
    """:func:`leaf_data` of a journal row (its columns), numbered ``sequence`` if given."""
    return leaf_data(
        sequence=row.sequence if sequence is None else sequence,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        object=row.object,
        outcome=row.outcome,
        details_json=row.details,
    )


def content_hash_of(row: Any) -> str:
    """:func:`content_hash` of a journal row (its columns)."""
    return content_hash(
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        object=row.object,
        outcome=row.outcome,
        details_json=row.details,
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

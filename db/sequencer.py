"""The audit journal's sequencer: numbers, chains and tree-integrates committed entries in batches.

Writers (:func:`db.audit.append`) insert unsequenced entries and take no shared lock. One pass
of :func:`integrate`, in its own transaction:

1. locks the ``audit_head`` row (``FOR UPDATE``; on SQLite the write lock of ``BEGIN
   IMMEDIATE``): one sequencer at a time cluster-wide, and writers never wait for it;
2. if entries older than migration 0014 are not yet leaves of the Merkle tree, adds the next
   batch of them (the journal is migrated in place, a batch per pass);
3. then reads up to the rest of ``limit`` committed unsequenced entries in insertion order,
   checks each one's content hash, gives them the next sequence numbers, chains them (each
   hash covers the entry with its sequence and the previous hash), stores the Merkle nodes
   they complete and moves the head — all in the one transaction.

A sequencer killed at any point leaves either the whole batch or none of it: no entry is lost
(it stays pending for the next pass) and none is numbered twice (the UPDATE is conditional on
``sequence IS NULL``, and the database refuses any second one). An entry of a rolled-back
business transaction never existed. :func:`run_pending` loops until a pass finds less than a
batch; ``tamga worker``'s sequencer thread calls it in production, and in the embedded SQLite
mode :func:`install_inline` runs passes inside each committing transaction.

:func:`tree_head` reads the size and root for a checkpoint, :func:`inclusion_proof` and
:func:`consistency_proof` build the RFC 9162 proofs from the stored nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from db import audit
from db.audit import AuditCheckpoint, AuditEntry, AuditHead, AuditTreeNode, tree_nodes
from db.errors import AuditChainBroken
from db.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    nodes_for,
    range_hash,
)

__all__ = [
    "DEFAULT_BATCH",
    "Backlog",
    "Proof",
    "backlog",
    "consistency_proof",
    "inclusion_proof",
    "install_inline",
    "integrate",
    "latest_checkpoint",
    "root_at",
    "run_pending",
    "tree_head",
]

DEFAULT_BATCH = 5000

log = logging.getLogger("tamga.audit")

_JOURNAL = cast(Table, AuditEntry.__table__)
_TREE = cast(Table, AuditTreeNode.__table__)


def integrate(session: Session, *, limit: int = DEFAULT_BATCH) -> int:
    """One pass (see the module docstring) in the caller's transaction; the number of entries
    sequenced or joined to the tree. 0 when there was nothing to do."""
    if limit < 1:
        raise ValueError("limit must be positive")
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == audit.HEAD_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    joined, frontier = 0, None
    if head.tree_size < head.last_sequence:
        frontier = _frontier(session, head.tree_size)
        joined = _join_legacy(session, head, frontier, limit)
        if head.tree_size < head.last_sequence or joined == limit:
            return joined
    rows = session.execute(
        select(
            _JOURNAL.c.id,
            _JOURNAL.c.occurred_at,
            _JOURNAL.c.actor,
            _JOURNAL.c.action,
            _JOURNAL.c.object,
            _JOURNAL.c.outcome,
            _JOURNAL.c.details,
            _JOURNAL.c.content_hash,
        )
        .where(_JOURNAL.c.sequence.is_(None))
        .order_by(_JOURNAL.c.id)
        .limit(limit - joined)
    ).all()
    if not rows:
        return joined
    if frontier is None:
        frontier = _frontier(session, head.tree_size)
    sequence, prev_hash = head.last_sequence, head.last_hash
    numbered: list[dict[str, object]] = []
    nodes: list[dict[str, object]] = []
    for row in rows:
        if audit.content_hash_of(row) != row.content_hash:
            raise AuditChainBroken(0, f"pending entry id {row.id} changed after it was written")
        sequence += 1
        leaf = audit.leaf_of(row, sequence)
        entry_hash = audit.chain_hash(leaf, prev_hash)
        numbered.append(
            {"b_id": row.id, "b_sequence": sequence, "b_prev": prev_hash, "b_hash": entry_hash}
        )
        nodes.extend(_node_rows(frontier.append(leaf_hash(leaf))))
        prev_hash = entry_hash
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(_JOURNAL)
        .where(_JOURNAL.c.id == bindparam("b_id"), _JOURNAL.c.sequence.is_(None))
        .values(
            sequence=bindparam("b_sequence"),
            prev_hash=bindparam("b_prev"),
            hash=bindparam("b_hash"),
        ),
        numbered,
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != len(numbered):  # impossible under the head lock: stop, write nothing
        raise AuditChainBroken(0, "an entry was sequenced by another sequencer meanwhile")
    session.execute(insert(_TREE), nodes)
    head.last_sequence, head.last_hash, head.tree_size = sequence, prev_hash, frontier.size
    session.flush()
    return joined + len(rows)


def _join_legacy(session: Session, head: AuditHead, frontier: Frontier, limit: int) -> int:
    """Add already sequenced entries (written before migration 0014) to the tree."""
    rows = session.execute(
        select(
            _JOURNAL.c.sequence,
            _JOURNAL.c.occurred_at,
            _JOURNAL.c.actor,
            _JOURNAL.c.action,
            _JOURNAL.c.object,
            _JOURNAL.c.outcome,
            _JOURNAL.c.details,
        )
        .where(_JOURNAL.c.sequence > head.tree_size, _JOURNAL.c.sequence <= head.last_sequence)
        .order_by(_JOURNAL.c.sequence)
        .limit(limit)
    ).all()
    nodes: list[dict[str, object]] = []
    for row in rows:
        if row.sequence != frontier.size + 1:
            raise AuditChainBroken(frontier.size + 1, f"entry {frontier.size + 1} is missing")
        leaf = audit.leaf_of(row)
        nodes.extend(_node_rows(frontier.append(leaf_hash(leaf))))
    if not rows:
        raise AuditChainBroken(head.tree_size + 1, f"entry {head.tree_size + 1} is missing")
    session.execute(insert(_TREE), nodes)
    head.tree_size = frontier.size
    session.flush()
    return len(rows)


def _node_rows(completed: list[tuple[int, int, bytes]]) -> list[dict[str, object]]:
    return [{"level": level, "idx": index, "hash": value} for level, index, value in completed]


def _frontier(session: Session, size: int) -> Frontier:
    wanted = Frontier.nodes_of(size)
    stored = tree_nodes(session, wanted)
    try:
        return Frontier(size, [stored[node] for node in wanted])
    except KeyError as ex:
        raise AuditChainBroken(0, f"Merkle tree node {ex.args[0]} is missing") from None


def run_pending(factory: Callable[[], Session], *, limit: int = DEFAULT_BATCH) -> int:
    """Run passes, each its own transaction, until one finds less than a full batch; the number
    integrated (entries committed meanwhile wait for the next call)."""
    total = 0
    while True:
        with factory() as session, session.begin():
            done = integrate(session, limit=limit)
        total += done
        if done < limit:
            return total


def install_inline(factory: sessionmaker[Session]) -> None:
    """Sequence inline (the embedded SQLite mode): when a session of ``factory`` that appended
    entries commits its outermost transaction, the sequencer runs first inside that very
    transaction, in a savepoint. SQLite has one writer at a time anyway, so this costs no
    concurrency and no extra commit; the entries are numbered when the commit returns. A
    failing pass rolls back to its savepoint, is logged, and leaves the entries for the next
    commit or the worker: the business transaction still commits."""
    from sqlalchemy import event

    def before_commit(session: Session) -> None:
        # A savepoint's release fires this too: only the outermost commit sequences.
        if session.get_nested_transaction() is not None:
            return
        if not session.info.pop(audit.PENDING_KEY, False):
            return
        try:
            with session.begin_nested():
                while integrate(session) == DEFAULT_BATCH:
                    pass
        except Exception:  # the entries stay pending: the next commit or the worker numbers them
            log.exception("inline audit sequencing failed; entries stay pending")

    def after_rollback(session: Session, previous: SessionTransaction) -> None:
        if previous.parent is None:  # a savepoint's rollback leaves the outer's entries
            session.info.pop(audit.PENDING_KEY, None)

    event.listen(factory, "before_commit", before_commit)
    event.listen(factory, "after_soft_rollback", after_rollback)


@dataclass(frozen=True)
class Backlog:
    """Entries waiting for the sequencer, and how long the oldest has waited."""

    pending: int
    oldest: datetime | None

    def delay(self, now: datetime) -> float:
        """Seconds the oldest pending entry has waited (0 with none)."""
        return 0.0 if self.oldest is None else max(0.0, (now - self.oldest).total_seconds())


def backlog(session: Session) -> Backlog:
    """The pending count and the oldest pending entry's time."""
    row = session.execute(
        select(func.count(), func.min(_JOURNAL.c.occurred_at)).where(_JOURNAL.c.sequence.is_(None))
    ).one()
    oldest = row[1]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return Backlog(pending=int(row[0]), oldest=oldest)


def tree_head(session: Session) -> tuple[int, bytes]:
    """(size, root hash) of the Merkle tree as the head records it now."""
    size = session.execute(
        select(AuditHead.tree_size).where(AuditHead.id == audit.HEAD_ID)
    ).scalar_one()
    return size, root_at(session, size)


def root_at(session: Session, size: int) -> bytes:
    """The tree's root at ``size`` (at most the current size), from the stored nodes."""
    if size == 0:
        return EMPTY_ROOT
    return _hashes(session, [(0, size)], size)[0]


@dataclass(frozen=True)
class Proof:
    """An RFC 9162 proof: the hashes, in order, and the sizes it relates."""

    hashes: list[bytes]
    tree_size: int
    leaf_index: int | None = None  # inclusion proofs
    first_size: int | None = None  # consistency proofs


def inclusion_proof(session: Session, sequence: int, tree_size: int) -> Proof:
    """The audit path of the entry numbered ``sequence`` (leaf ``sequence - 1``) in the tree of
    ``tree_size``; ``ValueError`` when either lies beyond the tree."""
    current = _current_size(session)
    if not 1 <= tree_size <= current:
        raise ValueError(f"tree size {tree_size} is not between 1 and {current}")
    if not 1 <= sequence <= tree_size:
        raise ValueError(f"entry {sequence} is not in the tree of size {tree_size}")
    ranges = inclusion_ranges(sequence - 1, tree_size)
    return Proof(_hashes(session, ranges, tree_size), tree_size, leaf_index=sequence - 1)


def consistency_proof(session: Session, first: int, second: int) -> Proof:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second``."""
    current = _current_size(session)
    if not 1 <= first <= second <= current:
        raise ValueError(f"need 1 <= from <= to <= {current}, got {first} and {second}")
    ranges = consistency_ranges(first, second) if first < second else []
    return Proof(_hashes(session, ranges, second), second, first_size=first)


def _current_size(session: Session) -> int:
    return session.execute(
        select(AuditHead.tree_size).where(AuditHead.id == audit.HEAD_ID)
    ).scalar_one()


def _hashes(session: Session, ranges: list[tuple[int, int]], size: int) -> list[bytes]:
    stored = tree_nodes(session, nodes_for(ranges))
    try:
        return [range_hash(start, end, stored) for start, end in ranges]
    except KeyError as ex:
        raise AuditChainBroken(0, f"Merkle tree node {ex.args[0]} is missing") from None


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The newest signed checkpoint, if any."""
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
    ).first()

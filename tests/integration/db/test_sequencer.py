"""The audit sequencer (issue #16) on real SQLite and PostgreSQL: appends that take no shared
lock, batches numbered by one sequencer at a time, kills, rollbacks, the migration of an
existing journal, the database's refusals, and the Merkle tree's proofs checked by a verifier
written here from RFC 9162 (nothing of db.merkle is used to check them).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import Engine, Table, bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db import AuditChainBroken, AuditEntry, AuditHead, append, make_engine, make_session_factory
from db.audit import AuditCheckpoint, AuditTreeNode, verify_journal
from db.migrate import alembic_config
from db.sequencer import (
    backlog,
    consistency_proof,
    inclusion_proof,
    integrate,
    run_pending,
    tree_head,
)
from tests.integration.db.test_audit import GENESIS_HASH, spec_hash

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
JOURNAL = cast(Table, AuditEntry.__table__)
TREE = cast(Table, AuditTreeNode.__table__)
ROOT = Path(__file__).resolve().parents[3]


# --- RFC 9162 written out here, independently of db.merkle ---------------------------------------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, recursively."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return sha(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def rfc_verify_inclusion(
    leaf: bytes, index: int, size: int, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, sha(b"\x00" + leaf)
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = sha(b"\x01" + p + r)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = sha(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2, step by step (first < second)."""
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn % 2 == 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            fr, sr = sha(b"\x01" + c + fr), sha(b"\x01" + c + sr)
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = sha(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def documented_leaf(row: Any) -> bytes:
    """docs/audit.md: the entry's canonical JSON with its sequence, UTF-8."""
    content = {
        "sequence": row.sequence,
        "occurred_at": row.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "actor": row.actor,
        "action": row.action,
        "object": row.object,
        "outcome": row.outcome,
        "details": json.loads(row.details),
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def leaves_of(session: Session) -> list[bytes]:
    rows = session.execute(
        select(JOURNAL).where(JOURNAL.c.sequence.is_not(None)).order_by(JOURNAL.c.sequence)
    ).all()
    return [documented_leaf(row) for row in rows]


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def batched(engine: Engine) -> sessionmaker[Session]:
    """Sessions as a gunicorn worker on PostgreSQL has them: no inline sequencing."""
    return make_session_factory(engine, inline_audit=False)


def write(factory: sessionmaker[Session], count: int, *, actor: str = "officer") -> None:
    with factory.begin() as session:
        for n in range(count):
            append(
                session,
                actor=actor,
                action="payment.credited",
                object=f"account:{n}",
                details={"amount": n * 100, "note": "тест"},
                now=T0 + timedelta(microseconds=n),
            )


def sequences(session: Session) -> list[int | None]:
    return list(session.scalars(select(AuditEntry.sequence).order_by(AuditEntry.id)))


# --- the tests -----------------------------------------------------------------------------------


def test_entries_wait_unsequenced_until_the_sequencer_numbers_them(
    batched: sessionmaker[Session],
) -> None:
    write(batched, 3)
    with batched() as session:
        assert sequences(session) == [None, None, None]
        waiting = backlog(session)
        assert waiting.pending == 3
        assert waiting.oldest == T0
        assert waiting.delay(T0 + timedelta(seconds=2)) == pytest.approx(2.0)
        assert verify_journal(session).pending == 3
    assert run_pending(batched) == 3
    with batched() as session:
        assert sequences(session) == [1, 2, 3]
        assert backlog(session).pending == 0
        check = verify_journal(session)
        assert (check.entries, check.pending, check.tree_size) == (3, 0, 3)
        assert check.root_hash == mth(leaves_of(session)).hex()
    assert run_pending(batched) == 0


def test_a_rolled_back_transaction_leaves_no_entry(batched: sessionmaker[Session]) -> None:
    with batched() as session:
        session.begin()
        append(session, actor="a", action="charge.made", object="account:1", now=T0)
        session.flush()
        session.rollback()
    assert run_pending(batched) == 0
    with batched() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        assert verify_journal(session).entries == 0


def test_appends_take_no_shared_lock(pg_database_url: str) -> None:
    """A writer whose transaction stays open does not hold up another writer (the old journal
    locked its head row until commit: the second append waited, here it would time out)."""
    engine = make_engine(pg_database_url)
    try:
        factory = make_session_factory(engine, inline_audit=False)
        with factory() as first, factory() as second:
            first.begin()
            append(first, actor="a", action="x", object="o:1", now=T0)
            first.flush()  # its row is written, its transaction open
            second.begin()
            second.execute(text("SET LOCAL lock_timeout = '2s'"))
            append(second, actor="b", action="x", object="o:2", now=T0)
            second.commit()  # would raise LockNotAvailable if appends serialised
            first.commit()
        assert run_pending(factory) == 2
        with factory() as session:
            assert verify_journal(session).entries == 2
    finally:
        engine.dispose()


def test_the_sequencer_waits_for_no_writer(pg_database_url: str) -> None:
    """An open business transaction's entry is skipped, not waited for; it is numbered by a
    later pass once committed."""
    engine = make_engine(pg_database_url)
    try:
        factory = make_session_factory(engine, inline_audit=False)
        write(factory, 2)
        with factory() as open_writer:
            open_writer.begin()
            append(open_writer, actor="slow", action="x", object="o", now=T0)
            open_writer.flush()
            with factory() as session, session.begin():
                session.execute(text("SET LOCAL lock_timeout = '2s'"))
                assert integrate(session) == 2
            open_writer.commit()
        assert run_pending(factory) == 1
        with factory() as session:
            actors = session.scalars(select(AuditEntry.actor).order_by(AuditEntry.sequence))
            assert list(actors)[-1] == "slow"
            assert verify_journal(session).entries == 3
    finally:
        engine.dispose()


def _writer(url: str, worker: int, count: int, start: Any, errors: Any) -> None:
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine, inline_audit=False)
        start.wait(timeout=60)
        for n in range(count):
            with factory.begin() as session:
                append(session, actor=f"writer-{worker}", action="signature.made", object=f"d:{n}")
    except BaseException:
        errors.put(f"writer {worker}:\n{traceback.format_exc()}")
        raise
    finally:
        engine.dispose()


def _sequencer(url: str, stop: Any, errors: Any) -> None:
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine, inline_audit=False)
        while not stop.is_set():
            if run_pending(factory, limit=37) == 0:
                time.sleep(0.01)
    except BaseException:
        errors.put(f"sequencer:\n{traceback.format_exc()}")
        raise
    finally:
        engine.dispose()


def test_writer_and_sequencer_processes_build_one_journal(
    database_url: str, batched: sessionmaker[Session]
) -> None:
    """Four writer processes and two sequencer processes at once: every entry numbered exactly
    once, gapless, chained, and the tree's root is RFC 9162's over the entries."""
    writers, per_writer = 4, 60
    context = multiprocessing.get_context("spawn")
    start, stop, errors = context.Barrier(writers), context.Event(), context.Queue()
    sequencers = [
        context.Process(target=_sequencer, args=(database_url, stop, errors)) for _ in "ab"
    ]
    producers = [
        context.Process(target=_writer, args=(database_url, w, per_writer, start, errors))
        for w in range(writers)
    ]
    for process in [*sequencers, *producers]:
        process.start()
    for process in producers:
        process.join(timeout=180)
    stop.set()
    for process in sequencers:
        process.join(timeout=60)
    failures = [errors.get() for _ in range(errors.qsize())]
    assert [p.exitcode for p in [*sequencers, *producers]] == [0] * (writers + 2), failures
    run_pending(batched)
    total = writers * per_writer
    with batched() as session:
        numbers = session.scalars(select(AuditEntry.sequence).order_by(AuditEntry.sequence))
        assert list(numbers) == list(range(1, total + 1))
        check = verify_journal(session)
        assert (check.entries, check.tree_size, check.pending) == (total, total, 0)
        assert check.root_hash == mth(leaves_of(session)).hex()
        assert session.get_one(AuditHead, 1).tree_size == total


_KILLABLE = """
import sys, time
from db import make_engine, make_session_factory
from db.sequencer import run_pending
factory = make_session_factory(make_engine(sys.argv[1]), inline_audit=False)
print("ready", flush=True)
while True:
    run_pending(factory, limit=int(sys.argv[2]))
    time.sleep(0.001)
"""


def test_a_sequencer_killed_at_any_point_loses_and_repeats_nothing(
    database_url: str, batched: sessionmaker[Session]
) -> None:
    """SIGKILL the sequencer again and again while it works through a backlog: afterwards every
    entry is numbered once, the chain and the tree verify."""
    for _ in range(8):
        write(batched, 500)
    for delay in (0.2, 0.35, 0.5, 0.8, 1.1):
        process = subprocess.Popen(
            [sys.executable, "-c", _KILLABLE, database_url, "150"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        write(batched, 50)  # writers carry on meanwhile
    with batched() as session:
        partly = session.scalar(select(func.count()).where(JOURNAL.c.sequence.is_not(None)))
        assert partly is not None and partly > 0  # the kills did land mid-backlog
        verify_journal(session)  # what was committed before each kill is whole
    run_pending(batched)
    with batched() as session:
        total = 8 * 500 + 5 * 50
        assert list(session.scalars(select(AuditEntry.sequence).order_by(AuditEntry.sequence))) == (
            list(range(1, total + 1))
        )
        check = verify_journal(session)
        assert (check.entries, check.tree_size) == (total, total)


def test_proofs_check_out_with_rfc_9162(batched: sessionmaker[Session]) -> None:
    """Inclusion of every entry in trees of every size up to 37, consistency between every pair
    of sizes, the tree grown in uneven batches (each batch extends stored subtrees)."""
    for count in (1, 2, 5, 8, 13, 1, 7):
        write(batched, count)
        with batched() as session, session.begin():
            integrate(session, limit=4)  # partial batches: the frontier carries over
        run_pending(batched, limit=3)
    with batched() as session:
        leaves = leaves_of(session)
        size, root = tree_head(session)
        assert size == len(leaves) == 37
        assert root == mth(leaves)
        for n in range(1, size + 1):
            root_n = mth(leaves[:n])
            for sequence in range(1, n + 1):
                proof = inclusion_proof(session, sequence, n)
                assert rfc_verify_inclusion(
                    leaves[sequence - 1], sequence - 1, n, proof.hashes, root_n
                )
                wrong = leaves[sequence % n] if n > 1 else b"other"
                assert not rfc_verify_inclusion(wrong, sequence - 1, n, proof.hashes, root_n)
            for m in range(1, n):
                proof = consistency_proof(session, m, n)
                assert rfc_verify_consistency(m, n, mth(leaves[:m]), root_n, proof.hashes), (m, n)
        with pytest.raises(ValueError, match="not in the tree"):
            inclusion_proof(session, 38, 37)
        with pytest.raises(ValueError):
            inclusion_proof(session, 1, 38)
        with pytest.raises(ValueError):
            consistency_proof(session, 5, 4)


def test_an_existing_journal_is_migrated_in_place(tmp_path: Path, database_url: str) -> None:
    """A journal written by the old writers (migration 0013) keeps every row, id = sequence;
    the sequencer joins its entries to the tree before it numbers new ones."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(connection)
            command.downgrade(config, "0013")
        prev = GENESIS_HASH
        with engine.begin() as connection:
            for n in range(1, 12):
                row = {
                    "sequence": n,
                    "occurred_at": T0 + timedelta(seconds=n),
                    "actor": "old-writer",
                    "action": "certificate.issued",
                    "object": f"cert:{n:x}",
                    "outcome": "success",
                    "details": json.dumps({"n": n}, separators=(",", ":")),
                    "prev_hash": prev,
                }
                row["hash"] = prev = spec_hash(row)
                connection.execute(
                    text(
                        "INSERT INTO audit_journal (sequence, occurred_at, actor, action,"
                        " object, outcome, details, prev_hash, hash) VALUES (:sequence,"
                        " :occurred_at, :actor, :action, :object, :outcome, :details,"
                        " :prev_hash, :hash)"
                    ),
                    row,
                )
            connection.execute(
                text("UPDATE audit_head SET last_sequence = 11, last_hash = :h"), {"h": prev}
            )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        factory = make_session_factory(engine, inline_audit=False)
        with factory() as session:
            check = verify_journal(session)
            assert (check.entries, check.tree_size) == (11, 0)
            assert sequences(session) == list(range(1, 12))
            assert list(session.scalars(select(AuditEntry.id).order_by(AuditEntry.id))) == (
                list(range(1, 12))
            )
        write(factory, 4)
        with factory() as session, session.begin():
            assert integrate(session, limit=5) == 5  # old entries first, in batches
        assert run_pending(factory) == 6 + 4
        with factory() as session:
            check = verify_journal(session)
            assert (check.entries, check.tree_size) == (15, 15)
            assert check.root_hash == mth(leaves_of(session)).hex()
            assert sequences(session) == list(range(1, 16))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_journal SET sequence = 99 WHERE sequence = 1",
        "UPDATE audit_journal SET actor = 'mallory' WHERE sequence IS NULL",
        "UPDATE audit_journal SET sequence = 3, prev_hash = 'x', hash = 'y', actor = 'm'"
        " WHERE sequence IS NULL",
        "UPDATE audit_journal SET sequence = 3 WHERE sequence IS NULL",
        "DELETE FROM audit_journal WHERE sequence IS NULL",
        "UPDATE audit_tree SET hash = hash",
        "DELETE FROM audit_tree",
        "UPDATE audit_checkpoints SET tree_size = 0",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_tree",
        "TRUNCATE audit_checkpoints",
    ],
)
def test_the_database_refuses_every_change_but_the_sequencers(
    engine: Engine, batched: sessionmaker[Session], statement: str
) -> None:
    write(batched, 2)
    run_pending(batched)
    write(batched, 1)  # one pending
    with batched.begin() as session:
        session.add(
            AuditCheckpoint(
                tree_size=2,
                root_hash="00" * 32,
                signed_at=T0,
                body="b",
                signature=b"s",
                certificate_sha256="00" * 32,
            )
        )
    if statement.startswith("TRUNCATE") and engine.dialect.name == "sqlite":
        statement = statement.replace("TRUNCATE", "DELETE FROM")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    with batched() as session:
        assert sequences(session) == [1, 2, None]


def _without_triggers(engine: Engine, table: str, change: Any, **values: Any) -> None:
    """Run ``change`` (a statement) with ``table``'s append-only triggers out of the way."""
    change = text(change) if isinstance(change, str) else change
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            connection.execute(change, values)
            connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        else:
            names = (
                connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                    (table,),
                )
                .scalars()
                .all()
            )
            for name in names:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
            connection.execute(change, values)


def test_a_pending_entry_changed_behind_the_writers_back_is_not_sequenced(
    engine: Engine, batched: sessionmaker[Session]
) -> None:
    write(batched, 3)
    _without_triggers(
        engine, "audit_journal", "UPDATE audit_journal SET actor = 'mallory' WHERE id = 2"
    )
    with pytest.raises(AuditChainBroken, match="pending entry id 2 changed"):
        run_pending(batched)
    with batched() as session:
        assert sequences(session) == [None, None, None]  # the batch rolled back whole


def test_a_tampered_tree_node_is_found(engine: Engine, batched: sessionmaker[Session]) -> None:
    write(batched, 6)
    run_pending(batched)
    _without_triggers(
        engine, "audit_tree", "UPDATE audit_tree SET hash = hash WHERE level = 1 AND idx = 2"
    )  # nothing changed yet: the trigger removal itself is harmless
    with batched() as session:
        verify_journal(session)
    forged = TREE.update().where(TREE.c.level == 1, TREE.c.idx == 2).values(hash=b"\xab" * 32)
    _without_triggers(engine, "audit_tree", forged)
    with batched() as session, pytest.raises(AuditChainBroken, match="stored Merkle tree"):
        verify_journal(session)


def test_a_rewritten_history_contradicts_its_checkpoint(
    engine: Engine, batched: sessionmaker[Session]
) -> None:
    """Someone with full database access rewrites entry 2 and re-chains every later hash and the
    head: the chain verifies again, but the checkpoint signed before no longer matches."""
    write(batched, 5)
    run_pending(batched)
    with batched.begin() as session:
        size, root = tree_head(session)
        session.add(
            AuditCheckpoint(
                tree_size=size,
                root_hash=root.hex(),
                signed_at=T0,
                body="b",
                signature=b"s",
                certificate_sha256="00" * 32,
            )
        )
    with batched() as session:
        assert verify_journal(session).checkpoints == 1
    with engine.begin() as connection:
        rows = [
            dict(r._mapping)
            for r in connection.execute(select(JOURNAL).order_by(JOURNAL.c.sequence))
        ]
    rows[1]["actor"] = "mallory"
    prev = GENESIS_HASH
    for row in rows:
        row["prev_hash"] = prev
        row["hash"] = prev = spec_hash(row)
    by_sequence = JOURNAL.c.sequence == bindparam("n")
    # Two steps, so that the unique hash column never collides midway.
    for row in rows:
        _without_triggers(
            engine,
            "audit_journal",
            JOURNAL.update()
            .where(by_sequence)
            .values(actor=row["actor"], prev_hash=row["prev_hash"], hash=f"h{row['sequence']}"),
            n=row["sequence"],
        )
    for row in rows:
        change = JOURNAL.update().where(by_sequence).values(hash=row["hash"])
        _without_triggers(engine, "audit_journal", change, n=row["sequence"])
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    with batched() as session, pytest.raises(AuditChainBroken, match="signed another root"):
        verify_journal(session)


def test_the_sequencer_is_one_at_a_time(pg_database_url: str) -> None:
    """A second sequencer waits for the first's head lock (it would time out here), so two never
    number at once."""
    engine = make_engine(pg_database_url)
    try:
        factory = make_session_factory(engine, inline_audit=False)
        write(factory, 3)
        with factory() as first, factory() as second:
            first.begin()
            assert integrate(first) == 3
            second.begin()
            second.execute(text("SET LOCAL lock_timeout = '500ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                integrate(second)
            second.rollback()
            first.commit()
        with factory() as session:
            assert verify_journal(session).entries == 3
    finally:
        engine.dispose()


def test_inline_sequencing_runs_at_the_outer_commit_not_at_a_savepoint(
    session_factory: sessionmaker[Session],
) -> None:
    """The embedded mode numbers entries after the outermost commit: a savepoint's release is
    no commit (the outer transaction holds the database), a savepoint's rollback takes only
    its own entries away."""
    with session_factory() as session:
        with session.begin():
            append(session, actor="a", action="outer", object="o", now=T0)
            with session.begin_nested():
                append(session, actor="a", action="kept", object="o", now=T0)
            savepoint = session.begin_nested()
            append(session, actor="a", action="undone", object="o", now=T0)
            savepoint.rollback()
            assert sequences(session) == [None, None]
        assert sequences(session) == [1, 2]
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.sequence))
        assert list(actions) == ["outer", "kept"]
    with session_factory() as session:
        session.begin()
        append(session, actor="a", action="rolled back", object="o", now=T0)
        session.rollback()
        session.begin()
        session.commit()  # nothing appended in this one: no pass needed, none harmful
        assert sequences(session) == [1, 2]

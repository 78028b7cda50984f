"""The audit journal on real SQLite and PostgreSQL: hashing, tamper detection, concurrency.

Tampering is done the way a DBA would have to: the append-only triggers are bypassed first
(``DISABLE TRIGGER USER`` on PostgreSQL, dropped on SQLite). ``AuditChainBroken.sequence`` is
the first journal sequence number that can no longer be trusted; for a deleted row that is the
number of the missing row itself.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db import (
    GENESIS_HASH,
    AuditChainBroken,
    AuditEntry,
    AuditHead,
    append,
    make_engine,
    make_session_factory,
    verify_chain,
)
from db.sequencer import run_pending

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
JOURNAL = cast(Table, AuditEntry.__table__)
HEAD = cast(Table, AuditHead.__table__)


def spec_hash(row: dict[str, Any]) -> str:
    """The documented hash, written out independently of db.audit (the test's own oracle)."""
    content = {
        "sequence": row["sequence"],
        "occurred_at": row["occurred_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "actor": row["actor"],
        "action": row["action"],
        "object": row["object"],
        "outcome": row["outcome"],
        "details": json.loads(row["details"]),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8") + row["prev_hash"].encode("ascii")).hexdigest()


def append_five(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        for n in range(1, 6):
            append(
                session,
                actor=f"officer-{n}",
                action="certificate.issued",
                object=f"cert:{n:x}",
                details={"serial": f"{n:040x}", "holder": "Асанов Б."},
                now=T0 + timedelta(seconds=n),
            )


def tamper(engine: Engine, change: Callable[[Any], None]) -> None:
    """Run ``change(connection)`` with the append-only triggers out of the way."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_journal DISABLE TRIGGER USER")
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_journal_sequence_once")
            connection.exec_driver_sql("DROP TRIGGER audit_journal_no_delete")
        change(connection)
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ALTER TABLE audit_journal ENABLE TRIGGER USER")


def journal_row(connection: Any, sequence: int) -> dict[str, Any]:
    row = connection.execute(select(JOURNAL).where(JOURNAL.c.sequence == sequence)).one()
    return dict(row._mapping)


def assert_broken_at(session_factory: sessionmaker[Session], sequence: int) -> AuditChainBroken:
    with session_factory() as session, pytest.raises(AuditChainBroken) as caught:
        verify_chain(session)
    assert caught.value.sequence == sequence, caught.value
    assert str(sequence) in str(caught.value)
    assert caught.value.reason in str(caught.value)
    return caught.value


def test_entries_are_hashed_as_documented(session_factory: sessionmaker[Session]) -> None:
    bishkek = timezone(timedelta(hours=6))
    with session_factory.begin() as session:
        entry = append(
            session,
            actor="officer:7",
            action="certificate.revoked",
            object="cert:1f",
            outcome="success",
            details={"reason": "keyCompromise", "б": [1, 2.5, None]},
            now=T0.astimezone(bishkek),
        )
    with session_factory() as session:
        stored = session.execute(select(JOURNAL)).one()._mapping
        head = session.get_one(AuditHead, 1)
    assert stored["sequence"] == 1
    assert stored["prev_hash"] == GENESIS_HASH
    assert stored["occurred_at"] == T0
    assert stored["occurred_at"].utcoffset() == timedelta(0)
    assert stored["details"] == '{"reason":"keyCompromise","б":[1,2.5,null]}'
    assert stored["hash"] == spec_hash(dict(stored))
    assert stored["id"] == entry.id
    assert (head.last_sequence, head.last_hash) == (1, stored["hash"])


def test_intact_chain_verifies(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        assert verify_chain(session) == 0
    append_five(session_factory)
    with session_factory() as session:
        assert verify_chain(session) == 5
        sequences = session.scalars(select(AuditEntry.sequence).order_by(AuditEntry.sequence))
        assert list(sequences) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("column", "value"),
    [("actor", "mallory"), ("details", '{"serial":"ff"}'), ("outcome", "failure")],
)
def test_changed_row_is_detected(
    engine: Engine, session_factory: sessionmaker[Session], column: str, value: str
) -> None:
    append_five(session_factory)
    tamper(
        engine,
        lambda c: c.execute(JOURNAL.update().where(JOURNAL.c.sequence == 3), {column: value}),
    )
    assert_broken_at(session_factory, 3)


def test_changed_row_is_detected_despite_objects_cached_in_the_session(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        entry = append(session, actor="a", action="x", object="o", now=T0)
        session.commit()
        tamper(engine, lambda c: c.execute(JOURNAL.update().values(actor="mallory")))
        assert entry.actor == "a"  # the stale object is still in this session's identity map
        with pytest.raises(AuditChainBroken) as caught:
            verify_chain(session)
    assert caught.value.sequence == 1


def test_deleted_row_is_detected_at_its_own_sequence(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    append_five(session_factory)
    tamper(engine, lambda c: c.execute(JOURNAL.delete().where(JOURNAL.c.sequence == 3)))
    broken = assert_broken_at(session_factory, 3)
    assert "missing" in broken.reason


def test_deleted_last_row_is_detected_through_the_head(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    append_five(session_factory)
    tamper(engine, lambda c: c.execute(JOURNAL.delete().where(JOURNAL.c.sequence == 5)))
    broken = assert_broken_at(session_factory, 5)
    assert "deleted at the end" in broken.reason


def test_rows_swapped_are_detected(engine: Engine, session_factory: sessionmaker[Session]) -> None:
    append_five(session_factory)

    def swap(connection: Any) -> None:
        second, third = journal_row(connection, 2), journal_row(connection, 3)
        connection.execute(JOURNAL.delete().where(JOURNAL.c.sequence.in_([2, 3])))
        connection.execute(insert(JOURNAL), [{**third, "sequence": 2}, {**second, "sequence": 3}])

    tamper(engine, swap)
    assert_broken_at(session_factory, 2)


def test_forged_row_appended_without_the_head_is_detected(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    append_five(session_factory)

    def forge(connection: Any) -> None:
        last = journal_row(connection, 5)
        last.pop("id")  # a new row: the database gives it an id
        forged = {**last, "sequence": 6, "actor": "mallory", "prev_hash": last["hash"]}
        forged["hash"] = spec_hash(forged)  # correctly chained: the algorithm is public
        connection.execute(insert(JOURNAL), forged)

    tamper(engine, forge)
    broken = assert_broken_at(session_factory, 6)
    assert "beyond the head" in broken.reason


def test_forged_row_inserted_in_the_middle_is_detected(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """A forger renumbers rows 3..5 to 4..6, inserts a validly hashed row 3, moves the head.

    The forged row itself verifies (anyone can compute a SHA-256): the chain breaks at 4,
    the first genuine row whose sequence and link no longer match.
    """
    append_five(session_factory)

    def forge(connection: Any) -> None:
        for sequence in (5, 4, 3):  # downwards, so the primary key never collides
            moved = JOURNAL.update().where(JOURNAL.c.sequence == sequence)
            connection.execute(moved.values(sequence=sequence + 1))
        forged = {**journal_row(connection, 4), "sequence": 3, "actor": "mallory"}
        forged.pop("id")
        forged["prev_hash"] = journal_row(connection, 2)["hash"]
        forged["hash"] = spec_hash(forged)
        connection.execute(insert(JOURNAL), forged)
        connection.execute(HEAD.update().values(last_sequence=6))

    tamper(engine, forge)
    assert_broken_at(session_factory, 4)


def test_head_disagreeing_with_the_journal_is_detected(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    append_five(session_factory)
    with engine.begin() as connection:
        connection.execute(HEAD.update().values(last_hash="f" * 64))
    assert_broken_at(session_factory, 5)
    with engine.begin() as connection:
        connection.execute(HEAD.delete())
    assert "missing" in assert_broken_at(session_factory, 0).reason


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_journal SET actor = 'mallory' WHERE sequence = 1",
        "DELETE FROM audit_journal WHERE sequence = 1",
        "DELETE FROM audit_journal",
        "TRUNCATE audit_journal",
    ],
)
def test_database_refuses_update_and_delete(
    engine: Engine, session_factory: sessionmaker[Session], statement: str
) -> None:
    append_five(session_factory)
    if statement.startswith("TRUNCATE") and engine.dialect.name == "sqlite":
        # SQLite's TRUNCATE is an unqualified DELETE (the "truncate optimisation", which
        # SQLite turns off when a DELETE trigger exists).
        statement = "DELETE FROM audit_journal"
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    with session_factory() as session:
        assert verify_chain(session) == 5


@pytest.mark.parametrize(
    "details",
    [
        {"pin": "1234"},
        {"user_pin": "1234"},
        {"SO_PIN": "1234"},
        {"password": "x"},
        {"client_secret": "x"},
        {"access_token": "x"},
        {"private_key": "x"},
        {"request": {"signer": "a", "PinCode": "1234"}},
        {"attempts": [{"pin": "1234"}]},
    ],
)
def test_secret_looking_details_are_refused(
    session_factory: sessionmaker[Session], details: dict[str, Any]
) -> None:
    with session_factory() as session:
        with pytest.raises(ValueError, match="looks like a secret"):
            append(session, actor="a", action="login.failed", object="o", details=details)
        session.commit()  # even a caller that commits anyway writes nothing
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
        assert session.get_one(AuditHead, 1).last_sequence == 0


@pytest.mark.parametrize(
    ("details", "now"),
    [({"when": datetime.now(UTC)}, T0), ({"x": float("nan")}, T0), ({}, datetime(2025, 1, 1))],
)
def test_unusable_details_or_time_are_refused(
    session_factory: sessionmaker[Session], details: dict[str, Any], now: datetime
) -> None:
    with session_factory() as session, pytest.raises(ValueError):
        append(session, actor="a", action="x", object="o", details=details, now=now)


def append_from_process(url: str, worker: int, count: int, start: Any, errors: Any) -> None:
    """Child process body (module level, so that "spawn" can import it)."""
    engine = make_engine(url)
    try:
        session_factory = make_session_factory(engine)
        start.wait(timeout=60)
        for n in range(count):
            with session_factory.begin() as session:
                append(
                    session, actor=f"worker-{worker}", action="signature.made", object=f"doc:{n}"
                )
    except BaseException:
        errors.put(f"worker {worker}:\n{traceback.format_exc()}")
        raise
    finally:
        engine.dispose()


def test_concurrent_processes_build_one_chain(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    workers, per_worker = 4, 25
    context = multiprocessing.get_context("spawn")
    start, errors = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(
            target=append_from_process, args=(database_url, w, per_worker, start, errors)
        )
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    failures = [errors.get() for _ in range(errors.qsize())]
    assert [p.exitcode for p in processes] == [0] * workers, failures
    # On PostgreSQL the writers left their entries to the sequencer (tamga worker's job).
    run_pending(session_factory)
    with session_factory() as session:
        assert verify_chain(session) == workers * per_worker
        sequences = list(session.scalars(select(AuditEntry.sequence).order_by(AuditEntry.sequence)))
        actors = session.execute(text("SELECT count(DISTINCT actor) FROM audit_journal")).scalar()
    assert sequences == list(range(1, workers * per_worker + 1))
    assert actors == workers


def test_unparsable_tampered_details_are_reported_as_a_broken_chain(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    append_five(session_factory)
    tamper(
        engine,
        lambda c: c.execute(JOURNAL.update().where(JOURNAL.c.sequence == 2), {"details": "{"}),
    )
    assert "cannot be read back" in assert_broken_at(session_factory, 2).reason

"""Audit journal guarantees that mutation testing (`make mutation`, area audit) found unproved.

Each test names the surviving mutant of db/audit.py it kills. The promise is AuditChainBroken's
(db/errors.py, docs/architecture.md): ``sequence`` is the first sequence number that can no
longer be trusted, ``0`` when the fault is in the ``audit_head`` row itself.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from db import AuditEntry, AuditHead, append, verify_chain
from db.sequencer import integrate
from tests.integration.db.test_audit import (
    HEAD,
    JOURNAL,
    T0,
    append_five,
    assert_broken_at,
    journal_row,
    spec_hash,
    tamper,
)


def test_empty_journal_without_its_head_is_broken_at_sequence_0(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """Kills _ChainWalk.finish 2, 4-6 and verify_chain 7, 8, 14 (head read on its own)."""
    with engine.begin() as connection:
        connection.execute(HEAD.delete())
    assert "missing" in assert_broken_at(session_factory, 0).reason


def test_empty_journal_whose_head_is_not_genesis_is_broken_at_sequence_0(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """A head that names entries the journal does not have; kills _ChainWalk.finish 21-27."""
    with engine.begin() as connection:
        connection.execute(HEAD.update().values(last_hash="f" * 64))
    assert_broken_at(session_factory, 0)


def test_forged_row_numbered_below_one_is_reported_at_its_own_number(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    """A validly hashed row 0 put before the genesis entry; kills _ChainWalk.check 14, 16, 17."""
    append_five(session_factory)

    def forge(connection: Any) -> None:
        forged = {**journal_row(connection, 1), "sequence": 0, "actor": "mallory"}
        forged.pop("id")
        forged["hash"] = spec_hash(forged)
        connection.execute(insert(JOURNAL), forged)

    tamper(engine, forge)
    assert "unexpected sequence" in assert_broken_at(session_factory, 0).reason


def test_append_defaults_to_success_now_in_utc(session_factory: sessionmaker[Session]) -> None:
    """``outcome`` defaults to "success", ``now`` to the current UTC time; kills append 1, 2, 9."""
    before = datetime.now(UTC)
    with session_factory.begin() as session:
        append(session, actor="officer", action="crl.published", object="crl:root")
    after = datetime.now(UTC)
    with session_factory() as session:
        entry = session.execute(select(AuditEntry)).scalar_one()
        assert entry.outcome == "success"
        assert before - timedelta(seconds=1) <= entry.occurred_at <= after + timedelta(seconds=1)
        assert verify_chain(session) == 1


def test_sequencer_rereads_a_head_cached_in_its_session(
    session_factory: sessionmaker[Session],
) -> None:
    """A session that read the head earlier must not chain onto that stale copy after another
    writer's entry was sequenced (``integrate``'s ``populate_existing``)."""
    with session_factory() as stale:
        with stale.begin():
            # Held, or the weakly referencing identity map lets it go; expire_on_commit=False
            # keeps its attributes after commit.
            cached = stale.get(AuditHead, 1)
            assert cached is not None
        with session_factory.begin() as other:
            append(other, actor="a", action="x.done", object="o:1", now=T0)
        with stale.begin():
            entry = append(stale, actor="b", action="x.done", object="o:2", now=T0)
            assert integrate(stale) == 1
            assert stale.scalar(select(AuditEntry.sequence).where(AuditEntry.id == entry.id)) == 2
            assert cached.last_sequence == 2
    with session_factory() as session:
        assert verify_chain(session) == 2

"""billing.credit_many (issue #16): many credits in one transaction, each what billing.credit
makes — idempotent, audited, refused whole on a bad order — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import billing
from billing import CreditOrder, ledger
from billing.models import LedgerEntry, LedgerTransaction
from db import AuditEntry

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
ACTOR = "bank-import"
INNS = [f"2{n:013d}" for n in range(10)]


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_factory.begin() as s:
        for inn in INNS:
            billing.open_account(s, inn=inn, name=f"ОсОО {inn}", now=NOW, actor=ACTOR)
    return session_factory


def orders(count: int, *, start: int = 0, amount: int = 100) -> list[CreditOrder]:
    return [
        CreditOrder(
            inn=INNS[n % len(INNS)],
            amount=amount + n,
            key=f"bank:stmt-1:{n}",
            source=ledger.BANK,
            description=f"line {n}",
        )
        for n in range(start, start + count)
    ]


def counts(s: Session) -> tuple[int, int, int]:
    return (
        s.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
        s.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        s.scalar(select(func.count()).where(AuditEntry.action == "billing.credit.posted")) or 0,
    )


def test_a_batch_posts_each_credit_as_credit_would(db: sessionmaker[Session]) -> None:
    batch = orders(100)
    with db.begin() as s:
        postings = billing.credit_many(s, batch, now=NOW, actor=ACTOR)
    assert [p.key for p in postings] == [o.key for o in batch]
    assert not any(p.replayed for p in postings)
    assert len({p.transaction_id for p in postings}) == 100
    with db() as s:
        assert counts(s) == (100, 200, 100)
        for inn in INNS:
            expected = sum(o.amount for o in batch if o.inn == inn)
            assert billing.balance(s, inn).posted == expected
        assert billing.check_balances(s) == (len(INNS), [])
        # The same audit entry billing.credit writes, one per credit, with its transaction.
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "billing.credit.posted")
        ).all()
        details = sorted((e.details_dict() for e in entries), key=lambda d: str(d["key"]))
        first = next(d for d in details if d["key"] == "bank:stmt-1:0")
        assert first == {
            "amount": 100, "key": "bank:stmt-1:0", "source": ledger.BANK,
            "transaction": postings[0].transaction_id,
        }  # fmt: skip
        assert {e.object for e in entries} == {ledger.customer(inn) for inn in INNS}
    # A credit of the batch replays through billing.credit, and the reverse.
    with db.begin() as s:
        again = billing.credit(
            s, inn=INNS[3], amount=103, key="bank:stmt-1:3", source=ledger.BANK,
            description="line 3", now=NOW, actor=ACTOR,
        )  # fmt: skip
        assert again.replayed and again.transaction_id == postings[3].transaction_id


def test_a_replayed_batch_writes_nothing(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        first = billing.credit_many(s, orders(30), now=NOW, actor=ACTOR)
    with db.begin() as s:
        second = billing.credit_many(s, orders(40), now=NOW, actor=ACTOR)  # 30 old, 10 new
    assert [p.replayed for p in second] == [True] * 30 + [False] * 10
    assert [p.transaction_id for p in second[:30]] == [p.transaction_id for p in first]
    with db() as s:
        assert counts(s) == (40, 80, 40)
        assert billing.check_balances(s) == (len(INNS), [])


def test_the_same_key_twice_in_a_batch(db: sessionmaker[Session]) -> None:
    twice = [*orders(3), orders(1)[0]]
    with db.begin() as s:
        postings = billing.credit_many(s, twice, now=NOW, actor=ACTOR)
    assert [p.replayed for p in postings] == [False, False, False, True]
    assert postings[3].transaction_id == postings[0].transaction_id
    with db() as s:
        assert counts(s) == (3, 6, 3)
    clash = [*orders(2), CreditOrder(INNS[0], 999, "bank:stmt-1:0", ledger.BANK, "other")]
    with pytest.raises(billing.IdempotencyConflict), db.begin() as s:
        billing.credit_many(s, clash, now=NOW, actor=ACTOR)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (CreditOrder(INNS[0], 500, "bank:stmt-1:0", ledger.BANK, "another amount"),
         billing.IdempotencyConflict),
        (CreditOrder("29999999999999", 100, "bank:x", ledger.BANK, "unknown"),
         billing.AccountNotFound),
        (CreditOrder(INNS[1], 0, "bank:zero", ledger.BANK, "zero"), billing.InvalidAmount),
        (CreditOrder(INNS[1], 100, " bank:space", ledger.BANK, "key"), billing.InvalidAmount),
    ],
)  # fmt: skip
def test_one_bad_order_refuses_the_whole_batch(
    db: sessionmaker[Session], bad: CreditOrder, error: type[Exception]
) -> None:
    with db.begin() as s:
        billing.credit_many(s, orders(1), now=NOW, actor=ACTOR)  # bank:stmt-1:0 exists
    with pytest.raises(error), db.begin() as s:
        billing.credit_many(s, [*orders(20, start=1), bad], now=NOW, actor=ACTOR)
    with db() as s:
        assert counts(s) == (1, 2, 1)
        assert sum(billing.balance(s, inn).posted for inn in INNS) == 100


def test_a_terminated_subscriber_refuses_the_batch(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        billing.terminate(s, inn=INNS[2], reason="contract ended", now=NOW, actor=ACTOR)
    with pytest.raises(billing.AccountTerminated), db.begin() as s:
        billing.credit_many(s, orders(5), now=NOW, actor=ACTOR)
    with db() as s:
        assert counts(s)[0] == 0


def test_batches_in_opposite_orders_never_deadlock(
    db: sessionmaker[Session], database_url: str
) -> None:
    """Eight threads post batches over every subscriber, half in reverse order: the rows are
    locked in INN order, so they queue and every credit lands once."""
    errors: list[BaseException] = []

    def run(thread: int) -> None:
        batch = orders(50, start=thread * 50)
        if thread % 2:
            batch.reverse()
        try:
            with db.begin() as s:
                billing.credit_many(s, batch, now=NOW, actor=f"t{thread}")
        except BaseException as ex:  # reported below
            errors.append(ex)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    with db() as s:
        assert counts(s) == (400, 800, 400)
        assert billing.check_balances(s) == (len(INNS), [])
        actors = Counter(s.scalars(select(LedgerTransaction.actor)).all())
        assert actors == Counter({f"t{n}": 50 for n in range(8)})

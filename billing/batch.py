"""Many credits in one database transaction: the bulk entry point of issue #16.

A bank statement import, a provider's registry reconciliation or a mass correction moves money
to hundreds of balances at once. :func:`credit_many` posts them in the caller's one transaction
with a constant number of statements, not a dozen per credit:

1. every order is checked before the database is touched (amount, key, the same key twice in
   the batch must mean the same credit);
2. the subscribers' rows are locked in one statement, **in INN order** — two batches touching
   the same subscribers in any order queue, they never deadlock — and each must be active;
3. the keys already used are read in one statement: a key with the same content is a replay
   (its first posting is returned, nothing is written again), with other content it is
   refused (``IdempotencyConflict``, and the caller's transaction writes nothing);
4. the new transactions are inserted in one statement returning their ids, their entries in
   another, each subscriber's cached balance moved once, and one audit entry appended per credit
   — exactly the entry :func:`billing.credit` writes — all in the caller's transaction.

Each credit is what :func:`billing.credit` would have made (same legs, fingerprint, audit
action and details), so a credit may be replayed through either entry point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from billing.errors import AccountNotFound, IdempotencyConflict
from billing.ledger import (
    Posting,
    _ledger_account,
    _require_active,
    audit_event,
    check_amount,
    check_key,
    customer,
    fingerprint,
)
from billing.models import CustomerAccount, LedgerEntry, LedgerTransaction

__all__ = ["CreditOrder", "credit_many"]

_TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_CUSTOMERS = cast(Table, CustomerAccount.__table__)


@dataclass(frozen=True)
class CreditOrder:
    """One credit of a batch: as the keyword arguments of :func:`billing.credit`."""

    inn: str
    amount: int
    key: str
    source: str
    description: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(op="credit", inn=self.inn, amount=self.amount, source=self.source)


def credit_many(
    session: Session,
    orders: Sequence[CreditOrder],
    *,
    now: datetime,
    actor: str,
    kind: str = "credit",
) -> list[Posting]:
    """Post every credit of ``orders`` in the caller's transaction; their postings, in order
    (``replayed`` for a key used before, in an earlier call or earlier in this batch)."""
    first_of: dict[str, CreditOrder] = {}
    for order in orders:
        check_amount(order.amount)
        check_key(order.key)
        earlier = first_of.setdefault(order.key, order)
        if earlier.fingerprint != order.fingerprint:
            raise IdempotencyConflict(order.key)
    if not orders:
        return []
    inns = sorted({order.inn for order in orders})
    locked = {
        row.inn: row
        for row in session.scalars(
            select(CustomerAccount)
            .where(CustomerAccount.inn.in_(inns))
            .order_by(CustomerAccount.inn)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    for inn in inns:
        if inn not in locked:
            raise AccountNotFound(f"no billing account for INN {inn}")
    done = _existing(session, first_of)
    new = [order for key, order in first_of.items() if key not in done]
    for order in new:
        _require_active(locked[order.inn])
    if new:
        done.update(_post(session, new, now=now, actor=actor, kind=kind, accounts=locked))
    seen: set[str] = set()
    postings = []
    for order in orders:
        posting = done[order.key]
        replayed = posting.replayed or order.key in seen
        seen.add(order.key)
        postings.append(posting if replayed == posting.replayed else _replayed(posting))
    return postings


def _replayed(posting: Posting) -> Posting:
    return Posting(
        posting.transaction_id,
        posting.key,
        posting.kind,
        posting.inn,
        posting.amount,
        posting.occurred_at,
        True,
    )


def _existing(session: Session, first_of: dict[str, CreditOrder]) -> dict[str, Posting]:
    """Postings already made under the batch's keys (refused when their content differs)."""
    found: dict[str, Posting] = {}
    keys = list(first_of)
    for start in range(0, len(keys), 500):
        rows = session.execute(
            select(_TRANSACTIONS).where(
                _TRANSACTIONS.c.idempotency_key.in_(keys[start : start + 500])
            )
        )
        for row in rows:
            if row.fingerprint != first_of[row.idempotency_key].fingerprint:
                raise IdempotencyConflict(row.idempotency_key)
            found[row.idempotency_key] = Posting(
                row.id, row.idempotency_key, row.kind, row.inn, row.amount, row.occurred_at, True
            )
    return found


def _post(
    session: Session,
    orders: list[CreditOrder],
    *,
    now: datetime,
    actor: str,
    kind: str,
    accounts: dict[str, CustomerAccount],
) -> dict[str, Posting]:
    ids = session.execute(
        insert(_TRANSACTIONS).returning(
            _TRANSACTIONS.c.id, _TRANSACTIONS.c.idempotency_key, sort_by_parameter_order=True
        ),
        [
            {
                "idempotency_key": order.key,
                "fingerprint": order.fingerprint,
                "kind": kind,
                "inn": order.inn,
                "amount": order.amount,
                "description": order.description,
                "actor": actor,
                "occurred_at": now,
                "reverses_id": None,
            }
            for order in orders
        ],
    ).all()
    account_ids = {
        code: _ledger_account(session, code, inn)
        for code, inn in {
            **{order.source: None for order in orders},
            **{customer(order.inn): order.inn for order in orders},
        }.items()
    }
    entries: list[dict[str, Any]] = []
    moved: dict[str, int] = defaultdict(int)
    postings: dict[str, Posting] = {}
    for order, (txn_id, key) in zip(orders, ids, strict=True):
        assert key == order.key  # noqa: S101 - sort_by_parameter_order
        entries.append(
            {
                "transaction_id": txn_id,
                "account_id": account_ids[order.source],
                "amount": order.amount,
            }
        )
        entries.append(
            {
                "transaction_id": txn_id,
                "account_id": account_ids[customer(order.inn)],
                "amount": -order.amount,
            }
        )
        moved[order.inn] += order.amount
        postings[key] = Posting(txn_id, key, kind, order.inn, order.amount, now, False)
        audit_event(
            session,
            actor=actor,
            action="billing.credit.posted",
            obj=customer(order.inn),
            now=now,
            amount=order.amount,
            key=key,
            source=order.source,
            transaction=txn_id,
        )
    session.execute(insert(_ENTRIES), entries)
    session.execute(
        update(_CUSTOMERS)
        .where(_CUSTOMERS.c.inn == bindparam("b_inn"))
        .values(posted=_CUSTOMERS.c.posted + bindparam("b_amount"), last_payment_at=now),
        [{"b_inn": inn, "b_amount": amount} for inn, amount in sorted(moved.items())],
        execution_options={"synchronize_session": False},
    )
    for inn in moved:  # the objects locked above: read the new balance on next access
        session.expire(accounts[inn])
    return postings

"""Reading the journal: a subscriber's statement for a period, and the drift check.

A statement is computed from the journal every time, never stored: the same period gives the
same lines and totals. The subscriber's position is the sum of its three ledger accounts
(balance, refunds payable to it, its debt); transactions that only move money between them
(termination) change nothing for the subscriber and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billing import ledger
from billing.models import CustomerAccount, Hold, LedgerAccount, LedgerEntry, LedgerTransaction
from policies.statuses import HoldStatus

__all__ = ["Drift", "Statement", "StatementLine", "check_balances", "statement"]


@dataclass(frozen=True)
class StatementLine:
    transaction_id: int
    occurred_at: datetime
    kind: str
    description: str
    amount: int  # > 0: paid in (credit to the subscriber); < 0: charged or paid out
    balance_after: int

    @property
    def credit(self) -> int:
        return max(self.amount, 0)

    @property
    def debit(self) -> int:
        return max(-self.amount, 0)


@dataclass(frozen=True)
class Statement:
    inn: str
    name: str
    start: datetime
    end: datetime  # exclusive
    opening: int  # > 0 in the subscriber's favour, < 0 its debt
    lines: tuple[StatementLine, ...]

    @property
    def closing(self) -> int:
        return self.opening + sum(line.amount for line in self.lines)

    @property
    def total_in(self) -> int:
        return sum(line.credit for line in self.lines)

    @property
    def total_out(self) -> int:
        return sum(line.debit for line in self.lines)


def _position_query(inn: str):  # type: ignore[no-untyped-def]
    # The subscriber's side: the negated debit-positive entries of its accounts.
    return (
        select(LedgerTransaction, func.sum(-LedgerEntry.amount).label("amount"))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code.in_(ledger.subscriber_accounts(inn)))
        .group_by(LedgerTransaction.id)
    )


def statement(session: Session, inn: str, start: datetime, end: datetime) -> Statement:
    """Every movement of the subscriber's position in ``[start, end)``, with balances."""
    if end <= start:
        raise ValueError("the period must end after it starts")
    account = ledger.balance(session, inn)
    opening = session.scalar(
        select(func.coalesce(func.sum(-LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerAccount.code.in_(ledger.subscriber_accounts(inn)),
            LedgerTransaction.occurred_at < start,
        )
    )
    rows = session.execute(
        _position_query(inn)
        .where(LedgerTransaction.occurred_at >= start, LedgerTransaction.occurred_at < end)
        .order_by(LedgerTransaction.occurred_at, LedgerTransaction.id)
    ).all()
    running = int(opening or 0)
    lines = []
    for txn, amount in rows:
        if not amount:
            continue
        running += int(amount)
        lines.append(
            StatementLine(txn.id, txn.occurred_at, txn.kind, txn.description, int(amount), running)
        )
    return Statement(inn, account.name, start, end, int(opening or 0), tuple(lines))


@dataclass(frozen=True)
class Drift:
    """One disagreement found by :func:`check_balances`."""

    subject: str
    what: str
    expected: int
    found: int

    def __str__(self) -> str:
        return f"{self.subject}: {self.what} is {self.found}, the journal says {self.expected}"


def check_balances(session: Session) -> tuple[int, list[Drift]]:
    """Recompute every balance from the journal; ``(accounts checked, drifts)``."""
    drifts = [
        Drift(f"transaction {txn_id}", "sum of entries", 0, int(total))
        for txn_id, total in session.execute(
            select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
            .group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount) != 0)
        )
    ]
    posted: dict[str | None, int] = dict(
        session.execute(
            select(LedgerAccount.inn, func.sum(-LedgerEntry.amount))
            .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
            .where(LedgerAccount.code.like("customer:%"))
            .group_by(LedgerAccount.inn)
        ).all()
    )
    held: dict[str, int] = dict(
        session.execute(
            select(
                Hold.inn, func.sum(case((Hold.status == HoldStatus.OPEN, Hold.amount), else_=0))
            ).group_by(Hold.inn)
        ).all()
    )
    accounts = session.scalars(select(CustomerAccount).order_by(CustomerAccount.inn)).all()
    for row in accounts:
        journal_posted, journal_held = int(posted.get(row.inn) or 0), int(held.get(row.inn) or 0)
        if row.posted != journal_posted:
            drifts.append(Drift(f"account {row.inn}", "posted", journal_posted, row.posted))
        if row.held != journal_held:
            drifts.append(Drift(f"account {row.inn}", "held", journal_held, row.held))
        if journal_posted < journal_held:
            drifts.append(
                Drift(f"account {row.inn}", "available", 0, journal_posted - journal_held)
            )
    known = {row.inn for row in accounts}
    drifts.extend(
        Drift(f"ledger account customer:{inn}", "account row", 0, 1)
        for inn in posted
        if inn not in known
    )
    return len(accounts), drifts

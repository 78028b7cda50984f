"""The suspense list: bank statement lines nobody could match, until an officer assigns them.

A line goes to suspense at import (``billing.bank.statements``) when its payment code is not
the operator's or its purpose names no single known INN or payment account; its money waits in
the suspense account (:data:`billing.ledger.SUSPENSE`). :func:`assign` moves it to the
subscriber an officer names, once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import ledger
from billing.bank.lines import BankStatementLine, LineInfo
from billing.bank.values import business_midnight
from billing.errors import BillingError, MalformedAccount, NotFound
from billing.payments import Receipt, record_payment
from policies.dates import local_minute
from policies.identifiers import is_inn, is_payment_account
from policies.statuses import BankLineStatus

__all__ = ["LineAlreadyResolved", "assign", "suspense_lines"]


class LineAlreadyResolved(BillingError):
    """The statement line is not (or no longer) in suspense: it cannot be assigned again."""


def suspense_lines(session: Session) -> list[LineInfo]:
    """The open suspense list, oldest first."""
    rows = session.scalars(
        select(BankStatementLine)
        .where(BankStatementLine.status == BankLineStatus.SUSPENSE)
        .order_by(BankStatementLine.id)
    )
    return [LineInfo.of(row) for row in rows]


def assign(
    session: Session,
    line_id: int,
    *,
    inn: str | None = None,
    account: str | None = None,
    now: datetime,
    actor: str,
) -> tuple[LineInfo, Receipt]:
    """An officer names whose money a suspense line is: it moves from suspense to them. Once."""
    number = _assignee(inn, account)
    row = session.scalars(
        select(BankStatementLine)
        .where(BankStatementLine.id == line_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no bank statement line #{line_id}")
    if row.status != BankLineStatus.SUSPENSE:
        raise LineAlreadyResolved(_resolved_message(row))
    receipt = record_payment(
        session,
        channel="bank",
        provider="",
        external_id=row.bank_reference,
        account=number,
        amount=row.amount,
        paid_at=business_midnight(row.value_date),
        now=now,
        actor=actor,
        source=ledger.SUSPENSE,
    )
    if receipt.replayed:  # a receipt for this reference exists: the line is not really open
        raise LineAlreadyResolved(f"line #{line_id} was already paid in as receipt {receipt.id}")
    row.status, row.inn, row.payment_id = BankLineStatus.ASSIGNED, receipt.inn, receipt.id
    row.resolved_at, row.resolved_by = now, actor
    session.flush()
    ledger.audit_event(
        session,
        actor=actor,
        action="billing.bank_line.assigned",
        obj=f"bank-line:{line_id}",
        now=now,
        reference=row.bank_reference,
        account=number,
        inn=receipt.inn,
        amount=row.amount,
        receipt=receipt.id,
        transaction=receipt.transaction_id,
    )
    return LineInfo.of(row), receipt


def _assignee(inn: str | None, account: str | None) -> str:
    if (inn is None) == (account is None):
        raise MalformedAccount("name either an INN or a payment account, not both or neither")
    if inn is not None and not is_inn(inn):
        raise MalformedAccount(f"{inn!r} is not a 14-digit INN")
    if account is not None and not is_payment_account(account):
        raise MalformedAccount(f"{account!r} is not a 16-digit payment account (check digit)")
    return inn or account or ""


def _resolved_message(row: BankStatementLine) -> str:
    if row.status == BankLineStatus.ASSIGNED:
        return (
            f"line #{row.id} ({row.bank_reference}) was already assigned to {row.inn} "
            f"by {row.resolved_by} on {local_minute(row.resolved_at, '?')}"
        )
    return f"line #{row.id} ({row.bank_reference}) is not in suspense: it was credited to {row.inn}"

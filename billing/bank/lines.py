"""An imported bank statement line: its row and the view officers get of it.

Each line of a statement is stored once, under the bank's reference, with what became of it
(a :class:`~policies.statuses.BankLineStatus`): credited to a subscriber, or in suspense until an
officer assigns it (``billing.bank.suspense``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from billing.models import BigId
from db import Base, UTCDateTime

__all__ = ["MAX_REFERENCE", "BankStatementLine", "LineInfo"]

MAX_REFERENCE = 100  # payments.external_id


class BankStatementLine(Base):
    """One imported line of a bank statement. Status changes only suspense → assigned, once.

    The bank reference is the line's identity: UNIQUE, so a line is imported once whatever
    the file it comes in. Migration 0004 makes the database refuse DELETE and any UPDATE other
    than suspense → assigned.
    """

    __tablename__ = "bank_statement_lines"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('credited', 'suspense', 'assigned')", name="status_known"),
        CheckConstraint(
            "(status = 'suspense' AND inn IS NULL AND payment_id IS NULL)"
            " OR (status <> 'suspense' AND inn IS NOT NULL AND payment_id IS NOT NULL)",
            name="resolution_consistent",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    statement_sha256: Mapped[str] = mapped_column(String(64), index=True)
    bank_reference: Mapped[str] = mapped_column(String(MAX_REFERENCE), unique=True)
    line_no: Mapped[int] = mapped_column(Integer)
    value_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    payer_name: Mapped[str] = mapped_column(Text)
    payer_inn: Mapped[str] = mapped_column(String(32))
    payer_account: Mapped[str] = mapped_column(String(34))
    payment_code: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why the line went to suspense
    inn: Mapped[str | None] = mapped_column(ForeignKey("customer_accounts.inn"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), unique=True)
    transaction_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )  # the credit, or the transfer into suspense
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(Text)


@dataclass(frozen=True)
class LineInfo:
    """An imported statement line, as officers see it."""

    id: int
    line_no: int
    reference: str
    value_date: date
    amount: int
    payer_name: str
    payer_inn: str
    payment_code: str
    purpose: str
    status: str
    reason: str | None
    inn: str | None
    payment_id: int | None
    imported_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None

    @classmethod
    def of(cls, row: BankStatementLine) -> LineInfo:
        return cls(
            row.id,
            row.line_no,
            row.bank_reference,
            row.value_date,
            row.amount,
            row.payer_name,
            row.payer_inn,
            row.payment_code,
            row.purpose,
            row.status,
            row.reason,
            row.inn,
            row.payment_id,
            row.imported_at,
            row.resolved_at,
            row.resolved_by,
        )

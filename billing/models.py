"""Database rows of the billing domain: the double-entry journal and what hangs off it.

The journal (``ledger_transactions`` + ``ledger_entries``) and the receipts (``payments``) are
append-only: migration 0003 makes the database refuse UPDATE and DELETE on them. Everything else
here is a cache or a state machine derived from, and checked against, the journal.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from db import Base, UTCDateTime

__all__ = [
    "CustomerAccount",
    "Hold",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "Payment",
    "PaymentAccount",
    "Termination",
]

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identities.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CustomerAccount(Base):
    """A subscriber's prepaid balance: the cached view of its ``customer:<inn>`` ledger account.

    ``posted`` is what the journal says the operator owes the subscriber; ``held`` is reserved by
    open holds; available = posted - held. The row is locked (SELECT ... FOR UPDATE) by every
    operation on the subscriber, which serialises them, and the CHECKs make a negative balance
    impossible even for a buggy caller.
    """

    __tablename__ = "customer_accounts"
    __table_args__ = (
        CheckConstraint("held >= 0", name="held_not_negative"),
        CheckConstraint("posted >= held", name="available_not_negative"),
        CheckConstraint("status IN ('active', 'terminated')", name="status_known"),
    )

    inn: Mapped[str] = mapped_column(String(14), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    posted: Mapped[int] = mapped_column(BigInteger)
    held: Mapped[int] = mapped_column(BigInteger)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_payment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LedgerAccount(Base):
    """An account of the chart: ``customer:<inn>``, ``asset:bank``, ``revenue:reports``, ..."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # asset | liability | revenue
    inn: Mapped[str | None] = mapped_column(String(14), index=True)


class LedgerTransaction(Base):
    """One balanced posting, named by its business idempotency key. Never changed."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the operation's content
    kind: Mapped[str] = mapped_column(String(32))
    inn: Mapped[str | None] = mapped_column(String(14), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # the operation's amount, for reading
    description: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )


class LedgerEntry(Base):
    """One leg of a transaction. Debits are positive, credits negative; a transaction sums to 0."""

    __tablename__ = "ledger_entries"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """A reservation on a balance: open → posted (charged) or voided."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('open', 'posted', 'voided')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    inn: Mapped[str] = mapped_column(ForeignKey("customer_accounts.inn"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    revenue: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))


class PaymentAccount(Base):
    """A 16-digit account for the "EDS payment" service: pays one purpose of one subscriber."""

    __tablename__ = "payment_accounts"
    __table_args__ = (
        CheckConstraint("amount_due > 0", name="amount_due_positive"),
        CheckConstraint("status IN ('open', 'paid', 'cancelled')", name="status_known"),
    )

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    inn: Mapped[str] = mapped_column(ForeignKey("customer_accounts.inn"), index=True)
    purpose: Mapped[str] = mapped_column(String(120), unique=True)  # "cert:first:<inn>", ...
    tariff: Mapped[str] = mapped_column(String(64))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("holds.id"))


class Payment(Base):
    """A receipt ("Поступления"): money that reached a subscriber, by channel. Never changed."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("channel", "provider", "external_id", name="uq_payments_external"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)  # the OSMP prv_txn
    channel: Mapped[str] = mapped_column(String(16))  # osmp | bank | cash
    provider: Mapped[str] = mapped_column(String(32))  # "" outside OSMP
    external_id: Mapped[str] = mapped_column(String(100))  # txn_id, bank reference, receipt no.
    account: Mapped[str] = mapped_column(String(16))  # as the payer gave it: INN or 16 digits
    service: Mapped[str] = mapped_column(String(16))  # sochi | eds
    inn: Mapped[str] = mapped_column(String(14), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the payer paid
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), unique=True)


class Termination(Base):
    """The end of a subscriber's contract: refund owed, or debt due (§18.5)."""

    __tablename__ = "terminations"

    inn: Mapped[str] = mapped_column(ForeignKey("customer_accounts.inn"), primary_key=True)
    terminated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    refund: Mapped[int] = mapped_column(BigInteger)
    debt: Mapped[int] = mapped_column(BigInteger)
    debt_due_on: Mapped[date] = mapped_column(Date)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transactions.id"))

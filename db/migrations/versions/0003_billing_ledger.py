"""Billing: customer balances, the double-entry journal, holds, payment accounts, receipts,
terminations.

Revision ID: 0003
Revises: 0002

The journal (ledger_transactions, ledger_entries) and the receipts (payments) are append-only:
triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). Corrections are reversing
transactions. On PostgreSQL a deferred constraint trigger also refuses, at commit, any
transaction whose entries do not sum to zero.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger_transactions", "ledger_entries", "payments")

_PG_REFUSE = """
CREATE FUNCTION billing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_PG_BALANCED = """
CREATE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE total bigint;
BEGIN
    SELECT sum(amount) INTO total FROM ledger_entries WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (%)', NEW.transaction_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$
"""
_PG_BALANCED_TRIGGER = (
    "CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entries_balanced()"
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    _create_tables()
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION billing_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change()"
            )
        op.execute(_PG_BALANCED)
        op.execute(_PG_BALANCED_TRIGGER)
    else:
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}"
                    f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def _create_tables() -> None:
    op.create_table(
        "customer_accounts",
        sa.Column("inn", sa.String(14), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("posted", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        _ts("opened_at"),
        _ts("last_payment_at", nullable=True),
        _ts("terminated_at", nullable=True),
        sa.CheckConstraint("held >= 0", name=op.f("ck_customer_accounts_held_not_negative")),
        sa.CheckConstraint(
            "posted >= held", name=op.f("ck_customer_accounts_available_not_negative")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'terminated')", name=op.f("ck_customer_accounts_status_known")
        ),
        sa.PrimaryKeyConstraint("inn", name=op.f("pk_customer_accounts")),
    )
    op.create_table(
        "ledger_accounts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("code", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("inn", sa.String(14), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    op.create_index(op.f("ix_ledger_accounts_inn"), "ledger_accounts", ["inn"])
    op.create_table(
        "ledger_transactions",
        sa.Column("id", BigId, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("inn", sa.String(14), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        _ts("occurred_at"),
        sa.Column("reverses_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_transactions_reverses_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_transactions_idempotency_key")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_transactions_reverses_id")),
    )
    op.create_index(op.f("ix_ledger_transactions_inn"), "ledger_transactions", ["inn"])
    op.create_index(
        op.f("ix_ledger_transactions_occurred_at"), "ledger_transactions", ["occurred_at"]
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BigId, nullable=False),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_entries_amount_not_zero")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_entries_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(op.f("ix_ledger_entries_transaction_id"), "ledger_entries", ["transaction_id"])
    op.create_index(op.f("ix_ledger_entries_account_id"), "ledger_entries", ["account_id"])
    _create_holds_and_payments()


def _create_holds_and_payments() -> None:
    op.create_table(
        "holds",
        sa.Column("id", BigId, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("inn", sa.String(14), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("revenue", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("settled_at", nullable=True),
        sa.Column("transaction_id", BigId, nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_holds_amount_positive")),
        sa.CheckConstraint(
            "status IN ('open', 'posted', 'voided')", name=op.f("ck_holds_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["inn"], ["customer_accounts.inn"], name=op.f("fk_holds_inn_customer_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_holds_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_holds_idempotency_key")),
    )
    op.create_index(op.f("ix_holds_inn"), "holds", ["inn"])
    op.create_table(
        "payment_accounts",
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("inn", sa.String(14), nullable=False),
        sa.Column("purpose", sa.String(120), nullable=False),
        sa.Column("tariff", sa.String(64), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("paid_at", nullable=True),
        sa.Column("hold_id", BigId, nullable=True),
        sa.CheckConstraint("amount_due > 0", name=op.f("ck_payment_accounts_amount_due_positive")),
        sa.CheckConstraint(
            "status IN ('open', 'paid', 'cancelled')", name=op.f("ck_payment_accounts_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["inn"],
            ["customer_accounts.inn"],
            name=op.f("fk_payment_accounts_inn_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["holds.id"], name=op.f("fk_payment_accounts_hold_id_holds")
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_payment_accounts")),
        sa.UniqueConstraint("purpose", name=op.f("uq_payment_accounts_purpose")),
    )
    op.create_index(op.f("ix_payment_accounts_inn"), "payment_accounts", ["inn"])
    op.create_table(
        "payments",
        sa.Column("id", BigId, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("account", sa.String(16), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("inn", sa.String(14), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        _ts("paid_at"),
        _ts("recorded_at"),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_payments_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("channel", "provider", "external_id", name="uq_payments_external"),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_payments_transaction_id")),
    )
    op.create_index(op.f("ix_payments_inn"), "payments", ["inn"])
    op.create_index(op.f("ix_payments_recorded_at"), "payments", ["recorded_at"])
    op.create_table(
        "terminations",
        sa.Column("inn", sa.String(14), nullable=False),
        _ts("terminated_at"),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("refund", sa.BigInteger(), nullable=False),
        sa.Column("debt", sa.BigInteger(), nullable=False),
        sa.Column("debt_due_on", sa.Date(), nullable=False),
        sa.Column("transaction_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["inn"], ["customer_accounts.inn"], name=op.f("fk_terminations_inn_customer_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_terminations_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("inn", name=op.f("pk_terminations")),
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_entries_balanced ON ledger_entries")
        op.execute("DROP FUNCTION ledger_entries_balanced()")
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION billing_refuse_change()")
    for table in (
        "terminations",
        "payments",
        "payment_accounts",
        "holds",
        "ledger_entries",
        "ledger_transactions",
        "ledger_accounts",
        "customer_accounts",
    ):
        op.drop_table(table)  # SQLite drops the table's triggers with it

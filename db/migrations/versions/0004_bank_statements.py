"""Bank statement lines: what each imported line became (credited, suspense, assigned).

Revision ID: 0004
Revises: 0003

A line is imported once (UNIQUE bank_reference) and never deleted; the only change the
database allows is a suspense line being assigned to a subscriber, once. The money itself is in
the append-only journal; this table says which statement line the journal rows came from.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "bank_statement_lines"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Columns a line keeps for ever; an assignment sets only status, inn, payment_id, resolved_*.
_FIXED = ("bank_reference", "amount", "value_date", "transaction_id", "statement_sha256")
_CHANGED = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _FIXED)

_PG_GUARD = f"""
CREATE FUNCTION bank_statement_lines_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'bank_statement_lines: DELETE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'suspense' OR NEW.status <> 'assigned' OR {_CHANGED} THEN
        RAISE EXCEPTION 'bank_statement_lines: only suspense -> assigned, once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
"""
_SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _FIXED)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", BigId, nullable=False),
        sa.Column("statement_sha256", sa.String(64), nullable=False),
        sa.Column("bank_reference", sa.String(100), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("payer_name", sa.Text(), nullable=False),
        sa.Column("payer_inn", sa.String(32), nullable=False),
        sa.Column("payer_account", sa.String(34), nullable=False),
        sa.Column("payment_code", sa.String(16), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("inn", sa.String(14), nullable=True),
        sa.Column("payment_id", BigId, nullable=True),
        sa.Column("transaction_id", BigId, nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_bank_statement_lines_amount_positive")),
        sa.CheckConstraint(
            "status IN ('credited', 'suspense', 'assigned')",
            name=op.f("ck_bank_statement_lines_status_known"),
        ),
        sa.CheckConstraint(
            "(status = 'suspense' AND inn IS NULL AND payment_id IS NULL)"
            " OR (status <> 'suspense' AND inn IS NOT NULL AND payment_id IS NOT NULL)",
            name=op.f("ck_bank_statement_lines_resolution_consistent"),
        ),
        sa.ForeignKeyConstraint(
            ["inn"],
            ["customer_accounts.inn"],
            name=op.f("fk_bank_statement_lines_inn_customer_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_bank_statement_lines_payment_id_payments"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_bank_statement_lines_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_statement_lines")),
        sa.UniqueConstraint("bank_reference", name=op.f("uq_bank_statement_lines_bank_reference")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_bank_statement_lines_payment_id")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_bank_statement_lines_transaction_id")),
    )
    op.create_index(op.f("ix_bank_statement_lines_statement_sha256"), TABLE, ["statement_sha256"])
    op.create_index(op.f("ix_bank_statement_lines_status"), TABLE, ["status"])
    op.create_index(op.f("ix_bank_statement_lines_inn"), TABLE, ["inn"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        op.execute(
            f"CREATE TRIGGER {TABLE}_guard BEFORE UPDATE OR DELETE ON {TABLE}"
            " FOR EACH ROW EXECUTE FUNCTION bank_statement_lines_guard()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}"
            " FOR EACH STATEMENT EXECUTE FUNCTION billing_refuse_change()"
        )
    else:
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE}"
            f" BEGIN SELECT RAISE(ABORT, '{TABLE}: DELETE refused'); END"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_assign_only BEFORE UPDATE ON {TABLE}"
            f" WHEN OLD.status <> 'suspense' OR NEW.status <> 'assigned' OR {_SQLITE_CHANGED}"
            f" BEGIN SELECT RAISE(ABORT, '{TABLE}: only suspense -> assigned, once'); END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_guard ON {TABLE}")
        op.execute(f"DROP TRIGGER {TABLE}_no_truncate ON {TABLE}")
        op.execute("DROP FUNCTION bank_statement_lines_guard()")
    op.drop_table(TABLE)  # SQLite drops the table's triggers with it

"""Disputes (§8): the cases a commission or an officer opened, with their material and report.

Revision ID: 0011
Revises: 0010

``dispute_cases`` is evidence and append-only: triggers refuse UPDATE and DELETE (and TRUNCATE
on PostgreSQL), as for the filing history, the ledger and the signature evidence. A case is
written once, in the transaction that ran the engine and charged the subscriber's fee.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

APPEND_ONLY = ("dispute_cases",)

_PG_REFUSE = """
CREATE FUNCTION disputes_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _s(name: str, length: int, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    ref_table = target.split(".", maxsplit=1)[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{ref_table}")
    )


def upgrade() -> None:
    op.create_table(
        "dispute_cases",
        _s("id", 36),
        _s("subscriber_inn", 14),
        sa.Column("client_id", sa.Integer(), nullable=True),
        _s("opened_by", 64),
        _s("opened_as", 16),
        _ts("created_at"),
        _s("request_key", 250, True),
        _s("request_print", 64),
        _s("form", 8),
        _s("document_name", 200, True),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        _s("document_sha256", 64, True),
        sa.Column("document_size", sa.BigInteger(), nullable=True),
        _s("signature_name", 200, True),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        _s("signature_sha256", 64, True),
        sa.Column("signature_size", sa.BigInteger(), nullable=True),
        sa.Column("report", sa.LargeBinary(), nullable=False),
        _s("report_sha256", 64),
        _s("indication", 16),
        _s("sub_indication", 48, True),
        _s("engine", 200),
        _s("tariff", 64),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        _s("fee_key", 250),
        sa.Column("fee_txn", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "form IN ('cms', 'pdf', 'package')", name=op.f("ck_dispute_cases_form_known")
        ),
        sa.CheckConstraint(
            "indication IN ('TOTAL-PASSED', 'TOTAL-FAILED', 'INDETERMINATE')",
            name=op.f("ck_dispute_cases_indication_known"),
        ),
        sa.CheckConstraint(
            "(form = 'cms' AND signature IS NOT NULL)"
            " OR (form <> 'cms' AND signature IS NULL AND document IS NOT NULL)",
            name=op.f("ck_dispute_cases_material_fits_form"),
        ),
        sa.CheckConstraint("fee > 0", name=op.f("ck_dispute_cases_fee_positive")),
        _fk("dispute_cases", "subscriber_inn", "customer_accounts.inn"),
        _fk("dispute_cases", "client_id", "api_clients.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_cases")),
        sa.UniqueConstraint("request_key", name=op.f("uq_dispute_cases_request_key")),
        sa.UniqueConstraint("fee_key", name=op.f("uq_dispute_cases_fee_key")),
    )
    op.create_index(op.f("ix_dispute_cases_subscriber_inn"), "dispute_cases", ["subscriber_inn"])
    op.create_index(op.f("ix_dispute_cases_created_at"), "dispute_cases", ["created_at"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION disputes_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION disputes_refuse_change()"
            )
    else:
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}"
                    f" BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
                )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION disputes_refuse_change()")
    op.drop_table("dispute_cases")

"""Filing: agencies and their offices, reports, their two signatures and their history.

Revision ID: 0010
Revises: 0009

``report_signatures`` and ``report_events`` are evidence and append-only: triggers refuse
UPDATE and DELETE (and TRUNCATE on PostgreSQL), as for the ledger and the signature evidence.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
APPEND_ONLY = ("report_signatures", "report_events")

_PG_REFUSE = """
CREATE FUNCTION filing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
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
        "agencies",
        _s("code", 32),
        _s("name", 200),
        _s("endpoint", 500),
        sa.Column("receipt_certificate", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_agencies")),
    )
    op.create_table(
        "agency_offices",
        sa.Column("id", BigId, nullable=False),
        _s("agency_code", 32),
        _s("code", 16),
        _s("name", 200),
        sa.Column("active", sa.Boolean(), nullable=False),
        _fk("agency_offices", "agency_code", "agencies.code"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_offices")),
        sa.UniqueConstraint("agency_code", "code", name=op.f("uq_agency_offices_agency_code")),
    )
    op.create_index(op.f("ix_agency_offices_agency_code"), "agency_offices", ["agency_code"])
    op.create_table(
        "reports",
        _s("id", 36),
        _s("inn", 14),
        sa.Column("client_id", sa.Integer(), nullable=True),
        _s("kind", 32),
        _s("period", 8),
        _s("period_type", 16),
        _s("agency_code", 32),
        _s("office_code", 16),
        _s("file_name", 200),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        _s("document_sha256", 64),
        sa.Column("size", sa.BigInteger(), nullable=False),
        _ts("filed_at"),
        _s("filed_by", 64),
        _s("request_key", 250, True),
        _s("request_print", 64, True),
        _s("delivery_status", 24),
        _s("check_status", 16),
        _s("check_message", 2000, True),
        _ts("completed_at", True),
        _s("tariff", 64, True),
        sa.Column("price", sa.BigInteger(), nullable=True),
        sa.Column("charge_txn", sa.BigInteger(), nullable=True),
        sa.Column("storage_txn", sa.BigInteger(), nullable=True),
        sa.Column("reversal_txn", sa.BigInteger(), nullable=True),
        _ts("charged_at", True),
        _ts("queued_at", True),
        _ts("sent_at", True),
        _ts("delivered_at", True),
        _ts("next_attempt_at", True),
        _ts("lease_until", True),
        _s("lease_owner", 64, True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _s("last_error", 500, True),
        sa.Column("dispatch_confirmation", sa.LargeBinary(), nullable=True),
        _s("registration_number", 64, True),
        sa.Column("receipt", sa.LargeBinary(), nullable=True),
        sa.Column("check_result", sa.LargeBinary(), nullable=True),
        _ts("stopped_at", True),
        sa.CheckConstraint(
            "delivery_status IN ('awaiting_signatures', 'awaiting_head', 'awaiting_accountant',"
            " 'awaiting_payment', 'queued', 'sent', 'delivered', 'stopped')",
            name=op.f("ck_reports_delivery_status_known"),
        ),
        sa.CheckConstraint(
            "check_status IN ('none', 'awaiting_check', 'accepted', 'rejected')",
            name=op.f("ck_reports_check_status_known"),
        ),
        _fk("reports", "inn", "subscribers.inn"),
        _fk("reports", "client_id", "api_clients.id"),
        _fk("reports", "agency_code", "agencies.code"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("request_key", name=op.f("uq_reports_request_key")),
    )
    op.create_index(op.f("ix_reports_inn"), "reports", ["inn"])
    op.create_index(op.f("ix_reports_delivery_status"), "reports", ["delivery_status"])
    op.create_index(op.f("ix_reports_completed_at"), "reports", ["completed_at"])
    op.create_index(op.f("ix_reports_next_attempt_at"), "reports", ["next_attempt_at"])
    op.create_table(
        "report_signatures",
        sa.Column("id", BigId, nullable=False),
        _s("report_id", 36),
        _s("slot", 16),
        _s("form", 8),
        sa.Column("certificate_id", BigId, nullable=False),
        _s("serial", 40),
        sa.Column("cms", sa.LargeBinary(), nullable=False),
        _ts("signed_at"),
        _s("time_source", 24),
        _ts("claimed_signing_time", True),
        _ts("recorded_at"),
        _s("recorded_by", 64),
        sa.CheckConstraint(
            "slot IN ('head', 'accountant')", name=op.f("ck_report_signatures_slot_known")
        ),
        sa.CheckConstraint(
            "form IN ('cms', 'cloud')", name=op.f("ck_report_signatures_form_known")
        ),
        _fk("report_signatures", "report_id", "reports.id"),
        _fk("report_signatures", "certificate_id", "certificates.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_signatures")),
        sa.UniqueConstraint("report_id", "slot", name=op.f("uq_report_signatures_report_id")),
    )
    op.create_index(op.f("ix_report_signatures_report_id"), "report_signatures", ["report_id"])
    op.create_table(
        "report_events",
        sa.Column("id", BigId, nullable=False),
        _s("report_id", 36),
        _ts("at"),
        _s("actor", 64),
        _s("event", 32),
        _s("delivery_status", 24),
        _s("check_status", 16),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        _fk("report_events", "report_id", "reports.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_events")),
    )
    op.create_index(op.f("ix_report_events_report_id"), "report_events", ["report_id"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION filing_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
                " FOR EACH STATEMENT EXECUTE FUNCTION filing_refuse_change()"
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
        op.execute("DROP FUNCTION filing_refuse_change()")
    for table in ("report_events", "report_signatures", "reports", "agency_offices", "agencies"):
        op.drop_table(table)

"""Audit journal: the hash-chained, append-only audit_journal and its single-row audit_head.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The database itself refuses UPDATE, DELETE (and on PostgreSQL TRUNCATE) of journal rows, so
that a bug or a compromised application account cannot rewrite history; only someone who
disables the triggers can, and the hash chain then shows it. The head row stays updatable.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64  # copied, not imported: a migration must not change when code does
APPEND_ONLY_MESSAGE = "audit journal is append-only"

_PG_FUNCTION = f"""
CREATE FUNCTION audit_journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_PG_TRIGGERS = (
    "CREATE TRIGGER audit_journal_no_update_delete BEFORE UPDATE OR DELETE ON audit_journal"
    " FOR EACH ROW EXECUTE FUNCTION audit_journal_refuse_change()",
    "CREATE TRIGGER audit_journal_no_truncate BEFORE TRUNCATE ON audit_journal"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_journal_refuse_change()",
)
_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_journal_no_update BEFORE UPDATE ON audit_journal"
    f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
    "CREATE TRIGGER audit_journal_no_delete BEFORE DELETE ON audit_journal"
    f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END",
)


def upgrade() -> None:
    _create_journal()
    head = _create_head()
    op.bulk_insert(head, [{"id": 1, "last_sequence": 0, "last_hash": GENESIS_HASH}])
    if _dialect() == "postgresql":
        op.execute(_PG_FUNCTION)
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if _dialect() == "postgresql":
        op.execute("DROP TRIGGER audit_journal_no_truncate ON audit_journal")
        op.execute("DROP TRIGGER audit_journal_no_update_delete ON audit_journal")
        op.execute("DROP FUNCTION audit_journal_refuse_change()")
    else:
        op.execute("DROP TRIGGER audit_journal_no_delete")
        op.execute("DROP TRIGGER audit_journal_no_update")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_journal_object", table_name="audit_journal")
    op.drop_index("ix_audit_journal_occurred_at", table_name="audit_journal")
    op.drop_table("audit_journal")


def _create_journal() -> None:
    op.create_table(
        "audit_journal",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_audit_journal"),
        sa.UniqueConstraint("hash", name="uq_audit_journal_hash"),
    )
    op.create_index("ix_audit_journal_occurred_at", "audit_journal", ["occurred_at"])
    op.create_index("ix_audit_journal_object", "audit_journal", ["object"])


def _create_head() -> sa.Table:
    return op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
    )


def _dialect() -> str:
    # The migration context, not op.get_bind(): it also works offline (alembic upgrade --sql).
    return op.get_context().dialect.name

"""CRLs: every CRL signed, per issuer, numbered.

Revision ID: 0005
Revises: 0004

``crl_issues`` is append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL).
UNIQUE(issuer, number) keeps CRL numbers from repeating when several nodes issue at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "crl_issues"
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_PG_REFUSE = """
CREATE FUNCTION crl_issues_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", BigId, nullable=False),
        sa.Column("issuer", sa.String(16), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        _ts("this_update"),
        _ts("next_update"),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "issuer IN ('root', 'issuing')", name=op.f("ck_crl_issues_issuer_known")
        ),
        sa.CheckConstraint("number > 0", name=op.f("ck_crl_issues_number_positive")),
        sa.CheckConstraint("entries >= 0", name=op.f("ck_crl_issues_entries_not_negative")),
        sa.CheckConstraint("next_update > this_update", name=op.f("ck_crl_issues_next_after_this")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crl_issues")),
        sa.UniqueConstraint("issuer", "number", name="uq_crl_issues_issuer_number"),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}"
            " FOR EACH ROW EXECUTE FUNCTION crl_issues_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}"
            " FOR EACH STATEMENT EXECUTE FUNCTION crl_issues_refuse_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE}"
                f" BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TABLE}_append_only ON {TABLE}")
        op.execute(f"DROP TRIGGER {TABLE}_no_truncate ON {TABLE}")
        op.execute("DROP FUNCTION crl_issues_refuse_change()")
    op.drop_table(TABLE)  # SQLite drops the table's triggers with it

"""Delta CRLs: ``crl_issues.kind`` ('full' | 'delta') and ``base_number``.

Revision ID: 0012
Revises: 0011

Base (full) and delta CRLs share one cRLNumber sequence per issuer (RFC 5280 §5.2.3, §5.2.4),
so they stay in one table under the same UNIQUE(issuer, number). The columns are added in
place (``ALTER TABLE ... ADD COLUMN`` with a server default), never through SQLite's batch
mode: that recreates the table and would drop the append-only triggers of migration 0005.
``certificate_events.at`` gets an index: a delta CRL reads the changes since its base's, and
``last_status_change`` the newest one, at every status change and CRL fetch — without it, a
scan of the whole history (millions of rows at a million certificates).

A CHECK constraint cannot be added to an SQLite table in place, so the rule "a delta names its
base, a full CRL names none" is kept by the code (``crl.builder``) and by a trigger on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLE = "crl_issues"
_RULE = (
    "(kind = 'full' AND base_number IS NULL) OR "
    "(kind = 'delta' AND base_number IS NOT NULL AND base_number < number)"
)


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("kind", sa.String(8), nullable=False, server_default="full"))
    op.add_column(TABLE, sa.Column("base_number", sa.BigInteger(), nullable=True))
    op.create_index(op.f("ix_certificate_events_at"), "certificate_events", ["at"])
    if op.get_context().dialect.name == "postgresql":
        op.create_check_constraint(op.f("ck_crl_issues_kind_base"), TABLE, _RULE)
    else:
        op.execute(
            f"CREATE TRIGGER {TABLE}_kind_base BEFORE INSERT ON {TABLE}"
            " WHEN NOT ((NEW.kind = 'full' AND NEW.base_number IS NULL) OR"
            " (NEW.kind = 'delta' AND NEW.base_number IS NOT NULL"
            " AND NEW.base_number < NEW.number))"
            " BEGIN SELECT RAISE(ABORT, 'a delta CRL names its base, a full CRL none'); END"
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_certificate_events_at"), table_name="certificate_events")
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint(op.f("ck_crl_issues_kind_base"), TABLE, type_="check")
    else:
        op.execute(f"DROP TRIGGER {TABLE}_kind_base")
    # In place on SQLite too (ALTER TABLE ... DROP COLUMN, SQLite >= 3.35): no table rebuild,
    # so the append-only triggers of 0005 stay.
    op.drop_column(TABLE, "base_number")
    op.drop_column(TABLE, "kind")

"""OCSP: pre-signed responses, one per issuer, certificate serial and CertID hash algorithm.

Revision ID: 0013
Revises: 0012

A cache, not evidence: unlike ``crl_issues`` the rows are updated in place (the responder
re-signs them on a status change, before their nextUpdate and after its certificate is renewed).
The index on ``next_update`` is the worker's refresh queue.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLE = "ocsp_responses"


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("issuer", sa.String(16), nullable=False),
        sa.Column("serial", sa.String(40), nullable=False),
        sa.Column("hash_algorithm", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        _ts("this_update"),
        _ts("next_update"),
        _ts("produced_at"),
        sa.Column("responder_serial", sa.String(40), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "issuer IN ('root', 'issuing')", name=op.f("ck_ocsp_responses_issuer_known")
        ),
        sa.CheckConstraint(
            "status IN ('good', 'revoked', 'on_hold')", name=op.f("ck_ocsp_responses_status_known")
        ),
        sa.CheckConstraint(
            "next_update > this_update", name=op.f("ck_ocsp_responses_next_after_this")
        ),
        sa.PrimaryKeyConstraint(
            "issuer", "serial", "hash_algorithm", name=op.f("pk_ocsp_responses")
        ),
    )
    op.create_index(op.f("ix_ocsp_responses_next_update"), TABLE, ["next_update"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ocsp_responses_next_update"), table_name=TABLE)
    op.drop_table(TABLE)

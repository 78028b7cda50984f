"""The cloud key pool: key pairs generated in ``tamga-cloud`` ahead of issuance (issue #16).

Revision ID: 0015
Revises: 0014

One row per ready key pair, identified by its token label. A row is a queue entry, not
evidence: issuance takes a key by deleting its row (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so concurrent issuances never take the same key), and the worker deletes the rows of keys it
destroys for age. The journal, not this table, keeps the history (``ca.key_pool.*`` entries and
the issuance entries naming the label). The index on (key_spec, created_at) is the claim's
"oldest ready key of this spec" and the worker's expiry scan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TABLE = "cloud_key_pool"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("key_spec", sa.String(16), nullable=False),
        sa.Column("spki_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("label", name=op.f("pk_cloud_key_pool")),
    )
    op.create_index("ix_cloud_key_pool_key_spec_created_at", TABLE, ["key_spec", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_cloud_key_pool_key_spec_created_at", table_name=TABLE)
    op.drop_table(TABLE)

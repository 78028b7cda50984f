"""The trust model (issue #12): verified holder identities and registration requests that say
whether their INN was already registered.

Revision ID: 0008
Revises: 0007

A certificate needs an officer-approved identity for its holder (§3.3): ``holders`` records who
verified it, when, and on which document (an approved registration request, or an officer's
check at the office). Holders of registration requests approved before this revision are
verified by that approval; holders registered directly wait for an officer (``tamga ca holder
verify``). ``registration_requests.subscriber_existed`` keeps, at the decision, whether the INN
was already registered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("holders") as batch:
        batch.add_column(sa.Column("identity_verified_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("identity_verified_by", sa.String(64)))
        batch.add_column(sa.Column("identity_document", sa.String(200)))
    with op.batch_alter_table("registration_requests") as batch:
        batch.add_column(sa.Column("subscriber_existed", sa.Boolean()))
    # An approval is an officer's check of the holder's identity: the earliest one counts.
    op.execute(
        """
        UPDATE holders SET
            identity_verified_at = (
                SELECT r.decided_at FROM registration_requests r
                WHERE r.holder_id = holders.id AND r.status = 'approved'
                ORDER BY r.decided_at, r.id LIMIT 1),
            identity_verified_by = (
                SELECT r.decided_by FROM registration_requests r
                WHERE r.holder_id = holders.id AND r.status = 'approved'
                ORDER BY r.decided_at, r.id LIMIT 1),
            identity_document = (
                SELECT 'registration request ' || r.id FROM registration_requests r
                WHERE r.holder_id = holders.id AND r.status = 'approved'
                ORDER BY r.decided_at, r.id LIMIT 1)
        WHERE EXISTS (
            SELECT 1 FROM registration_requests r
            WHERE r.holder_id = holders.id AND r.status = 'approved')
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("registration_requests") as batch:
        batch.drop_column("subscriber_existed")
    with op.batch_alter_table("holders") as batch:
        batch.drop_column("identity_document")
        batch.drop_column("identity_verified_by")
        batch.drop_column("identity_verified_at")

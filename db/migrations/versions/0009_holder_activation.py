"""Holder activation by a one-time code sent to the holder's registered contact (issue #12).

Revision ID: 0009
Revises: 0008

``mail_outbox``: messages written in the transaction that decided to send them (``db.outbox``).
``activation_codes``: the SHA-256 of each one-time code, its purpose, recipient and attempts.
``holders.contact_changed_at``: when an officer last changed the holder's e-mail or phone.
``crl_issues.status_as_of``: the newest status change a CRL reflects, to the microsecond.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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
        "mail_outbox",
        sa.Column("id", BigId, nullable=False),
        _s("recipient", 254),
        _s("subject", 200),
        sa.Column("body", sa.Text(), nullable=True),
        _s("purpose", 64),
        _ts("created_at"),
        _ts("sent_at", True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _s("last_error", 500, True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(op.f("ix_mail_outbox_recipient"), "mail_outbox", ["recipient"])
    op.create_index(op.f("ix_mail_outbox_sent_at"), "mail_outbox", ["sent_at"])
    op.create_table(
        "activation_codes",
        sa.Column("id", BigId, nullable=False),
        sa.Column("certificate_id", BigId, nullable=False),
        sa.Column("holder_id", BigId, nullable=False),
        _s("purpose", 16),
        _s("code_sha256", 64),
        _s("sent_to", 254),
        _ts("contact_as_of", True),
        _ts("created_at"),
        _ts("expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("used_at", True),
        _ts("closed_at", True),
        _fk("activation_codes", "certificate_id", "certificates.id"),
        _fk("activation_codes", "holder_id", "holders.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation_codes")),
    )
    op.create_index(
        op.f("ix_activation_codes_certificate_id"), "activation_codes", ["certificate_id"]
    )
    with op.batch_alter_table("holders") as batch:
        batch.add_column(_ts("contact_changed_at", True))
    with op.batch_alter_table("crl_issues") as batch:
        batch.add_column(_ts("status_as_of", True))


def downgrade() -> None:
    with op.batch_alter_table("crl_issues") as batch:
        batch.drop_column("status_as_of")
    with op.batch_alter_table("holders") as batch:
        batch.drop_column("contact_changed_at")
    op.drop_table("activation_codes")
    op.drop_table("mail_outbox")

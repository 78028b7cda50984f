"""Cloud signing: credential activations (PIN hash, TOTP seed label), SADs, signature evidence,
and the static addresses a subscriber may use from abroad (§3.6).

Revision ID: 0007
Revises: 0006

``cloud_signatures`` is evidence and append-only: triggers refuse UPDATE and DELETE (and
TRUNCATE on PostgreSQL), as for the ledger and the certificate history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SIGS = "cloud_signatures"

_PG_REFUSE = """
CREATE FUNCTION cloud_signatures_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
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
        "cloud_credentials",
        sa.Column("certificate_id", BigId, nullable=False),
        sa.Column("holder_id", BigId, nullable=False),
        _s("pin_hash", 200),
        _s("totp_label", 64),
        sa.Column("last_totp_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        _ts("locked_until", True),
        _ts("created_at"),
        _fk("cloud_credentials", "certificate_id", "certificates.id"),
        _fk("cloud_credentials", "holder_id", "holders.id"),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_cloud_credentials")),
    )
    op.create_index(
        op.f("ix_cloud_credentials_holder_id"), "cloud_credentials", ["holder_id"], unique=False
    )
    op.create_table(
        "signature_activations",
        sa.Column("id", BigId, nullable=False),
        _s("sad_sha256", 64),
        sa.Column("certificate_id", BigId, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("hashes", sa.JSON(), nullable=False),
        sa.Column("num_signatures", sa.Integer(), nullable=False),
        _s("inn", 14),
        _s("role", 16),
        _s("end_user_ip", 64, True),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", True),
        _fk("signature_activations", "certificate_id", "certificates.id"),
        _fk("signature_activations", "client_id", "api_clients.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature_activations")),
        sa.UniqueConstraint("sad_sha256", name=op.f("uq_signature_activations_sad_sha256")),
    )
    op.create_index(
        op.f("ix_signature_activations_certificate_id"),
        "signature_activations",
        ["certificate_id"],
        unique=False,
    )
    op.create_table(
        "foreign_access",
        sa.Column("id", BigId, nullable=False),
        _s("inn", 14),
        _s("address", 64),
        _s("location", 200),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        _ts("created_at"),
        _s("created_by", 64),
        sa.CheckConstraint(
            "valid_until >= valid_from", name=op.f("ck_foreign_access_valid_period")
        ),
        _fk("foreign_access", "inn", "subscribers.inn"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_foreign_access")),
    )
    op.create_index(op.f("ix_foreign_access_inn"), "foreign_access", ["inn"], unique=False)
    op.create_table(
        SIGS,
        sa.Column("id", BigId, nullable=False),
        _s("kind", 8),
        sa.Column("certificate_id", BigId, nullable=False),
        _s("serial", 40),
        sa.Column("activation_id", BigId, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        _s("inn", 14),
        _s("role", 16),
        _s("end_user_ip", 64, True),
        _s("hash_algorithm", 16),
        _s("document_hash", 128),
        _ts("signed_at"),
        _s("tst_serial", 40, True),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        _fk(SIGS, "certificate_id", "certificates.id"),
        _fk(SIGS, "activation_id", "signature_activations.id"),
        _fk(SIGS, "client_id", "api_clients.id"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{SIGS}")),
    )
    op.create_index(op.f(f"ix_{SIGS}_certificate_id"), SIGS, ["certificate_id"], unique=False)
    op.create_index(op.f(f"ix_{SIGS}_inn"), SIGS, ["inn"], unique=False)
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
        op.execute(
            f"CREATE TRIGGER {SIGS}_append_only BEFORE UPDATE OR DELETE ON {SIGS}"
            " FOR EACH ROW EXECUTE FUNCTION cloud_signatures_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {SIGS}_no_truncate BEFORE TRUNCATE ON {SIGS}"
            " FOR EACH STATEMENT EXECUTE FUNCTION cloud_signatures_refuse_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {SIGS}_no_{event.lower()} BEFORE {event} ON {SIGS}"
                f" BEGIN SELECT RAISE(ABORT, '{SIGS} is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {SIGS}_append_only ON {SIGS}")
        op.execute(f"DROP TRIGGER {SIGS}_no_truncate ON {SIGS}")
        op.execute("DROP FUNCTION cloud_signatures_refuse_change()")
    for table in (SIGS, "foreign_access", "signature_activations", "cloud_credentials"):
        op.drop_table(table)

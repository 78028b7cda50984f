"""The CA registry: subscribers, holders, registrations, powers of attorney, certificates.

Revision ID: 0006
Revises: 0005

Also: each certificate's status history (``certificate_events``, append-only: triggers refuse
UPDATE and DELETE, and TRUNCATE on PostgreSQL), renewal requests with their supporting
documents, and the scope of API clients (``client_subscribers``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
EVENTS = "certificate_events"

_PG_REFUSE = """
CREATE FUNCTION certificate_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
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


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    ref_table = target.split(".", maxsplit=1)[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{ref_table}")
    )


def _ck(table: str, name: str, sql: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(sql, name=op.f(f"ck_{table}_{name}"))


def _index(table: str, column: str, unique: bool = False) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=unique)


def upgrade() -> None:
    op.create_table(
        "subscribers",
        _s("inn", 14),
        _s("name", 200),
        _s("legal_form", 64),
        _s("locality", 128),
        _s("email", 254),
        _s("status", 16),
        _ts("created_at"),
        _ts("updated_at"),
        _ck("subscribers", "status_known", "status IN ('active', 'closed')"),
        _pk("subscribers", "inn"),
    )
    op.create_table(
        "holders",
        sa.Column("id", BigId, nullable=False),
        _s("subscriber_inn", 14),
        _s("full_name", 64),
        _s("surname", 64),
        _s("given_name", 64),
        _s("position", 64),
        _s("passport_series", 32),
        _s("email", 254),
        _s("phone", 32),
        _s("status", 16),
        _ts("created_at"),
        _ts("updated_at"),
        _ck("holders", "status_known", "status IN ('active', 'inactive')"),
        _fk("holders", "subscriber_inn", "subscribers.inn"),
        _pk("holders"),
    )
    _index("holders", "subscriber_inn")
    op.create_table(
        "registration_requests",
        sa.Column("id", BigId, nullable=False),
        _s("channel", 16),
        _s("status", 16),
        _s("inn", 14),
        sa.Column("subscriber", sa.JSON(), nullable=False),
        sa.Column("holder", sa.JSON(), nullable=False),
        _s("role", 32),
        _s("storage", 16),
        _ts("submitted_at"),
        _s("submitted_by", 64),
        _ts("deadline_at"),
        _ts("decided_at", True),
        _s("decided_by", 64, True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("holder_id", BigId, nullable=True),
        _s("payment_account", 16, True),
        _ck("registration_requests", "channel_known", "channel IN ('office', 'online')"),
        _ck(
            "registration_requests",
            "status_known",
            "status IN ('pending', 'approved', 'rejected')",
        ),
        _fk("registration_requests", "holder_id", "holders.id"),
        _pk("registration_requests"),
    )
    _index("registration_requests", "inn")
    op.create_table(
        "powers_of_attorney",
        sa.Column("id", BigId, nullable=False),
        sa.Column("holder_id", BigId, nullable=False),
        _s("taxpayer_inn", 14),
        _s("taxpayer_name", 200),
        _s("taxpayer_legal_form", 64),
        _s("taxpayer_locality", 128),
        _s("document_number", 64),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        _ts("created_at"),
        _s("created_by", 64),
        _ts("revoked_at", True),
        _s("revoked_by", 64, True),
        sa.Column("revocation_note", sa.Text(), nullable=True),
        _ck("powers_of_attorney", "valid_period", "valid_until >= valid_from"),
        _fk("powers_of_attorney", "holder_id", "holders.id"),
        _pk("powers_of_attorney"),
    )
    _index("powers_of_attorney", "holder_id")
    _index("powers_of_attorney", "taxpayer_inn")
    op.create_table(
        "certificates",
        sa.Column("id", BigId, nullable=False),
        _s("serial", 40),
        _s("subscriber_inn", 14),
        sa.Column("holder_id", BigId, nullable=False),
        _s("role", 32),
        _s("storage", 16),
        _s("key_spec", 16),
        _s("key_label", 64, True),
        _s("spki_sha256", 64),
        _s("subject", 1024),
        sa.Column("requisites", sa.JSON(), nullable=False),
        _ts("not_before"),
        _ts("not_after"),
        _s("status", 16),
        _s("tbs_sha256", 64),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        _s("tariff", 64),
        sa.Column("price", sa.BigInteger(), nullable=False),
        _s("payment_key", 120),
        _s("request_key", 250, True),
        sa.Column("renewal_of", BigId, nullable=True),
        sa.Column("auto_renew", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _s("created_by", 64),
        _ts("issued_at", True),
        _ts("revoked_at", True),
        _s("revocation_reason", 32, True),
        _ts("invalidity_date", True),
        _ts("key_destroyed_at", True),
        _ck(
            "certificates",
            "status_known",
            "status IN ('pending', 'failed', 'active', 'suspended', 'revoked')",
        ),
        _ck("certificates", "storage_known", "storage IN ('cloud', 'rutoken')"),
        _fk("certificates", "subscriber_inn", "subscribers.inn"),
        _fk("certificates", "holder_id", "holders.id"),
        _fk("certificates", "renewal_of", "certificates.id"),
        sa.UniqueConstraint("serial", name=op.f("uq_certificates_serial")),
        sa.UniqueConstraint("request_key", name=op.f("uq_certificates_request_key")),
        sa.UniqueConstraint("renewal_of", name=op.f("uq_certificates_renewal_of")),
        _pk("certificates"),
    )
    for column in ("subscriber_inn", "holder_id", "spki_sha256", "not_after", "status"):
        _index("certificates", column)
    op.create_table(
        EVENTS,
        sa.Column("id", BigId, nullable=False),
        sa.Column("certificate_id", BigId, nullable=False),
        _s("action", 32),
        _s("reason", 32, True),
        _ts("invalidity_date", True),
        sa.Column("note", sa.Text(), nullable=True),
        _ts("at"),
        _s("actor", 64),
        _fk(EVENTS, "certificate_id", "certificates.id"),
        _pk(EVENTS),
    )
    _index(EVENTS, "certificate_id")
    op.create_table(
        "renewal_requests",
        sa.Column("id", BigId, nullable=False),
        sa.Column("certificate_id", BigId, nullable=False),
        _s("status", 16),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("csr_der", sa.LargeBinary(), nullable=True),
        _ts("new_not_after"),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        _s("charge_key", 120, True),
        _ts("submitted_at"),
        _s("submitted_by", 64),
        _ts("decided_at", True),
        _s("decided_by", 64, True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("new_certificate_id", BigId, nullable=True),
        _ck(
            "renewal_requests",
            "status_known",
            "status IN ('review', 'accepted', 'approved', 'rejected', 'issued')",
        ),
        _fk("renewal_requests", "certificate_id", "certificates.id"),
        _fk("renewal_requests", "new_certificate_id", "certificates.id"),
        _pk("renewal_requests"),
    )
    _index("renewal_requests", "certificate_id")
    op.create_table(
        "renewal_documents",
        sa.Column("id", BigId, nullable=False),
        sa.Column("renewal_id", BigId, nullable=False),
        _s("filename", 255),
        _s("content_type", 100),
        _s("sha256", 64),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _ts("uploaded_at"),
        _s("uploaded_by", 64),
        _fk("renewal_documents", "renewal_id", "renewal_requests.id"),
        _pk("renewal_documents"),
    )
    _index("renewal_documents", "renewal_id")
    op.create_table(
        "client_subscribers",
        sa.Column("client_id", sa.Integer(), nullable=False),
        _s("inn", 14),
        _ts("granted_at"),
        _s("granted_by", 64),
        _fk("client_subscribers", "client_id", "api_clients.id"),
        _fk("client_subscribers", "inn", "subscribers.inn"),
        _pk("client_subscribers", "client_id", "inn"),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(_PG_REFUSE)
        op.execute(
            f"CREATE TRIGGER {EVENTS}_append_only BEFORE UPDATE OR DELETE ON {EVENTS}"
            " FOR EACH ROW EXECUTE FUNCTION certificate_events_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {EVENTS}_no_truncate BEFORE TRUNCATE ON {EVENTS}"
            " FOR EACH STATEMENT EXECUTE FUNCTION certificate_events_refuse_change()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {EVENTS}_no_{event.lower()} BEFORE {event} ON {EVENTS}"
                f" BEGIN SELECT RAISE(ABORT, '{EVENTS} is append-only'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {EVENTS}_append_only ON {EVENTS}")
        op.execute(f"DROP TRIGGER {EVENTS}_no_truncate ON {EVENTS}")
        op.execute("DROP FUNCTION certificate_events_refuse_change()")
    for table in (
        "client_subscribers",
        "renewal_documents",
        "renewal_requests",
        EVENTS,
        "certificates",
        "powers_of_attorney",
        "registration_requests",
        "holders",
        "subscribers",
    ):
        op.drop_table(table)

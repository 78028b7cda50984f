"""Audit journal: appends without a shared lock, a sequencer, a Merkle tree, signed checkpoints.

Revision ID: 0014
Revises: 0013

The journal is migrated in place. Every existing row keeps its sequence, prev_hash and hash and
gets ``id`` = its sequence; new rows are inserted with ``id`` only, ``sequence``/``prev_hash``/
``hash`` NULL, and ``content_hash`` (the writer's SHA-256 of the content), and the sequencer
sets the three once. The database still refuses DELETE and TRUNCATE of the journal, and now
refuses every UPDATE except that one: from a NULL sequence to a full one, content unchanged.

``audit_head.tree_size`` counts the entries that are leaves of the Merkle tree: 0 here, and the
sequencer joins the existing entries to the tree in batches before it numbers new ones.
``audit_tree`` (the complete subtrees' hashes) and ``audit_checkpoints`` (signed tree heads)
are append-only as well.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "audit journal is append-only"  # as in 0001
_CONTENT = ("occurred_at", "actor", "action", "object", "outcome", "details")

_PG_SEQUENCE_ONCE = f"""
CREATE FUNCTION audit_journal_sequence_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.sequence IS NOT NULL OR NEW.sequence IS NULL OR NEW.hash IS NULL
       OR NEW.prev_hash IS NULL OR NEW.id IS DISTINCT FROM OLD.id
       OR NEW.content_hash IS DISTINCT FROM OLD.content_hash
       {"".join(f" OR NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _CONTENT)} THEN
        RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}: UPDATE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
"""
_SQLITE_SEQUENCE_ONCE = (
    "CREATE TRIGGER audit_journal_sequence_once BEFORE UPDATE ON audit_journal WHEN"
    " OLD.sequence IS NOT NULL OR NEW.sequence IS NULL OR NEW.hash IS NULL"
    " OR NEW.prev_hash IS NULL OR NEW.id IS NOT OLD.id OR NEW.content_hash IS NOT OLD.content_hash"
    + "".join(f" OR NEW.{c} IS NOT OLD.{c}" for c in _CONTENT)
    + f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
)
_APPEND_ONLY_TABLES = ("audit_tree", "audit_checkpoints")


def _sqlite_refuse(table: str, operation: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}"
        f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
    )


def _pg_refuse(table: str) -> tuple[str, str]:
    return (
        f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}"
        " FOR EACH ROW EXECUTE FUNCTION audit_journal_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION audit_journal_refuse_change()",
    )


def upgrade() -> None:
    if _dialect() == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()
    op.add_column(
        "audit_head",
        sa.Column("tree_size", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "audit_tree",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.String(64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("certificate_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    op.create_index(op.f("ix_audit_checkpoints_tree_size"), "audit_checkpoints", ["tree_size"])
    for table in _APPEND_ONLY_TABLES:
        if _dialect() == "postgresql":
            for statement in _pg_refuse(table):
                op.execute(statement)
        else:
            op.execute(_sqlite_refuse(table, "UPDATE"))
            op.execute(_sqlite_refuse(table, "DELETE"))


def _upgrade_postgresql() -> None:
    op.execute("DROP TRIGGER audit_journal_no_update_delete ON audit_journal")
    op.execute("ALTER TABLE audit_journal DROP CONSTRAINT pk_audit_journal")
    op.execute("ALTER TABLE audit_journal ADD COLUMN id BIGINT")
    op.execute("UPDATE audit_journal SET id = sequence")
    op.execute("ALTER TABLE audit_journal ALTER COLUMN id SET NOT NULL")
    op.execute("ALTER TABLE audit_journal ADD CONSTRAINT pk_audit_journal PRIMARY KEY (id)")
    op.execute("ALTER TABLE audit_journal ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    op.execute(
        "SELECT setval(pg_get_serial_sequence('audit_journal', 'id'),"
        " COALESCE(MAX(id), 0) + 1, false) FROM audit_journal"
    )
    for column in ("sequence", "prev_hash", "hash"):
        op.execute(f"ALTER TABLE audit_journal ALTER COLUMN {column} DROP NOT NULL")
    op.execute(
        "ALTER TABLE audit_journal ADD CONSTRAINT uq_audit_journal_sequence UNIQUE (sequence)"
    )
    op.execute("ALTER TABLE audit_journal ADD COLUMN content_hash VARCHAR(64)")
    op.execute("CREATE INDEX ix_audit_journal_pending ON audit_journal (id) WHERE sequence IS NULL")
    op.execute(_PG_SEQUENCE_ONCE)
    op.execute(
        "CREATE TRIGGER audit_journal_no_delete BEFORE DELETE ON audit_journal"
        " FOR EACH ROW EXECUTE FUNCTION audit_journal_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_journal_sequence_once BEFORE UPDATE ON audit_journal"
        " FOR EACH ROW EXECUTE FUNCTION audit_journal_sequence_once()"
    )


_SQLITE_COLUMNS = (
    "occurred_at DATETIME NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,"
    " object TEXT NOT NULL, outcome TEXT NOT NULL, details TEXT NOT NULL,"
)


def _upgrade_sqlite() -> None:
    op.execute("DROP TRIGGER audit_journal_no_update")
    op.execute("DROP TRIGGER audit_journal_no_delete")
    op.execute(
        "CREATE TABLE audit_journal_new (id INTEGER NOT NULL, sequence BIGINT, "
        + _SQLITE_COLUMNS
        + " content_hash VARCHAR(64), prev_hash VARCHAR(64), hash VARCHAR(64),"
        " CONSTRAINT pk_audit_journal PRIMARY KEY (id),"
        " CONSTRAINT uq_audit_journal_sequence UNIQUE (sequence),"
        " CONSTRAINT uq_audit_journal_hash UNIQUE (hash))"
    )
    columns = "sequence, " + ", ".join(_CONTENT) + ", prev_hash, hash"
    copy = f"INSERT INTO audit_journal_new (id, {columns}) SELECT sequence, {columns}"
    op.execute(copy + " FROM audit_journal ORDER BY sequence")
    _sqlite_swap()
    op.execute("CREATE INDEX ix_audit_journal_pending ON audit_journal (id) WHERE sequence IS NULL")
    op.execute(_SQLITE_SEQUENCE_ONCE)
    op.execute(_sqlite_refuse("audit_journal", "DELETE"))


def _sqlite_swap() -> None:
    op.execute("DROP INDEX ix_audit_journal_object")
    op.execute("DROP INDEX ix_audit_journal_occurred_at")
    op.execute("DROP TABLE audit_journal")
    op.execute("ALTER TABLE audit_journal_new RENAME TO audit_journal")
    op.execute("CREATE INDEX ix_audit_journal_occurred_at ON audit_journal (occurred_at)")
    op.execute("CREATE INDEX ix_audit_journal_object ON audit_journal (object)")


def downgrade() -> None:
    """Back to 0013: only once every entry is sequenced (the old journal has no pending rows)."""
    bind = op.get_bind()
    pending = bind.execute(
        sa.text("SELECT COUNT(*) FROM audit_journal WHERE sequence IS NULL")
    ).scalar_one()
    if pending:
        raise RuntimeError(f"{pending} audit entries are not sequenced: run the sequencer first")
    for table in _APPEND_ONLY_TABLES:
        if _dialect() == "postgresql":
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_update_delete ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
    op.drop_index(op.f("ix_audit_checkpoints_tree_size"), table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree")
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("tree_size")
    if _dialect() == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()


def _downgrade_postgresql() -> None:
    op.execute("DROP TRIGGER audit_journal_sequence_once ON audit_journal")
    op.execute("DROP TRIGGER audit_journal_no_delete ON audit_journal")
    op.execute("DROP FUNCTION audit_journal_sequence_once()")
    op.execute("DROP INDEX ix_audit_journal_pending")
    op.execute("ALTER TABLE audit_journal DROP COLUMN content_hash")
    op.execute("ALTER TABLE audit_journal DROP CONSTRAINT uq_audit_journal_sequence")
    for column in ("sequence", "prev_hash", "hash"):
        op.execute(f"ALTER TABLE audit_journal ALTER COLUMN {column} SET NOT NULL")
    op.execute("ALTER TABLE audit_journal DROP CONSTRAINT pk_audit_journal")
    op.execute("ALTER TABLE audit_journal DROP COLUMN id")
    op.execute("ALTER TABLE audit_journal ADD CONSTRAINT pk_audit_journal PRIMARY KEY (sequence)")
    op.execute(
        "CREATE TRIGGER audit_journal_no_update_delete BEFORE UPDATE OR DELETE ON audit_journal"
        " FOR EACH ROW EXECUTE FUNCTION audit_journal_refuse_change()"
    )


def _downgrade_sqlite() -> None:
    op.execute("DROP TRIGGER audit_journal_sequence_once")
    op.execute("DROP TRIGGER audit_journal_no_delete")
    op.execute("DROP INDEX ix_audit_journal_pending")
    op.execute(
        "CREATE TABLE audit_journal_new (sequence BIGINT NOT NULL, "
        + _SQLITE_COLUMNS
        + " prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL,"
        " CONSTRAINT pk_audit_journal PRIMARY KEY (sequence),"
        " CONSTRAINT uq_audit_journal_hash UNIQUE (hash))"
    )
    columns = "sequence, " + ", ".join(_CONTENT) + ", prev_hash, hash"
    copy = f"INSERT INTO audit_journal_new ({columns}) SELECT {columns}"
    op.execute(copy + " FROM audit_journal ORDER BY sequence")
    _sqlite_swap()
    op.execute(
        "CREATE TRIGGER audit_journal_no_update BEFORE UPDATE ON audit_journal"
        f" BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
    )
    op.execute(_sqlite_refuse("audit_journal", "DELETE"))


def _dialect() -> str:
    return op.get_context().dialect.name

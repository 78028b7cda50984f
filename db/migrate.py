"""Run the Alembic migrations from code (``tamga init``, tests) without an ``alembic.ini``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from db.errors import DBError

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the functions: it costs ~0.3 s at start-up, and every `tamga`
# command but `init` runs without it.

__all__ = ["MIGRATIONS_DIR", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Key of the PostgreSQL advisory lock taken while migrating ("TAMGA" in ASCII): two nodes
# running `tamga init` at once must not both try to create the same tables.
_MIGRATION_LOCK_KEY = 0x54414D4741


def upgrade(engine: Engine) -> None:
    """Migrate the database to the newest revision; a no-op when it is already there.

    All migrations run in one transaction (both backends have transactional DDL), so a failure
    leaves the database at the revision it had.
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _MIGRATION_LOCK_KEY})
        # On SQLite, BEGIN IMMEDIATE (see db.engine) already serialises concurrent migrators.
        from alembic import command

        command.upgrade(alembic_config(connection), "head")


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision that the code ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise DBError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code; ``env.py`` migrates ``connection`` if given."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolation: a literal "%" in the path must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config

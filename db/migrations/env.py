"""Alembic environment: migrate the connection given by :mod:`db.migrate`, or a URL.

Programmatic runs pass an open connection in ``config.attributes["connection"]`` and own its
transaction. Developers running the ``alembic`` command get the database named by
``TAMGA_DATABASE_URL`` (else ``sqlalchemy.url``, else the embedded SQLite file under
``TAMGA_HOME``). Migrations are hand-written: there is no ``target_metadata``, because models of
other packages cannot be imported here and autogenerate would propose dropping their tables.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection

from db.engine import default_sqlite_url, make_engine

config = context.config


def _database_url() -> str:
    url = os.environ.get("TAMGA_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    return url or default_sqlite_url(Path(os.environ.get("TAMGA_HOME", "var")))


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    # A no-op when the caller already opened a transaction (db.migrate.upgrade does).
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate the caller's connection, or open one to the configured database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_database_url())
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


# Only the alembic command line has an ini file; programmatic runs must not reconfigure the
# application's logging. disable_existing_loggers=False keeps Tamga's loggers alive.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

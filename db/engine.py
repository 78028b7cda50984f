"""Engines and sessions for the two supported databases: SQLite (embedded) and PostgreSQL.

SQLite is tuned so that several gunicorn worker processes can share one file: WAL lets readers
run beside the writer, and every transaction starts with ``BEGIN IMMEDIATE`` so that writers
queue on the busy timeout instead of failing with "database is locked" when a read lock would
have to be upgraded to a write lock halfway through a transaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseUnavailable, DBError

__all__ = ["check_connection", "default_sqlite_url", "make_engine", "make_session_factory"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 5


def make_engine(url: str) -> Engine:
    """Create an engine for a ``sqlite:///`` or ``postgresql[+psycopg]://`` URL."""
    try:
        parsed = make_url(url)
    except ArgumentError as ex:
        # The URL is not echoed: an unparsable URL cannot be masked and may hold a password.
        raise DBError("invalid database URL (not shown: it may contain a password)") from ex
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend in ("postgresql", "postgres"):
        return _postgresql_engine(parsed)
    raise DBError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


def make_session_factory(
    engine: Engine, *, inline_audit: bool | None = None
) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (services return them to callers).

    ``inline_audit``: run the audit sequencer after each commit that appended entries
    (:func:`db.sequencer.install_inline`); by default on SQLite only (the embedded mode, one
    writer at a time anyway), while on PostgreSQL ``tamga worker`` sequences in batches.
    """
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    if inline_audit is None:
        inline_audit = engine.dialect.name == "sqlite"
    if inline_audit:
        from db.sequencer import install_inline

        install_inline(factory)
    return factory


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise :class:`DatabaseUnavailable` with a one-line reason otherwise."""
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as ex:  # any driver, network or file-system failure means "unavailable"
        where = engine.url.render_as_string(hide_password=True)
        reason = _one_line_reason(ex, engine.url.password)
        raise DatabaseUnavailable(f"cannot connect to {where}: {reason}") from ex


def default_sqlite_url(home: Path) -> str:
    """URL of the embedded database file under ``TAMGA_HOME``, as an absolute path."""
    return f"sqlite:///{home.expanduser().resolve().as_posix()}/tamga.db"


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (SQLAlchemy's documented recipe): it would emit a
    # DEFERRED BEGIN only before DML, leaving SELECTs outside the transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first, so that switching to WAL waits for a concurrent opener.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    # Take the write lock up front: a DEFERRED transaction that reads then writes fails at
    # once with "database is locked" if another writer got in between; IMMEDIATE waits.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgresql_engine(url: URL) -> Engine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    # pre_ping: a node must survive a database failover or restart without serving errors.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _one_line_reason(ex: BaseException, password: str | None) -> str:
    cause = getattr(ex, "orig", None) or ex
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    reason = lines[0] if lines else type(cause).__name__
    if password:  # belt and braces: drivers should not echo it, but never let it through
        reason = reason.replace(password, "***")
    return reason

"""Engines, connection checks and migrations on real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, event, inspect, select

from db import (
    AuditHead,
    DatabaseUnavailable,
    DBError,
    check_connection,
    current_revision,
    default_sqlite_url,
    head_revision,
    make_engine,
    make_session_factory,
    upgrade,
)
from db.migrate import alembic_config


def test_migrated_database_is_at_head_and_upgrade_again_is_a_noop(engine: Engine) -> None:
    assert head_revision()
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"audit_journal", "audit_head", "alembic_version"} <= tables
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) == tables
    with make_session_factory(engine)() as session:
        assert list(session.scalars(select(AuditHead.id))) == [1]


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":  # every trigger function of every migration
            left = connection.exec_driver_sql(
                "SELECT proname FROM pg_proc JOIN pg_namespace n ON n.oid = pronamespace"
                " WHERE nspname = 'public' ORDER BY proname"
            )
        else:
            left = connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type IN ('trigger', 'index', 'view')"
                " AND name NOT LIKE 'sqlite_%'"
            )
        assert list(left.scalars()) == []
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_check_connection_passes_on_a_live_database(engine: Engine) -> None:
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert check_connection(engine) is None
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert "SELECT 1" in sent  # a real round trip to the database, not just a pool checkout


def test_unreachable_postgresql_is_reported_without_the_password() -> None:
    engine = make_engine("postgresql+psycopg://postgres:secretpw@127.0.0.1:1/nope")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            check_connection(engine)
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "secretpw" not in message
    assert message.startswith(
        "cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:1/nope: "
    )
    assert "\n" not in message


def test_unopenable_sqlite_file_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / "db-is-a-directory.db"
    directory.mkdir()
    engine = make_engine(f"sqlite:///{directory}")
    try:
        with pytest.raises(DatabaseUnavailable, match="cannot connect to sqlite"):
            check_connection(engine)
    finally:
        engine.dispose()


def test_plain_postgresql_url_uses_psycopg() -> None:
    engine = make_engine("postgresql://tamga:pw@db.example:5432/tamga")
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


def test_unsupported_or_invalid_urls_are_refused() -> None:
    with pytest.raises(DBError, match="unsupported"):
        make_engine("mysql://u:p@h/db")
    with pytest.raises(DBError, match="invalid database URL") as caught:
        make_engine("not a url with secretpw")
    assert "secretpw" not in str(caught.value)


def test_default_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_sqlite_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/tamga.db"
    monkeypatch.chdir(tmp_path)
    assert default_sqlite_url(Path("var")) == f"sqlite:///{tmp_path.resolve()}/var/tamga.db"


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "tamga.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == 30000
            assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    """Even a read-only transaction holds the write lock, so writers queue instead of failing."""
    path = tmp_path / "tamga.db"
    engine = make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0.1, isolation_level=None)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")  # autobegin: BEGIN IMMEDIATE
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at the end of the transaction
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()

"""Pytest fixtures: fresh, fully migrated databases on SQLite and PostgreSQL.

Every test that asks for ``database_url`` (or ``engine``/``session_factory``) runs twice, once
per backend, and is marked ``db``. PostgreSQL is never skipped: an unreachable server fails the
run. To stay fast, each test process (xdist worker) migrates one template database once, and
every test gets a copy of it (``CREATE DATABASE ... TEMPLATE``), dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db import DatabaseUnavailable, check_connection, make_engine, make_session_factory, upgrade

__all__ = ["database_url", "engine", "pg_admin_url", "pg_database_url", "session_factory"]

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
DB_FIXTURES = frozenset({"database_url", "engine", "session_factory"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a database fixture (directly or through another fixture)."""
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a PostgreSQL role allowed to create databases; the run fails if it is down."""
    url = os.environ.get("TAMGA_TEST_DATABASE_URL", DEFAULT_PG_ADMIN_URL)
    admin = make_engine(url)
    problem = None
    try:
        check_connection(admin)
    except DatabaseUnavailable as ex:
        problem = str(ex)  # fail outside the except block: no chained traceback noise
    finally:
        admin.dispose()
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is required for the tests and not reachable ({problem}). Run `make test` "
            "(it installs and starts PostgreSQL) or set TAMGA_TEST_DATABASE_URL.",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def _pg_admin(pg_admin_url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine for CREATE/DROP DATABASE, which refuse to run in a transaction."""
    admin = make_engine(pg_admin_url)
    try:
        yield admin.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def _pg_template(pg_admin_url: str, _pg_admin: Engine) -> Iterator[str]:
    """Name of this worker's migrated template database, dropped at the end of the session."""
    name = _unique_name("tamga_tpl")
    _create_database(_pg_admin, name)
    try:
        migrated = make_engine(_database_url(pg_admin_url, name))
        try:
            upgrade(migrated)
        finally:
            migrated.dispose()  # CREATE DATABASE ... TEMPLATE needs the template unused
        yield name
    finally:
        _drop_database(_pg_admin, name)


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database migrated to head, on each backend in turn."""
    if request.param == "sqlite":
        yield _fresh_sqlite(tmp_path)
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    admin: Engine = request.getfixturevalue("_pg_admin")
    template: str = request.getfixturevalue("_pg_template")
    name = _unique_name("tamga_t")
    _create_database(admin, name, template=template)
    try:
        yield _database_url(admin_url, name)
    finally:
        _drop_database(admin, name)


@pytest.fixture
def pg_database_url(pg_admin_url: str, _pg_admin: Engine, _pg_template: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL database migrated to head (a test that runs on it only)."""
    name = _unique_name("tamga_t")
    _create_database(_pg_admin, name, template=_pg_template)
    try:
        yield _database_url(pg_admin_url, name)
    finally:
        _drop_database(_pg_admin, name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on this test's database, disposed afterwards."""
    created = make_engine(database_url)
    try:
        yield created
    finally:
        created.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on this test's database; the audit sequencer runs inline after each commit on
    PostgreSQL as well (tests read sequence numbers right after acting). ``tamga worker``'s
    batched sequencing has tests of its own (tests/integration/db/test_sequencer.py)."""
    return make_session_factory(engine, inline_audit=True)


def _fresh_sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'db' / 'tamga.db'}"
    migrated = make_engine(url)
    try:
        upgrade(migrated)
    finally:
        migrated.dispose()
    return url


def _database_url(admin_url: str, name: str) -> str:
    url = make_url(admin_url).set(database=name)
    return url.render_as_string(hide_password=False)


def _unique_name(prefix: str) -> str:
    # Per xdist worker and random: parallel workers and parallel runs never share a database.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{prefix}_{worker}_{secrets.token_hex(4)}"


def _create_database(admin: Engine, name: str, *, template: str | None = None) -> None:
    statement = f'CREATE DATABASE "{name}"'
    if template is not None:
        statement += f' TEMPLATE "{template}"'
    with admin.connect() as connection:
        connection.exec_driver_sql(statement)


def _drop_database(admin: Engine, name: str) -> None:
    # FORCE: a test that failed half-way may have left connections open (PostgreSQL 13+).
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Guarantees the database itself keeps, and the ledger's exact-balance boundary, on SQLite and
PostgreSQL.

* ``payments``, ``certificate_events`` and ``cloud_signatures`` are append-only: the database's
  triggers (migrations 0003, 0006, 0007) refuse UPDATE and DELETE of a row that exists, whoever
  sends the SQL. The ledger's own UPDATE/DELETE refusals are in test_billing_ledger.py and the
  audit journal's in test_audit.py.
* On PostgreSQL, TRUNCATE of every append-only table is refused too (a statement trigger; SQLite
  has no TRUNCATE).
* A charge or a hold of exactly the available balance is allowed and leaves 0 available; one
  tyiyn more is refused and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import billing
from billing import ledger
from billing.models import Hold, LedgerEntry, LedgerTransaction
from db import AuditEntry
from policies.tariffs import Revenue
from tests.ca_fixtures import SUBSCRIBER, CaApi, register
from tests.integration.ca.test_issuance import _paid_first
from tests.integration.signing_api.test_csc import _authorize, _hash, _setup, _sign

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
INN = SUBSCRIBER["inn"]
ACTOR = "test"


# --- append-only tables: UPDATE and DELETE --------------------------------------------------------


def _rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        found = connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608
        return [tuple(r) for r in found]


def _refused(engine: Engine, table: str, statements: list[str]) -> None:
    """Every statement fails with the table's own trigger message, and no row changes."""
    before = _rows(engine, table)
    assert before, f"{table} has no row: a row trigger would have nothing to refuse"
    for statement in statements:
        with pytest.raises(DBAPIError, match=f"{table} is append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
        assert _rows(engine, table) == before, statement


_CHANGES = (
    "UPDATE {table} SET {column} = {value} WHERE id = {first}",
    "UPDATE {table} SET {column} = {value}",
    "DELETE FROM {table} WHERE id = {first}",
    "DELETE FROM {table}",
)


def _update_delete(table: str, first: int, column: str, value: str) -> list[str]:
    """One row and every row, changed and deleted (our own table and column names)."""
    return [c.format(table=table, column=column, value=value, first=first) for c in _CHANGES]


def test_payments_refuse_update_and_delete(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as s:
        billing.open_account(s, inn=INN, name=SUBSCRIBER["name"], now=NOW, actor=ACTOR)
        for n in (1, 2):
            billing.record_payment(
                s, channel="cash", provider="", external_id=f"receipt-{n}", account=INN,
                amount=100_00 * n, paid_at=NOW, now=NOW, actor=ACTOR,
            )  # fmt: skip
    [first, _] = [row[0] for row in _rows(engine, "payments")]
    _refused(engine, "payments", _update_delete("payments", first, "amount", "1"))
    _refused(engine, "payments", _update_delete("payments", first, "inn", "'00000000000000'"))


@pytest.mark.hsm
def test_certificate_events_refuse_update_and_delete(ca_api: CaApi) -> None:
    holder = register(ca_api)
    _paid_first(ca_api, holder)
    issued = ca_api.post(
        "/api/v1/certificates", {"holder_id": holder, "role": "head", "storage": "cloud"}
    )
    assert issued.status_code == 201, issued.json
    serial = issued.json["serial"]
    suspended = ca_api.post(f"/api/v1/certificates/{serial}/suspend", {})
    assert suspended.status_code == 200, suspended.json
    engine = ca_api.runtime.engine
    [first, _] = [row[0] for row in _rows(engine, "certificate_events")]  # issued, suspended
    _refused(
        engine, "certificate_events", _update_delete("certificate_events", first, "action", "'x'")
    )


@pytest.mark.hsm
def test_cloud_signatures_refuse_update_and_delete(ca_api: CaApi) -> None:
    h = _setup(ca_api)
    hashes = [_hash(b"evidence one"), _hash(b"evidence two")]
    signed = _sign(ca_api, h, _authorize(ca_api, h, hashes).json["SAD"], hashes)
    assert signed.status_code == 200, signed.json
    engine = ca_api.runtime.engine
    [first, _] = [row[0] for row in _rows(engine, "cloud_signatures")]
    statements = _update_delete("cloud_signatures", first, "document_hash", "'00'")
    _refused(engine, "cloud_signatures", statements)


# --- append-only tables: TRUNCATE (PostgreSQL; audit_journal: test_audit.py) ----------------------

_TRUNCATED = (
    "ledger_transactions",
    "ledger_entries",
    "payments",
    "certificate_events",
    "cloud_signatures",
    "crl_issues",
    "bank_statement_lines",
)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("table", _TRUNCATED)
def test_truncate_is_refused_on_postgresql(engine: Engine, table: str) -> None:
    """Refused by the table's own trigger (its name is in the message). CASCADE, or a referenced
    table would be refused by its foreign keys whatever the triggers say."""
    statement = f"TRUNCATE {table} CASCADE"
    with pytest.raises(DBAPIError, match=f"{table} is append-only"), engine.begin() as connection:
        connection.exec_driver_sql(statement)


# --- the exact available balance ------------------------------------------------------------------


@pytest.fixture
def funded(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """INN with 100.00 posted and 30.00 held: 70.00 available."""
    with session_factory.begin() as s:
        billing.open_account(s, inn=INN, name=SUBSCRIBER["name"], now=NOW, actor=ACTOR)
        billing.credit(
            s, inn=INN, amount=100_00, key="cash:1", source=ledger.CASH, description="top-up",
            now=NOW, actor=ACTOR,
        )  # fmt: skip
        billing.hold(
            s, inn=INN, amount=30_00, key="hold:1", revenue_kind=Revenue.REPORTS,
            description="reserved", now=NOW, actor=ACTOR,
        )  # fmt: skip
        assert billing.balance(s, INN).available == 70_00
    return session_factory


def _charge(s: Session, amount: int, key: str) -> Any:
    return billing.charge(
        s, inn=INN, amount=amount, key=key, revenue_kind=Revenue.REPORTS, description="report",
        now=NOW, actor=ACTOR,
    )  # fmt: skip


def _hold(s: Session, amount: int, key: str) -> Any:
    return billing.hold(
        s, inn=INN, amount=amount, key=key, revenue_kind=Revenue.REPORTS, description="report",
        now=NOW, actor=ACTOR,
    )  # fmt: skip


def _written(s: Session) -> tuple[int, ...]:
    return tuple(
        s.scalar(select(func.count()).select_from(model)) or 0
        for model in (LedgerTransaction, LedgerEntry, Hold, AuditEntry)
    )


Operation = Callable[[Session, int, str], Any]


@pytest.mark.parametrize("operation", [_charge, _hold], ids=["charge", "hold"])
def test_exactly_the_available_balance_may_be_used(
    funded: sessionmaker[Session], operation: Operation
) -> None:
    with funded.begin() as s:
        done = operation(s, 70_00, "exact")
        assert done.amount == 70_00 and not done.replayed
        after = billing.balance(s, INN)
        assert after.available == 0
    posted, held = (30_00, 30_00) if operation is _charge else (100_00, 100_00)
    assert (after.posted, after.held) == (posted, held)
    with funded() as s:
        assert billing.check_balances(s)[1] == []


@pytest.mark.parametrize("operation", [_charge, _hold], ids=["charge", "hold"])
def test_one_tyiyn_more_is_refused_and_writes_nothing(
    funded: sessionmaker[Session], operation: Operation
) -> None:
    with funded() as s:
        before, balance = _written(s), billing.balance(s, INN)
    with funded.begin() as s:
        with pytest.raises(billing.InsufficientFunds) as refused:
            operation(s, 70_01, "one-more")
        assert (refused.value.available, refused.value.due) == (70_00, 1)
    with funded() as s:
        assert _written(s) == before
        assert billing.balance(s, INN) == balance

"""OSMP guarantees (docs/osmp.md) that mutation testing (``make mutation``, area ``osmp``) found
unproved, each through the Flask test client on SQLite and PostgreSQL:

* a missing ``txn_id`` or ``account`` is a malformed request (300, 4), never a server error or a
  temporary error (1), and ``<osmp_txn_id>`` is then empty;
* the checks come in the documented order: a missing ``sum`` or ``txn_date`` on ``pay`` is 300
  even when the account is malformed too; a ``txn_date`` sent on ``check`` is checked;
* the provider's minimum and maximum sums are themselves payable;
* a replay with another sum echoes the ``txn_id`` and says why, in ``<comment>``; the first
  ``pay`` and its replay say ``payment accepted`` and ``payment already accepted``;
* billing/payments.py: each channel books its own ledger account and key (docs/billing.md), the
  same number in two channels is two receipts, external ids are 1-100 characters, a terminal
  never pays a terminated subscriber's debt, and issuing a payment account writes its audit
  row.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import billing
from billing import Receipt, ledger
from billing.models import LedgerTransaction, Payment
from db import AuditEntry
from policies.money import som
from policies.providers import PROVIDERS
from signing_api.runtime import Runtime
from tests.integration.signing_api.test_osmp import (
    DATE,
    INN,
    NOW,
    _call,
    _check,
    _parse,
    _pay,
    _posted,
    _written,
    app,  # noqa: F401 - the fixtures
    client,  # noqa: F401
)

pytestmark = [pytest.mark.hsm, pytest.mark.db]

BAD_ACCOUNT = "12345"


def test_a_missing_txn_id_or_account_is_malformed_not_a_failure(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    before = _written(runtime)
    for command in ("check", "pay"):
        # _parse asserts HTTP 200 and XML: a missing txn_id must not crash the route.
        no_txn_id = _parse(_call(client, command=command, account=INN, sum="10", txn_date=DATE))
        assert (no_txn_id.result, no_txn_id.txn_id) == (300, ""), command  # <osmp_txn_id/>
        no_account = _parse(_call(client, command=command, txn_id="7", sum="10", txn_date=DATE))
        assert (no_account.result, no_account.txn_id) == (4, "7"), command
    assert _written(runtime) == before


def test_sum_and_date_are_checked_before_the_account(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    """docs/osmp.md: ``command``, ``txn_id``, ``sum``, ``txn_date`` (300) → account form (4)."""
    before = _written(runtime)
    no_sum = _call(client, command="pay", txn_id="8", account=BAD_ACCOUNT, txn_date=DATE)
    assert _parse(no_sum).result == 300
    no_date = _call(client, command="pay", txn_id="8", account=BAD_ACCOUNT, sum="10.00")
    assert _parse(no_date).result == 300
    # txn_date is optional on check, but checked when sent.
    assert _check(client, INN, txn_date="20261302150000").result == 300
    assert _check(client, INN, txn_date="2026-11-02").result == 300
    assert _check(client, INN, txn_date=DATE).result == 0
    assert _written(runtime) == before


def test_the_minimum_and_maximum_sums_are_payable(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    quickpay = PROVIDERS["quickpay"]
    low, high = som(quickpay.min_sum), som(quickpay.max_sum)
    assert (low, high) == ("1.00", "100000.00")  # docs/osmp.md's table
    assert _check(client, INN, sum=low).result == 0
    assert _check(client, INN, sum=high).result == 0
    assert _pay(client, "11", INN, low).result == 0
    assert _pay(client, "12", INN, high).result == 0
    assert _posted(runtime) == (quickpay.min_sum + quickpay.max_sum, 0)


def test_answers_say_what_happened_in_comment(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    """The documented comments of a first pay, its replay and a conflicting replay; the conflict
    echoes the txn_id like every other answer."""
    first = _pay(client, "1234567", INN, "500.00")
    assert (first.result, first.comment) == (0, "payment accepted")
    again = _pay(client, "1234567", INN, "500.00")
    assert (again.result, again.prv_txn, again.comment) == (
        0,
        first.prv_txn,
        "payment already accepted",
    )
    other = _pay(client, "1234567", INN, "300.00")
    assert (other.result, other.txn_id, other.comment) == (
        300,
        "1234567",
        "this txn_id was paid with another sum or account",
    )
    assert b"<comment>this txn_id was paid with another sum or account</comment>" in other.raw
    assert _posted(runtime) == (500_00, 0)


# --- billing/payments.py: what a payment books, whatever its channel ---------------------------


def _record(s: Session, channel: str, provider: str, external_id: str, amount: int) -> Receipt:
    return billing.record_payment(
        s, channel=channel, provider=provider, external_id=external_id, account=INN,
        amount=amount, paid_at=NOW, now=NOW, actor="test",
    )  # fmt: skip


def _key(s: Session, transaction_id: int) -> str:
    return s.get_one(LedgerTransaction, transaction_id).idempotency_key


def test_each_channel_books_its_own_account_and_key(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    """docs/billing.md: a terminal payment debits ``asset:clearing:<provider>`` under the key
    ``pay:osmp:<provider>:<txn_id>``, bank and cash ``asset:bank``/``asset:cash`` under
    ``pay:bank::<reference>``/``pay:cash::<number>``; receipts are unique per (channel,
    provider, external id), so the same number in two channels is two payments."""
    paid = _pay(client, "77", INN, "100.00", provider="odengi")
    assert paid.result == 0 and paid.prv_txn is not None
    with runtime.transaction() as s:
        cash = _record(s, "cash", "", "77", 20_00)
        bank = _record(s, "bank", "", "77", 30_00)
        assert not cash.replayed and not bank.replayed
        assert len({paid.prv_txn, cash.id, bank.id}) == 3
        osmp_txn = s.get_one(Payment, paid.prv_txn).transaction_id
        assert _key(s, osmp_txn) == "pay:osmp:odengi:77"
        assert _key(s, cash.transaction_id) == "pay:cash::77"
        assert _key(s, bank.transaction_id) == "pay:bank::77"
        kinds = {
            s.get_one(LedgerTransaction, txn).kind
            for txn in (osmp_txn, cash.transaction_id, bank.transaction_id)
        }
        assert kinds == {"payment"}  # the statement's kind of a payment line
        assert ledger.account_balance(s, ledger.clearing("odengi")) == 100_00
        assert ledger.account_balance(s, ledger.CASH) == 20_00
        assert ledger.account_balance(s, ledger.BANK) == 30_00
        assert billing.balance(s, INN).posted == 150_00
        assert billing.check_balances(s)[1] == []


@pytest.mark.parametrize("length", [1, 100])
def test_external_ids_of_1_to_100_characters_are_recorded(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
    length: int,
) -> None:
    with runtime.transaction() as s:
        assert _record(s, "cash", "", "7" * length, 1_00).external_id == "7" * length


@pytest.mark.parametrize("external_id", ["", "7" * 101])
def test_other_external_ids_are_refused_and_write_nothing(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
    external_id: str,
) -> None:
    before = _written(runtime)
    with runtime.transaction() as s, pytest.raises(billing.MalformedAccount, match="external id"):
        _record(s, "cash", "", external_id, 1_00)
    assert _written(runtime) == before


def test_issuing_a_payment_account_is_audited(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    """docs/billing.md: ``billing.payment_account.issued`` is one of the money events' rows."""
    with runtime.transaction() as s:
        start = s.scalar(select(func.max(AuditEntry.id))) or 0
        info = billing.issue_payment_account(
            s, inn=INN, purpose=f"cert:first:{INN}", tariff="cert:head", amount_due=1510_00,
            now=NOW - timedelta(hours=1), actor="officer 1",
        )  # fmt: skip
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.id > start)).all()
        assert (entry.actor, entry.action, entry.object, entry.occurred_at) == (
            "officer 1",
            "billing.payment_account.issued",
            ledger.customer(INN),
            NOW - timedelta(hours=1),
        )
        assert entry.details_dict() == {
            "number": info.number,
            "purpose": f"cert:first:{INN}",
            "amount_due": 1510_00,
        }


def test_a_terminal_cannot_pay_a_terminated_subscribers_debt(
    client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    """docs/billing.md: a terminated account accepts no terminal payments (OSMP 79); only a bank
    or cash payment pays its debt."""
    with runtime.transaction() as s:
        billing.terminate(s, inn=INN, reason="test", debt=500_00, now=NOW, actor="test")
    before = _written(runtime)
    assert _pay(client, "31", INN, "100.00").result == 79
    assert _check(client, INN, sum="100.00").result == 79
    assert _written(runtime) == before
    with runtime.transaction() as s:
        assert _record(s, "cash", "", "КО-1", 100_00).service == "debt"

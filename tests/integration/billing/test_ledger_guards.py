"""Ledger guarantees (docs/billing.md) that mutation testing (``make mutation``, area ``ledger``)
found unproved: the boundaries of amounts and idempotency keys, a charge of exactly the available
balance, ``InsufficientFunds``' documented fields, the fingerprint that makes the same key
with other content an ``IdempotencyConflict``, and the audit row of every money event."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import billing
from billing import ledger
from db import AuditEntry
from policies.tariffs import Revenue
from tests.integration.billing.test_billing_ledger import ACTOR, INN, NOW, _charge, _counts, _credit


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_factory.begin() as s:
        billing.open_account(s, inn=INN, name='ОсОО "Ала-Тоо"', now=NOW, actor=ACTOR)
    return session_factory


def _hold(s: Session, amount: int, key: str, kind: Revenue = Revenue.REPORTS) -> billing.HoldInfo:
    return billing.hold(
        s, inn=INN, amount=amount, key=key, revenue_kind=kind, description="report",
        now=NOW, actor=ACTOR,
    )  # fmt: skip


@pytest.mark.parametrize("key", ["k" * 200, "k", "a b"])
def test_keys_of_1_to_200_characters_are_accepted(db: sessionmaker[Session], key: str) -> None:
    with db.begin() as s:
        assert not _credit(s, 1, key).replayed


@pytest.mark.parametrize("key", ["", "k" * 201, " k", "k "])
def test_other_keys_are_refused_and_write_nothing(db: sessionmaker[Session], key: str) -> None:
    with db() as s:
        before = _counts(s)
        with pytest.raises(billing.InvalidAmount, match="idempotency key"):
            _credit(s, 1, key)
        assert _counts(s) == before


@pytest.mark.parametrize("amount", [1, ledger.MAX_AMOUNT])
def test_amounts_from_1_tyiyn_to_the_maximum_are_accepted(
    db: sessionmaker[Session], amount: int
) -> None:
    with db.begin() as s:
        _credit(s, amount, f"cash:{amount}")
        assert billing.balance(s, INN).posted == amount


@pytest.mark.parametrize(
    ("amount", "why"),
    [(0, "positive"), (-1, "positive"), (ledger.MAX_AMOUNT + 1, "large"), (1.0, "whole")],
)
def test_other_amounts_are_refused(db: sessionmaker[Session], amount: object, why: str) -> None:
    with db() as s, pytest.raises(billing.InvalidAmount, match=why):
        _credit(s, amount, "cash:x")  # type: ignore[arg-type]


def test_a_charge_of_exactly_the_available_balance_succeeds(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "cash:1")
        _hold(s, 30_00, "hold:1")
        _charge(s, 70_00, "report:1")
        bal = billing.balance(s, INN)
        assert (bal.posted, bal.held, bal.available) == (30_00, 30_00, 0)


def test_insufficient_funds_names_amount_and_available(db: sessionmaker[Session]) -> None:
    """The API's 402 carries ``amount`` and ``available`` (docs/billing.md, errors table)."""
    with db.begin() as s:
        _credit(s, 100_00, "cash:1")
        _hold(s, 30_00, "hold:1")
    with db() as s:
        with pytest.raises(billing.InsufficientFunds) as charged:
            _charge(s, 70_01, "report:1")
        with pytest.raises(billing.InsufficientFunds) as held:
            _hold(s, 70_01, "hold:2")
    for refused in (charged.value, held.value):
        assert (refused.inn, refused.amount, refused.available) == (INN, 70_01, 70_00)


@pytest.mark.parametrize(
    ("amount", "kind"),
    [(20_00, Revenue.REPORTS), (10_00, Revenue.CERTIFICATES), (20_00, Revenue.CERTIFICATES)],
)
def test_the_same_charge_or_hold_key_with_other_content_is_a_conflict(
    db: sessionmaker[Session], amount: int, kind: Revenue
) -> None:
    """The fingerprint covers amount and revenue kind, for charges and for holds."""
    with db.begin() as s:
        _credit(s, 500_00, "cash:1")
        _charge(s, 10_00, "report:1")
        _hold(s, 10_00, "hold:1")
    with db() as s:
        before = _counts(s)
        with pytest.raises(billing.IdempotencyConflict):
            billing.charge(
                s, inn=INN, amount=amount, key="report:1", revenue_kind=kind,
                description="report", now=NOW, actor=ACTOR,
            )  # fmt: skip
        with pytest.raises(billing.IdempotencyConflict):
            _hold(s, amount, "hold:1", kind)
        assert _counts(s) == before


def test_holds_add_up_and_voiding_one_releases_only_its_amount(db: sessionmaker[Session]) -> None:
    """Kills hold 62 (``held = amount`` instead of ``+=``)."""
    with db.begin() as s:
        _credit(s, 100_00, "cash:1")
        _hold(s, 30_00, "hold:1")
        _hold(s, 20_00, "hold:2")
        assert billing.balance(s, INN).held == 50_00
        billing.void_hold(s, key="hold:1", now=NOW, actor=ACTOR)
        bal = billing.balance(s, INN)
        assert (bal.posted, bal.held, bal.available) == (100_00, 20_00, 80_00)


def _audit_rows(s: Session, after: int) -> list[tuple[str, str, str, str, dict[str, object]]]:
    rows = s.scalars(select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id))
    return [(e.actor, e.action, e.object, e.outcome, e.details_dict()) for e in rows]


def test_every_money_event_has_its_audit_row_with_action_amount_and_key(
    db: sessionmaker[Session],
) -> None:
    """docs/billing.md: every money event appends one audit row in the same transaction. Each row
    names its action, the subscriber (or account) it touched, the amount, the idempotency key and
    the ledger transaction or hold it wrote, at the event's time; a replay appends none."""
    with db.begin() as s:
        start = s.scalar(select(func.max(AuditEntry.id))) or 0
        credited = _credit(s, 100_00, "cash:1")
        charged = _charge(s, 10_00, "report:1")
        moved = ledger.transfer(
            s, key="suspense:1", amount=5_00, debit=ledger.BANK, credit_to=ledger.SUSPENSE,
            description="unmatched", now=NOW, actor=ACTOR, kind="suspense",
        )  # fmt: skip
        hold_1 = _hold(s, 30_00, "hold:1", Revenue.CERTIFICATES).id
        hold_2 = _hold(s, 20_00, "hold:2").id
        posted = billing.post_hold(s, key="hold:1", now=NOW, actor=ACTOR)
        billing.void_hold(s, key="hold:2", now=NOW, actor=ACTOR)
        reversed_ = billing.reverse(
            s, transaction_id=charged.transaction_id, reason="wrong report", now=NOW, actor=ACTOR
        )
        written = _audit_rows(s, start)
        when = s.scalars(select(AuditEntry.occurred_at).where(AuditEntry.id > start)).all()
        assert when == [NOW] * 8  # the event's time, not the wall clock
        # Replays of every event: no audit row.
        _credit(s, 100_00, "cash:1")
        _charge(s, 10_00, "report:1")
        _hold(s, 30_00, "hold:1", Revenue.CERTIFICATES)
        billing.post_hold(s, key="hold:1", now=NOW, actor=ACTOR)
        billing.void_hold(s, key="hold:2", now=NOW, actor=ACTOR)
        billing.reverse(s, transaction_id=charged.transaction_id, reason="x", now=NOW, actor=ACTOR)
        assert _audit_rows(s, start) == written
    me = ledger.customer(INN)
    ok = "success"
    assert written == [
        (ACTOR, "billing.credit.posted", me, ok, {
            "amount": 100_00, "key": "cash:1", "source": ledger.CASH,
            "transaction": credited.transaction_id,
        }),
        (ACTOR, "billing.charge.posted", me, ok, {
            "amount": 10_00, "key": "report:1", "revenue": Revenue.REPORTS.value,
            "transaction": charged.transaction_id,
        }),
        (ACTOR, "billing.suspense.posted", ledger.SUSPENSE, ok, {
            "amount": 5_00, "key": "suspense:1", "debit": ledger.BANK,
            "transaction": moved.transaction_id,
        }),
        (ACTOR, "billing.hold.placed", me, ok, {"amount": 30_00, "key": "hold:1", "hold": hold_1}),
        (ACTOR, "billing.hold.placed", me, ok, {"amount": 20_00, "key": "hold:2", "hold": hold_2}),
        (ACTOR, "billing.hold.posted", me, ok, {
            "amount": 30_00, "key": "hold:1", "transaction": posted.transaction_id,
        }),
        (ACTOR, "billing.hold.voided", me, ok, {"amount": 20_00, "key": "hold:2"}),
        (ACTOR, "billing.reversal.posted", f"txn:{charged.transaction_id}", ok, {
            "reason": "wrong report", "transaction": reversed_.transaction_id,
            "balance_change": 10_00,
        }),
    ]  # fmt: skip

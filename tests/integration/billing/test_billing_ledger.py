"""The ledger's service functions on SQLite and PostgreSQL: double entry, idempotency, holds,
reversals, refusals that write nothing, immutability, the drift check and the audit rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

import billing
from billing import ledger
from billing.models import CustomerAccount, LedgerEntry, LedgerTransaction
from db import AuditEntry, verify_chain
from policies.tariffs import TARIFFS, Revenue, Tariff

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
INN = "01234567890123"
OTHER = "02234567890123"
ACTOR = "test"


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_factory.begin() as s:
        billing.open_account(s, inn=INN, name='ОсОО "Ала-Тоо"', now=NOW, actor=ACTOR)
        billing.open_account(s, inn=OTHER, name="ИП Асанов", now=NOW, actor=ACTOR)
    return session_factory


def _credit(s: Session, amount: int, key: str, inn: str = INN) -> billing.Posting:
    return billing.credit(
        s, inn=inn, amount=amount, key=key, source=ledger.CASH, description="top-up",
        now=NOW, actor=ACTOR,
    )  # fmt: skip


def _charge(s: Session, amount: int, key: str, inn: str = INN) -> billing.Posting:
    return billing.charge(
        s, inn=inn, amount=amount, key=key, revenue_kind=Revenue.REPORTS, description="report",
        now=NOW, actor=ACTOR,
    )  # fmt: skip


def _counts(s: Session) -> tuple[int, int, int]:
    return (
        s.scalar(select(func.count()).select_from(LedgerTransaction)) or 0,
        s.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
        s.scalar(select(func.count()).select_from(AuditEntry)) or 0,
    )


def test_credit_and_charge_move_the_balance_in_double_entry(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 500_00, "cash:1")
        _charge(s, 150_00, "report:1")
        bal = billing.balance(s, INN)
        assert (bal.posted, bal.held, bal.available) == (350_00, 0, 350_00)
        assert ledger.account_balance(s, ledger.CASH) == 500_00
        assert ledger.account_balance(s, ledger.revenue(Revenue.REPORTS)) == -150_00
        assert s.scalar(select(func.sum(LedgerEntry.amount))) == 0
        assert billing.check_balances(s) == (2, [])


def test_a_replay_returns_the_first_result_and_writes_nothing(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        first = _credit(s, 100_00, "osmp:x:1")
    with db.begin() as s:
        before = _counts(s)
        again = _credit(s, 100_00, "osmp:x:1")
        assert again.replayed and again.transaction_id == first.transaction_id
        assert _counts(s) == before
        assert billing.balance(s, INN).posted == 100_00
    with db.begin() as s, pytest.raises(billing.IdempotencyConflict):
        _credit(s, 200_00, "osmp:x:1")


def test_insufficient_funds_writes_nothing(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
    with db.begin() as s:
        before = _counts(s)
        with pytest.raises(billing.InsufficientFunds) as refused:
            _charge(s, 100_01, "r1")
        assert refused.value.due == 1
        assert _counts(s) == before
        assert billing.balance(s, INN).posted == 100_00


@pytest.mark.parametrize("amount", [0, -5, 1.5, True, 10**14])
def test_bad_amounts_are_refused(db: sessionmaker[Session], amount: object) -> None:
    with db.begin() as s, pytest.raises(billing.InvalidAmount):
        _credit(s, amount, "bad")  # type: ignore[arg-type]


def test_holds_reserve_then_post_or_void(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 300_00, "c1")
        h = billing.hold(
            s, inn=INN, amount=200_00, key="report:7", revenue_kind=Revenue.REPORTS,
            description="report 7", now=NOW, actor=ACTOR,
        )  # fmt: skip
        bal = billing.balance(s, INN)
        assert (bal.posted, bal.held, bal.available) == (300_00, 200_00, 100_00)
        with pytest.raises(billing.InsufficientFunds):
            _charge(s, 100_01, "r2")
        posting = billing.post_hold(s, key=h.key, now=NOW, actor=ACTOR)
        assert billing.post_hold(s, key=h.key, now=NOW, actor=ACTOR).replayed
        bal = billing.balance(s, INN)
        assert (bal.posted, bal.held) == (100_00, 0)
        with pytest.raises(billing.HoldNotOpen):
            billing.void_hold(s, key=h.key, now=NOW, actor=ACTOR)
        h2 = billing.hold(
            s, inn=INN, amount=50_00, key="report:8", revenue_kind=Revenue.REPORTS,
            description="report 8", now=NOW, actor=ACTOR,
        )  # fmt: skip
        billing.void_hold(s, key=h2.key, now=NOW, actor=ACTOR)
        assert billing.balance(s, INN).available == 100_00
        assert posting.amount == 200_00
        assert billing.check_balances(s)[1] == []


def test_reversal_points_at_the_original_and_happens_once(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
        charged = _charge(s, 40_00, "r1")
        rev = billing.reverse(s, transaction_id=charged.transaction_id, reason="wrong", now=NOW,
                              actor=ACTOR)  # fmt: skip
        assert billing.balance(s, INN).posted == 100_00
        again = billing.reverse(s, transaction_id=charged.transaction_id, reason="wrong",
                                now=NOW, actor=ACTOR)  # fmt: skip
        assert again.replayed and again.transaction_id == rev.transaction_id
        row = s.get_one(LedgerTransaction, rev.transaction_id)
        assert row.reverses_id == charged.transaction_id
        with pytest.raises(billing.NotReversible):
            billing.reverse(s, transaction_id=rev.transaction_id, reason="x", now=NOW, actor=ACTOR)
    with db.begin() as s:
        _charge(s, 90_00, "r2")
        credit = s.scalars(select(LedgerTransaction).where(LedgerTransaction.kind == "credit"))
        with pytest.raises(billing.NotReversible, match="overdraw"):
            billing.reverse(s, transaction_id=credit.one().id, reason="x", now=NOW, actor=ACTOR)


def test_the_journal_is_append_only_in_the_database(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
    for statement in (
        update(LedgerEntry).values(amount=1),
        update(LedgerTransaction).values(amount=1),
        text("DELETE FROM ledger_entries"),
        text("DELETE FROM ledger_transactions"),
    ):
        with db() as s, pytest.raises(DBAPIError, match="append-only"):
            s.execute(statement)
            s.commit()


def test_drift_is_reported(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
        s.execute(update(CustomerAccount).where(CustomerAccount.inn == INN).values(posted=99_00))
    with db.begin() as s:
        _, drifts = billing.check_balances(s)
        assert [str(d) for d in drifts] == [
            f"account {INN}: posted is 9900, the journal says 10000"
        ]


def test_money_events_are_audited_without_breaking_the_chain(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
        _charge(s, 10_00, "r1")
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == [
            "billing.account.opened",
            "billing.account.opened",
            "billing.credit.posted",
            "billing.charge.posted",
        ]
        assert verify_chain(s) == 2  # these two are numbered once committed (docs/audit.md)
    with db() as s:
        assert verify_chain(s) == 4


def test_statement_has_opening_lines_and_closing(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
    later = NOW + timedelta(days=10)
    with db.begin() as s:
        billing.credit(s, inn=INN, amount=50_00, key="c2", source=ledger.BANK,
                       description="bank", now=later, actor=ACTOR)  # fmt: skip
        billing.charge(s, inn=INN, amount=30_00, key="r1", revenue_kind=Revenue.STORAGE,
                       description="storage", now=later, actor=ACTOR)  # fmt: skip
        st = billing.statement(s, INN, NOW + timedelta(days=1), NOW + timedelta(days=30))
        assert (st.opening, st.total_in, st.total_out, st.closing) == (100_00, 50_00, 30_00, 120_00)
        assert [line.balance_after for line in st.lines] == [150_00, 120_00]
        assert st == billing.statement(s, INN, NOW + timedelta(days=1), NOW + timedelta(days=30))


def test_payment_accounts_carry_a_check_digit_and_pay_their_purpose(
    db: sessionmaker[Session],
) -> None:
    price = TARIFFS.price("cert:head", date(2026, 11, 2)).price
    with db.begin() as s:
        pa = billing.issue_payment_account(s, inn=INN, purpose=f"cert:first:{INN}",
                                           tariff="cert:head", amount_due=price, now=NOW,
                                           actor=ACTOR)  # fmt: skip
        assert len(pa.number) == 16
        again = billing.issue_payment_account(s, inn=INN, purpose=f"cert:first:{INN}",
                                              tariff="cert:head", amount_due=price, now=NOW,
                                              actor=ACTOR)  # fmt: skip
        assert again.number == pa.number and not again.created
        bad = pa.number[:-1] + str((int(pa.number[-1]) + 1) % 10)
        with pytest.raises(billing.MalformedAccount):
            billing.resolve_target(s, bad)
        with pytest.raises(billing.AmountTooSmall):
            billing.record_payment(s, channel="osmp", provider="megapay", external_id="9",
                                   account=pa.number, amount=price - 1, paid_at=NOW, now=NOW,
                                   actor=ACTOR)  # fmt: skip
        receipt = billing.record_payment(s, channel="osmp", provider="megapay", external_id="10",
                                         account=pa.number, amount=price, paid_at=NOW, now=NOW,
                                         actor=ACTOR)  # fmt: skip
        assert receipt.service == "eds"
        bal = billing.balance(s, INN)
        assert (bal.posted, bal.held, bal.available) == (price, price, 0)
        with pytest.raises(billing.PaymentForbidden):
            billing.record_payment(s, channel="osmp", provider="megapay", external_id="11",
                                   account=pa.number, amount=price, paid_at=NOW, now=NOW,
                                   actor=ACTOR)  # fmt: skip
        billing.post_hold(s, key=f"pa:{pa.number}", now=NOW, actor=ACTOR)
        assert billing.balance(s, INN).posted == 0


def test_tariff_changes_apply_from_their_date() -> None:
    raised = TARIFFS.with_tariffs(
        Tariff("cert:head", Revenue.CERTIFICATES, 160_000, date(2027, 1, 1), "head")
    )
    assert raised.price("cert:head", date(2026, 12, 31)).price == 151_000
    assert raised.price("cert:head", date(2027, 1, 1)).price == 160_000
    assert TARIFFS.price("cert:rutoken", date(2026, 1, 1)).price == 120_000


def test_termination_moves_the_balance_to_refunds_and_accrues_penalties_once(
    db: sessionmaker[Session],
) -> None:
    with db.begin() as s:
        _credit(s, 100_00, "c1")
        info = billing.terminate(s, inn=INN, reason="закрытие", debt=1000_00, now=NOW,
                                 actor=ACTOR)  # fmt: skip
        assert (info.refund, info.debt) == (100_00, 1000_00)
        assert billing.balance(s, INN).posted == 0
        assert ledger.account_balance(s, ledger.refunds_payable(INN)) == -100_00
        with pytest.raises(billing.AccountTerminated):
            _credit(s, 1, "c2")
        with pytest.raises(billing.AccountTerminated):
            billing.record_payment(s, channel="osmp", provider="pay24", external_id="1",
                                   account=INN, amount=100, paid_at=NOW, now=NOW,
                                   actor=ACTOR)  # fmt: skip
        st = billing.statement(s, INN, NOW - timedelta(days=1), NOW + timedelta(days=1))
        assert st.closing == 100_00 - 1000_00  # refund owed minus debt; the move is internal
    day = info.debt_due_on + timedelta(days=3)
    with db.begin() as s:
        accrued = billing.accrue_penalties(s, on=day, now=NOW, actor=ACTOR)
        assert [p.amount for p in accrued] == [10_00, 10_00, 10_00]
        assert billing.accrue_penalties(s, on=day, now=NOW, actor=ACTOR) == []
        billing.record_payment(s, channel="bank", provider="", external_id="pp-1", account=INN,
                               amount=1000_00, paid_at=NOW, now=NOW, actor=ACTOR)  # fmt: skip
        assert billing.accrue_penalties(s, on=day + timedelta(days=1), now=NOW, actor=ACTOR) == []
        assert ledger.account_balance(s, ledger.receivable(INN)) == 30_00
        assert billing.check_balances(s)[1] == []


def test_service_state_follows_the_balance(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        assert billing.service_state(s, INN, now=NOW).state == "stopped"
        _credit(s, 1, "c1")
        state = billing.service_state(s, INN, now=NOW + timedelta(days=31))
        assert (state.state, state.may_suspend) == ("active", True)


def test_tariffed_charges_and_the_storage_fee_once_a_month(db: sessionmaker[Session]) -> None:
    with db.begin() as s:
        _credit(s, 2000_00, "c1")
        cert = billing.charge_tariff(s, inn=INN, tariff_code="cert:head", key="cert:1:issue",
                                     now=NOW, actor=ACTOR)  # fmt: skip
        assert cert.amount == 1510_00
        first = billing.charge_storage_fee(s, inn=INN, now=NOW, actor=ACTOR)
        again = billing.charge_storage_fee(s, inn=INN, now=NOW + timedelta(days=20), actor=ACTOR)
        assert again.replayed and again.transaction_id == first.transaction_id
        # 2026-11-30 20:00 UTC is already 1 December in Bishkek (UTC+6): a new month.
        december = billing.charge_storage_fee(
            s, inn=INN, now=datetime(2026, 11, 30, 20, tzinfo=UTC), actor=ACTOR
        )
        assert december.key == f"storage:{INN}:2026-12" and not december.replayed
        assert ledger.account_balance(s, ledger.revenue(Revenue.STORAGE)) == -2 * 100_00

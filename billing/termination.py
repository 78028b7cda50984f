"""The end of a contract (§18.5–18.6), the service state filing and signing consult (§3.9.2,
§5.3), and the daily penalty on a debt left after termination.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing import ledger
from billing.errors import AccountTerminated, AmountTooLarge, NotFound
from billing.models import CustomerAccount, Hold, LedgerAccount, LedgerEntry, Termination
from policies.billing import BILLING_POLICY, BillingPolicy
from policies.calendar import CALENDAR
from policies.dates import local_date
from policies.money import som
from policies.statuses import CustomerAccountStatus, HoldStatus, ServiceStatus
from policies.tariffs import Revenue

__all__ = [
    "ServiceState",
    "TerminationInfo",
    "accrue_penalties",
    "debt_outstanding",
    "pay_refund",
    "service_state",
    "settle_debt",
    "terminate",
]


@dataclass(frozen=True)
class TerminationInfo:
    inn: str
    terminated_at: datetime
    reason: str
    refund: int  # what the operator owes back
    debt: int  # what the subscriber owes
    debt_due_on: date
    transaction_id: int | None
    replayed: bool

    @classmethod
    def of(cls, row: Termination, *, replayed: bool) -> TerminationInfo:
        return cls(
            row.inn,
            row.terminated_at,
            row.reason,
            row.refund,
            row.debt,
            row.debt_due_on,
            row.transaction_id,
            replayed,
        )


def terminate(
    session: Session,
    *,
    inn: str,
    reason: str,
    debt: int = 0,
    debt_revenue: Revenue = Revenue.REPORTS,
    now: datetime,
    actor: str,
    policy: BillingPolicy = BILLING_POLICY,
) -> TerminationInfo:
    """Terminate: open holds released, the balance moved to refunds payable, debt recorded."""
    if debt:
        ledger.check_amount(debt)
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("a termination needs a reason")
    row = ledger.lock_customer(session, inn)
    previous = session.get(Termination, inn)
    if previous is not None:
        if (previous.reason, previous.debt) != (reason, debt):
            raise AccountTerminated(f"the contract of {inn} was already terminated")
        return TerminationInfo.of(previous, replayed=True)
    for key in session.scalars(
        select(Hold.idempotency_key).where(Hold.inn == inn, Hold.status == HoldStatus.OPEN)
    ).all():
        ledger.void_hold(session, key=key, now=now, actor=actor)
    refund = row.posted
    legs: list[tuple[str, int]] = []
    if refund:
        legs += [(ledger.customer(inn), refund), (ledger.refunds_payable(inn), -refund)]
    if debt:
        legs += [(ledger.receivable(inn), debt), (ledger.revenue(debt_revenue), -debt)]
    txn_id = None
    if legs:
        txn, _ = ledger.journal(
            session,
            key=f"terminate:{inn}",
            print_=ledger.fingerprint(op="terminate", inn=inn),
            kind="termination",
            inn=inn,
            amount=refund or debt,
            description=f"Расторжение договора: {reason}",
            legs=legs,
            now=now,
            actor=actor,
            locked=True,
        )
        txn_id = txn.id
    row.posted -= refund
    row.status, row.terminated_at = CustomerAccountStatus.TERMINATED, now
    due = CALENDAR.add_working_days(local_date(now), policy.termination_debt_due_days)
    record = Termination(
        inn=inn,
        terminated_at=now,
        reason=reason,
        refund=refund,
        debt=debt,
        debt_due_on=due,
        transaction_id=txn_id,
    )
    session.add(record)
    session.flush()
    ledger.audit_event(
        session,
        actor=actor,
        action="billing.account.terminated",
        obj=ledger.customer(inn),
        now=now,
        reason=reason,
        refund=refund,
        debt=debt,
        transaction=txn_id,
    )
    return TerminationInfo.of(record, replayed=False)


def _termination(session: Session, inn: str) -> Termination:
    record = session.get(Termination, inn)
    if record is None:
        raise NotFound(f"the contract of {inn} is not terminated")
    return record


def _paid_against_debt(session: Session, inn: str) -> int:
    paid = session.scalar(
        select(func.coalesce(func.sum(-LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == ledger.receivable(inn), LedgerEntry.amount < 0)
    )
    return int(paid or 0)


def debt_outstanding(session: Session, inn: str) -> tuple[int, int]:
    """``(principal still unpaid, total owed including penalties)`` of a terminated account."""
    record = _termination(session, inn)
    principal = max(record.debt - _paid_against_debt(session, inn), 0)
    return principal, ledger.account_balance(session, ledger.receivable(inn))


def settle_debt(
    session: Session,
    *,
    inn: str,
    amount: int,
    source: str,
    reference: str,
    now: datetime,
    actor: str,
) -> ledger.Posting:
    """A payment (bank or cash) against a terminated subscriber's debt."""
    ledger.lock_customer(session, inn)
    _, owed = debt_outstanding(session, inn) if session.get(Termination, inn) else (0, 0)
    key = f"debt:{inn}:{reference}"
    print_ = ledger.fingerprint(op="debt-payment", amount=amount, debit=source, credit=inn)
    first = ledger.existing_transaction(session, key, print_) is None
    if first and owed <= 0:
        raise AccountTerminated(f"the contract of {inn} is terminated and nothing is owed")
    if first and amount > owed:
        raise AmountTooLarge(f"{inn} owes {som(owed)} som; {som(amount)} is too much")
    return ledger.transfer(
        session,
        key=key,
        amount=amount,
        debit=source,
        credit_to=ledger.receivable(inn),
        description=f"Погашение задолженности, документ {reference}",
        now=now,
        actor=actor,
        kind="debt-payment",
    )


def pay_refund(
    session: Session,
    *,
    inn: str,
    amount: int,
    source: str,
    reference: str,
    now: datetime,
    actor: str,
) -> ledger.Posting:
    """The operator pays back (part of) a terminated subscriber's balance."""
    ledger.lock_customer(session, inn)
    _termination(session, inn)
    owed = -ledger.account_balance(session, ledger.refunds_payable(inn))
    key = f"refund:{inn}:{reference}"
    print_ = ledger.fingerprint(op="refund", amount=amount, debit=inn, credit=source)
    if ledger.existing_transaction(session, key, print_) is None and amount > owed:
        raise AmountTooLarge(f"{som(owed)} som is owed to {inn}; {som(amount)} is more")
    return ledger.transfer(
        session,
        key=key,
        amount=amount,
        debit=ledger.refunds_payable(inn),
        credit_to=source,
        description=f"Возврат средств, документ {reference}",
        now=now,
        actor=actor,
        kind="refund",
    )


def accrue_penalties(
    session: Session, *, on: date, now: datetime, actor: str, policy: BillingPolicy = BILLING_POLICY
) -> list[ledger.Posting]:
    """Charge the §18.6 penalty for every overdue day up to ``on`` not yet charged.

    One transaction per subscriber and day (key ``penalty:<inn>:<day>``), so running the job
    twice, or after a missed day, charges each day exactly once. The penalty is on the unpaid
    principal, not on earlier penalties; missed days are caught up at today's principal.
    """
    postings = []
    overdue = select(Termination).where(Termination.debt > 0, Termination.debt_due_on < on)
    for record in session.scalars(overdue.order_by(Termination.inn)).all():
        ledger.lock_customer(session, record.inn)
        principal, _ = debt_outstanding(session, record.inn)
        penalty = (principal * policy.penalty_basis_points_per_day + 5_000) // 10_000
        day = record.debt_due_on + timedelta(days=1)
        while day <= on and penalty > 0:
            postings.append(
                ledger.transfer(
                    session,
                    key=f"penalty:{record.inn}:{day.isoformat()}",
                    amount=penalty,
                    debit=ledger.receivable(record.inn),
                    credit_to=ledger.revenue(Revenue.PENALTIES),
                    description=f"Пеня 1% за просрочку оплаты за {day:%d.%m.%Y}",
                    now=now,
                    actor=actor,
                    kind="penalty",
                )
            )
            day += timedelta(days=1)
    return [p for p in postings if not p.replayed]


@dataclass(frozen=True)
class ServiceState:
    """What filing and signing consult before serving a subscriber."""

    inn: str
    state: ServiceStatus
    reason: str
    may_suspend: bool  # §5.3: no payment for longer than the policy allows
    last_payment_at: datetime | None


def service_state(
    session: Session, inn: str, *, now: datetime, policy: BillingPolicy = BILLING_POLICY
) -> ServiceState:
    row = session.get(CustomerAccount, inn)
    if row is None:
        raise NotFound(f"no billing account for INN {inn}")
    since = row.last_payment_at or row.opened_at
    idle = now - since > timedelta(days=policy.suspend_after_days_without_payment)
    if row.status == CustomerAccountStatus.TERMINATED:
        return ServiceState(
            inn, ServiceStatus.TERMINATED, "the contract is terminated", False, row.last_payment_at
        )
    if policy.stop_at_zero_balance and row.posted - row.held <= 0:
        return ServiceState(
            inn,
            ServiceStatus.STOPPED,
            "zero balance: services stop until a top-up (§3.9.2)",
            idle,
            row.last_payment_at,
        )
    days = policy.suspend_after_days_without_payment
    reason = f"no payment for more than {days} days (§5.3)" if idle else "balance available"
    return ServiceState(inn, ServiceStatus.ACTIVE, reason, idle, row.last_payment_at)

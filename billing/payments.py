"""Payments in: from terminals and wallets (OSMP), bank statements and the cash desk.

A payer names an account in one of two forms (seed 002):

* the subscriber's 14-digit INN — service "SOChI": the money tops up the balance;
* a 16-digit payment account — service "EDS payment": the money pays one purpose (the first
  certificate) and is held for it at once, so it cannot be spent on anything else meanwhile.

Each payment is recorded exactly once per (channel, provider, external id): a replay returns
the first receipt and writes nothing; a replay with another amount or account is refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing import ledger
from billing.errors import (
    AccountNotFound,
    AccountTerminated,
    AmountTooLarge,
    AmountTooSmall,
    IdempotencyConflict,
    MalformedAccount,
    PaymentForbidden,
)
from billing.models import CustomerAccount, Payment, PaymentAccount
from policies.identifiers import is_inn, is_payment_account, payment_account_number
from policies.money import som
from policies.providers import PROVIDERS
from policies.statuses import CustomerAccountStatus, PaymentAccountStatus
from policies.tariffs import Revenue

__all__ = [
    "CHANNELS",
    "PaymentAccountInfo",
    "Receipt",
    "Target",
    "issue_payment_account",
    "receipts",
    "record_payment",
    "record_unmatched",
    "resolve_target",
]

CHANNELS = ("osmp", "bank", "cash")
SOCHI, EDS = "sochi", "eds"


@dataclass(frozen=True)
class Target:
    """What an account number names: whose money it is, for which service, how much is due."""

    account: str
    inn: str
    name: str
    service: str  # sochi | eds
    amount_due: int | None  # eds: the exact amount the payment account expects
    active: bool


@dataclass(frozen=True)
class Receipt:
    """A recorded payment; ``id`` is what OSMP calls ``prv_txn``."""

    id: int
    channel: str
    provider: str
    external_id: str
    account: str
    service: str
    inn: str
    amount: int
    paid_at: datetime
    recorded_at: datetime
    transaction_id: int
    replayed: bool

    @classmethod
    def of(cls, row: Payment, *, replayed: bool) -> Receipt:
        return cls(
            row.id,
            row.channel,
            row.provider,
            row.external_id,
            row.account,
            row.service,
            row.inn,
            row.amount,
            row.paid_at,
            row.recorded_at,
            row.transaction_id,
            replayed,
        )


@dataclass(frozen=True)
class PaymentAccountInfo:
    number: str
    inn: str
    purpose: str
    tariff: str
    amount_due: int
    status: str
    created: bool


def resolve_target(session: Session, account: str) -> Target:
    """Which subscriber and service ``account`` names; refuses malformed and unknown ones."""
    if is_inn(account):
        row = session.get(CustomerAccount, account)
        if row is None:
            raise AccountNotFound(f"no subscriber with INN {account}")
        return Target(
            account, row.inn, row.name, SOCHI, None, row.status == CustomerAccountStatus.ACTIVE
        )
    if is_payment_account(account):
        pa = session.get(PaymentAccount, account)
        if pa is None:
            raise AccountNotFound(f"no payment account {account}")
        owner = session.get_one(CustomerAccount, pa.inn)
        if pa.status != PaymentAccountStatus.OPEN:
            raise PaymentForbidden(f"payment account {account} is {pa.status}")
        return Target(
            account,
            pa.inn,
            owner.name,
            EDS,
            pa.amount_due,
            owner.status == CustomerAccountStatus.ACTIVE,
        )
    raise MalformedAccount(f"{account!r} is neither a 14-digit INN nor a 16-digit payment account")


def _existing_receipt(
    session: Session, channel: str, provider: str, external_id: str
) -> Payment | None:
    return session.scalars(
        select(Payment).where(
            Payment.channel == channel,
            Payment.provider == provider,
            Payment.external_id == external_id,
        )
    ).one_or_none()


def record_payment(
    session: Session,
    *,
    channel: str,
    provider: str,
    external_id: str,
    account: str,
    amount: int,
    paid_at: datetime,
    now: datetime,
    actor: str,
    source: str | None = None,
) -> Receipt:
    """Credit a payment exactly once; a replay returns the first :class:`Receipt`.

    ``source`` is the ledger account the money comes from; by default the channel's own
    (a provider's clearing account, the bank, the cash desk). Assigning a suspense line passes
    :data:`billing.ledger.SUSPENSE`.
    """
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    ledger.check_amount(amount)
    if not external_id or len(external_id) > 100:
        raise MalformedAccount("a payment needs an external id of 1-100 characters")
    if _existing_receipt(session, channel, provider, external_id) is not None:
        return _replay(session, channel, provider, external_id, account, amount)
    target = resolve_target(session, account)
    source = source or _source_of(channel, provider)
    if not target.active:
        if channel == "osmp" or target.service != SOCHI:
            raise AccountTerminated(f"the contract of {target.inn} is terminated")
        return _settle_debt(
            session,
            channel,
            provider,
            external_id,
            account,
            amount,
            paid_at,
            source,
            now=now,
            actor=actor,
        )
    if target.amount_due is not None and amount < target.amount_due:
        raise AmountTooSmall(f"payment account {account} expects {som(target.amount_due)}")
    if target.amount_due is not None and amount > target.amount_due:
        raise AmountTooLarge(f"payment account {account} expects {som(target.amount_due)}")
    key = f"pay:{channel}:{provider}:{external_id}"
    description = _describe(channel, provider, external_id, target)
    posting = ledger.credit(
        session,
        inn=target.inn,
        amount=amount,
        key=key,
        source=source,
        description=description,
        now=now,
        actor=actor,
        kind="payment",
    )
    if posting.replayed:
        # The same payment was recorded while we waited for the subscriber's row lock.
        return _replay(session, channel, provider, external_id, account, amount)
    if target.service == EDS:
        _pay_purpose(session, account, now=now, actor=actor)
    return _receipt(
        session,
        channel,
        provider,
        external_id,
        account,
        target.service,
        target.inn,
        amount,
        paid_at,
        posting,
        now,
    )


def _receipt(
    session: Session,
    channel: str,
    provider: str,
    external_id: str,
    account: str,
    service: str,
    inn: str,
    amount: int,
    paid_at: datetime,
    posting: ledger.Posting,
    now: datetime,
) -> Receipt:
    try:
        with session.begin_nested():
            row = Payment(
                channel=channel,
                provider=provider,
                external_id=external_id,
                account=account,
                service=service,
                inn=inn,
                amount=amount,
                paid_at=paid_at,
                recorded_at=now,
                transaction_id=posting.transaction_id,
            )
            session.add(row)
    except IntegrityError:
        raise IdempotencyConflict(posting.key) from None  # the key was taken by another path
    return Receipt.of(row, replayed=False)


def _settle_debt(
    session: Session,
    channel: str,
    provider: str,
    external_id: str,
    account: str,
    amount: int,
    paid_at: datetime,
    source: str,
    *,
    now: datetime,
    actor: str,
) -> Receipt:
    """A bank or cash payment from a terminated subscriber pays its debt, if it has one."""
    from billing.termination import settle_debt

    posting = settle_debt(
        session,
        inn=account,
        amount=amount,
        source=source,
        reference=f"{channel}:{provider}:{external_id}",
        now=now,
        actor=actor,
    )
    return _receipt(
        session,
        channel,
        provider,
        external_id,
        account,
        "debt",
        account,
        amount,
        paid_at,
        posting,
        now,
    )


def _replay(
    session: Session, channel: str, provider: str, external_id: str, account: str, amount: int
) -> Receipt:
    previous = _existing_receipt(session, channel, provider, external_id)
    if previous is None:  # the ledger key exists without its receipt: written by another path
        raise IdempotencyConflict(f"{channel}:{provider}:{external_id}")
    if previous.account != account or previous.amount != amount:
        raise IdempotencyConflict(f"{channel}:{provider}:{external_id}")
    return Receipt.of(previous, replayed=True)


def _source_of(channel: str, provider: str) -> str:
    if channel == "osmp":
        return ledger.clearing(provider)
    return ledger.BANK if channel == "bank" else ledger.CASH


def _describe(channel: str, provider: str, external_id: str, target: Target) -> str:
    what = "Оплата ЭЦП" if target.service == EDS else "Пополнение баланса"
    known = PROVIDERS.get(provider)
    name = known.name if known else provider
    via = {"osmp": f"через {name}", "bank": "банковским переводом", "cash": "в кассу"}
    return f"{what} {via[channel]}, документ {external_id}"


def _pay_purpose(session: Session, number: str, *, now: datetime, actor: str) -> None:
    """The payment account is paid: hold its amount for the purpose, mark it paid."""
    pa = session.get_one(PaymentAccount, number)
    held = ledger.hold(
        session,
        inn=pa.inn,
        amount=pa.amount_due,
        key=f"pa:{number}",
        revenue_kind=Revenue.CERTIFICATES,
        description=f"{pa.purpose} ({pa.tariff})",
        now=now,
        actor=actor,
    )
    pa.status, pa.paid_at, pa.hold_id = PaymentAccountStatus.PAID, now, held.id


def record_unmatched(
    session: Session,
    *,
    key: str,
    amount: int,
    description: str,
    now: datetime,
    actor: str,
    source: str = ledger.BANK,
) -> ledger.Posting:
    """Money arrived that nobody could match yet: it waits in the suspense account."""
    return ledger.transfer(
        session,
        key=key,
        amount=amount,
        debit=source,
        credit_to=ledger.SUSPENSE,
        description=description,
        now=now,
        actor=actor,
        kind="suspense",
    )


def issue_payment_account(
    session: Session,
    *,
    inn: str,
    purpose: str,
    tariff: str,
    amount_due: int,
    now: datetime,
    actor: str,
) -> PaymentAccountInfo:
    """A 16-digit payment account for one purpose of one subscriber (idempotent by purpose)."""
    ledger.check_amount(amount_due)
    if ledger.lock_customer(session, inn).status != CustomerAccountStatus.ACTIVE:
        raise AccountTerminated(f"the contract of {inn} is terminated")
    found = session.scalars(
        select(PaymentAccount).where(PaymentAccount.purpose == purpose)
    ).one_or_none()
    if found is not None:
        if (found.inn, found.amount_due, found.tariff) != (inn, amount_due, tariff):
            raise IdempotencyConflict(purpose)
        return _info(found, created=False)
    for _ in range(5):
        number = payment_account_number(
            str(secrets.randbelow(9) + 1) + f"{secrets.randbelow(10**14):014d}"
        )
        if session.get(PaymentAccount, number) is None:
            break
    else:  # pragma: no cover - 5 collisions in a 10^15 space means a broken RNG
        raise RuntimeError("could not draw an unused payment account number")
    row = PaymentAccount(
        number=number,
        inn=inn,
        purpose=purpose,
        tariff=tariff,
        amount_due=amount_due,
        status=PaymentAccountStatus.OPEN,
        created_at=now,
    )
    session.add(row)
    session.flush()
    ledger.audit_event(
        session,
        actor=actor,
        action="billing.payment_account.issued",
        obj=ledger.customer(inn),
        now=now,
        number=number,
        purpose=purpose,
        amount_due=amount_due,
    )
    return _info(row, created=True)


def payment_account_for(session: Session, purpose: str) -> PaymentAccountInfo | None:
    """The payment account issued for ``purpose``, if any (``created`` is False)."""
    row = session.scalars(
        select(PaymentAccount).where(PaymentAccount.purpose == purpose)
    ).one_or_none()
    return None if row is None else _info(row, created=False)


def _info(row: PaymentAccount, *, created: bool) -> PaymentAccountInfo:
    return PaymentAccountInfo(
        row.number, row.inn, row.purpose, row.tariff, row.amount_due, row.status, created
    )


def receipts(
    session: Session, inn: str, start: datetime | None = None, end: datetime | None = None
) -> list[Receipt]:
    """The subscriber's receipts ("Поступления"), oldest first."""
    ledger.balance(session, inn)  # raises AccountNotFound
    query = select(Payment).where(Payment.inn == inn)
    if start is not None:
        query = query.where(Payment.recorded_at >= start)
    if end is not None:
        query = query.where(Payment.recorded_at < end)
    return [Receipt.of(r, replayed=False) for r in session.scalars(query.order_by(Payment.id))]

"""The double-entry ledger: the service functions every other domain calls to move money.

Rules kept here, whatever the caller:

* every transaction's entries sum to zero (debits positive, credits negative), in integer tyiyn;
* every transaction has a unique idempotency key built from business identity; a replay with the
  same content returns the first result and writes nothing, with other content it is refused;
* a subscriber's cached balance (posted, held) changes in the same database transaction as its
  entries, under a row lock on ``customer_accounts`` that serialises operations per subscriber;
* a refused operation (insufficient funds, terminated account, ...) writes nothing;
* every money event appends one audit row, in the same transaction.

Lock order, to stay free of deadlocks: one ``customer_accounts`` row, then ledger rows, then the
audit head (inside :func:`db.audit.append`), always in that order and never two customers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing.errors import (
    AccountExists,
    AccountNotFound,
    AccountTerminated,
    HoldNotOpen,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    InvalidName,
    MalformedAccount,
    NotFound,
    NotReversible,
)
from billing.models import CustomerAccount, Hold, LedgerAccount, LedgerEntry, LedgerTransaction
from db import audit
from policies.billing import BUSINESS_TIME_ZONE
from policies.identifiers import is_inn
from policies.money import MAX_AMOUNT
from policies.statuses import CustomerAccountStatus, HoldStatus
from policies.tariffs import TARIFFS, Revenue, TariffSchedule

__all__ = [
    "BANK",
    "CASH",
    "SUSPENSE",
    "Balance",
    "HoldInfo",
    "Posting",
    "account_balance",
    "audit_event",
    "balance",
    "charge",
    "charge_storage_fee",
    "charge_tariff",
    "check_amount",
    "check_key",
    "clearing",
    "credit",
    "customer",
    "existing_transaction",
    "fingerprint",
    "hold",
    "journal",
    "lock_customer",
    "open_account",
    "post_hold",
    "receivable",
    "refunds_payable",
    "revenue",
    "reverse",
    "subscriber_accounts",
    "transfer",
    "void_hold",
]

# The operator's side of the chart of accounts.
BANK = "asset:bank"
CASH = "asset:cash"
SUSPENSE = "liability:suspense"  # bank money nobody could match to a subscriber yet

_BISHKEK = ZoneInfo(BUSINESS_TIME_ZONE)
_PER_SUBSCRIBER = ("customer:", "receivable:", "refunds-payable:")


def customer(inn: str) -> str:
    return f"customer:{inn}"


def receivable(inn: str) -> str:
    return f"receivable:{inn}"


def refunds_payable(inn: str) -> str:
    """What the operator owes a terminated subscriber: its sub-account of refunds payable."""
    return f"refunds-payable:{inn}"


def subscriber_accounts(inn: str) -> tuple[str, str, str]:
    """The ledger accounts whose sum is the subscriber's position towards the operator."""
    return customer(inn), receivable(inn), refunds_payable(inn)


def clearing(provider: str) -> str:
    return f"asset:clearing:{provider}"


def revenue(kind: Revenue) -> str:
    return f"revenue:{kind.value}"


def _kind_of(code: str) -> str:
    prefix = code.split(":", 1)[0]
    return {"customer": "liability", "receivable": "asset", "refunds-payable": "liability"}.get(
        prefix, prefix
    )


@dataclass(frozen=True)
class Balance:
    """A subscriber's balance in tyiyn: posted (journal), held (reserved), available."""

    inn: str
    name: str
    status: str
    posted: int
    held: int

    @property
    def available(self) -> int:
        return self.posted - self.held

    @classmethod
    def of(cls, row: CustomerAccount) -> Balance:
        return cls(row.inn, row.name, row.status, row.posted, row.held)


@dataclass(frozen=True)
class Posting:
    """The result of a money operation; ``replayed`` when the key had been used before."""

    transaction_id: int
    key: str
    kind: str
    inn: str | None
    amount: int
    occurred_at: datetime
    replayed: bool

    @classmethod
    def of(cls, txn: LedgerTransaction, *, replayed: bool) -> Posting:
        return cls(
            txn.id, txn.idempotency_key, txn.kind, txn.inn, txn.amount, txn.occurred_at, replayed
        )


@dataclass(frozen=True)
class HoldInfo:
    id: int
    key: str
    inn: str
    amount: int
    status: str
    transaction_id: int | None
    replayed: bool

    @classmethod
    def of(cls, row: Hold, *, replayed: bool) -> HoldInfo:
        return cls(
            row.id,
            row.idempotency_key,
            row.inn,
            row.amount,
            row.status,
            row.transaction_id,
            replayed,
        )


# --- small helpers ---------------------------------------------------------------------------


def check_amount(amount: object) -> int:
    """A positive whole number of tyiyn, or :class:`InvalidAmount`."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount("an amount is a whole number of tyiyn")
    if amount <= 0:
        raise InvalidAmount("an amount must be positive")
    if amount > MAX_AMOUNT:
        raise InvalidAmount("the amount is implausibly large")
    return amount


def check_key(key: str) -> str:
    if not key or len(key) > 200 or key != key.strip():
        raise InvalidAmount("an idempotency key is 1-200 characters without outer spaces")
    return key


def fingerprint(**content: Any) -> str:
    """SHA-256 of an operation's content: the same key must always mean the same operation."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_customer(session: Session, inn: str) -> CustomerAccount:
    """The subscriber's account row, locked until the end of the transaction."""
    row = session.scalars(
        select(CustomerAccount).where(CustomerAccount.inn == inn).with_for_update()
    ).one_or_none()
    if row is None:
        raise AccountNotFound(f"no billing account for INN {inn}")
    return row


def lock_account(session: Session, inn: str) -> Balance:
    """Lock the subscriber's account until the end of the transaction; its balance then.

    A domain that must decide on the balance and then charge (filing's awaiting-payment queue)
    takes this lock first, so that no other charge or top-up of the subscriber runs between.
    """
    return Balance.of(lock_customer(session, inn))


def posting_for(session: Session, key: str) -> Posting | None:
    """The transaction made under idempotency ``key``, if any (``replayed`` set)."""
    txn = session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).first()
    return None if txn is None else Posting.of(txn, replayed=True)


# Ledger account ids by (database URL, code). Accounts are never deleted or renumbered (entries
# reference them), so an id read back from the database stays right for the life of the process;
# ids of accounts this session created are not cached until they are seen committed.
_ACCOUNT_IDS: dict[tuple[str, str], int] = {}


def _ledger_account(session: Session, code: str, inn: str | None = None) -> int:
    """The id of the ledger account ``code``, created on first use (race-safe)."""
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    cached = _ACCOUNT_IDS.get((database, code))
    if cached is not None:
        return cached
    created: set[str] = session.info.setdefault("tamga_created_accounts", set())
    found = session.scalar(select(LedgerAccount.id).where(LedgerAccount.code == code))
    if found is not None:
        if code not in created:
            _ACCOUNT_IDS[(database, code)] = found
        return found
    try:
        with session.begin_nested():
            row = LedgerAccount(code=code, kind=_kind_of(code), inn=inn)
            session.add(row)
    except IntegrityError:  # another transaction created it first
        return session.scalars(select(LedgerAccount.id).where(LedgerAccount.code == code)).one()
    created.add(code)
    return row.id


def existing_transaction(session: Session, key: str, print_: str) -> LedgerTransaction | None:
    """The transaction already recorded under ``key``; refused if it was something else."""
    txn = session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key)
    ).one_or_none()
    if txn is not None and txn.fingerprint != print_:
        raise IdempotencyConflict(key)
    return txn


def journal(
    session: Session,
    *,
    key: str,
    print_: str,
    kind: str,
    inn: str | None,
    amount: int,
    description: str,
    legs: Sequence[tuple[str, int]],
    now: datetime,
    actor: str,
    reverses_id: int | None = None,
    locked: bool = False,
) -> tuple[LedgerTransaction, bool]:
    """Write one balanced transaction; ``(txn, False)`` if ``key`` won a race elsewhere.

    ``locked``: the caller holds the subscriber's row lock and has looked the key up under it,
    so no other transaction can take the key meanwhile and the savepoint is not needed.
    """
    if sum(amount for _, amount in legs) != 0 or not legs or any(a == 0 for _, a in legs):
        raise ValueError(f"unbalanced or empty transaction {key}: {legs}")  # a bug, not input
    txn = LedgerTransaction(
        idempotency_key=key,
        fingerprint=print_,
        kind=kind,
        inn=inn,
        amount=amount,
        description=description,
        actor=actor,
        occurred_at=now,
        reverses_id=reverses_id,
    )
    if locked:
        session.add(txn)
        session.flush()
    else:
        try:
            with session.begin_nested():
                session.add(txn)
        except IntegrityError:
            # The key was taken meanwhile by a transaction that holds no lock of ours.
            existing = existing_transaction(session, key, print_)
            if existing is None:
                raise
            return existing, False
    legs_out = []
    for code, leg in legs:
        account_inn = code.split(":", 1)[1] if code.startswith(_PER_SUBSCRIBER) else None
        legs_out.append(
            LedgerEntry(
                transaction_id=txn.id,
                account_id=_ledger_account(session, code, account_inn),
                amount=leg,
            )
        )
    session.add_all(legs_out)
    session.flush()
    return txn, True


def audit_event(
    session: Session, *, actor: str, action: str, obj: str, now: datetime, **details: Any
) -> None:
    audit.append(session, actor=actor, action=action, object=obj, details=details, now=now)


def _require_active(row: CustomerAccount) -> None:
    if row.status != CustomerAccountStatus.ACTIVE:
        raise AccountTerminated(f"the contract of {row.inn} is terminated")


# --- accounts --------------------------------------------------------------------------------


def open_account(
    session: Session, *, inn: str, name: str, now: datetime, actor: str
) -> tuple[Balance, bool]:
    """Open a subscriber's balance; ``(balance, created)``. Same INN and name again: a replay."""
    if not is_inn(inn):
        raise MalformedAccount(f"{inn!r} is not a 14-digit INN")
    name = " ".join(name.split())
    if not name or len(name) > 300:
        raise InvalidName("a subscriber's name is 1-300 characters")
    existing = session.get(CustomerAccount, inn)
    if existing is not None:
        if existing.name != name:
            raise AccountExists(f"INN {inn} already has an account, as {existing.name!r}")
        return Balance.of(existing), False
    try:
        with session.begin_nested():
            row = CustomerAccount(
                inn=inn,
                name=name,
                status=CustomerAccountStatus.ACTIVE,
                posted=0,
                held=0,
                opened_at=now,
            )
            session.add(row)
    except IntegrityError:  # opened concurrently: treat like the replay above
        session.expire_all()
        return open_account(session, inn=inn, name=name, now=now, actor=actor)
    _ledger_account(session, customer(inn), inn)
    audit_event(
        session, actor=actor, action="billing.account.opened", obj=customer(inn), now=now, name=name
    )
    return Balance.of(row), True


def balance(session: Session, inn: str) -> Balance:
    row = session.get(CustomerAccount, inn)
    if row is None:
        raise AccountNotFound(f"no billing account for INN {inn}")
    return Balance.of(row)


# --- money in and out ------------------------------------------------------------------------


def credit(
    session: Session,
    *,
    inn: str,
    amount: int,
    key: str,
    source: str,
    description: str,
    now: datetime,
    actor: str,
    kind: str = "credit",
) -> Posting:
    """Money reaches the subscriber's balance from ``source`` (bank, cash, a clearing account)."""
    check_amount(amount)
    check_key(key)
    print_ = fingerprint(op="credit", inn=inn, amount=amount, source=source)
    row = lock_customer(session, inn)
    if (txn := existing_transaction(session, key, print_)) is not None:
        return Posting.of(txn, replayed=True)
    _require_active(row)
    txn, created = journal(
        session,
        key=key,
        print_=print_,
        kind=kind,
        inn=inn,
        amount=amount,
        description=description,
        legs=[(source, amount), (customer(inn), -amount)],
        now=now,
        actor=actor,
        locked=True,
    )
    if created:
        row.posted += amount
        row.last_payment_at = now
        audit_event(
            session,
            actor=actor,
            action="billing.credit.posted",
            obj=customer(inn),
            now=now,
            amount=amount,
            key=key,
            source=source,
            transaction=txn.id,
        )
    return Posting.of(txn, replayed=not created)


def charge(
    session: Session,
    *,
    inn: str,
    amount: int,
    key: str,
    revenue_kind: Revenue,
    description: str,
    now: datetime,
    actor: str,
) -> Posting:
    """Debit the subscriber's available balance; :class:`InsufficientFunds` writes nothing."""
    check_amount(amount)
    check_key(key)
    print_ = fingerprint(op="charge", inn=inn, amount=amount, revenue=revenue_kind.value)
    row = lock_customer(session, inn)
    if (txn := existing_transaction(session, key, print_)) is not None:
        return Posting.of(txn, replayed=True)
    _require_active(row)
    if row.posted - row.held < amount:
        raise InsufficientFunds(inn, amount, row.posted - row.held)
    txn, created = journal(
        session,
        key=key,
        print_=print_,
        kind="charge",
        inn=inn,
        amount=amount,
        description=description,
        legs=[(customer(inn), amount), (revenue(revenue_kind), -amount)],
        now=now,
        actor=actor,
        locked=True,
    )
    if created:
        row.posted -= amount
        audit_event(
            session,
            actor=actor,
            action="billing.charge.posted",
            obj=customer(inn),
            now=now,
            amount=amount,
            key=key,
            revenue=revenue_kind.value,
            transaction=txn.id,
        )
    return Posting.of(txn, replayed=not created)


def transfer(
    session: Session,
    *,
    key: str,
    amount: int,
    debit: str,
    credit_to: str,
    description: str,
    now: datetime,
    actor: str,
    kind: str = "transfer",
) -> Posting:
    """Move money between two operator accounts (never a customer's: use credit/charge)."""
    check_amount(amount)
    check_key(key)
    if debit.startswith("customer:") or credit_to.startswith("customer:"):
        raise ValueError("customer balances move only through credit/charge/holds")
    print_ = fingerprint(op=kind, amount=amount, debit=debit, credit=credit_to)
    if (txn := existing_transaction(session, key, print_)) is not None:
        return Posting.of(txn, replayed=True)
    inn = next(
        (c.split(":", 1)[1] for c in (credit_to, debit) if c.startswith(_PER_SUBSCRIBER)), None
    )
    txn, created = journal(
        session,
        key=key,
        print_=print_,
        kind=kind,
        inn=inn,
        amount=amount,
        description=description,
        legs=[(debit, amount), (credit_to, -amount)],
        now=now,
        actor=actor,
    )
    if created:
        audit_event(
            session,
            actor=actor,
            action=f"billing.{kind}.posted",
            obj=credit_to,
            now=now,
            amount=amount,
            key=key,
            debit=debit,
            transaction=txn.id,
        )
    return Posting.of(txn, replayed=not created)


# --- holds -----------------------------------------------------------------------------------


def hold_status(session: Session, key: str) -> str | None:
    """The status of the hold of idempotency key ``key`` (a ``HoldStatus`` value), if any."""
    return session.scalars(select(Hold.status).where(Hold.idempotency_key == key)).one_or_none()


def _hold_row(session: Session, key: str) -> Hold:
    row = session.scalars(select(Hold).where(Hold.idempotency_key == key)).one_or_none()
    if row is None:
        raise NotFound(f"no hold {key!r}")
    return row


def hold(
    session: Session,
    *,
    inn: str,
    amount: int,
    key: str,
    revenue_kind: Revenue,
    description: str,
    now: datetime,
    actor: str,
) -> HoldInfo:
    """Reserve ``amount`` of the available balance (posted unchanged) for a later charge."""
    check_amount(amount)
    check_key(key)
    print_ = fingerprint(op="hold", inn=inn, amount=amount, revenue=revenue_kind.value)
    row = lock_customer(session, inn)
    found = session.scalars(select(Hold).where(Hold.idempotency_key == key)).one_or_none()
    if found is not None:
        if found.fingerprint != print_:
            raise IdempotencyConflict(key)
        return HoldInfo.of(found, replayed=True)
    _require_active(row)
    if row.posted - row.held < amount:
        raise InsufficientFunds(inn, amount, row.posted - row.held)
    held = Hold(
        idempotency_key=key,
        fingerprint=print_,
        inn=inn,
        amount=amount,
        revenue=revenue_kind.value,
        description=description,
        status=HoldStatus.OPEN,
        created_at=now,
    )
    session.add(held)
    row.held += amount
    session.flush()
    audit_event(
        session,
        actor=actor,
        action="billing.hold.placed",
        obj=customer(inn),
        now=now,
        amount=amount,
        key=key,
        hold=held.id,
    )
    return HoldInfo.of(held, replayed=False)


def post_hold(session: Session, *, key: str, now: datetime, actor: str) -> Posting:
    """Charge an open hold: the held amount leaves the balance for its revenue account."""
    inn = _hold_row(session, key).inn
    row = lock_customer(session, inn)
    held = _hold_row(session, key)
    session.refresh(held)
    if held.status == HoldStatus.POSTED and held.transaction_id is not None:
        return Posting.of(session.get_one(LedgerTransaction, held.transaction_id), replayed=True)
    if held.status != HoldStatus.OPEN:
        raise HoldNotOpen(f"hold {key!r} is {held.status}")
    kind = Revenue(held.revenue)
    txn, _ = journal(
        session,
        key=f"{key}:post",
        print_=fingerprint(op="post", hold=held.id),
        kind="charge",
        inn=inn,
        amount=held.amount,
        description=held.description,
        legs=[(customer(inn), held.amount), (revenue(kind), -held.amount)],
        now=now,
        actor=actor,
        locked=True,
    )
    row.held -= held.amount
    row.posted -= held.amount
    held.status, held.settled_at, held.transaction_id = HoldStatus.POSTED, now, txn.id
    audit_event(
        session,
        actor=actor,
        action="billing.hold.posted",
        obj=customer(inn),
        now=now,
        amount=held.amount,
        key=key,
        transaction=txn.id,
    )
    return Posting.of(txn, replayed=False)


def void_hold(session: Session, *, key: str, now: datetime, actor: str) -> HoldInfo:
    """Release an open hold: the amount is available again; nothing is journalled."""
    inn = _hold_row(session, key).inn
    row = lock_customer(session, inn)
    held = _hold_row(session, key)
    session.refresh(held)
    if held.status == HoldStatus.VOIDED:
        return HoldInfo.of(held, replayed=True)
    if held.status != HoldStatus.OPEN:
        raise HoldNotOpen(f"hold {key!r} is {held.status}")
    row.held -= held.amount
    held.status, held.settled_at = HoldStatus.VOIDED, now
    audit_event(
        session,
        actor=actor,
        action="billing.hold.voided",
        obj=customer(inn),
        now=now,
        amount=held.amount,
        key=key,
    )
    return HoldInfo.of(held, replayed=False)


# --- corrections -----------------------------------------------------------------------------


def reverse(
    session: Session, *, transaction_id: int, reason: str, now: datetime, actor: str
) -> Posting:
    """Correct a transaction with its mirror image, pointing at it. Once per transaction."""
    original = session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise NotFound(f"no ledger transaction {transaction_id}")
    if original.reverses_id is not None:
        raise NotReversible(f"transaction {transaction_id} is itself a reversal")
    key = f"reversal:{transaction_id}"
    print_ = fingerprint(op="reverse", original=transaction_id)
    row = (
        lock_customer(session, original.inn)
        if original.inn and _touches_customer(session, original)
        else None
    )
    if (txn := existing_transaction(session, key, print_)) is not None:
        return Posting.of(txn, replayed=True)
    legs = _legs(session, transaction_id)
    mirrored = [(code, -amount) for code, amount in legs]
    delta = sum(-amount for code, amount in mirrored if code.startswith("customer:"))
    if row is not None and row.posted - row.held + delta < 0:
        raise NotReversible(
            f"reversing transaction {transaction_id} would overdraw {row.inn}: "
            f"{row.posted - row.held} available, {-delta} needed"
        )
    txn, _ = journal(
        session,
        key=key,
        print_=print_,
        kind="reversal",
        inn=original.inn,
        amount=original.amount,
        description=f"Сторно №{transaction_id}: {reason}",
        legs=mirrored,
        now=now,
        actor=actor,
        reverses_id=transaction_id,
    )
    if row is not None:
        row.posted += delta
    audit_event(
        session,
        actor=actor,
        action="billing.reversal.posted",
        obj=f"txn:{transaction_id}",
        now=now,
        reason=reason,
        transaction=txn.id,
        balance_change=delta,
    )
    return Posting.of(txn, replayed=False)


def _legs(session: Session, transaction_id: int) -> list[tuple[str, int]]:
    rows = session.execute(
        select(LedgerAccount.code, LedgerEntry.amount)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == transaction_id)
        .order_by(LedgerEntry.id)
    ).all()
    return [(code, amount) for code, amount in rows]


def _touches_customer(session: Session, txn: LedgerTransaction) -> bool:
    return any(code.startswith("customer:") for code, _ in _legs(session, txn.id))


def account_balance(session: Session, code: str) -> int:
    """The journal balance of a ledger account, debit-positive (assets > 0, liabilities < 0)."""
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code == code)
    )
    return int(total or 0)


# --- tariffed charges ------------------------------------------------------------------------


def charge_tariff(
    session: Session,
    *,
    inn: str,
    tariff_code: str,
    key: str,
    now: datetime,
    actor: str,
    quantity: int = 1,
    tariffs: TariffSchedule = TARIFFS,
) -> Posting:
    """Charge ``quantity`` × the price of ``tariff_code`` in force on today's Bishkek date."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise InvalidAmount("the quantity is a positive whole number")
    tariff = tariffs.price(tariff_code, now.astimezone(_BISHKEK).date())
    title = tariff.title if quantity == 1 else f"{tariff.title} × {quantity}"
    return charge(
        session,
        inn=inn,
        amount=tariff.price * quantity,
        key=key,
        revenue_kind=tariff.revenue,
        description=title,
        now=now,
        actor=actor,
    )


def charge_storage_fee(session: Session, *, inn: str, now: datetime, actor: str) -> Posting:
    """The monthly cloud-storage fee, at most once per Bishkek calendar month (FAQ).

    Filing calls it at the first report signed in a month and the CA at a renewal request; the
    key ``storage:<inn>:<YYYY-MM>`` makes every later call that month a replay.
    """
    month = now.astimezone(_BISHKEK).strftime("%Y-%m")
    return charge_tariff(
        session,
        inn=inn,
        tariff_code="storage:monthly",
        key=f"storage:{inn}:{month}",
        now=now,
        actor=actor,
    )

"""From the journal to the documents: the data of each billing PDF, assembled on request.

Documents are never stored: each function below reads the journal and returns one of the frozen
dataclasses of :mod:`billing.documents`, which renders it. Everything on a document is derived
from its request and the journal — numbers from the INN, the period or the transaction id,
dates from the period or the transaction — so the same request on the same journal gives the
same document, byte for byte. Periods are calendar days in Asia/Bishkek.

"Nothing to invoice" (no such certificate charge, a month without reporting services) is
:class:`~billing.errors.NotFound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing import ledger
from billing.documents import (
    ActLine,
    Invoice,
    InvoiceLine,
    Party,
    PaymentInvoice,
    ReconciliationAct,
    render_invoice,
    render_payment_invoice,
    render_reconciliation_act,
)
from billing.errors import InvalidAmount, NotFound
from billing.models import (
    CustomerAccount,
    Hold,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PaymentAccount,
)
from billing.statements import statement
from policies.billing import BUSINESS_TIME_ZONE
from policies.dates import local_date
from policies.money import som
from policies.operator import BANK_PAYMENT_CODES, OPERATOR
from policies.statuses import PaymentAccountStatus
from policies.tariffs import TARIFFS, Revenue, UnknownTariff

__all__ = [
    "DOCUMENT_KINDS",
    "MONTHLY_REVENUES",
    "PAYMENT_SERVICES",
    "Document",
    "DocumentRequest",
    "account_period",
    "certificate_invoice",
    "day_bounds",
    "local_date",
    "month_bounds",
    "monthly_invoice",
    "payment_invoice",
    "reconciliation_act",
    "render",
]

_ZONE = ZoneInfo(BUSINESS_TIME_ZONE)

# The monthly invoice for "e-reporting services" covers these revenue accounts.
MONTHLY_REVENUES = (Revenue.REPORTS, Revenue.STORAGE)

# What a payment invoice may be for: the two payable services of seed 002, as printed.
PAYMENT_SERVICES = {
    "sochi": "Услуги электронной отчетности (СОчИ): пополнение лицевого счета",
    "eds": "Оплата сертификата ключа электронной подписи (ЭЦП)",
}

_MONTHLY_FALLBACK = "Услуги электронной отчетности"
_CERTIFICATE_FALLBACK = "Сертификат ключа электронной подписи"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=_ZONE).astimezone(UTC)


def day_bounds(start_day: date, end_day: date) -> tuple[datetime, datetime]:
    """Bishkek days ``start_day``..``end_day`` (inclusive) as a UTC ``[start, end)``."""
    if end_day < start_day:
        raise ValueError("the period ends before it starts")
    if end_day >= date.max:
        raise ValueError("the period ends too late")
    return _midnight(start_day), _midnight(end_day + timedelta(days=1))


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """The first and the last day of a calendar month."""
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return first, following - timedelta(days=1)


def account_period(session: Session, inn: str) -> tuple[date, date | None]:
    """The Bishkek days the account was opened and (if so) terminated: the final act's period."""
    row = session.get(CustomerAccount, inn)
    if row is None:
        raise NotFound(f"no billing account for INN {inn}")
    ended = local_date(row.terminated_at) if row.terminated_at is not None else None
    return local_date(row.opened_at), ended


def _subscriber(session: Session, inn: str) -> Party:
    return Party(name=ledger.balance(session, inn).name, inn=inn)


# --- акт сверки --------------------------------------------------------------------------------


def reconciliation_act(
    session: Session, inn: str, start_day: date, end_day: date
) -> ReconciliationAct:
    """The reconciliation act for Bishkek days ``start_day``..``end_day``, from the statement.

    Balances keep the statement's sign: positive is prepaid money in the subscriber's favour,
    negative its debt. Number: ``АС-<inn>-<from>-<to>``.
    """
    start, end = day_bounds(start_day, end_day)
    found = statement(session, inn, start, end)
    lines = tuple(
        ActLine(
            on=local_date(line.occurred_at),
            document=f"№{line.transaction_id} {line.description}".strip(),
            debit=line.debit,
            credit=line.credit,
        )
        for line in found.lines
    )
    return ReconciliationAct(
        number=f"АС-{inn}-{start_day:%Y%m%d}-{end_day:%Y%m%d}",
        period_from=start_day,
        period_to=end_day,
        operator=Party.from_requisites(OPERATOR),
        subscriber=Party(name=found.name, inn=inn),
        opening_balance=found.opening,
        lines=lines,
        closing_balance=found.closing,
    )


# --- счет-фактура ------------------------------------------------------------------------------


def _reversed_ids(session: Session, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    found = session.scalars(
        select(LedgerTransaction.reverses_id).where(LedgerTransaction.reverses_id.in_(ids))
    ).all()
    return {i for i in found if i is not None}


def _revenue_charges(
    session: Session,
    inn: str,
    kinds: tuple[Revenue, ...],
    *,
    transaction_id: int | None = None,
    period: tuple[datetime, datetime] | None = None,
) -> list[tuple[LedgerTransaction, int]]:
    """The subscriber's standing charges to ``kinds`` revenue: ``(transaction, amount)``.

    A charge is a transaction of this subscriber that credits a revenue account; reversals and
    charges reversed since (whenever that was) are left out, so a corrected charge disappears
    from the invoice issued again.
    """
    query = (
        select(LedgerTransaction, -LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(
            LedgerTransaction.inn == inn,
            LedgerTransaction.reverses_id.is_(None),
            LedgerAccount.code.in_([ledger.revenue(kind) for kind in kinds]),
            LedgerEntry.amount < 0,
        )
    )
    if transaction_id is not None:
        query = query.where(LedgerTransaction.id == transaction_id)
    if period is not None:
        query = query.where(
            LedgerTransaction.occurred_at >= period[0], LedgerTransaction.occurred_at < period[1]
        )
    rows = [
        (txn, int(amount))
        for txn, amount in session.execute(
            query.order_by(LedgerTransaction.occurred_at, LedgerTransaction.id)
        ).all()
    ]
    gone = _reversed_ids(session, [txn.id for txn, _ in rows])
    return [(txn, amount) for txn, amount in rows if txn.id not in gone]


def _certificate_title(session: Session, txn: LedgerTransaction) -> str:
    """The tariff's printed title when the charge paid a payment account, else its description."""
    tariff = session.scalar(
        select(PaymentAccount.tariff)
        .join(Hold, Hold.id == PaymentAccount.hold_id)
        .where(Hold.transaction_id == txn.id)
    )
    if tariff is not None:
        try:
            return TARIFFS.price(tariff, local_date(txn.occurred_at)).title
        except UnknownTariff:
            pass
    return txn.description.strip() or _CERTIFICATE_FALLBACK


def certificate_invoice(session: Session, inn: str, transaction_id: int) -> Invoice:
    """The invoice for one certificate charge (ledger transaction ``transaction_id``).

    Number ``СФ-<transaction id>``, dated the Bishkek day of the charge.
    """
    buyer = _subscriber(session, inn)
    found = _revenue_charges(session, inn, (Revenue.CERTIFICATES,), transaction_id=transaction_id)
    if not found:
        raise NotFound(
            f"transaction {transaction_id} is no standing certificate charge of {inn}: "
            "nothing to invoice"
        )
    txn, amount = found[0]
    return Invoice(
        number=f"СФ-{txn.id}",
        issued_on=local_date(txn.occurred_at),
        seller=Party.from_requisites(OPERATOR),
        buyer=buyer,
        lines=(InvoiceLine(_certificate_title(session, txn), 1, amount, amount),),
    )


def monthly_invoice(session: Session, inn: str, year: int, month: int) -> Invoice:
    """The invoice for a Bishkek month's reporting services: report and storage charges.

    Charges with the same description and price are one line with a quantity. Number
    ``СФ-<inn>-<YYYY>-<MM>``, dated the last day of the month.
    """
    buyer = _subscriber(session, inn)
    first, last = month_bounds(year, month)
    charges = _revenue_charges(session, inn, MONTHLY_REVENUES, period=day_bounds(first, last))
    grouped: dict[tuple[str, int], int] = {}
    for txn, amount in charges:
        key = (txn.description.strip() or _MONTHLY_FALLBACK, amount)
        grouped[key] = grouped.get(key, 0) + 1
    if not grouped:
        raise NotFound(f"no reporting services were charged to {inn} in {year:04d}-{month:02d}")
    lines = tuple(
        InvoiceLine(description, count, price, count * price)
        for (description, price), count in grouped.items()
    )
    return Invoice(
        number=f"СФ-{inn}-{year:04d}-{month:02d}",
        issued_on=last,
        seller=Party.from_requisites(OPERATOR),
        buyer=buyer,
        lines=lines,
    )


# --- счет на оплату ----------------------------------------------------------------------------


def _open_payment_account(session: Session, inn: str) -> PaymentAccount | None:
    return session.scalars(
        select(PaymentAccount)
        .where(PaymentAccount.inn == inn, PaymentAccount.status == PaymentAccountStatus.OPEN)
        .order_by(PaymentAccount.created_at, PaymentAccount.number)
    ).first()


def payment_invoice(
    session: Session, inn: str, service: str, amount: int, *, on: date
) -> PaymentInvoice:
    """A payment invoice for ``amount`` tyiyn of ``service`` (sochi | eds), dated ``on``.

    The payment purpose names what the bank-statement import matches: the subscriber's INN, or
    for "eds" its open 16-digit payment account (whose amount due must then be the amount).
    Number: ``СО-<YYYYMMDD>-<inn>-<service>-<amount>``.
    """
    if service not in PAYMENT_SERVICES:
        raise NotFound(f"unknown service {service!r}; choose one of {', '.join(PAYMENT_SERVICES)}")
    ledger.check_amount(amount)
    payer = _subscriber(session, inn)
    purpose = f"Пополнение лицевого счета, ИНН {inn}"
    if service == "eds":
        purpose = f"Оплата ЭЦП, ИНН {inn}"
        account = _open_payment_account(session, inn)
        if account is not None:
            if account.amount_due != amount:
                raise InvalidAmount(
                    f"payment account {account.number} expects exactly "
                    f"{som(account.amount_due)} som"
                )
            purpose = f"Оплата ЭЦП, лицевой счет {account.number}"
    return PaymentInvoice(
        number=f"СО-{on:%Y%m%d}-{inn}-{service}-{amount}",
        issued_on=on,
        payee=Party.from_requisites(OPERATOR),
        payer=payer,
        service=PAYMENT_SERVICES[service],
        amount=amount,
        payment_code=BANK_PAYMENT_CODES[0],
        purpose=purpose,
    )


# --- one entry point for the API and the CLI ---------------------------------------------------

Document = ReconciliationAct | Invoice | PaymentInvoice
DOCUMENT_KINDS = ("act", "invoice", "payment-invoice")


@dataclass(frozen=True)
class DocumentRequest:
    """Which document, with the parameters its kind needs (checked here, once).

    ``act``: ``start_day`` and ``end_day``; ``invoice``: ``transaction_id`` xor ``month``
    (``(year, month)``); ``payment-invoice``: ``service`` and ``amount`` (tyiyn).
    """

    kind: str
    start_day: date | None = None
    end_day: date | None = None
    transaction_id: int | None = None
    month: tuple[int, int] | None = None
    service: str | None = None
    amount: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in DOCUMENT_KINDS:
            raise ValueError(f"unknown document {self.kind!r}: {', '.join(DOCUMENT_KINDS)}")
        if self.kind == "act" and (self.start_day is None or self.end_day is None):
            raise ValueError("an act needs a period: from and to")
        if self.kind == "invoice" and (self.transaction_id is None) == (self.month is None):
            raise ValueError("an invoice is for one transaction or one month: give exactly one")
        if self.kind == "payment-invoice" and (self.service is None or self.amount is None):
            raise ValueError("a payment invoice needs a service and an amount")

    def filename(self, inn: str, on: date) -> str:
        """A download name that says what the document is."""
        if self.kind == "act":
            return f"act-{inn}-{self.start_day}-{self.end_day}.pdf"
        if self.kind == "invoice" and self.month is not None:
            return f"invoice-{inn}-{self.month[0]:04d}-{self.month[1]:02d}.pdf"
        if self.kind == "invoice":
            return f"invoice-{inn}-{self.transaction_id}.pdf"
        return f"payment-invoice-{inn}-{self.service}-{on:%Y%m%d}.pdf"


def document_for(session: Session, inn: str, request: DocumentRequest, *, today: date) -> Document:
    """The data of the document ``request`` asks for (``today``: a payment invoice's date)."""
    if request.kind == "act":
        assert request.start_day is not None and request.end_day is not None  # noqa: S101
        return reconciliation_act(session, inn, request.start_day, request.end_day)
    if request.kind == "invoice":
        if request.month is not None:
            return monthly_invoice(session, inn, *request.month)
        assert request.transaction_id is not None  # noqa: S101
        return certificate_invoice(session, inn, request.transaction_id)
    assert request.service is not None and request.amount is not None  # noqa: S101
    return payment_invoice(session, inn, request.service, request.amount, on=today)


def render(document: Document) -> bytes:
    """The PDF of a document's data."""
    if isinstance(document, ReconciliationAct):
        return render_reconciliation_act(document)
    if isinstance(document, Invoice):
        return render_invoice(document)
    return render_payment_invoice(document)

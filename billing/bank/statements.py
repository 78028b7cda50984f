"""Bank statements: reading the file, and importing each line exactly once.

A bank statement is a CSV file (the format is documented in ``docs/bank-statements.md``):

* UTF-8 (a byte-order mark is allowed), one header row, then one payment per row;
* the delimiter is ``;`` if the header row contains one, otherwise ``,``;
* columns, named in the header in any order (case-insensitive, extra columns ignored):
  ``date`` (``DD.MM.YYYY`` or ``YYYY-MM-DD``), ``reference`` (the bank's unique document number),
  ``amount`` (som, dot or comma decimal separator, at most two decimals, spaces may group
  thousands), ``payment_code``, ``purpose`` — required; ``payer_name``, ``payer_inn``,
  ``payer_account`` — optional.

Each row is imported in its own database transaction and exactly once: the bank reference is
the row's identity, so importing a file twice, or two statements that overlap, credits nothing
twice. A row credits a subscriber when its payment code is one of the operator's
(:data:`policies.operator.BANK_PAYMENT_CODES`) and its purpose names exactly one known INN or
payment account; any other row waits in the suspense account (:data:`billing.ledger.SUSPENSE`)
until an officer assigns it (``billing.bank.suspense``). Rows that are not well formed are
reported with their line numbers and imported not at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from billing import ledger
from billing.bank.lines import MAX_REFERENCE, BankStatementLine, LineInfo
from billing.bank.values import business_midnight, parse_amount, parse_date
from billing.errors import BillingError
from billing.models import CustomerAccount, PaymentAccount
from billing.payments import Receipt, record_payment, record_unmatched
from db import DBError
from policies.identifiers import is_inn, is_payment_account
from policies.money import som
from policies.operator import BANK_PAYMENT_CODES
from policies.statuses import BankLineStatus, LineOutcome

__all__ = [
    "OUTCOMES",
    "REQUIRED_COLUMNS",
    "ImportInterrupted",
    "ImportSummary",
    "LineResult",
    "ParsedStatement",
    "RejectedLine",
    "StatementEntry",
    "StatementUnreadable",
    "import_line",
    "import_statement",
    "parse_statement",
]

REQUIRED_COLUMNS = ("date", "reference", "amount", "payment_code", "purpose")
OPTIONAL_COLUMNS = ("payer_name", "payer_inn", "payer_account")
OUTCOMES = tuple(LineOutcome)
_BATCH = 500  # references per IN (...) query

# A run of exactly 14 (an INN) or 16 (a payment account) ASCII digits, not part of a longer
# number: "ИНН 01234567890123" and "ИНН01234567890123" both name the INN; a 20-digit bank
# account number names nothing.
_IDENTIFIER = re.compile(r"(?<![0-9])([0-9]{16}|[0-9]{14})(?![0-9])")


class StatementUnreadable(BillingError):
    """The file is not a bank statement: not UTF-8, no header row, required columns missing."""


class ImportInterrupted(BillingError):
    """An import stopped at a line; the lines before it stay imported, a re-run continues."""

    def __init__(self, line_no: int, done: int, reason: str) -> None:
        super().__init__(
            f"the import stopped at line {line_no} ({reason}); the {done} lines before it are "
            "imported; run the import again to continue"
        )
        self.line_no = line_no
        self.done = done


# --- parsing a statement --------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementEntry:
    """One well-formed line of a statement (not yet imported)."""

    line_no: int
    value_date: date
    reference: str
    amount: int
    payer_name: str
    payer_inn: str
    payer_account: str
    payment_code: str
    purpose: str


@dataclass(frozen=True)
class RejectedLine:
    """A malformed line: reported, never imported."""

    line_no: int
    reference: str
    reason: str


@dataclass(frozen=True)
class ParsedStatement:
    sha256: str
    entries: tuple[StatementEntry, ...]
    rejected: tuple[RejectedLine, ...]


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as ex:
        raise StatementUnreadable(
            f"the statement is not UTF-8 (byte {ex.start}); convert it first, "
            "e.g. `iconv -f cp1251 -t utf-8`"
        ) from None
    if "\x00" in text:
        raise StatementUnreadable("the statement is a binary file, not CSV")
    return text


def _header(reader: Iterator[list[str]]) -> dict[str, int]:
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        columns = {cell.strip().lower(): index for index, cell in enumerate(row)}
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise StatementUnreadable(
                "not a bank statement: the header row lacks the column(s) "
                f"{', '.join(missing)} (expected {';'.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
            )
        return columns
    raise StatementUnreadable("the statement is empty: a header row is required")


def parse_statement(data: bytes) -> ParsedStatement:
    """Read a statement file; malformed lines are collected, not raised."""
    text = _decode(data)
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        columns = _header(reader)
        entries, rejected = _rows(reader, columns)
    except csv.Error as ex:
        raise StatementUnreadable(f"line {reader.line_num}: not CSV ({ex})") from None
    return ParsedStatement(hashlib.sha256(data).hexdigest(), tuple(entries), tuple(rejected))


def _rows(
    reader: Iterator[list[str]], columns: dict[str, int]
) -> tuple[list[StatementEntry], list[RejectedLine]]:
    entries: list[StatementEntry] = []
    rejected: list[RejectedLine] = []
    seen: dict[str, int] = {}
    line_no = getattr(reader, "line_num", 0)
    for row in reader:
        start, line_no = line_no + 1, getattr(reader, "line_num", 0)
        if not any(cell.strip() for cell in row):
            continue
        cell = {
            name: (row[index].strip() if index < len(row) else None)
            for name, index in columns.items()
        }
        reference = cell.get("reference") or ""
        try:
            entry = _entry(start, cell)
        except (ValueError, BillingError) as ex:
            rejected.append(RejectedLine(start, reference, str(ex)))
            continue
        if entry.reference in seen:
            reason = f"reference {entry.reference} repeats line {seen[entry.reference]}"
            rejected.append(RejectedLine(start, reference, reason))
            continue
        seen[entry.reference] = start
        entries.append(entry)
    return entries, rejected


def _entry(line_no: int, cell: dict[str, str | None]) -> StatementEntry:
    missing = [name for name in REQUIRED_COLUMNS if cell.get(name) is None]
    if missing:
        raise ValueError(f"too few fields: no {', '.join(missing)}")
    reference = cell["reference"] or ""
    if not reference:
        raise ValueError("no reference (the bank's document number)")
    if len(reference) > MAX_REFERENCE or any(c.isspace() for c in reference):
        raise ValueError(f"a reference is 1-{MAX_REFERENCE} characters without spaces")
    return StatementEntry(
        line_no=line_no,
        value_date=parse_date(cell["date"] or ""),
        reference=reference,
        amount=parse_amount(cell["amount"] or ""),
        payer_name=" ".join((cell.get("payer_name") or "").split()),
        payer_inn=_bounded(cell, "payer_inn", 32),
        payer_account=_bounded(cell, "payer_account", 34),
        payment_code=_bounded(cell, "payment_code", 16),
        purpose=" ".join((cell["purpose"] or "").split()),
    )


def _bounded(cell: dict[str, str | None], name: str, limit: int) -> str:
    value = cell.get(name) or ""
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


# --- importing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineResult:
    """What became of one line: credited, suspense, already (imported before) or rejected."""

    line_no: int
    reference: str
    amount: int  # 0 for a line rejected before its amount could be read
    outcome: LineOutcome
    detail: str  # the INN credited, the suspense reason, the earlier status, the rejection
    line_id: int | None


@dataclass(frozen=True)
class ImportSummary:
    sha256: str
    results: tuple[LineResult, ...]  # in line order

    def lines(self, outcome: str) -> list[LineResult]:
        return [result for result in self.results if result.outcome == outcome]

    def count(self, outcome: str) -> int:
        return len(self.lines(outcome))

    def total(self, outcome: str) -> int:
        return sum(result.amount for result in self.lines(outcome))


Transaction = Callable[[], AbstractContextManager[Session]]
Progress = Callable[[int, int], None]


def import_statement(
    transaction: Transaction,
    parsed: ParsedStatement,
    *,
    now: datetime,
    actor: str,
    on_progress: Progress | None = None,
) -> ImportSummary:
    """Import every well-formed line, each in its own transaction from ``transaction()``.

    A failure at one line keeps the lines before it (:class:`ImportInterrupted`); importing
    again skips what is already there. ``on_progress(done, total)`` follows each line.
    """
    results = [
        LineResult(r.line_no, r.reference, 0, LineOutcome.REJECTED, r.reason, None)
        for r in parsed.rejected
    ]
    total = len(parsed.entries)
    known = _imported_before(transaction, [entry.reference for entry in parsed.entries])
    for done, entry in enumerate(parsed.entries):
        if (earlier := known.get(entry.reference)) is not None:  # a re-run: no transaction
            results.append(_already(entry, earlier))
        else:
            results.append(
                _import_one(transaction, entry, parsed.sha256, done, now=now, actor=actor)
            )
        if on_progress is not None:
            on_progress(done + 1, total)
    summary = ImportSummary(parsed.sha256, tuple(sorted(results, key=lambda r: r.line_no)))
    with transaction() as session:
        ledger.audit_event(
            session,
            actor=actor,
            action="billing.statement.imported",
            obj=f"statement:{parsed.sha256}",
            now=now,
            **{f"{o}_lines": summary.count(o) for o in OUTCOMES},
            **{f"{o}_amount": summary.total(o) for o in OUTCOMES if o != LineOutcome.REJECTED},
        )
    return summary


def _imported_before(transaction: Transaction, references: list[str]) -> dict[str, LineInfo]:
    """The lines already imported under these references (they are never deleted)."""
    found: dict[str, LineInfo] = {}
    with transaction() as session:
        for offset in range(0, len(references), _BATCH):
            batch = references[offset : offset + _BATCH]
            found.update(
                (row.bank_reference, LineInfo.of(row))
                for row in session.scalars(
                    select(BankStatementLine).where(BankStatementLine.bank_reference.in_(batch))
                )
            )
    return found


def _import_one(
    transaction: Transaction,
    entry: StatementEntry,
    sha256: str,
    done: int,
    *,
    now: datetime,
    actor: str,
) -> LineResult:
    for attempt in (1, 2):
        try:
            with transaction() as session:
                return import_line(session, entry, sha256=sha256, now=now, actor=actor)
        except BillingError as ex:  # refused as a whole: nothing of the line was written
            return LineResult(
                entry.line_no, entry.reference, entry.amount, LineOutcome.REJECTED, str(ex), None
            )
        except IntegrityError as ex:
            # Another import took this reference meanwhile; the retry finds it and says so.
            if attempt == 2:
                raise ImportInterrupted(entry.line_no, done, _first_line(ex)) from ex
        except (SQLAlchemyError, DBError, OSError) as ex:
            # The database went away: what is committed stays, a re-run continues from here.
            raise ImportInterrupted(entry.line_no, done, _first_line(ex)) from ex
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(ex: BaseException) -> str:
    cause = getattr(ex, "orig", None) or ex
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def import_line(
    session: Session, entry: StatementEntry, *, sha256: str, now: datetime, actor: str
) -> LineResult:
    """Import one line in the caller's transaction: credit it, or move it to suspense."""
    existing = session.scalars(
        select(BankStatementLine).where(BankStatementLine.bank_reference == entry.reference)
    ).one_or_none()
    if existing is not None:
        return _already(entry, LineInfo.of(existing))
    account, reason = _match(session, entry)
    if account is not None:
        paid = _pay(session, entry, account, now=now, actor=actor)
        if isinstance(paid, Receipt):
            row = _store(
                session, entry, sha256, BankLineStatus.CREDITED, paid.transaction_id, now=now
            )
            row.inn, row.payment_id = paid.inn, paid.id
            session.flush()
            return LineResult(
                entry.line_no, entry.reference, entry.amount, LineOutcome.CREDITED, paid.inn, row.id
            )
        reason = paid
    posting = record_unmatched(
        session,
        key=f"bank:{entry.reference}",
        amount=entry.amount,
        description=f"Нераспознанный банковский платёж, документ {entry.reference}",
        now=now,
        actor=actor,
        source=ledger.BANK,
    )
    row = _store(session, entry, sha256, BankLineStatus.SUSPENSE, posting.transaction_id, now=now)
    row.reason = reason
    session.flush()
    return LineResult(
        entry.line_no, entry.reference, entry.amount, LineOutcome.SUSPENSE, reason, row.id
    )


def _pay(
    session: Session, entry: StatementEntry, account: str, *, now: datetime, actor: str
) -> Receipt | str:
    """Credit the line to ``account``; or why it was refused, with nothing written."""
    try:
        with session.begin_nested():
            return record_payment(
                session,
                channel="bank",
                provider="",
                external_id=entry.reference,
                account=account,
                amount=entry.amount,
                paid_at=business_midnight(entry.value_date),
                now=now,
                actor=actor,
            )
    except BillingError as ex:  # terminated, amount refused by a payment account, ...
        return str(ex)  # every such refusal names the account


def _already(entry: StatementEntry, existing: LineInfo) -> LineResult:
    if (existing.amount, existing.value_date) != (entry.amount, entry.value_date):
        detail = (
            f"reference {entry.reference} was imported before with "
            f"{som(existing.amount)} som on {existing.value_date:%d.%m.%Y} "
            f"(statement line #{existing.id}): refused"
        )
        return LineResult(
            entry.line_no, entry.reference, entry.amount, LineOutcome.REJECTED, detail, None
        )
    detail = f"imported before as line #{existing.id}, {existing.status}"
    return LineResult(
        entry.line_no, entry.reference, entry.amount, LineOutcome.ALREADY, detail, existing.id
    )


def _store(
    session: Session,
    entry: StatementEntry,
    sha256: str,
    status: BankLineStatus,
    transaction_id: int,
    *,
    now: datetime,
) -> BankStatementLine:
    row = BankStatementLine(
        statement_sha256=sha256,
        bank_reference=entry.reference,
        line_no=entry.line_no,
        value_date=entry.value_date,
        amount=entry.amount,
        payer_name=entry.payer_name,
        payer_inn=entry.payer_inn,
        payer_account=entry.payer_account,
        payment_code=entry.payment_code,
        purpose=entry.purpose,
        status=status,
        transaction_id=transaction_id,
        imported_at=now,
    )
    session.add(row)
    return row


def _match(session: Session, entry: StatementEntry) -> tuple[str | None, str]:
    """The one account the line pays, or ``(None, why not)``."""
    if entry.payment_code not in BANK_PAYMENT_CODES:
        return None, (
            f"payment code {entry.payment_code or '(none)'} is not one of the operator's "
            f"({', '.join(BANK_PAYMENT_CODES)})"
        )
    named = list(dict.fromkeys(_IDENTIFIER.findall(entry.purpose)))
    inns = [n for n in named if is_inn(n)]
    numbers = [n for n in named if is_payment_account(n)]
    known_inns = set(
        session.scalars(select(CustomerAccount.inn).where(CustomerAccount.inn.in_(inns)))
        if inns
        else ()
    )
    owners = dict(
        session.execute(
            select(PaymentAccount.number, PaymentAccount.inn).where(
                PaymentAccount.number.in_(numbers)
            )
        ).all()
        if numbers
        else ()
    )
    known = [n for n in named if n in known_inns or n in owners]
    if len(owners) == 1 and known_inns <= set(owners.values()):
        # "payment account X of INN Y": naming the account's own owner as well is no ambiguity.
        return next(iter(owners)), ""
    if len(known) == 1:
        return known[0], ""
    if known:
        return None, f"the purpose names several accounts: {', '.join(known)}"
    unknown = f" (unknown: {', '.join(named)})" if named else ""
    return None, f"the purpose names no known INN or payment account{unknown}"

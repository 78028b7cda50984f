"""Provider registries: compare a terminal or wallet provider's daily registry with our receipts.

A registry is a CSV file (documented in ``docs/bank-statements.md``): UTF-8, a header row
``txn_id;account;sum;txn_date`` (``;`` or ``,``, the same detection as bank statements), one
payment per row: the provider's ``txn_id``, the account the payer entered, the sum in som with
a dot (or comma) and two decimals at most, and ``txn_date`` as the OSMP protocol sends it
(``YYYYMMDDHHMMSS``, Bishkek time; ``YYYY-MM-DD HH:MM:SS`` is accepted too).

The registry's day is the Bishkek day of its payments, or given by the caller. Our side is every
``payments`` row of channel ``osmp`` and that provider whose ``paid_at`` falls on that day. This
module only reads: it reports mismatches, an officer decides what to do about them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.bank.values import business_midnight, parse_amount
from billing.errors import BillingError
from billing.models import Payment
from policies.billing import BUSINESS_TIME_ZONE
from policies.money import som

__all__ = [
    "KINDS",
    "Mismatch",
    "RegistryError",
    "RegistryRow",
    "parse_registry",
    "reconcile",
    "registry_day",
]

_ZONE = ZoneInfo(BUSINESS_TIME_ZONE)
COLUMNS = ("txn_id", "account", "sum", "txn_date")
KINDS = ("missing_here", "missing_there", "amount_differs", "account_differs")
_BATCH = 500  # external ids per IN (...) query


class RegistryError(BillingError):
    """The file is not a provider registry, or some of its lines are malformed."""


@dataclass(frozen=True)
class RegistryRow:
    line_no: int
    txn_id: str
    account: str
    amount: int  # tyiyn
    txn_date: datetime  # aware, Bishkek time


@dataclass(frozen=True)
class Mismatch:
    """One difference between the registry ("there") and our receipts ("here")."""

    kind: str
    txn_id: str
    line_no: int | None  # in the registry
    payment_id: int | None  # our receipt (prv_txn)
    theirs: str | None  # the registry's value (amount in som, or account)
    ours: str | None

    def describe(self) -> str:
        where = f"line {self.line_no}" if self.line_no is not None else "not in the registry"
        receipt = f"receipt {self.payment_id}" if self.payment_id is not None else "no receipt"
        if self.kind == "missing_here":
            what = f"in the registry ({self.theirs}), not recorded here"
        elif self.kind == "missing_there":
            what = f"recorded here ({self.ours}), not in the registry"
        else:
            field = "amount" if self.kind == "amount_differs" else "account"
            what = f"{field} differs: registry {self.theirs}, here {self.ours}"
        return f"{self.kind} txn_id {self.txn_id} ({where}, {receipt}): {what}"


def _parse_when(text: str) -> datetime:
    value = text.strip()
    for pattern in ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=_ZONE)
        except ValueError:
            continue
    raise ValueError(f"txn_date {value!r} is not YYYYMMDDHHMMSS")


def parse_registry(data: bytes) -> list[RegistryRow]:
    """Every row of a registry; any malformed line refuses the whole file, naming each line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegistryError("the registry is not UTF-8 text") from None
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";" if ";" in first_line else ",")
    try:
        rows, errors = _read(reader)
    except csv.Error as ex:
        raise RegistryError(f"line {reader.line_num}: not CSV ({ex})") from None
    if errors:
        raise RegistryError("malformed registry: " + "; ".join(errors))
    return rows


def _read(reader: Iterator[list[str]]) -> tuple[list[RegistryRow], list[str]]:
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        raise RegistryError("the registry is empty: a header row txn_id;account;sum;txn_date")
    columns = {cell.strip().lower(): index for index, cell in enumerate(header)}
    if missing := [name for name in COLUMNS if name not in columns]:
        raise RegistryError(f"not a provider registry: no column(s) {', '.join(missing)}")
    rows: list[RegistryRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        line_no = getattr(reader, "line_num", 0)
        if not any(cell.strip() for cell in row):
            continue
        try:
            parsed = _row(line_no, row, columns)
        except (ValueError, BillingError) as ex:
            errors.append(f"line {line_no}: {ex}")
            continue
        if parsed.txn_id in seen:
            errors.append(
                f"line {line_no}: txn_id {parsed.txn_id} repeats line {seen[parsed.txn_id]}"
            )
            continue
        seen[parsed.txn_id] = line_no
        rows.append(parsed)
    return rows, errors


def _row(line_no: int, row: Sequence[str], columns: dict[str, int]) -> RegistryRow:
    if len(row) <= max(columns[name] for name in COLUMNS):
        raise ValueError("too few fields")
    txn_id, account, amount, when = (row[columns[name]].strip() for name in COLUMNS)
    if not txn_id or len(txn_id) > 100:
        raise ValueError("a txn_id is 1-100 characters")
    if not account:
        raise ValueError("no account")
    return RegistryRow(line_no, txn_id, account, parse_amount(amount), _parse_when(when))


def registry_day(rows: Iterable[RegistryRow]) -> date:
    """The one Bishkek day of a registry's payments; refused when there are none or several."""
    days = sorted({row.txn_date.astimezone(_ZONE).date() for row in rows})
    if len(days) != 1:
        found = ", ".join(f"{d:%Y-%m-%d}" for d in days) or "none"
        raise RegistryError(f"cannot tell the registry's day (payment days: {found}): give it")
    return days[0]


def reconcile(
    session: Session, provider: str, rows: Sequence[RegistryRow], *, day: date | None = None
) -> list[Mismatch]:
    """Every mismatch between a provider's registry for ``day`` and our receipts. Read-only."""
    day = day or registry_day(rows)
    start = business_midnight(day)
    ours_that_day = session.scalars(
        select(Payment)
        .where(
            Payment.channel == "osmp",
            Payment.provider == provider,
            Payment.paid_at >= start,
            Payment.paid_at < business_midnight(day + timedelta(days=1)),
        )
        .order_by(Payment.id)
    ).all()
    ours = {p.external_id: p for p in ours_that_day}
    # A registry row may match a receipt we dated another day: find those too, by txn_id.
    ours.update(_receipts(session, provider, [r.txn_id for r in rows if r.txn_id not in ours]))
    mismatches: list[Mismatch] = []
    for row in rows:
        mine = ours.get(row.txn_id)
        if mine is None:
            mismatches.append(
                Mismatch("missing_here", row.txn_id, row.line_no, None, som(row.amount), None)
            )
            continue
        if mine.amount != row.amount:
            mismatches.append(
                Mismatch(
                    "amount_differs",
                    row.txn_id,
                    row.line_no,
                    mine.id,
                    som(row.amount),
                    som(mine.amount),
                )
            )
        if mine.account != row.account:
            mismatches.append(
                Mismatch(
                    "account_differs", row.txn_id, row.line_no, mine.id, row.account, mine.account
                )
            )
    listed = {row.txn_id for row in rows}
    mismatches.extend(
        Mismatch("missing_there", p.external_id, None, p.id, None, som(p.amount))
        for p in ours_that_day
        if p.external_id not in listed
    )
    return mismatches


def _receipts(session: Session, provider: str, txn_ids: list[str]) -> dict[str, Payment]:
    found: dict[str, Payment] = {}
    for offset in range(0, len(txn_ids), _BATCH):
        batch = txn_ids[offset : offset + _BATCH]
        found.update(
            (p.external_id, p)
            for p in session.scalars(
                select(Payment).where(
                    Payment.channel == "osmp",
                    Payment.provider == provider,
                    Payment.external_id.in_(batch),
                )
            )
        )
    return found

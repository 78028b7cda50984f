"""Filing rules as data: report kinds, periods, limits, delivery retries, the slot policy.

The operator's catalogue of report forms is not in the seeds: the kinds below are
**placeholders** (codes in the style of the agencies' forms) that the operator replaces here.
Each kind belongs to one agency kind and admits some period types; its price is the tariff
``report:<agency>:<period type>`` in :mod:`policies.tariffs`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import timedelta

__all__ = [
    "AGENCY_KINDS",
    "FILING_POLICY",
    "REPORT_KINDS",
    "FilingPolicy",
    "Period",
    "PeriodType",
    "ReportKind",
    "parse_period",
    "report_tariff",
]


class PeriodType(enum.StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


# The agencies a report can go to; the codes are those of the tariffs.
AGENCY_KINDS = ("tax", "social-fund", "statistics")


@dataclass(frozen=True)
class ReportKind:
    code: str  # the form code the portal sends
    agency: str  # one of AGENCY_KINDS
    periods: frozenset[PeriodType]
    title: str


_M, _Q, _Y = PeriodType.MONTHLY, PeriodType.QUARTERLY, PeriodType.YEARLY

# Placeholders: the operator's form catalogue replaces them.
REPORT_KINDS: dict[str, ReportKind] = {
    kind.code: kind
    for kind in (
        ReportKind("STI-091", "tax", frozenset({_M}), "Налоговая декларация по НДС"),
        ReportKind("STI-100", "tax", frozenset({_Y}), "Единая налоговая декларация"),
        ReportKind("STI-061", "tax", frozenset({_Q, _Y}), "Расчет по налогу на прибыль"),
        ReportKind("SF-01", "social-fund", frozenset({_M}), "Расчетная ведомость по взносам"),
        ReportKind("NSK-1", "statistics", frozenset({_Q, _Y}), "Статистическая отчетность"),
    )
}


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period: ``2026-11`` (month), ``2026-Q3`` (quarter) or ``2026`` (year)."""

    type: PeriodType
    text: str

    def __str__(self) -> str:
        return self.text


_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")
_YEAR = re.compile(r"\d{4}")


def parse_period(text: object) -> Period | None:
    """The period ``text`` names, or None if it is none of the three forms (years 2000-2099)."""
    if not isinstance(text, str):
        return None
    if (m := _MONTH.fullmatch(text)) and 2000 <= int(m.group(1)) <= 2099:
        return Period(PeriodType.MONTHLY, text)
    if (m := _QUARTER.fullmatch(text)) and 2000 <= int(m.group(1)) <= 2099:
        return Period(PeriodType.QUARTERLY, text)
    if _YEAR.fullmatch(text) and 2000 <= int(text) <= 2099:
        return Period(PeriodType.YEARLY, text)
    return None


def report_tariff(agency: str, period: PeriodType) -> str:
    """The tariff code of a report to an agency of kind ``agency`` for a period of ``period``."""
    return f"report:{agency}:{period.value}"


@dataclass(frozen=True)
class FilingPolicy:
    # Largest report file accepted (bytes, as received) and its file-name length.
    max_document_bytes: int = 10 * 1024 * 1024
    max_signature_bytes: int = 64 * 1024
    # A worker that took a report owns it for this long; if it dies, another takes it over.
    delivery_lease: timedelta = timedelta(seconds=60)
    # Waits between failed delivery attempts: 5 s, 10 s, 20 s ... capped at 10 min.
    first_retry: timedelta = timedelta(seconds=5)
    max_retry: timedelta = timedelta(minutes=10)
    agency_timeout_s: float = 30.0
    # A head_as_accountant certificate fills one slot; it may fill both only when the company
    # has no valid certificate of an accountant (the head really is the accountant).
    one_certificate_both_slots_without_accountant: bool = True
    # A stopped report's charge is reversed; the month's cloud-storage fee is not (it pays
    # for the month's key storage, not for the report).
    reverse_charge_on_stop: bool = True

    def retry_after(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1-based), doubling, capped."""
        wait: timedelta = self.first_retry * (2 ** max(0, min(attempts - 1, 16)))
        return min(wait, self.max_retry)


FILING_POLICY = FilingPolicy()

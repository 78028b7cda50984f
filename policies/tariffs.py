"""Tariffs: what each service costs, with the date from which each price applies.

Prices are integer tyiyn (1 som = 100 tyiyn). A tariff change is a new :class:`Tariff` row with a
later ``effective_from``; :meth:`TariffSchedule.price` picks the row in force on a given
(Asia/Bishkek) date, so a change applies from its date and history keeps its old prices.

Certificate prices are the operator's published ones (seed 000, DOMAIN.md). The operator's report
tariff calculator, the cloud-storage fee and the dispute fee are not in the seeds: the figures
below are placeholders the operator sets here (``docs/billing.md`` lists them).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

__all__ = ["PLACEHOLDERS", "TARIFFS", "Revenue", "Tariff", "TariffSchedule", "UnknownTariff"]


class Revenue(enum.Enum):
    """The operator's revenue accounts: one per kind of service."""

    CERTIFICATES = "certificates"
    REPORTS = "reports"
    STORAGE = "storage"
    DISPUTES = "disputes"
    PENALTIES = "penalties"


class UnknownTariff(KeyError):
    """No tariff with this code is in force on that date."""


@dataclass(frozen=True)
class Tariff:
    code: str  # "cert:head", "report:tax:monthly", "storage:monthly", "dispute"
    revenue: Revenue
    price: int  # tyiyn
    effective_from: date
    title: str  # Russian, as it appears on invoices

    def __post_init__(self) -> None:
        if not self.code or self.code != self.code.strip():
            raise ValueError("a tariff needs a code")
        if isinstance(self.price, bool) or not isinstance(self.price, int) or self.price <= 0:
            raise ValueError(f"tariff {self.code}: the price must be a positive integer (tyiyn)")


class TariffSchedule:
    """Tariffs by code, each a list of prices ordered by the date they take effect."""

    def __init__(self, tariffs: tuple[Tariff, ...]) -> None:
        by_code: dict[str, list[Tariff]] = {}
        for tariff in tariffs:
            by_code.setdefault(tariff.code, []).append(tariff)
        for code, rows in by_code.items():
            rows.sort(key=lambda t: t.effective_from)
            dates = [t.effective_from for t in rows]
            if len(set(dates)) != len(dates):
                raise ValueError(f"tariff {code}: two prices take effect on the same day")
        self._by_code = by_code

    def codes(self) -> list[str]:
        return sorted(self._by_code)

    def price(self, code: str, on: date) -> Tariff:
        """The tariff row for ``code`` in force on ``on``."""
        in_force = [t for t in self._by_code.get(code, ()) if t.effective_from <= on]
        if not in_force:
            raise UnknownTariff(f"no tariff {code!r} in force on {on.isoformat()}")
        return in_force[-1]

    def with_tariffs(self, *extra: Tariff) -> TariffSchedule:
        """A new schedule with more rows (a tariff change), leaving this one as it was."""
        return TariffSchedule(tuple(t for rows in self._by_code.values() for t in rows) + extra)


_SINCE = date(2024, 1, 1)
_C, _R = Revenue.CERTIFICATES, Revenue.REPORTS

TARIFFS = TariffSchedule(
    (
        # Certificates, one calendar year (seed 000, "КЭК канча турат?").
        Tariff("cert:head", _C, 151_000, _SINCE, "Сертификат ЭЦП руководителя (облако), 1 год"),
        Tariff("cert:accountant", _C, 142_000, _SINCE, "Сертификат ЭЦП бухгалтера (облако), 1 год"),
        Tariff(
            "cert:head-accountant",
            _C,
            142_000,
            _SINCE,
            "Сертификат ЭЦП руководителя, исполняющего обязанности бухгалтера (облако), 1 год",
        ),
        Tariff("cert:complex-5", _C, 180_000, _SINCE, "Комплексный сертификат ЭЦП (до 5 компаний)"),
        Tariff(
            "cert:complex-10", _C, 200_000, _SINCE, "Комплексный сертификат ЭЦП (6–10 компаний)"
        ),
        Tariff(
            "cert:complex-unlimited", _C, 235_000, _SINCE, "Комплексный сертификат ЭЦП (безлимит)"
        ),
        Tariff("cert:rutoken", _C, 120_000, _SINCE, "Сертификат ЭЦП на носителе Рутокен, 1 год"),
        # Reports, per report and per agency office (placeholders: the operator's calculator).
        Tariff("report:tax:monthly", _R, 5_000, _SINCE, "Отчет в налоговую службу (месячный)"),
        Tariff(
            "report:tax:quarterly", _R, 10_000, _SINCE, "Отчет в налоговую службу (квартальный)"
        ),
        Tariff("report:tax:yearly", _R, 15_000, _SINCE, "Отчет в налоговую службу (годовой)"),
        Tariff(
            "report:social-fund:monthly", _R, 5_000, _SINCE, "Отчет в Социальный фонд (месячный)"
        ),
        Tariff(
            "report:statistics:quarterly",
            _R,
            5_000,
            _SINCE,
            "Отчет в органы статистики (квартальный)",
        ),
        Tariff(
            "report:statistics:yearly", _R, 10_000, _SINCE, "Отчет в органы статистики (годовой)"
        ),
        # Cloud key storage, per calendar month with activity (FAQ) (placeholder).
        Tariff("storage:monthly", Revenue.STORAGE, 10_000, _SINCE, "Хранение ЭЦП в облаке (месяц)"),
        # The §8.5 dispute fee, charged to the subscriber at each case opened (PLACEHOLDER: the
        # contract names "the CA's tariff" without a figure; the operator sets the real price).
        Tariff("dispute", Revenue.DISPUTES, 300_000, _SINCE, "Разбор конфликтной ситуации (§8)"),
    )
)

# Tariffs whose figures are not the operator's published ones (docs/billing.md lists them): the
# report tariffs, the cloud-storage fee and the §8.5 dispute fee.
PLACEHOLDERS = frozenset(
    code
    for code in TARIFFS.codes()
    if code.startswith("report:") or code in ("storage:monthly", "dispute")
)

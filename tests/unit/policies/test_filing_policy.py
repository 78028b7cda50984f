"""The filing rules as data: periods, every form priced, the delivery backoff."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from policies.filing import (
    AGENCY_KINDS,
    FILING_POLICY,
    REPORT_KINDS,
    PeriodType,
    parse_period,
    report_tariff,
)
from policies.tariffs import TARIFFS


@pytest.mark.parametrize(
    ("text", "kind"),
    [("2026-11", "monthly"), ("2026-01", "monthly"), ("2026-Q3", "quarterly"), ("2026", "yearly")],
)
def test_periods(text: str, kind: str) -> None:
    period = parse_period(text)
    assert period is not None and period.type == PeriodType(kind) and str(period) == text


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-Q5", "1999", "2100", "26-11", "2026-11\n", " 2026", 2026]
)
def test_bad_periods(text: object) -> None:
    assert parse_period(text) is None


def test_every_form_goes_to_a_known_agency_and_has_a_price_for_each_period() -> None:
    for kind in REPORT_KINDS.values():
        assert kind.agency in AGENCY_KINDS
        for period in kind.periods:
            TARIFFS.price(report_tariff(kind.agency, period), date(2026, 12, 1))


def test_delivery_backoff_doubles_and_is_capped() -> None:
    waits = [FILING_POLICY.retry_after(n) for n in range(1, 12)]
    assert waits[:4] == [timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert max(waits) == FILING_POLICY.max_retry == waits[-1]

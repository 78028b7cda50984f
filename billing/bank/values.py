"""Amounts, dates and days as banks and cashiers write them: statements, cash, registries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from billing.errors import InvalidAmount
from policies.billing import BUSINESS_TIME_ZONE
from policies.money import parse_som

__all__ = ["business_midnight", "parse_amount", "parse_date"]

_ZONE = ZoneInfo(BUSINESS_TIME_ZONE)


def parse_amount(text: str) -> int:
    """Som as written by people and banks ("1510", "1 510,00", "99.5") → tyiyn.

    Refuses signs, exponents, more than two decimals, zero and implausibly large amounts:
    money is never parsed through a float.
    """
    try:
        return parse_som(text, lenient=True)
    except ValueError as ex:
        raise InvalidAmount(str(ex)) from None


def parse_date(text: str) -> date:
    """``DD.MM.YYYY`` or ``YYYY-MM-DD``."""
    value = text.strip()
    for pattern in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{value!r} is not a date (DD.MM.YYYY or YYYY-MM-DD)")


def business_midnight(day: date) -> datetime:
    """00:00 of ``day`` in Bishkek, as an aware UTC datetime."""
    return datetime.combine(day, time(0), tzinfo=_ZONE).astimezone(UTC)

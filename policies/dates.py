"""Dates and times as Tamga writes and reads them: UTC on the wire, Asia/Bishkek for people.

- :func:`local_date`: the Bishkek calendar day of an aware moment (business rules use it).
- :func:`iso_utc`: a moment as the API writes it, ``2026-12-02T18:02:18Z``.
- :func:`local_minute`: a moment (or an API timestamp) as people read it, Bishkek time.
- :func:`parse_day` / :func:`parse_month`: ``YYYY-MM-DD`` and ``YYYY-MM`` as people type them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from policies.billing import BUSINESS_TIME_ZONE

__all__ = [
    "BISHKEK",
    "DAY_PATTERN",
    "FIRST_YEAR",
    "LAST_YEAR",
    "MONTH_PATTERN",
    "UNTIL_PATTERN",
    "iso_utc",
    "local_date",
    "local_minute",
    "parse_day",
    "parse_month",
]

BISHKEK = ZoneInfo(BUSINESS_TIME_ZONE)
# Days and months people type (periods, powers of attorney, foreign access): years 1900 to 9998,
# so that a period's day after and a year's arithmetic stay within what ``date`` holds.
FIRST_YEAR, LAST_YEAR = 1900, 9998
_YEARS = "19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8]"
_YEAR = f"(?:{_YEARS})"
_MONTH_NUMBER = "(?:0[1-9]|1[0-2])"
# The same rules as JSON Schema patterns (the document states them): ASCII digits only.
MONTH_PATTERN = f"^{_YEAR}-{_MONTH_NUMBER}$"
_DAY_NUMBER = "(?:0[1-9]|[12][0-9]|3[01])"
DAY_PATTERN = f"^{_YEAR}-{_MONTH_NUMBER}-{_DAY_NUMBER}$"
# A last day that may be "for good": years 1900 to 9999 (foreign access until 9999-12-31).
UNTIL_PATTERN = f"^(?:{_YEARS}|9999)-{_MONTH_NUMBER}-{_DAY_NUMBER}$"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def local_date(moment: datetime) -> date:
    """The Bishkek calendar date of an aware moment."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(BISHKEK).date()


def iso_utc(moment: datetime | None) -> str | None:
    """An aware moment in UTC, ISO 8601 with ``Z``; None stays None."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_minute(moment: datetime | str | None, missing: str = "-") -> str:
    """A moment (or an API timestamp) as Bishkek ``YYYY-MM-DD HH:MM``; ``missing`` for None."""
    if moment is None:
        return missing
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return f"{moment.astimezone(BISHKEK):%Y-%m-%d %H:%M}"


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` calendar day between 1900 and 9998; ValueError otherwise."""
    if not _DAY.fullmatch(text):
        raise ValueError("a day as YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError("a day as YYYY-MM-DD") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError("a day between 1900 and 9998")
    return day


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` → (year, month), years 1900-9998; ValueError otherwise."""
    match = _MONTH.fullmatch(text)
    if match is None or not FIRST_YEAR <= int(match.group(1)) <= LAST_YEAR:
        raise ValueError("a month as YYYY-MM, years 1900-9998")
    return int(match.group(1)), int(match.group(2))

"""The Kyrgyz working-day calendar and the registry's deadlines (§3.3, §18; seed 003).

Working days are Monday to Friday except the public holidays of the Kyrgyz Republic as the
``holidays`` package knows them (New Year, Orthodox Christmas, Nooruz, the two Eids, ...). The
government sometimes moves a working day to a Saturday by decree; ``extra_working_days`` and
``extra_holidays`` let the operator record such transfers without a code change.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from policies.billing import BUSINESS_TIME_ZONE
from policies.dates import local_date

__all__ = [
    "CALENDAR",
    "REGISTRATION_POLICY",
    "RENEWAL_POLICY",
    "RegistrationPolicy",
    "RenewalPolicy",
    "WorkingCalendar",
    "local_date",
]

_ZONE = ZoneInfo(BUSINESS_TIME_ZONE)


@functools.cache
def _public_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("KG", years=year))


@dataclass(frozen=True)
class WorkingCalendar:
    """Which Bishkek dates are working days."""

    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.extra_holidays or day.weekday() >= 5:
            return False
        return day not in _public_holidays(day.year)

    def holiday_name(self, day: date) -> str | None:
        """The public holiday on ``day``, if any (for messages)."""
        names = holidays.country_holidays("KG", years=day.year)
        return names.get(day)

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        day = start
        while count:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie after ``start`` up to and including ``end`` (0 if none)."""
        return sum(1 for day in _days(start, end) if self.is_working_day(day))

    def end_of_day(self, day: date) -> datetime:
        """The UTC moment the Bishkek date ``day`` ends (the next local midnight)."""
        return datetime.combine(day + timedelta(days=1), time(), _ZONE).astimezone(UTC)


def _days(start: date, end: date) -> Iterable[date]:
    day = start + timedelta(days=1)
    while day <= end:
        yield day
        day += timedelta(days=1)


CALENDAR = WorkingCalendar()


@dataclass(frozen=True)
class RegistrationPolicy:
    """§3.3: registration takes up to 24 hours at the office, 7 working days online."""

    office_within: timedelta = timedelta(hours=24)
    online_working_days: int = 7

    def deadline(
        self, channel: str, submitted_at: datetime, calendar: WorkingCalendar = CALENDAR
    ) -> datetime:
        """When a request submitted at ``submitted_at`` through ``channel`` must be decided.

        Online: the end of the 7th working day after the submission's Bishkek date.
        """
        if submitted_at.tzinfo is None:
            raise ValueError("submitted_at must be timezone-aware")
        if channel == "office":
            return submitted_at.astimezone(UTC) + self.office_within
        if channel == "online":
            last = calendar.add_working_days(local_date(submitted_at), self.online_working_days)
            return calendar.end_of_day(last)
        raise ValueError(f"unknown registration channel {channel!r}: office or online")


@dataclass(frozen=True)
class RenewalPolicy:
    """Seed 003 and §18: when renewal opens, when it is late, when auto-renewal can be cancelled."""

    notice_days: int = 30  # listed as expiring, renewal offered, from 30 days before expiry
    late_within_working_days: int = 3  # requests need at least 3 working days before expiry
    cancel_before_days: int = 30  # §18.2: either side may cancel auto-renewal 30 days before

    def is_late(
        self, submitted_at: datetime, expires_at: datetime, calendar: WorkingCalendar = CALENDAR
    ) -> bool:
        """True when fewer than ``late_within_working_days`` working days remain before expiry.

        The working days counted are those after the submission's Bishkek date up to and
        including the day before the expiry date (the expiry day itself is the changeover).
        """
        last_full_day = local_date(expires_at) - timedelta(days=1)
        left = calendar.working_days_between(local_date(submitted_at), last_full_day)
        return left < self.late_within_working_days


REGISTRATION_POLICY = RegistrationPolicy()
RENEWAL_POLICY = RenewalPolicy()

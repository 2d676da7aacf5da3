"""The business calendar (営業日) in Asia/Tokyo (DL-4).

Not a business day: Saturday, Sunday, a Japanese national holiday (substitute holidays 振替休日 and
citizens' holidays 国民の休日 included, from the maintained ``holidays`` package), 12/31–1/3 (the
banks' year-end closure), or a configured closure of the whole bank or of one branch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays

from app.clock import TOKYO

YEAR_END_CLOSURE = ((12, 31), (1, 1), (1, 2), (1, 3))
# A bound on searches: no real calendar has a year of consecutive closed days.
_MAX_SEARCH_DAYS = 366


@dataclass(frozen=True)
class Closure:
    day: date
    reason: str
    # None closes the whole bank.
    branch_code: str | None = None


@lru_cache(maxsize=64)
def _national_holidays(year: int) -> dict[date, str]:
    return dict(holidays.country_holidays("JP", years=year, language="ja"))


class BusinessCalendar:
    def __init__(self, closures: Iterable[Closure] = ()) -> None:
        self._bank_closures: dict[date, str] = {}
        self._branch_closures: dict[tuple[date, str], str] = {}
        for closure in closures:
            if closure.branch_code is None:
                self._bank_closures[closure.day] = closure.reason
            else:
                self._branch_closures[(closure.day, closure.branch_code)] = closure.reason

    def closed_reason(self, day: date, branch_code: str | None = None) -> str | None:
        """Why ``day`` is not a business day (Japanese label), or None when it is one."""
        if day.weekday() == 5:
            return "土曜日"
        if day.weekday() == 6:
            return "日曜日"
        name = _national_holidays(day.year).get(day)
        if name:
            return name
        if (day.month, day.day) in YEAR_END_CLOSURE:
            return "年末年始休業"
        if day in self._bank_closures:
            return self._bank_closures[day]
        if branch_code is not None and (day, branch_code) in self._branch_closures:
            return self._branch_closures[(day, branch_code)]
        return None

    def is_business_day(self, day: date, branch_code: str | None = None) -> bool:
        return self.closed_reason(day, branch_code) is None

    def next_business_day(self, day: date, branch_code: str | None = None) -> date:
        """The first business day strictly after ``day``."""
        candidate = day
        for _ in range(_MAX_SEARCH_DAYS):
            candidate += timedelta(days=1)
            if self.is_business_day(candidate, branch_code):
                return candidate
        raise ValueError("no business day within a year")

    def business_days(self, start: date, end: date, branch_code: str | None = None) -> list[date]:
        """Business days in [start, end]."""
        days = []
        current = start
        while current <= end:
            if self.is_business_day(current, branch_code):
                days.append(current)
            current += timedelta(days=1)
        return days

    def end_of_next_business_day(self, day: date, branch_code: str | None = None) -> datetime:
        """The deadline 原則として翌営業日まで: midnight (JST) closing the next business day, as aware UTC."""
        deadline_day = self.next_business_day(day, branch_code) + timedelta(days=1)
        return datetime.combine(deadline_day, time(0, 0), tzinfo=TOKYO).astimezone(UTC)

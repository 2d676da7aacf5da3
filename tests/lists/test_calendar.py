"""The business calendar (DL-4) over 2026 and 2027: holidays, substitute and citizens' holidays, closures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.lists.calendar import BusinessCalendar, Closure

NATIONAL_HOLIDAYS = {
    2026: [
        "01-01",
        "01-12",
        "02-11",
        "02-23",
        "03-20",
        "04-29",
        "05-03",
        "05-04",
        "05-05",
        "05-06",
        "07-20",
        "08-11",
        "09-21",
        "09-22",
        "09-23",
        "10-12",
        "11-03",
        "11-23",
    ],
    2027: [
        "01-01",
        "01-11",
        "02-11",
        "02-23",
        "03-21",
        "03-22",
        "04-29",
        "05-03",
        "05-04",
        "05-05",
        "07-19",
        "08-11",
        "09-20",
        "09-23",
        "10-11",
        "11-03",
        "11-23",
    ],
}


@pytest.mark.parametrize("year", [2026, 2027])
def test_every_national_holiday_is_closed(year: int) -> None:
    calendar = BusinessCalendar()
    for month_day in NATIONAL_HOLIDAYS[year]:
        day = date.fromisoformat(f"{year}-{month_day}")
        assert not calendar.is_business_day(day), day


def test_substitute_and_citizens_holidays_are_named() -> None:
    calendar = BusinessCalendar()
    assert calendar.closed_reason(date(2026, 5, 6)) == "振替休日"
    assert calendar.closed_reason(date(2027, 3, 22)) == "振替休日"
    assert calendar.closed_reason(date(2026, 9, 22)) == "国民の休日"


def test_golden_week_2026() -> None:
    calendar = BusinessCalendar()
    # 4/29 (Wed) holiday, 4/30 and 5/1 open, 5/2–5/6 closed (Sat, Sun, three holidays, substitute).
    assert [calendar.is_business_day(date(2026, 4, d)) for d in (28, 29, 30)] == [True, False, True]
    assert calendar.is_business_day(date(2026, 5, 1))
    assert not any(calendar.is_business_day(date(2026, 5, d)) for d in range(2, 7))
    assert calendar.next_business_day(date(2026, 5, 1)) == date(2026, 5, 7)


@pytest.mark.parametrize("year", [2026, 2027])
def test_year_end_closure(year: int) -> None:
    calendar = BusinessCalendar()
    for day in (date(year, 12, 31), date(year + 1, 1, 1), date(year + 1, 1, 2), date(year + 1, 1, 3)):
        assert calendar.closed_reason(day) in ("年末年始休業", "元日", "土曜日", "日曜日"), day
        assert not calendar.is_business_day(day)
    assert calendar.is_business_day(date(2026, 12, 30))


def test_end_of_next_business_day() -> None:
    calendar = BusinessCalendar()
    # A Friday -> the end of Monday (JST midnight closing Monday).
    assert calendar.end_of_next_business_day(date(2026, 11, 13)) == datetime(2026, 11, 16, 15, 0, tzinfo=UTC)
    # The day before a three-day weekend: Fri 2026-09-18 -> Sat, Sun, 9/21, 9/22, 9/23 closed -> Thu 9/24.
    assert calendar.end_of_next_business_day(date(2026, 9, 18)) == datetime(2026, 9, 24, 15, 0, tzinfo=UTC)
    # Fri 2027-07-16 before Marine Day (Mon 7/19) -> Tue 7/20.
    assert calendar.end_of_next_business_day(date(2027, 7, 16)) == datetime(2027, 7, 20, 15, 0, tzinfo=UTC)
    # 12/30 -> the first business day of the new year, 1/4 or later.
    assert calendar.next_business_day(date(2026, 12, 30)) == date(2027, 1, 4)
    assert calendar.next_business_day(date(2027, 12, 30)) == date(2028, 1, 4)
    assert calendar.end_of_next_business_day(date(2026, 12, 30)) == datetime(2027, 1, 4, 15, 0, tzinfo=UTC)


def test_configured_closures_for_the_bank_and_for_one_branch() -> None:
    calendar = BusinessCalendar(
        [
            Closure(date(2026, 11, 25), "システム移行"),
            Closure(date(2026, 11, 26), "店舗改装", branch_code="002"),
        ]
    )
    assert not calendar.is_business_day(date(2026, 11, 25), "001")
    assert calendar.is_business_day(date(2026, 11, 26), "001")
    assert not calendar.is_business_day(date(2026, 11, 26), "002")
    assert calendar.next_business_day(date(2026, 11, 24), "002") == date(2026, 11, 27)
    assert calendar.next_business_day(date(2026, 11, 24), "001") == date(2026, 11, 26)

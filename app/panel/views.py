"""Service-free view helpers: how dates, money and states look, and the month calendar's grid.

Nothing here decides a rule. The calendar only arranges what the list service reported (each list's
effective state and the gap detector's missing days) on the business calendar's days.
"""

from __future__ import annotations

import calendar as month_calendar
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from app.clock import EARLIEST_BUSINESS_DATE, LATEST_BUSINESS_DATE, TOKYO
from app.escalation.models import noted_balance, noted_line
from app.lists.calendar import BusinessCalendar
from app.lists.formats import date_ja, deadline_ja
from app.panel.i18n import Language

# The order in which one branch-day's lists summarise to a single badge: the most urgent wins.
_URGENCY = ("overdue", "missing", "pending", "confirmed")


def format_datetime(at: datetime | None, language: Language) -> str:
    if at is None:
        return "—"
    local = at.astimezone(TOKYO)
    if language == "ja":
        return f"{date_ja(local.date())} {local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M} JST"


def format_date(day: date | str | None, language: Language) -> str:
    if day is None:
        return "—"
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return date_ja(day) if language == "ja" else f"{day:%Y-%m-%d (%a)}"


def format_deadline(at: datetime, language: Language) -> str:
    """Midnight closing a day is that day's 24:00, as a bank writes a deadline."""
    if language == "ja":
        return deadline_ja(at)
    local = at.astimezone(TOKYO)
    if (local.hour, local.minute) == (0, 0):
        return f"{local.date() - timedelta(days=1):%Y-%m-%d} 24:00 JST"
    return f"{local:%Y-%m-%d %H:%M} JST"


def staff_label(names: dict[str, str], user_id: str | None, language: Language) -> str:
    """A member of staff as the header shows the one logged in: name, then the user id that the ledger
    and the API use (a name alone can be shared; the id alone is not recognised at a glance)."""
    if not user_id:
        return "—"
    name = names.get(user_id)
    if name is None:
        return user_id
    return f"{name}（{user_id}）" if language == "ja" else f"{name} ({user_id})"


# How the panel shows an escalation's note, by its kind. The note is written for the API by what raised
# the escalation: a confirmer's own words on a document mismatch, but machine text elsewhere ("line 3",
# the center's result code, "subject list 2026-11-13" that only repeats the object). Staff read it in
# their language, or not at all where it says nothing the row does not.
_NOTE_AS_WRITTEN = frozenset({"document_mismatch"})
_NOTE_IS_CENTER_CODE = frozenset({"center_refused_cancellation", "center_refused_correction"})
_NOTE_IS_LINE = frozenset({"list_line_mismatch", "list_line_document_missing"})
_NOTE_IS_HQ_BALANCE = frozenset({"hq_count_mismatch"})


def escalation_line(kind: str, note: str | None) -> str | None:
    """The list line a list-line escalation is about, so the page can name it and lead to it."""
    return noted_line(note) if kind in _NOTE_IS_LINE else None


def escalation_note(kind: str, note: str | None, t: Callable[..., str]) -> str | None:
    if not note:
        return None
    if kind in _NOTE_AS_WRITTEN:
        return note
    if kind in _NOTE_IS_CENTER_CODE:
        return t("escalation.note.center_code", code=note)
    if (line := escalation_line(kind, note)) is not None:
        return t("escalation.note.line", line=line)
    if kind in _NOTE_IS_HQ_BALANCE and (figures := noted_balance(note)) is not None:
        hq_executed, branch_requests, own = figures
        return t("escalation.note.hq_balance", hq=hq_executed, branch=branch_requests, own=own)
    return None


def format_amount(amount: int | None) -> str:
    return "—" if amount is None else f"{amount:,}"


@dataclass(frozen=True)
class ListOnDay:
    """What the list service said about one list: its branch, day, effective state, zero-day."""

    branch_code: str
    business_date: date
    state: str
    no_inquiries: bool
    list_id: str


@dataclass(frozen=True)
class BranchDay:
    branch_code: str
    state: str
    zero: bool
    # The list the badge opens: one in the badge's own state, so "pending" leads to what is pending.
    list_id: str | None
    # Why this branch alone is closed on a business day of the bank (a branch closure, DL-4).
    closed_reason: str | None = None


@dataclass
class CalendarDay:
    day: date
    closed_reason: str | None
    is_today: bool
    entries: list[BranchDay] = field(default_factory=list)


def month_grid(
    *,
    year: int,
    month: int,
    today: date,
    branches: Iterable[str],
    lists: Iterable[ListOnDay],
    missing: set[tuple[str, date]],
    business_calendar: BusinessCalendar,
) -> list[list[CalendarDay | None]]:
    """Weeks (Monday first) of the month; each day carries one badge per branch."""
    by_branch_day: dict[tuple[str, date], list[ListOnDay]] = defaultdict(list)
    for entry in lists:
        by_branch_day[(entry.branch_code, entry.business_date)].append(entry)
    codes = sorted(set(branches))
    weeks: list[list[CalendarDay | None]] = []
    for week in month_calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        row: list[CalendarDay | None] = []
        for day in week:
            if day.month != month:
                row.append(None)
                continue
            cell = CalendarDay(
                day=day, closed_reason=business_calendar.closed_reason(day), is_today=day == today
            )
            for code in codes:
                # The bank may be open while one branch is closed (its own closures): no list is due there.
                branch_closed = None if cell.closed_reason else business_calendar.closed_reason(day, code)
                badge = _branch_day(
                    code,
                    day,
                    today,
                    by_branch_day.get((code, day), []),
                    missing,
                    bank_open=cell.closed_reason is None,
                    branch_closed=branch_closed,
                )
                if badge is not None:
                    cell.entries.append(badge)
            row.append(cell)
        weeks.append(row)
    return weeks


def _branch_day(
    code: str,
    day: date,
    today: date,
    lists: list[ListOnDay],
    missing: set[tuple[str, date]],
    *,
    bank_open: bool,
    branch_closed: str | None,
) -> BranchDay | None:
    states = {entry.state for entry in lists}
    if (code, day) in missing:
        states.add("missing")
    if not states:
        if branch_closed is not None:
            # The whole bank's closed days are shown by the cell; a branch's own closure by its badge.
            return BranchDay(code, "closed", False, None, branch_closed)
        # A business day without a list is not over yet.
        return BranchDay(code, "upcoming", False, None) if day >= today and bank_open else None
    state = next(s for s in _URGENCY if s in states) if states & set(_URGENCY) else sorted(states)[0]
    opened = next(
        (entry.list_id for entry in lists if entry.state == state), lists[0].list_id if lists else None
    )
    return BranchDay(code, state, bool(lists) and all(e.no_inquiries for e in lists), opened)


def days_in_state(weeks: list[list[CalendarDay | None]], state: str) -> int:
    """How many branch-days of the month grid are in ``state`` (e.g. lists never generated)."""
    return sum(1 for week in weeks for cell in week if cell for entry in cell.entries if entry.state == state)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def parse_month(value: str) -> tuple[int, int] | None:
    """``YYYY-MM`` from the query string, or None when it is no month of the business dates' range."""
    # ASCII digits only: str.isdigit() also takes "²", which int() then refuses (a 500).
    written = _YEAR_MONTH.fullmatch(value)
    if written:
        year, month = int(written.group(1)), int(written.group(2))
        if EARLIEST_BUSINESS_DATE.year <= year <= LATEST_BUSINESS_DATE.year and 1 <= month <= 12:
            return year, month
    return None


def month_link(year: int, month: int) -> str | None:
    """The ``?month=`` of a calendar link, or None for a month outside the business dates' range (the
    page has no link there rather than one that leads back to this month)."""
    if not EARLIEST_BUSINESS_DATE.year <= year <= LATEST_BUSINESS_DATE.year:
        return None
    return f"{year:04d}-{month:02d}"


_YEAR_MONTH = re.compile(r"([0-9]{4})-([0-9]{1,2})")

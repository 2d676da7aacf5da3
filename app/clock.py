"""The only source of "now" (design.md: all time through the clock).

Production uses :class:`SystemClock`; tests use :class:`ManualClock` and move it.
Business dates are in Asia/Tokyo.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator

TOKYO = ZoneInfo("Asia/Tokyo")


class Clock(Protocol):
    def now(self) -> datetime:
        """Aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests set and advance; it never moves by itself."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = at

    def advance(self, **delta: float) -> datetime:
        self._now = self._now + timedelta(**delta)
        return self._now


def to_tokyo(at: datetime) -> datetime:
    return at.astimezone(TOKYO)


def business_date_of(at: datetime) -> date:
    """The calendar date in Asia/Tokyo on which ``at`` falls."""
    return at.astimezone(TOKYO).date()


def rfc3339(at: datetime) -> str:
    """UTC, microseconds, trailing Z: the one text form of instants in the ledger and the API."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_rfc3339(text: str) -> datetime:
    """The instant a stored :func:`rfc3339` text (ledger, checkpoints, key file) stands for."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# The range of business dates the service accepts from outside (API bodies, query and path parameters).
# Static, because a schema has no clock: it keeps date arithmetic (the next day, a period's end) from
# overflowing at date.min/date.max and keeps "every day from .. to" loops finite. Rules that depend on
# today (no lists for days not yet begun, no sign-off of a day not over) are the services' own.
EARLIEST_BUSINESS_DATE = date(2000, 1, 1)
LATEST_BUSINESS_DATE = date(2099, 12, 31)


def check_business_date(value: date) -> date:
    if not EARLIEST_BUSINESS_DATE <= value <= LATEST_BUSINESS_DATE:
        raise ValueError(f"business dates run from {EARLIEST_BUSINESS_DATE} to {LATEST_BUSINESS_DATE}")
    return value


# Nobody inquired about, and no member of staff, was born earlier; it also keeps age arithmetic away from
# date.min. A birth date after today is a mistyped year.
EARLIEST_BIRTH_DATE = date(1900, 1, 1)


def is_plausible_birth_date(born: date, *, today: date) -> bool:
    return EARLIEST_BIRTH_DATE <= born <= today


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_date_text(value: object) -> object:
    """api.md: dates are YYYY-MM-DD. Pydantic alone also reads a number as seconds since 1970 and a
    datetime at midnight as its date, so 0 would be a birth date of 1 January 1970."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # built by our own code, not sent by a client
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("a date is written YYYY-MM-DD")


# Every date the service accepts from outside (bodies, query and path parameters).
IsoDate = Annotated[date, BeforeValidator(check_date_text)]
BusinessDate = Annotated[IsoDate, AfterValidator(check_business_date)]


# The instants the service accepts from outside (a ledger filter's since/until, a role's expiry, an
# incident's window): the business dates' range, in UTC. A time zone is required (RFC 3339): a naive time
# has no one meaning, and the UTC columns refuse it. An offset at the edge of the calendar (year 1 at
# +14:00) has no UTC form at all; both would otherwise fail at the first comparison or statement.
EARLIEST_INSTANT = datetime.combine(EARLIEST_BUSINESS_DATE, datetime.min.time(), tzinfo=UTC)
LATEST_INSTANT = datetime.combine(LATEST_BUSINESS_DATE + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def check_instant(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time needs its time zone (RFC 3339, e.g. 2026-11-24T09:00:00+09:00)")
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST_INSTANT <= in_utc < LATEST_INSTANT:
        raise ValueError(f"times run from {rfc3339(EARLIEST_INSTANT)} to before {rfc3339(LATEST_INSTANT)}")
    return value


_RFC3339_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def check_instant_text(value: object) -> object:
    """RFC 3339 text only. Pydantic alone also reads a number (or a string of digits) as seconds since 1970,
    so a deadline of ``1893456000`` would be taken as 2030."""
    if isinstance(value, datetime):
        return value  # built by our own code, not sent by a client
    if isinstance(value, str) and _RFC3339_START.match(value):
        return value
    raise ValueError("a time is written RFC 3339, e.g. 2026-11-24T09:00:00+09:00")


Instant = Annotated[datetime, BeforeValidator(check_instant_text), AfterValidator(check_instant)]

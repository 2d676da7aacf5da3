"""Anomaly analysis with the focus on holidays and late night (LG-3, guideline II.5(7)).

Per user and per terminal, over a period of business dates (JST):
- activity (inquiries, approvals, releases, views, prints, downloads) in the night window
  (default 20:00–07:00 JST) and on non-business days;
- frequency outliers: a user's day above their own baseline (the previous N days) by k standard
  deviations and above a floor;
- repeated ``CENTER_NO_TRADE_INFO`` per operator (probing non-customers, PL-2);
- views of a response long after its release;
- one subject inquired about by several operators.

The heavy part runs in the database: ledger events are grouped by actor, terminal, action and UTC hour
(the ``at`` column is fixed-width RFC 3339 text, so ``substr(at, 1, 13)`` is the hour on every
backend), and each hour is classified in Python once. That keeps a million events to a few thousand
rows crossing the driver. Thresholds come from Settings (``audit_*``) and are stored with each run.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.authz.models import Terminal, UserRole
from app.clock import TOKYO, from_rfc3339, rfc3339
from app.config import Settings
from app.inquiry.models import Inquiry
from app.lists.calendar import BusinessCalendar

# Ledger actions that are a person working with credit data, and what they count as.
ACTIVITY = {
    "inquiry.created": "inquiries",
    "inquiry.cancelled": "inquiries",
    "inquiry.corrected": "inquiries",
    "approval_number.issued": "approvals",
    "approval.confirmer_credentials": "approvals",
    "inquiry.released": "releases",
    "inquiry.response_read": "views",
    # A subject's name and birth date read in the inquiry list or an inquiry's page (LG-3: views).
    "inquiry.subject_viewed": "views",
    "panel.inquiry_viewed": "views",
    "daily_list.viewed": "views",
    "daily_list.line_checked": "views",
    "daily_list.downloaded": "prints",
    "daily_list.printed": "prints",
}
NO_TRADE_INFO = "CENTER_NO_TRADE_INFO"


@dataclass(frozen=True)
class AnomalyThresholds:
    night_start_hour: int = 20
    night_end_hour: int = 7
    off_hours_min_events: int = 1
    baseline_days: int = 28
    outlier_sigma: float = 3.0
    outlier_min_events: int = 10
    no_trade_info_repeats: int = 3
    late_view_days: int = 30
    subject_operators: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> AnomalyThresholds:
        return cls(
            night_start_hour=settings.audit_night_start_hour,
            night_end_hour=settings.audit_night_end_hour,
            off_hours_min_events=settings.audit_off_hours_min_events,
            baseline_days=settings.audit_baseline_days,
            outlier_sigma=settings.audit_outlier_sigma,
            outlier_min_events=settings.audit_outlier_min_events,
            no_trade_info_repeats=settings.audit_no_trade_info_repeats,
            late_view_days=settings.audit_late_view_days,
            subject_operators=settings.audit_subject_operators,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def is_night(self, hour: int) -> bool:
        if self.night_start_hour > self.night_end_hour:
            return hour >= self.night_start_hour or hour < self.night_end_hour
        return self.night_start_hour <= hour < self.night_end_hour


def jst_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=TOKYO).astimezone(UTC)


class HourClassifier:
    """JST date and hour, and whether it is night or a non-business day, for a UTC ``YYYY-MM-DDTHH``."""

    def __init__(self, thresholds: AnomalyThresholds, calendar: BusinessCalendar) -> None:
        self._thresholds = thresholds
        self._calendar = calendar
        self._cache: dict[str, tuple[date, int, bool, bool]] = {}
        self._business: dict[date, bool] = {}

    def __call__(self, utc_hour: str) -> tuple[date, int, bool, bool]:
        known = self._cache.get(utc_hour)
        if known is not None:
            return known
        local = datetime.strptime(utc_hour, "%Y-%m-%dT%H").replace(tzinfo=UTC).astimezone(TOKYO)
        day = local.date()
        business = self._business.get(day)
        if business is None:
            business = self._business[day] = self._calendar.is_business_day(day)
        result = (day, local.hour, self._thresholds.is_night(local.hour), not business)
        self._cache[utc_hour] = result
        return result


def _finding(
    kind: str, subject_type: str, subject_id: str, branch_codes: set[str], count: int, **details: Any
) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "branch_codes": sorted(branch_codes),
        "count": count,
        "details": details,
    }


async def _user_branches(session: AsyncSession) -> dict[str, set[str]]:
    branches: dict[str, set[str]] = defaultdict(set)
    for user_id, branch_code in await session.execute(
        select(UserRole.user_id, UserRole.branch_code).where(UserRole.branch_code.is_not(None))
    ):
        if branch_code is not None:
            branches[user_id].add(branch_code)
    return branches


async def analyse(
    session: AsyncSession,
    *,
    calendar: BusinessCalendar,
    thresholds: AnomalyThresholds,
    period_from: date,
    period_to: date,
) -> list[dict[str, Any]]:
    """The findings for business dates ``period_from``..``period_to`` (inclusive, JST)."""
    start, end = jst_midnight(period_from), jst_midnight(period_to + timedelta(days=1))
    baseline_start = jst_midnight(period_from - timedelta(days=thresholds.baseline_days))
    start_text = rfc3339(start)
    classify = HourClassifier(thresholds, calendar)
    user_branches = await _user_branches(session)
    terminal_branch = {
        key: value for key, value in await session.execute(select(Terminal.id, Terminal.branch_code))
    }

    hour = func.substr(AuditEvent.at, 1, 13)
    rows = await session.execute(
        select(AuditEvent.actor_id, AuditEvent.terminal_id, AuditEvent.action, hour, func.count())
        .where(
            AuditEvent.at >= rfc3339(baseline_start),
            AuditEvent.at < rfc3339(end),
            AuditEvent.action.in_(sorted(ACTIVITY)),
            AuditEvent.actor_id.is_not(None),
        )
        .group_by(AuditEvent.actor_id, AuditEvent.terminal_id, AuditEvent.action, hour)
    )
    start_hour = start_text[:13]
    # (kind, subject_type, id) -> category -> count
    off_hours: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_day: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    baseline: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for actor_id, terminal_id, action, utc_hour, count in rows:
        day, _hour, night, closed = classify(utc_hour)
        if utc_hour < start_hour:
            baseline[actor_id][day] += count
            continue
        per_day[actor_id][day] += count
        category = ACTIVITY[action]
        for kind, flagged in (("night_activity", night), ("non_business_day_activity", closed)):
            if not flagged:
                continue
            off_hours[(kind, "user", actor_id)][category] += count
            if terminal_id:
                off_hours[(kind, "terminal", terminal_id)][category] += count

    findings: list[dict[str, Any]] = []
    for (kind, subject_type, subject_id), categories in off_hours.items():
        total = sum(categories.values())
        if total < thresholds.off_hours_min_events:
            continue
        branches = (
            user_branches.get(subject_id, set())
            if subject_type == "user"
            else {terminal_branch[subject_id]}
            if subject_id in terminal_branch
            else set()
        )
        findings.append(
            _finding(kind, subject_type, subject_id, branches, total, by_category=dict(categories))
        )

    days = thresholds.baseline_days
    for actor_id, counts in per_day.items():
        history = baseline.get(actor_id, {})
        mean = sum(history.values()) / days
        variance = sum((history.get(d, 0) - mean) ** 2 for d in _days_before(period_from, days)) / days
        limit = max(
            float(thresholds.outlier_min_events), mean + thresholds.outlier_sigma * math.sqrt(variance)
        )
        for day, count in sorted(counts.items()):
            if count > limit:
                findings.append(
                    _finding(
                        "frequency_outlier",
                        "user",
                        actor_id,
                        user_branches.get(actor_id, set()),
                        count,
                        day=day.isoformat(),
                        baseline_mean=round(mean, 2),
                        limit=round(limit, 2),
                    )
                )

    findings.extend(await _no_trade_info(session, thresholds, period_from, period_to, user_branches))
    findings.extend(await _late_views(session, thresholds, start, end, user_branches))
    findings.extend(await _shared_subjects(session, thresholds, period_from, period_to))
    findings.sort(key=lambda f: (f["kind"], f["subject_type"], f["subject_id"], str(f["details"])))
    return findings


def _days_before(day: date, days: int) -> list[date]:
    return [day - timedelta(days=back) for back in range(1, days + 1)]


async def _no_trade_info(
    session: AsyncSession,
    thresholds: AnomalyThresholds,
    period_from: date,
    period_to: date,
    user_branches: dict[str, set[str]],
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Inquiry.operator_id, func.count())
        .where(
            Inquiry.business_date >= period_from,
            Inquiry.business_date <= period_to,
            Inquiry.center_result_code == NO_TRADE_INFO,
        )
        .group_by(Inquiry.operator_id)
        .having(func.count() >= thresholds.no_trade_info_repeats)
    )
    return [
        _finding("repeated_no_trade_info", "user", operator_id, user_branches.get(operator_id, set()), count)
        for operator_id, count in rows
    ]


async def _late_views(
    session: AsyncSession,
    thresholds: AnomalyThresholds,
    start: datetime,
    end: datetime,
    user_branches: dict[str, set[str]],
) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(AuditEvent.actor_id, AuditEvent.at, Inquiry.id, Inquiry.branch_code, Inquiry.released_at)
        .join(Inquiry, Inquiry.id == AuditEvent.object_id)
        .where(
            AuditEvent.action == "inquiry.response_read",
            AuditEvent.at >= rfc3339(start),
            AuditEvent.at < rfc3339(end),
            Inquiry.released_at.is_not(None),
        )
    )
    late = timedelta(days=thresholds.late_view_days)
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    branches: dict[str, set[str]] = defaultdict(set)
    for actor_id, at, inquiry_id, branch_code, released_at in rows:
        if actor_id is None or released_at is None:
            continue
        viewed = from_rfc3339(at)
        if viewed - released_at > late:
            by_user[actor_id].append(
                {"inquiry_id": inquiry_id, "days_after_release": (viewed - released_at).days}
            )
            branches[actor_id].add(branch_code)
    return [
        _finding(
            "late_response_view",
            "user",
            actor_id,
            branches[actor_id] | user_branches.get(actor_id, set()),
            len(views),
            views=views,
        )
        for actor_id, views in by_user.items()
    ]


async def _shared_subjects(
    session: AsyncSession, thresholds: AnomalyThresholds, period_from: date, period_to: date
) -> list[dict[str, Any]]:
    in_period = (Inquiry.business_date >= period_from, Inquiry.business_date <= period_to)
    shared = (
        select(Inquiry.subject_pseudonym)
        .where(*in_period)
        .group_by(Inquiry.subject_pseudonym)
        .having(func.count(func.distinct(Inquiry.operator_id)) >= thresholds.subject_operators)
    )
    rows = await session.execute(
        select(Inquiry.subject_pseudonym, Inquiry.operator_id, Inquiry.branch_code).where(
            *in_period, Inquiry.subject_pseudonym.in_(shared)
        )
    )
    operators: dict[str, set[str]] = defaultdict(set)
    branches: dict[str, set[str]] = defaultdict(set)
    inquiries: dict[str, int] = defaultdict(int)
    # Per branch too, so a branch-scoped report can show only that branch's part (reports._scoped).
    by_branch: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    inquiries_by_branch: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pseudonym, operator_id, branch_code in rows:
        operators[pseudonym].add(operator_id)
        branches[pseudonym].add(branch_code)
        inquiries[pseudonym] += 1
        by_branch[pseudonym][branch_code].add(operator_id)
        inquiries_by_branch[pseudonym][branch_code] += 1
    return [
        _finding(
            "subject_multiple_operators",
            "subject",
            pseudonym,
            branches[pseudonym],
            inquiries[pseudonym],
            operators=sorted(operators[pseudonym]),
            operators_by_branch={b: sorted(ops) for b, ops in sorted(by_branch[pseudonym].items())},
            inquiries_by_branch=dict(sorted(inquiries_by_branch[pseudonym].items())),
        )
        for pseudonym in operators
    ]

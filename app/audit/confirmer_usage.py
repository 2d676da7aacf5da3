"""The confirmer-usage report (AU-8, guideline VI notes 3/4): confirmer credentials are personal and
never shared, and their use is watched for the signs of a lent credential.

Per confirmer over a period of business dates (JST): approvals (A1/A2) and releases (B) per day, the
terminals and addresses used, approvals and releases at night or on non-business days, approvals
entered on the operator's own terminal (an approval number issued, or a response released, at the
terminal the operator entered the inquiry on; A1 credentials typed into the operator's session are
counted too, as that method works that way), approvals issued within seconds of the operator creating
the draft (too quick to have checked the consent document), concentration of one operator–confirmer
pair, and the same confirmer active at two branches within an implausible interval.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.anomalies import AnomalyThresholds, jst_midnight
from app.audit.models import AuditEvent
from app.authz.models import Terminal
from app.clock import TOKYO, from_rfc3339, rfc3339
from app.config import Settings
from app.inquiry.models import ApprovalNumber, Inquiry
from app.lists.calendar import BusinessCalendar


@dataclass(frozen=True)
class ConfirmerThresholds:
    night_start_hour: int = 20
    night_end_hour: int = 7
    quick_approval_seconds: int = 20
    pair_min_approvals: int = 5
    pair_share: float = 0.8
    two_branch_minutes: int = 60

    @classmethod
    def from_settings(cls, settings: Settings) -> ConfirmerThresholds:
        return cls(
            night_start_hour=settings.audit_night_start_hour,
            night_end_hour=settings.audit_night_end_hour,
            quick_approval_seconds=settings.audit_quick_approval_seconds,
            pair_min_approvals=settings.audit_pair_min_approvals,
            pair_share=settings.audit_pair_share,
            two_branch_minutes=settings.audit_two_branch_minutes,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Usage:
    confirmer_id: str
    approvals_by_method: dict[str, int]
    releases: int = 0
    off_hours: int = 0
    same_terminal_as_operator: int = 0
    in_operator_session: int = 0
    quick_approvals: int = 0

    def __init__(self, confirmer_id: str) -> None:
        self.confirmer_id = confirmer_id
        self.approvals_by_method = defaultdict(int)
        self.per_day: dict[date, dict[str, int]] = defaultdict(lambda: {"approvals": 0, "releases": 0})
        self.terminals: set[str] = set()
        self.addresses: set[str] = set()
        self.branches: set[str] = set()
        self.examples: dict[str, list[str]] = defaultdict(list)
        # (at, terminal_id) where this confirmer was seen acting
        self.presence: list[tuple[datetime, str]] = []


def _parse(at: str) -> datetime:
    return from_rfc3339(at)


async def confirmer_usage(
    session: AsyncSession,
    *,
    calendar: BusinessCalendar,
    thresholds: ConfirmerThresholds,
    period_from: date,
    period_to: date,
) -> list[dict[str, Any]]:
    """One entry per confirmer active in the period, each with its figures and ``flags``."""
    start, end = jst_midnight(period_from), jst_midnight(period_to + timedelta(days=1))
    night = AnomalyThresholds(
        night_start_hour=thresholds.night_start_hour, night_end_hour=thresholds.night_end_hour
    )
    terminal_branch = {
        key: value for key, value in await session.execute(select(Terminal.id, Terminal.branch_code))
    }
    usage: dict[str, _Usage] = {}

    def of(confirmer_id: str) -> _Usage:
        if confirmer_id not in usage:
            usage[confirmer_id] = _Usage(confirmer_id)
        return usage[confirmer_id]

    def off_hours(at: datetime) -> bool:
        local = at.astimezone(TOKYO)
        return night.is_night(local.hour) or not calendar.is_business_day(local.date())

    approved = (
        await session.execute(
            select(
                Inquiry.id,
                Inquiry.branch_code,
                Inquiry.terminal_id,
                Inquiry.operator_id,
                Inquiry.approval_method,
                Inquiry.approval_confirmer_id,
                Inquiry.approved_at,
                Inquiry.created_at,
            ).where(
                Inquiry.approved_at >= start,
                Inquiry.approved_at < end,
                Inquiry.approval_confirmer_id.is_not(None),
            )
        )
    ).all()
    numbers: dict[str, tuple[datetime, str | None]] = {}
    if approved:
        for inquiry_id, issued_at, issued_terminal in await session.execute(
            select(
                ApprovalNumber.inquiry_id, ApprovalNumber.issued_at, ApprovalNumber.issued_terminal_id
            ).where(
                ApprovalNumber.inquiry_id.in_([row.id for row in approved]),
                ApprovalNumber.state == "used",
                ApprovalNumber.purpose == "submit",
            )
        ):
            numbers[inquiry_id] = (issued_at, issued_terminal)
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    operator_totals: dict[str, int] = defaultdict(int)
    for row in approved:
        entry = of(row.approval_confirmer_id)
        entry.approvals_by_method[row.approval_method or "unknown"] += 1
        entry.branches.add(row.branch_code)
        entry.per_day[row.approved_at.astimezone(TOKYO).date()]["approvals"] += 1
        pairs[(row.operator_id, row.approval_confirmer_id)] += 1
        operator_totals[row.operator_id] += 1
        if row.approval_method == "approval_number" and row.id in numbers:
            issued_at, issued_terminal = numbers[row.id]
            acted_at, acted_terminal = issued_at, issued_terminal
            if issued_at - row.created_at <= timedelta(seconds=thresholds.quick_approval_seconds):
                entry.quick_approvals += 1
                entry.examples["quick_approval"].append(row.id)
        else:
            # A1: the confirmer's credentials were entered into the operator's session, at its terminal.
            acted_at, acted_terminal = row.approved_at, row.terminal_id
            entry.in_operator_session += 1
        if acted_terminal:
            entry.terminals.add(acted_terminal)
            entry.presence.append((acted_at, acted_terminal))
        if row.approval_method == "approval_number" and acted_terminal and acted_terminal == row.terminal_id:
            entry.same_terminal_as_operator += 1
            entry.examples["same_terminal_as_operator"].append(row.id)
        if off_hours(acted_at):
            entry.off_hours += 1
            entry.examples["off_hours"].append(row.id)

    release_events = {
        event.object_id: event
        for event in (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "inquiry.released",
                    AuditEvent.at >= rfc3339(start),
                    AuditEvent.at < rfc3339(end),
                )
            )
        ).all()
    }
    released_rows = (
        await session.execute(
            select(
                Inquiry.id, Inquiry.branch_code, Inquiry.terminal_id, Inquiry.released_by, Inquiry.released_at
            ).where(Inquiry.released_at >= start, Inquiry.released_at < end, Inquiry.released_by.is_not(None))
        )
    ).all()
    for inquiry_id, branch_code, operator_terminal, released_by, released_at in released_rows:
        if released_by is None or released_at is None:
            continue
        entry = of(released_by)
        entry.releases += 1
        entry.branches.add(branch_code)
        entry.per_day[released_at.astimezone(TOKYO).date()]["releases"] += 1
        event = release_events.get(inquiry_id)
        if event is not None and event.terminal_id and event.terminal_id == operator_terminal:
            entry.same_terminal_as_operator += 1
            entry.examples["same_terminal_as_operator"].append(inquiry_id)
        if off_hours(released_at):
            entry.off_hours += 1
            entry.examples["off_hours"].append(inquiry_id)

    if usage:
        seen = await session.execute(
            select(AuditEvent.actor_id, AuditEvent.at, AuditEvent.terminal_id, AuditEvent.address).where(
                AuditEvent.actor_id.in_(sorted(usage)),
                AuditEvent.at >= rfc3339(start),
                AuditEvent.at < rfc3339(end),
            )
        )
        for actor_id, at, terminal_id, address in seen:
            if actor_id is None:
                continue
            entry = usage[actor_id]
            if terminal_id:
                entry.terminals.add(terminal_id)
                entry.presence.append((_parse(at), terminal_id))
            if address:
                entry.addresses.add(address)

    report: list[dict[str, Any]] = []
    for confirmer_id in sorted(usage):
        entry = usage[confirmer_id]
        flags: list[str] = []
        if entry.off_hours:
            flags.append("off_hours")
        if entry.same_terminal_as_operator:
            flags.append("same_terminal_as_operator")
        if entry.quick_approvals:
            flags.append("quick_approval")
        pair_rows = []
        for (operator_id, pair_confirmer), count in sorted(pairs.items()):
            if pair_confirmer != confirmer_id:
                continue
            share = count / operator_totals[operator_id]
            concentrated = count >= thresholds.pair_min_approvals and share >= thresholds.pair_share
            pair_rows.append(
                {
                    "operator_id": operator_id,
                    "approvals": count,
                    "share": round(share, 3),
                    "concentrated": concentrated,
                }
            )
            if concentrated and "pair_concentration" not in flags:
                flags.append("pair_concentration")
        moves = _implausible_moves(entry.presence, terminal_branch, thresholds.two_branch_minutes)
        if moves:
            flags.append("two_branches")
        report.append(
            {
                "confirmer_id": confirmer_id,
                "branch_codes": sorted(
                    entry.branches | {terminal_branch[t] for t in entry.terminals if t in terminal_branch}
                ),
                "approvals": sum(entry.approvals_by_method.values()),
                "approvals_by_method": dict(sorted(entry.approvals_by_method.items())),
                "releases": entry.releases,
                "per_day": [
                    {"day": day.isoformat(), **counts} for day, counts in sorted(entry.per_day.items())
                ],
                "terminals": sorted(entry.terminals),
                "addresses": sorted(entry.addresses),
                "off_hours": entry.off_hours,
                "same_terminal_as_operator": entry.same_terminal_as_operator,
                "in_operator_session": entry.in_operator_session,
                "quick_approvals": entry.quick_approvals,
                "pairs": pair_rows,
                "two_branches": moves,
                "flags": flags,
                "examples": {k: sorted(v)[:20] for k, v in sorted(entry.examples.items())},
            }
        )
    return report


def _implausible_moves(
    presence: list[tuple[datetime, str]], terminal_branch: dict[str, str], minutes: int
) -> list[dict[str, Any]]:
    """Consecutive actions at terminals of two different branches closer together than ``minutes``."""
    moves: list[dict[str, Any]] = []
    previous: tuple[datetime, str] | None = None
    for at, terminal_id in sorted(presence):
        branch = terminal_branch.get(terminal_id)
        if branch is None:
            continue
        if previous is not None and previous[1] != branch and at - previous[0] < timedelta(minutes=minutes):
            moves.append(
                {
                    "from_branch": previous[1],
                    "to_branch": branch,
                    "at": rfc3339(at),
                    "minutes": round((at - previous[0]).total_seconds() / 60, 1),
                }
            )
        previous = (at, branch)
    return moves

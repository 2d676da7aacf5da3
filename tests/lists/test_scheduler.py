"""The in-service list schedule (DL-1): which days are due when, and a week of ticks makes exactly the
business days' lists — once each, however often the schedule runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR
from app.authz import directory
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.lists import scheduler, service
from app.lists.models import DailyList


def jst(day: int, hour: int, minute: int) -> datetime:
    """A November 2026 moment in Tokyo, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=9)


def test_yesterday_is_due_from_the_configured_time_and_recent_days_are_rechecked(
    ctx: AppContext, clock: ManualClock
) -> None:
    ctx.settings.lists_recheck_days = 2
    clock.set(jst(17, 0, 29))  # Tuesday 17 November, 00:29 JST: Monday is not closed yet for lists
    assert scheduler.due_days(ctx) == [date(2026, 11, 13), date(2026, 11, 14), date(2026, 11, 15)]
    clock.set(jst(17, 0, 30))
    assert scheduler.due_days(ctx) == [date(2026, 11, 14), date(2026, 11, 15), date(2026, 11, 16)]
    clock.set(jst(17, 23, 59))
    assert scheduler.due_days(ctx)[-1] == date(2026, 11, 16)
    # Midnight JST is 15:00 UTC the day before: the business date follows Tokyo, not UTC.
    clock.set(datetime(2026, 11, 17, 15, 31, tzinfo=UTC))  # Wednesday 00:31 JST
    assert scheduler.due_days(ctx)[-1] == date(2026, 11, 17)

    ctx.settings.lists_generate_at = "06:00"
    clock.set(jst(18, 5, 59))
    assert scheduler.due_days(ctx)[-1] == date(2026, 11, 16)
    ctx.settings.lists_recheck_days = 0
    clock.set(jst(18, 6, 0))
    assert scheduler.due_days(ctx) == [date(2026, 11, 17)]


async def test_a_week_of_ticks_makes_exactly_the_business_days_lists(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    ctx.settings.lists_recheck_days = 1
    created = 0
    # Every day from Monday 16 to Tuesday 24 November 2026, at 00:31 and again at 12:00 JST.
    for day in range(16, 25):
        for hour, minute in ((0, 31), (12, 0)):
            clock.set(jst(day, hour, minute))
            created += await scheduler.run_once(ctx)
    async with ctx.db.read_session() as session:
        lists = list((await session.scalars(select(DailyList))).all())
    made = {(d.branch_code, d.kind, d.business_date) for d in lists}
    assert len(made) == len(lists) == created  # nothing twice, no supplements of idle days
    # Days due over the run: Sat 14 (the re-check of the first tick) .. Mon 23 (closed on Tue 24).
    # Mon 23 is Labour Thanksgiving Day; the weekends are not business days either.
    business_days = [date(2026, 11, d) for d in (16, 17, 18, 19, 20)]
    assert {(code, day) for code, _kind, day in made} == {
        (code, day) for code in {d.branch_code for d in lists} for day in business_days
    }
    codes = {code for code, _kind, _day in made}
    expected = {
        (code, kind, day) for code in codes for kind in service.kinds_for(ctx, code) for day in business_days
    }
    assert made == expected
    assert {"001", "002"} <= codes
    for code in codes:
        sequences = sorted(d.sequence for d in lists if d.branch_code == code and d.kind == "subject")
        assert sequences == list(range(1, len(business_days) + 1))


async def test_a_branch_opened_mid_week_has_lists_from_its_first_day_only(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    """DL-1: the schedule's re-check window reaches back a week; a branch opened on Wednesday got lists
    for the days before it existed, already overdue and escalated at once, and the gap check asked for
    them. Its lists start on its first day, numbered from 1."""
    clock.set(jst(18, 10, 0))  # Wednesday 18 November, 10:00 JST
    async with ctx.db.session() as session:
        await directory.create_branch(session, ctx=ctx, actor=SYSTEM_ACTOR, code="777", name="新支店")
        await session.commit()
    for day in (19, 20):
        clock.set(jst(day, 0, 31))
        await scheduler.run_once(ctx)
        await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR)
    async with ctx.db.read_session() as session:
        lists = (await session.scalars(select(DailyList).where(DailyList.branch_code == "777"))).all()
        escalated = (await session.scalars(select(Escalation).where(Escalation.branch_code == "777"))).all()
        gaps = await service.gaps(
            session, ctx, date_from=date(2026, 11, 10), date_to=date(2026, 11, 19), branch_code="777"
        )
    subject = sorted((d.business_date, d.sequence) for d in lists if d.kind == "subject")
    assert subject == [(date(2026, 11, 18), 1), (date(2026, 11, 19), 2)]
    # Only its first day's lists, unconfirmed by the end of Thursday, are overdue: none from before it.
    assert sorted(e.note for e in escalated) == ["count list 2026-11-18", "subject list 2026-11-18"]
    assert gaps["missing_lists"] == [] and gaps["sequence_gaps"] == []
    # The demo's branches, open long before, still get the days the schedule looks back at.
    async with ctx.db.read_session() as session:
        demo_days = set(
            (
                await session.scalars(select(DailyList.business_date).where(DailyList.branch_code == "001"))
            ).all()
        )
    assert date(2026, 11, 16) in demo_days

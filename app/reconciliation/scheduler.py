"""The in-service monthly reconciliation (RC-1: "run on schedule, monthly by default").

Once the configured day and time of a month (JST) have passed, the previous calendar month is
reconciled against the center's record. Idempotent per month: the run carries the key
``monthly:YYYY-MM`` under a unique constraint, so several workers (or a restart) never run a month
twice; a failed run gives its key back, so the month is tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, time, timedelta

from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR
from app.clock import TOKYO
from app.context import AppContext
from app.reconciliation import service
from app.reconciliation.models import ReconciliationRun

log = logging.getLogger("shokai.reconciliation")


def due_month(ctx: AppContext) -> tuple[date, date] | None:
    """The first and last day of the month to reconcile now, or None before this month's run time."""
    now = ctx.clock.now().astimezone(TOKYO)
    run_at = time.fromisoformat(ctx.settings.reconcile_monthly_at)
    if (now.day, now.time()) < (ctx.settings.reconcile_monthly_day, run_at):
        return None
    last = now.date().replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def schedule_key(first_day: date) -> str:
    return f"monthly:{first_day:%Y-%m}"


async def run_once(ctx: AppContext) -> ReconciliationRun | None:
    """Reconcile the due month unless it already has its run; returns the run made, if any."""
    month = due_month(ctx)
    if month is None:
        return None
    key = schedule_key(month[0])
    async with ctx.db.read_session() as session:
        if await session.scalar(select(ReconciliationRun.id).where(ReconciliationRun.schedule_key == key)):
            return None
    log.info("monthly reconciliation with the center for %s", key)
    return await service.reconcile_center(
        ctx, actor=SYSTEM_ACTOR, date_from=month[0], date_to=month[1], schedule_key=key
    )


async def run_forever(ctx: AppContext, *, interval_seconds: float) -> None:
    while True:
        # Wait first: a month's run is not urgent to the minute, and a worker that has just started
        # (or a test app's lifespan) should not begin with a scan of a whole month.
        await asyncio.sleep(interval_seconds)
        try:
            await run_once(ctx)
        except Exception:
            log.exception("scheduled reconciliation failed; it is retried on the next tick")

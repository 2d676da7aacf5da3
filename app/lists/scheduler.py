"""The in-service schedule for lists (DL-1): generate yesterday's lists at the configured time (default
00:30 JST), re-check recent days — and older days of inquiries sent only recently — so late inquiries
get supplementary versions, and escalate overdue lists.

Generation is idempotent and its writes are guarded by unique constraints, so several workers may run
this loop at once without creating anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, time, timedelta

from app.audit.ledger import SYSTEM_ACTOR
from app.clock import TOKYO
from app.context import AppContext
from app.lists import service
from app.monitoring.jobs import output_digest, record_job_failure, record_job_run

log = logging.getLogger("shokai.lists")


def due_days(ctx: AppContext) -> list[date]:
    """The days whose lists should exist now: recent days up to yesterday, plus today once it is over."""
    now = ctx.clock.now().astimezone(TOKYO)
    at = time.fromisoformat(ctx.settings.lists_generate_at)
    last_closed = now.date() - timedelta(days=1) if now.time() >= at else now.date() - timedelta(days=2)
    return [last_closed - timedelta(days=back) for back in range(ctx.settings.lists_recheck_days, -1, -1)]


async def run_once(ctx: AppContext) -> int:
    started = ctx.clock.now()
    try:
        return await _run(ctx, started)
    except Exception as exc:
        await record_job_failure(ctx, job="lists.generate", started_at=started, error=exc)
        raise


async def _run(ctx: AppContext, started: datetime) -> int:
    created = 0
    checked = 0
    digests: list[str] = []
    recent = due_days(ctx)
    # An inquiry held past the re-check window (an emergency switch, a long center outage) and sent now
    # still belongs on its own day's list: that day gets its supplementary version too.
    late = await service.days_with_late_sends(ctx, before=recent[0])
    for day in sorted({*late, *recent}):
        for result in await service.generate(ctx, day=day, actor=SYSTEM_ACTOR):
            checked += 1
            if result.created:
                created += 1
                digests.append(f"{result.daily.id}:{result.daily.content_sha256}")
    escalated = await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR)
    # LG-4: a run that produced something is recorded with its counts and output hash; idle ticks
    # (every minute) are not, or the job log would drown in them.
    if created or escalated:
        await record_job_run(
            ctx,
            job="lists.generate",
            started_at=started,
            counts={"lists_checked": checked, "lists_created": created, "overdue_escalated": escalated},
            output_sha256=output_digest(digests),
        )
    return created


async def run_forever(ctx: AppContext, *, interval_seconds: float = 60.0) -> None:
    while True:
        try:
            await run_once(ctx)
        except Exception:
            log.exception("scheduled list generation failed; it is retried on the next tick")
        await asyncio.sleep(interval_seconds)

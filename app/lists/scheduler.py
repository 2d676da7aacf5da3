"""The in-service schedule for lists (DL-1): generate yesterday's lists at the configured time (default
00:30 JST), re-check recent days so late inquiries get supplementary versions, and escalate overdue lists.

Generation is idempotent and its writes are guarded by unique constraints, so several workers may run
this loop at once without creating anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, time, timedelta

from app.audit.ledger import SYSTEM_ACTOR
from app.clock import TOKYO
from app.context import AppContext
from app.lists import service

log = logging.getLogger("shokai.lists")


def due_days(ctx: AppContext) -> list[date]:
    """The days whose lists should exist now: recent days up to yesterday, plus today once it is over."""
    now = ctx.clock.now().astimezone(TOKYO)
    at = time.fromisoformat(ctx.settings.lists_generate_at)
    last_closed = now.date() - timedelta(days=1) if now.time() >= at else now.date() - timedelta(days=2)
    return [last_closed - timedelta(days=back) for back in range(ctx.settings.lists_recheck_days, -1, -1)]


async def run_once(ctx: AppContext) -> int:
    created = 0
    for day in due_days(ctx):
        created += sum(
            1 for result in await service.generate(ctx, day=day, actor=SYSTEM_ACTOR) if result.created
        )
    await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR)
    return created


async def run_forever(ctx: AppContext, *, interval_seconds: float = 60.0) -> None:
    while True:
        try:
            await run_once(ctx)
        except Exception:
            log.exception("scheduled list generation failed; it is retried on the next tick")
        await asyncio.sleep(interval_seconds)

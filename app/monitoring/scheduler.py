"""The daily monitoring run (LG-3, LG-4): once per JST day after ``monitoring_daily_at``, a heartbeat
event and the scheduled anomaly and confirmer-usage reports for the previous day, each a job run.

Idempotent per day: the heartbeat is looked up in the ledger and the reports carry a unique schedule
key, so several workers (or a restart) run it once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, time, timedelta

from sqlalchemy import select

from app.audit import reports
from app.audit.anomalies import jst_midnight
from app.audit.ledger import SYSTEM_ACTOR
from app.audit.models import AuditEvent
from app.clock import TOKYO, rfc3339
from app.context import AppContext
from app.monitoring.jobs import heartbeat, output_digest, record_job_failure, record_job_run

log = logging.getLogger("shokai.monitoring")


async def _heartbeat_done(ctx: AppContext, day: date) -> bool:
    async with ctx.db.read_session() as session:
        found = await session.scalar(
            select(AuditEvent.seq)
            .where(
                AuditEvent.action == "monitoring.heartbeat",
                AuditEvent.at >= rfc3339(jst_midnight(day)),
                AuditEvent.at < rfc3339(jst_midnight(day + timedelta(days=1))),
            )
            .limit(1)
        )
    return found is not None


async def run_daily(ctx: AppContext) -> bool:
    """Run today's monitoring if it is due and not done yet; True when something was done."""
    now = ctx.clock.now().astimezone(TOKYO)
    if now.time() < time.fromisoformat(ctx.settings.monitoring_daily_at):
        return False
    today = now.date()
    if await _heartbeat_done(ctx, today):
        return False
    yesterday = today - timedelta(days=1)
    for kind in reports.REPORT_KINDS:
        started = ctx.clock.now()
        try:
            async with ctx.db.session() as session:
                result = await reports.run_report(
                    session,
                    ctx=ctx,
                    actor=SYSTEM_ACTOR,
                    kind=kind,
                    period_from=yesterday,
                    period_to=yesterday,
                    schedule_key=f"{kind}:{yesterday.isoformat()}",
                )
        except Exception as exc:
            # No heartbeat today until it succeeds: the next tick tries again.
            await record_job_failure(ctx, job=f"audit.{kind}", started_at=started, error=exc)
            raise
        await record_job_run(
            ctx,
            job=f"audit.{kind}",
            started_at=started,
            counts={"findings": result.run.findings_count},
            output_sha256=output_digest([result.run.content_sha256]),
        )
    await heartbeat(ctx)
    return True


async def run_forever(ctx: AppContext, *, interval_seconds: float) -> None:
    while True:
        try:
            await run_daily(ctx)
        except Exception:
            log.exception("the daily monitoring run failed; it is retried on the next tick")
        await asyncio.sleep(interval_seconds)

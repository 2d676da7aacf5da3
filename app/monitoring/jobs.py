"""Job runs and the daily heartbeat (LG-4): the operating status of the system, recorded and kept.

``record_job_run`` is the one call every scheduled or background job makes when it finishes (daily
lists, reconciliation, anomaly analysis, ...): a ``job_runs`` row with counts and an output hash, and
a ``job.run`` ledger event, in one transaction.

    from app.monitoring.jobs import output_digest, record_job_run

    started = ctx.clock.now()
    ...
    await record_job_run(ctx, job="reconciliation.center", started_at=started,
                         counts={"center_entries": 120, "unmatched": 0},
                         output_sha256=output_digest(run_ids))
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import func, select

from app.audit.ledger import SYSTEM_ACTOR, Actor, record
from app.audit.models import AuditChainHead
from app.clock import rfc3339
from app.context import AppContext
from app.monitoring.models import JobRun

log = logging.getLogger("shokai.monitoring")


def output_digest(parts: Iterable[str]) -> str:
    """SHA-256 over the sorted output identifiers/hashes of a run (order-independent, reproducible)."""
    digest = hashlib.sha256()
    for part in sorted(parts):
        digest.update(part.encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def record_job_run(
    ctx: AppContext,
    *,
    job: str,
    started_at: datetime,
    counts: Mapping[str, int],
    output_sha256: str | None = None,
    outcome: str = "success",
    error: str | None = None,
    actor: Actor = SYSTEM_ACTOR,
) -> JobRun:
    """Store one finished job run and its ledger event (its own transaction). ``error`` is a class or
    code name, never a message: messages can carry data."""
    finished = ctx.clock.now()
    run = JobRun(
        job=job,
        started_at=started_at,
        finished_at=finished,
        outcome=outcome,
        counts={key: int(value) for key, value in counts.items()},
        output_sha256=output_sha256,
        error=error[:200] if error else None,
        actor_id=actor.id or "system",
    )
    async with ctx.db.session() as session:
        session.add(run)
        await session.flush()
        record(
            session,
            actor=actor,
            action="job.run",
            object_type="job",
            object_id=job,
            outcome=outcome,
            details={
                "run_id": run.id,
                "counts": run.counts,
                "output_sha256": output_sha256,
                "started_at": rfc3339(started_at),
                "error": run.error,
            },
        )
        await session.commit()
    return run


async def record_job_failure(
    ctx: AppContext,
    *,
    job: str,
    started_at: datetime,
    error: BaseException,
    counts: Mapping[str, int] | None = None,
) -> JobRun | None:
    """A scheduled run that failed (LG-4): recorded with outcome "failure" and the error's class only.
    A job retried every tick that keeps failing the same way is recorded once, until it runs again;
    and a failure to record never hides the job's own error (the caller re-raises that)."""
    name = type(error).__name__
    try:
        async with ctx.db.read_session() as session:
            last = await session.scalar(
                select(JobRun)
                .where(JobRun.job == job)
                .order_by(JobRun.finished_at.desc(), JobRun.id.desc())
                .limit(1)
            )
        if last is not None and last.outcome == "failure" and last.error == name:
            return None
        return await record_job_run(
            ctx, job=job, started_at=started_at, counts=counts or {}, outcome="failure", error=name
        )
    except Exception:
        log.exception("the failed run of %s could not be recorded", job)
        return None


async def heartbeat(ctx: AppContext) -> dict[str, object]:
    """The daily proof that monitoring itself works: the ledger head and the last run of every job."""
    async with ctx.db.session() as session:
        head = await session.get(AuditChainHead, 1)
        latest = await session.execute(
            select(JobRun.job, func.max(JobRun.finished_at)).group_by(JobRun.job).order_by(JobRun.job)
        )
        last_runs = {job: rfc3339(at) for job, at in latest}
        details: dict[str, object] = {
            "ledger_head_seq": head.seq if head else 0,
            "last_checkpoint_seq": head.last_checkpoint_seq if head else 0,
            "last_job_runs": last_runs,
        }
        record(
            session, actor=SYSTEM_ACTOR, action="monitoring.heartbeat", object_type="system", details=details
        )
        await session.commit()
    return details

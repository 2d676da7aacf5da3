"""Gauges of the operating status (LG-4), read from the database at each ``/metrics`` scrape: inquiries by
state, approvals, releases, overdue lists, what waits in the outbox and for how long, the ledger head and
the age of the newest checkpoint. Counts only; no label ever carries a person, a user id or a branch's
subject."""

from __future__ import annotations

from sqlalchemy import func, select

from app.audit.models import AuditChainHead
from app.clock import from_rfc3339
from app.context import AppContext
from app.inquiry.models import Inquiry, OutboxMessage
from app.lists.models import DailyList

OUTBOX_KINDS = ("inquire", "cancel", "correct")
INQUIRY_STATES = ("awaiting_approval", "queued", "held", "released", "center_error", "cancelled", "expired")


async def refresh_gauges(ctx: AppContext) -> None:
    metrics = ctx.metrics
    now = ctx.clock.now()
    async with ctx.db.read_session() as session:
        head = await session.scalar(select(AuditChainHead).where(AuditChainHead.id == 1))
        by_state: dict[str, int] = {
            state: count
            for state, count in await session.execute(
                select(Inquiry.status, func.count()).group_by(Inquiry.status)
            )
        }
        approvals = await session.scalar(select(func.count()).where(Inquiry.approved_at.is_not(None)))
        releases = await session.scalar(select(func.count()).where(Inquiry.released_by.is_not(None)))
        overdue = await session.scalar(
            select(func.count()).where(DailyList.state == "pending", DailyList.due_at <= now)
        )
        pending = {
            kind: (count, oldest)
            for kind, count, oldest in await session.execute(
                select(OutboxMessage.kind, func.count(), func.min(OutboxMessage.created_at))
                .where(OutboxMessage.delivered_at.is_(None))
                .group_by(OutboxMessage.kind)
            )
        }
    for state in sorted({*INQUIRY_STATES, *by_state}):
        metrics.inquiries_by_state.labels(state).set(by_state.get(state, 0))
    metrics.approvals.set(approvals or 0)
    metrics.releases.set(releases or 0)
    metrics.overdue_lists.set(overdue or 0)
    for kind in sorted({*OUTBOX_KINDS, *pending}):
        count, oldest = pending.get(kind, (0, None))
        metrics.outbox_pending.labels(kind).set(count)
        metrics.outbox_oldest_pending.labels(kind).set(
            max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0
        )
    if head is not None:
        metrics.ledger_head_seq.set(head.seq)
        if head.last_checkpoint_at:
            last = from_rfc3339(head.last_checkpoint_at)
            metrics.checkpoint_age.set((now - last).total_seconds())

"""The governance sweep: lapse stale access requests, end rights past their expiry date, apply HR events
whose day has come, close recertification campaigns at their deadline, start the periodic campaign, run
the daily lifecycle check, and expire inquiry drafts left past their approval deadline. Idempotent; run
by the in-service loop and by ``shokai governance sweep``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import SYSTEM_ACTOR, Actor
from app.audit.models import AuditEvent
from app.authz.models import UserRole
from app.clock import TOKYO, rfc3339
from app.context import AppContext
from app.governance import access_requests, hr, lifecycle, recertification, rights
from app.governance.models import AccessRegisterEntry
from app.governance.register import Decision
from app.inquiry import service as inquiry_service

log = logging.getLogger("shokai.governance")
EXPIRY_RULE = "rule:AC-3 expiry date"


@dataclass(frozen=True)
class SweepResult:
    requests_lapsed: int
    rights_expired: int
    hr_events_applied: int
    rights_revoked_at_deadline: int
    campaign_started: bool
    stale_access_findings: int
    drafts_expired: int


async def _expire_rights(session: AsyncSession, *, ctx: AppContext, actor: Actor) -> int:
    now = ctx.clock.now()
    # The expiry date lives on the grant's register entry (AC-3); a grant still held past it ends now.
    rows = await session.execute(
        select(UserRole, AccessRegisterEntry)
        .join(AccessRegisterEntry, AccessRegisterEntry.user_role_id == UserRole.id)
        .where(
            UserRole.revoked_at.is_(None),
            AccessRegisterEntry.change == "grant",
            AccessRegisterEntry.expires_at.is_not(None),
            AccessRegisterEntry.expires_at <= now,
        )
    )
    count = 0
    for grant, entry in rows.all():
        await rights.revoke_right(
            session,
            setter=actor,
            grant=grant,
            decision=Decision(
                requested_by=entry.requested_by,
                requested_at=entry.requested_at,
                approved_by=EXPIRY_RULE,
                approved_at=now,
                set_by="system",
                set_at=now,
            ),
            source="expiry",
            source_id=entry.access_request_id,
            reason="The right reached its expiry date",
        )
        await rights.end_sessions(session, now=now, reason="role_revoked", user_id=grant.user_id)
        count += 1
    return count


async def run_once(ctx: AppContext, *, actor: Actor = SYSTEM_ACTOR) -> SweepResult:
    async with ctx.db.session() as session:
        lapsed = await access_requests.lapse_stale_requests(session, ctx=ctx, actor=actor)
        expired = await _expire_rights(session, ctx=ctx, actor=actor)
        applied = await hr.apply_due_events(session, ctx=ctx, actor=actor)
        revoked = await recertification.close_due_campaigns(session, ctx=ctx, actor=actor)
        started = await recertification.start_scheduled_campaign_if_due(session, ctx=ctx, actor=actor)
        findings = 0
        if not await _checked_today(session, ctx=ctx):
            findings = (await lifecycle.daily_check(session, ctx=ctx, actor=actor)).total
        drafts = await inquiry_service.expire_stale_drafts(session, ctx, actor=actor)
        await session.commit()
    return SweepResult(lapsed, expired, applied, revoked, started, findings, drafts)


async def _checked_today(session: AsyncSession, *, ctx: AppContext) -> bool:
    """Whether today's (JST) lifecycle check already ran: it is a daily check, not one per tick."""
    midnight = ctx.clock.now().astimezone(TOKYO).replace(hour=0, minute=0, second=0, microsecond=0)
    found = await session.scalar(
        select(AuditEvent.seq)
        .where(AuditEvent.action == "governance.lifecycle_checked", AuditEvent.at >= rfc3339(midnight))
        .limit(1)
    )
    return found is not None


async def run_forever(ctx: AppContext, *, interval_seconds: float) -> None:
    while True:
        # Sleep first: a (re)starting process does not race the other workers' sweeps at boot.
        await asyncio.sleep(interval_seconds)
        try:
            await run_once(ctx)
        except Exception:
            log.exception("the governance sweep failed; it is retried on the next tick")

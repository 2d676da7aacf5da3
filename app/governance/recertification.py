"""Recertification campaigns and review tasks (AC-4).

A campaign (every six months by default, at each new release, and on demand) asks, for each held right,
the branch manager of its branch — or an access approver for branch managers, HQ and bank-wide roles —
to attest it or revoke it. Rights nobody attested by the deadline are revoked automatically and the
register shows it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz.models import UserRole
from app.authz.policy import authorize, ensure_different_people
from app.authz.principal import Principal
from app.authz.roles import ROLES
from app.context import AppContext
from app.errors import Forbidden, InvalidState, NotFound
from app.governance import rights
from app.governance.models import RecertificationCampaign, RecertificationItem, ReviewTask
from app.governance.register import Decision
from app.idempotency import UNKEYED, KeyedRequest, create_once
from app.pagination import keyset_page

LAPSE_RULE = "rule:AC-4 recertification"


def attester_role_for(role: str) -> str:
    """Branch staff are attested by their branch manager; managers, HQ and bank-wide roles by an approver."""
    spec = ROLES[role]
    if role == "branch_manager" or not spec.branch_scoped or spec.hq:
        return "access_approver"
    return "branch_manager"


async def start_campaign(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    reason: str,
    note: str | None = None,
    deadline_at: datetime | None = None,
) -> RecertificationCampaign:
    """Snapshot every held right into a campaign with a deadline. The caller commits."""
    now = ctx.clock.now()
    deadline = deadline_at or now + timedelta(days=ctx.settings.recertification_deadline_days)
    if deadline <= now:
        raise InvalidState("The deadline must be in the future")
    campaign = RecertificationCampaign(
        id=str(uuid.uuid4()),
        reason=reason,
        note=note,
        started_by=actor.id or "system",
        started_at=now,
        deadline_at=deadline,
        status="open",
    )
    session.add(campaign)
    await session.flush()
    grants = await rights.active_grants(session)
    for grant in grants:
        session.add(
            RecertificationItem(
                campaign_id=campaign.id,
                user_role_id=grant.id,
                user_id=grant.user_id,
                role=grant.role,
                branch_code=grant.branch_code,
                attester_role=attester_role_for(grant.role),
            )
        )
    record(
        session,
        actor=actor,
        action="recertification.started",
        object_type="recertification_campaign",
        object_id=campaign.id,
        details={"reason": reason, "items": len(grants), "deadline_at": deadline.isoformat()},
    )
    return campaign


async def start_on_demand(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    reason: str,
    note: str | None,
    deadline_at: datetime | None,
    keyed: KeyedRequest = UNKEYED,
) -> RecertificationCampaign:
    """With an Idempotency-Key a retry gets the first campaign, not a second one asking every attester
    the same questions again."""
    authorize(principal, "access.recertification.manage")
    return await create_once(
        session,
        ctx,
        RecertificationCampaign,
        keyed,
        principal=principal,
        make=lambda: start_campaign(
            session, ctx=ctx, actor=principal.actor(), reason=reason, note=note, deadline_at=deadline_at
        ),
    )


async def items_for(
    session: AsyncSession,
    *,
    principal: Principal,
    campaign_id: str,
    pending_only: bool,
    limit: int = 1000,
    after_id: int | None = None,
) -> tuple[list[RecertificationItem], int | None]:
    """One page of the items the caller may decide (a branch manager: their branches), or of all for
    access admins and auditors, in item order; and the id the next page starts after (None at the end).

    A campaign holds every right of the bank, so the items are paged (api.md), and the caller's share is
    chosen in SQL: filtering a page afterwards would give a branch manager short or empty pages."""
    campaign = await session.get(RecertificationCampaign, campaign_id)
    if campaign is None:
        raise NotFound("No such campaign")
    query = select(RecertificationItem).where(RecertificationItem.campaign_id == campaign_id)
    if pending_only:
        query = query.where(RecertificationItem.decision.is_(None))
    if not (principal.has_role("access_admin") or principal.has_role("auditor")):
        # The SQL form of _may_attest.
        attestable: list[ColumnElement[bool]] = []
        if managed := principal.role_branches.get("branch_manager", frozenset()):
            attestable.append(
                (RecertificationItem.attester_role == "branch_manager")
                & RecertificationItem.branch_code.in_(sorted(managed))
            )
        if principal.has_role("access_approver"):
            attestable.append(RecertificationItem.attester_role == "access_approver")
        if not attestable:
            return [], None
        query = query.where(or_(*attestable))
    if after_id is not None:
        query = query.where(RecertificationItem.id > after_id)
    rows = list((await session.scalars(query.order_by(RecertificationItem.id).limit(limit + 1))).all())
    page, last_id = (rows, None) if len(rows) <= limit else (rows[:limit], rows[limit - 1].id)
    # Who holds which right, read like the access register: the read is recorded (the caller commits).
    record(
        session,
        actor=principal.actor(),
        action="recertification.items_read",
        object_type="recertification_campaign",
        object_id=campaign_id,
        details={
            "pending_only": pending_only,
            "after_id": after_id,
            "count": len(page),
            "last_id": page[-1].id if page else None,
        },
    )
    return page, last_id


def _may_attest(principal: Principal, item: RecertificationItem) -> bool:
    if item.attester_role == "branch_manager":
        return item.branch_code is not None and principal.has_role("branch_manager", item.branch_code)
    return principal.has_role("access_approver")


async def decide_item(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    campaign_id: str,
    item_id: int,
    attest: bool,
    reason: str | None,
) -> RecertificationItem:
    """The right's attester attests it (it stays) or revokes it (it ends now, in the register)."""
    authorize(principal, "access.attest")
    item = await session.get(RecertificationItem, item_id, with_for_update=True)
    if item is None or item.campaign_id != campaign_id:
        raise NotFound("No such item in this campaign")
    campaign = await session.get(RecertificationCampaign, campaign_id)
    assert campaign is not None
    if not _may_attest(principal, item):
        raise Forbidden("This right is attested by another branch's manager or by an access approver")
    ensure_different_people(principal.id, others={"the holder of this right": item.user_id})
    now = ctx.clock.now()
    if campaign.status != "open" or campaign.deadline_at <= now:
        raise InvalidState("The campaign is closed")
    if item.decision is not None:
        raise InvalidState(f"This right was already {item.decision}")
    item.decision, item.decided_by, item.decided_at = ("attested" if attest else "revoked"), principal.id, now
    if not attest:
        grant = await session.get(UserRole, item.user_role_id, with_for_update=True)
        if grant is not None and grant.revoked_at is None:
            await rights.revoke_right(
                session,
                setter=principal.actor(),
                grant=grant,
                decision=Decision(
                    requested_by=principal.id,
                    requested_at=now,
                    approved_by=LAPSE_RULE,
                    approved_at=now,
                    set_by="system",
                    set_at=now,
                ),
                source="recertification",
                source_id=campaign.id,
                reason=reason or "Revoked at recertification",
            )
            await rights.end_sessions(session, now=now, reason="role_revoked", user_id=item.user_id)
    record(
        session,
        actor=principal.actor(),
        action="recertification.attested" if attest else "recertification.revoked",
        object_type="recertification_campaign",
        object_id=campaign.id,
        details={
            "item_id": item.id,
            "user_id": item.user_id,
            "role": item.role,
            "branch_code": item.branch_code,
        },
    )
    await session.commit()
    return item


async def close_due_campaigns(session: AsyncSession, *, ctx: AppContext, actor: Actor) -> int:
    """Close campaigns past their deadline; every unattested right is revoked and registered."""
    now = ctx.clock.now()
    due = list(
        (
            await session.scalars(
                select(RecertificationCampaign).where(
                    RecertificationCampaign.status == "open", RecertificationCampaign.deadline_at <= now
                )
            )
        ).all()
    )
    revoked = 0
    for campaign in due:
        pending = list(
            (
                await session.scalars(
                    select(RecertificationItem)
                    .where(
                        RecertificationItem.campaign_id == campaign.id, RecertificationItem.decision.is_(None)
                    )
                    .order_by(RecertificationItem.id)
                )
            ).all()
        )
        for item in pending:
            item.decision, item.decided_by, item.decided_at = "lapsed", "system", now
            grant = await session.get(UserRole, item.user_role_id, with_for_update=True)
            if grant is None or grant.revoked_at is not None:
                continue
            await rights.revoke_right(
                session,
                setter=actor,
                grant=grant,
                decision=Decision(
                    requested_by=campaign.started_by,
                    requested_at=campaign.started_at,
                    approved_by=LAPSE_RULE,
                    approved_at=now,
                    set_by="system",
                    set_at=now,
                ),
                source="recertification",
                source_id=campaign.id,
                reason="Not attested by the recertification deadline",
            )
            await rights.end_sessions(session, now=now, reason="role_revoked", user_id=item.user_id)
            revoked += 1
        campaign.status, campaign.closed_at = "closed", now
        record(
            session,
            actor=actor,
            action="recertification.closed",
            object_type="recertification_campaign",
            object_id=campaign.id,
            details={"lapsed": len(pending)},
        )
    return revoked


async def start_scheduled_campaign_if_due(session: AsyncSession, *, ctx: AppContext, actor: Actor) -> bool:
    """Start the periodic campaign when the interval has passed since the last one (or the first grant)."""
    last = await session.scalar(select(func.max(RecertificationCampaign.started_at)))
    since = last or await session.scalar(select(func.min(UserRole.granted_at)))
    if since is None:
        return False
    if since.tzinfo is None:  # SQLite aggregates come back as naive UTC text
        since = since.replace(tzinfo=UTC)
    if ctx.clock.now() - since < timedelta(days=ctx.settings.recertification_interval_days):
        return False
    await start_campaign(session, ctx=ctx, actor=actor, reason="scheduled")
    return True


# -- review tasks -------------------------------------------------------------------------------------


async def list_review_tasks(
    session: AsyncSession, *, principal: Principal, status: str | None, limit: int, cursor: str | None
) -> tuple[list[ReviewTask], str | None]:
    authorize(principal, "access.review")
    query = select(ReviewTask)
    if status is not None:
        query = query.where(ReviewTask.status == status)
    return await keyset_page(
        session, query, at=ReviewTask.opened_at, row_id=ReviewTask.id, limit=limit, cursor=cursor
    )


async def close_review_task(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, task_id: str, outcome: str
) -> ReviewTask:
    authorize(principal, "access.review")
    task = await session.get(ReviewTask, task_id, with_for_update=True)
    if task is None:
        raise NotFound("No such review task")
    ensure_different_people(principal.id, others={"the user concerned": task.user_id})
    if task.status != "open":
        raise InvalidState("The review task is closed")
    if task.kind == "privileged_session":
        # Closed only by the review itself, which holds AC-5's rules (who may review privileged use, and
        # only once the session ended); closing it here would mark it reviewed with none of them.
        raise InvalidState(
            f"Review the privileged session instead: POST /privileged-sessions/{task.source_id}/review"
        )
    task.status, task.closed_by, task.closed_at, task.outcome = (
        "closed",
        principal.id,
        ctx.clock.now(),
        outcome,
    )
    record(
        session,
        actor=principal.actor(),
        action="review.closed",
        object_type="review_task",
        object_id=task.id,
        details={"kind": task.kind, "user_id": task.user_id},
    )
    await session.commit()
    return task

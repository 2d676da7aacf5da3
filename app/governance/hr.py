"""HR events (AC-4): a transfer removes the old branch's rights at once, long leave and resignation suspend
the user at once, a return restores nothing by itself; each opens a review task, and every live session
of the user ends immediately so the next request of that session is refused.

An event effective in the future waits (``pending``) and the governance sweep applies it on its day.
"""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz.models import Branch, User
from app.authz.policy import ensure_different_people
from app.authz.principal import Principal
from app.authz.roles import ROLES
from app.clock import business_date_of
from app.context import AppContext
from app.errors import NotFound, ValidationFailed
from app.governance import register, rights
from app.governance.models import HrEvent, ReviewTask
from app.governance.register import Decision
from app.idempotency import UNKEYED, KeyedRequest, commit_keyed, replayed_object

# The standing rule that stands in for a second person on automatic changes, named in the register.
HR_RULE = "rule:AC-4 hr_event"


async def receive_event(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    user_id: str,
    kind: str,
    effective_on: date,
    to_branch_code: str | None,
    keyed: KeyedRequest = UNKEYED,
) -> HrEvent:
    """Record an HR event from the HR feed (or an access admin) and apply it if it is effective today.

    The feed is a batch job that retries on a timeout: with its Idempotency-Key the retry gets the first
    event, not a second transfer or leave."""
    if principal.kind == "user":
        ensure_different_people(principal.id, others={"the user concerned": user_id})
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user")
    # After the user's lock: a retry sent while the first is running waits for it and finds its event.
    if (replayed := await replayed_object(session, HrEvent, keyed, principal=principal)) is not None:
        return replayed
    if kind == "transfer":
        branch = await session.get(Branch, to_branch_code) if to_branch_code else None
        if branch is None or branch.status != "active":
            raise ValidationFailed("A transfer names the open branch the user moves to")
    elif to_branch_code is not None:
        raise ValidationFailed("Only a transfer names a branch")
    now = ctx.clock.now()
    event = HrEvent(
        id=str(uuid.uuid4()),
        user_id=user_id,
        kind=kind,
        effective_on=effective_on,
        to_branch_code=to_branch_code,
        received_from=principal.actor().id or "unknown",
        received_at=now,
        status="pending",
    )
    session.add(event)
    record(
        session,
        actor=principal.actor(),
        action="hr.event_received",
        object_type="hr_event",
        object_id=event.id,
        details={"user_id": user_id, "kind": kind, "effective_on": effective_on.isoformat()},
    )
    if effective_on <= business_date_of(now):
        await apply_event(session, ctx=ctx, event=event, user=user, actor=principal.actor())
    return await commit_keyed(session, ctx, event, keyed, principal=principal)


async def apply_event(
    session: AsyncSession, *, ctx: AppContext, event: HrEvent, user: User, actor: Actor
) -> None:
    now = ctx.clock.now()
    decision = Decision(
        requested_by=event.received_from,
        requested_at=event.received_at,
        approved_by=HR_RULE,
        approved_at=now,
        set_by="system",
        set_at=now,
    )
    reason = f"HR event {event.kind} effective {event.effective_on.isoformat()}"
    if event.kind == "transfer":
        for grant in await rights.active_grants(session, user_id=user.id, for_update=True):
            # Every right held at a unit other than the one moved to goes at once, HQ's included (a move
            # out of HQ leaves no HQ role behind); bank-wide roles are not tied to any unit.
            if ROLES[grant.role].branch_scoped and grant.branch_code != event.to_branch_code:
                await rights.revoke_right(
                    session,
                    setter=actor,
                    grant=grant,
                    decision=decision,
                    source="hr_event",
                    source_id=event.id,
                    reason=reason,
                )
    elif event.kind == "leave" and user.status in rights.ENDED_STATUSES:
        # A leave of someone whose account already ended changes nothing: turned into "suspended", it
        # could be reopened by a reactivation.
        pass
    elif event.kind in ("leave", "resignation"):
        previous = user.status
        user.status = "suspended" if event.kind == "leave" else "resigned"
        register.append(
            session,
            change="suspend",
            user_id=user.id,
            role=None,
            branch_code=None,
            user_role_id=None,
            source="hr_event",
            source_id=event.id,
            decision=decision,
            reason=reason,
        )
        record(
            session,
            actor=actor,
            action="directory.user_suspended",
            object_type="user",
            object_id=user.id,
            details={"from": previous, "to": user.status, "hr_event_id": event.id},
        )
        if event.kind == "resignation":
            for grant in await rights.active_grants(session, user_id=user.id, for_update=True):
                await rights.revoke_right(
                    session,
                    setter=actor,
                    grant=grant,
                    decision=decision,
                    source="hr_event",
                    source_id=event.id,
                    reason=reason,
                )
    # A return restores nothing by itself: the review decides, through access requests, what comes back.
    ended = 0
    if event.kind != "return":
        ended = await rights.end_sessions(session, now=now, reason=f"hr_{event.kind}", user_id=user.id)
    session.add(
        ReviewTask(
            id=str(uuid.uuid4()),
            kind=f"hr_{event.kind}",
            user_id=user.id,
            branch_code=event.to_branch_code,
            source_id=event.id,
            status="open",
            opened_at=now,
        )
    )
    event.status, event.applied_at = "applied", now
    record(
        session,
        actor=actor,
        action="hr.event_applied",
        object_type="hr_event",
        object_id=event.id,
        details={"user_id": user.id, "kind": event.kind, "sessions_ended": ended},
    )


async def apply_due_events(session: AsyncSession, *, ctx: AppContext, actor: Actor) -> int:
    """Apply pending events whose day has come (the governance sweep)."""
    today = business_date_of(ctx.clock.now())
    due = list(
        (
            await session.scalars(
                select(HrEvent)
                .where(HrEvent.status == "pending", HrEvent.effective_on <= today)
                .order_by(HrEvent.received_at)
            )
        ).all()
    )
    for event in due:
        user = await session.get(User, event.user_id, with_for_update=True)
        assert user is not None
        await apply_event(session, ctx=ctx, event=event, user=user, actor=actor)
    return len(due)

"""Emergency switches (IR-1): a security officer suspends a user, a terminal, a branch or all inquiries.

The effect is immediate: the live sessions of the scope end in the same transaction, and authentication
and the inquiry paths refuse anything the switch covers (app/governance/switches.py). Lifting a switch
needs two people at the time it is lifted: one security officer asks to lift it (the switch stays on),
another lifts it. Either may be the one who threw it; a single officer — even one who did not throw it —
can never turn a switch off alone.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.models import Branch, Terminal, User
from app.authz.policy import authorize, ensure_different_people
from app.authz.principal import Principal
from app.clock import rfc3339
from app.context import AppContext
from app.errors import Conflict, InvalidState, NotFound, ValidationFailed
from app.governance import register, rights
from app.governance.models import EmergencySuspension
from app.governance.register import Decision
from app.idempotency import UNKEYED, KeyedRequest, create_once
from app.pagination import keyset_page

# One officer throws a switch at once (the register's approval is the rule); lifting takes two (lift()).
SWITCH_RULE = "rule:IR-1 emergency switch"


async def _terminals_of(session: AsyncSession, branch_code: str) -> list[str]:
    return list((await session.scalars(select(Terminal.id).where(Terminal.branch_code == branch_code))).all())


def _register_user_switch(session: AsyncSession, suspension: EmergencySuspension, *, change: str) -> None:
    """A switch on a user changes what that user may do, so the access-rights register shows it (AC-3):
    thrown by one officer under the rule; lifted as asked by one officer and done by another."""
    assert suspension.target is not None
    if change == "lift":
        assert suspension.lift_requested_by and suspension.lift_requested_at and suspension.lifted_by
        assert suspension.lifted_at is not None and suspension.lift_reason is not None
        decision = Decision(
            requested_by=suspension.lift_requested_by,
            requested_at=suspension.lift_requested_at,
            approved_by=suspension.lifted_by,
            approved_at=suspension.lifted_at,
            set_by=suspension.lifted_by,
            set_at=suspension.lifted_at,
        )
        reason = suspension.lift_reason
    else:
        at, by = suspension.imposed_at, suspension.imposed_by
        decision = Decision(
            requested_by=by, requested_at=at, approved_by=SWITCH_RULE, approved_at=at, set_by=by, set_at=at
        )
        reason = suspension.reason
    register.append(
        session,
        change=change,
        user_id=suspension.target,
        role=None,
        branch_code=None,
        user_role_id=None,
        source="emergency",
        source_id=suspension.id,
        decision=decision,
        reason=reason,
    )


async def suspend(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    scope: str,
    target: str | None,
    reason: str,
    keyed: KeyedRequest = UNKEYED,
) -> EmergencySuspension:
    """Throw a switch. With an Idempotency-Key a retry gets the switch it threw, not 409 "already on"."""
    authorize(principal, "emergency.suspend")
    return await create_once(
        session,
        ctx,
        EmergencySuspension,
        keyed,
        principal=principal,
        make=lambda: _throw_switch(
            session, ctx=ctx, principal=principal, scope=scope, target=target, reason=reason
        ),
    )


async def _throw_switch(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    scope: str,
    target: str | None,
    reason: str,
) -> EmergencySuspension:
    if scope == "all":
        if target is not None:
            raise ValidationFailed("A bank-wide switch names no target")
    elif target is None:
        raise ValidationFailed(f"Name the {scope} to suspend")
    elif scope == "user" and await session.get(User, target) is None:
        raise NotFound("No such user")
    elif scope == "terminal" and await session.get(Terminal, target) is None:
        raise NotFound("No such terminal")
    elif scope == "branch" and await session.get(Branch, target) is None:
        raise NotFound("No such branch")
    if scope == "user":
        ensure_different_people(principal.id, others={"the user to suspend": target})
    existing = await session.scalar(
        select(EmergencySuspension).where(
            EmergencySuspension.status == "active",
            EmergencySuspension.scope == scope,
            EmergencySuspension.target.is_(None) if target is None else EmergencySuspension.target == target,
        )
    )
    if existing is not None:
        raise Conflict("This switch is already on")
    now = ctx.clock.now()
    ended = 0
    if scope == "user":
        assert target is not None
        ended = await rights.end_sessions(session, now=now, reason="emergency_suspension", user_id=target)
    elif scope == "terminal":
        assert target is not None
        ended = await rights.end_sessions(
            session, now=now, reason="emergency_suspension", terminal_ids=[target]
        )
    elif scope == "branch":
        assert target is not None
        ended = await rights.end_sessions(
            session, now=now, reason="emergency_suspension", terminal_ids=await _terminals_of(session, target)
        )
    # "all" stops inquiries bank-wide but leaves sessions alive: officers must still reach the switch.
    suspension = EmergencySuspension(
        id=str(uuid.uuid4()),
        scope=scope,
        target=target,
        reason=reason,
        status="active",
        imposed_by=principal.id,
        imposed_at=now,
        sessions_ended=ended,
    )
    session.add(suspension)
    if scope == "user":
        _register_user_switch(session, suspension, change="suspend")
    record(
        session,
        actor=principal.actor(),
        action="emergency.suspended",
        object_type="emergency_suspension",
        object_id=suspension.id,
        outcome="alert",
        details={"scope": scope, "target": target, "sessions_ended": ended},
    )
    return suspension


async def lift(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, suspension_id: str, reason: str
) -> EmergencySuspension:
    """The first officer's call asks to lift the switch, which stays on; a second officer's call lifts
    it. The same officer twice is refused (SOD_VIOLATION): one person never turns a switch off."""
    authorize(principal, "emergency.suspend")
    suspension = await session.get(EmergencySuspension, suspension_id, with_for_update=True)
    if suspension is None:
        raise NotFound("No such suspension")
    if suspension.status != "active":
        raise InvalidState("The suspension is already lifted")
    now = ctx.clock.now()
    details: dict[str, Any] = {
        "scope": suspension.scope,
        "target": suspension.target,
        "imposed_by": suspension.imposed_by,
    }
    asked_at = suspension.lift_requested_at
    lapsed = asked_at is not None and now - asked_at >= timedelta(
        hours=ctx.settings.emergency_lift_request_hours
    )
    if lapsed and asked_at is not None:
        # A request nobody acted on for a shift says nothing about the switch now: the second officer
        # would lift it on an assessment made hours ago, under other facts. This call asks anew.
        details["lapsed_request"] = {
            "requested_by": suspension.lift_requested_by,
            "requested_at": rfc3339(asked_at),
        }
    if suspension.lift_requested_by is None or lapsed:
        suspension.lift_requested_by = principal.id
        suspension.lift_requested_at = now
        suspension.lift_request_reason = reason
        action = "emergency.lift_requested"
    else:
        asked = suspension.lift_requested_by
        ensure_different_people(principal.id, others={"the officer who asked to lift this suspension": asked})
        suspension.status = "lifted"
        suspension.lifted_by = principal.id
        suspension.lifted_at = now
        suspension.lift_reason = reason
        if suspension.scope == "user":
            _register_user_switch(session, suspension, change="lift")
        details["lift_requested_by"] = suspension.lift_requested_by
        action = "emergency.lifted"
    record(
        session,
        actor=principal.actor(),
        action=action,
        object_type="emergency_suspension",
        object_id=suspension.id,
        details=details,
    )
    await session.commit()
    return suspension


async def list_suspensions(
    session: AsyncSession, *, principal: Principal, active_only: bool, limit: int, cursor: str | None
) -> tuple[list[EmergencySuspension], str | None]:
    authorize(principal, "emergency.read")
    query = select(EmergencySuspension)
    if active_only:
        query = query.where(EmergencySuspension.status == "active")
    return await keyset_page(
        session,
        query,
        at=EmergencySuspension.imposed_at,
        row_id=EmergencySuspension.id,
        limit=limit,
        cursor=cursor,
    )

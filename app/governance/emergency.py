"""Emergency switches (IR-1): a security officer suspends a user, a terminal, a branch or all inquiries.

The effect is immediate: the live sessions of the scope end in the same transaction, and authentication
and the inquiry paths refuse anything the switch covers (app/governance/switches.py). Lifting a switch
needs a second person: a security officer other than the one who threw it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.models import Branch, Terminal, User
from app.authz.policy import authorize, ensure_different_people
from app.authz.principal import Principal
from app.context import AppContext
from app.errors import Conflict, InvalidState, NotFound, ValidationFailed
from app.governance import register, rights
from app.governance.models import EmergencySuspension
from app.governance.register import Decision
from app.idempotency import UNKEYED, KeyedRequest, create_once
from app.pagination import keyset_page

# One officer throws a switch at once; lifting it takes a second one (checked in lift()).
SWITCH_RULE = "rule:IR-1 emergency switch"
LIFT_RULE = "rule:IR-1 lifted by a second officer"


async def _terminals_of(session: AsyncSession, branch_code: str) -> list[str]:
    return list((await session.scalars(select(Terminal.id).where(Terminal.branch_code == branch_code))).all())


def _register_user_switch(
    session: AsyncSession, suspension: EmergencySuspension, *, change: str, by: str, reason: str
) -> None:
    """A switch on a user changes what that user may do, so the access-rights register shows it (AC-3)."""
    at = suspension.lifted_at if change == "lift" else suspension.imposed_at
    assert suspension.target is not None and at is not None
    register.append(
        session,
        change=change,
        user_id=suspension.target,
        role=None,
        branch_code=None,
        user_role_id=None,
        source="emergency",
        source_id=suspension.id,
        decision=Decision(
            requested_by=by,
            requested_at=at,
            approved_by=LIFT_RULE if change == "lift" else SWITCH_RULE,
            approved_at=at,
            set_by=by,
            set_at=at,
        ),
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
        _register_user_switch(session, suspension, change="suspend", by=principal.id, reason=reason)
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
    """A second security officer — never the one who threw the switch — lifts it."""
    authorize(principal, "emergency.suspend")
    suspension = await session.get(EmergencySuspension, suspension_id, with_for_update=True)
    if suspension is None:
        raise NotFound("No such suspension")
    ensure_different_people(
        principal.id, others={"the officer who imposed this suspension": suspension.imposed_by}
    )
    if suspension.status != "active":
        raise InvalidState("The suspension is already lifted")
    suspension.status = "lifted"
    suspension.lifted_by = principal.id
    suspension.lifted_at = ctx.clock.now()
    suspension.lift_reason = reason
    if suspension.scope == "user":
        _register_user_switch(session, suspension, change="lift", by=principal.id, reason=reason)
    record(
        session,
        actor=principal.actor(),
        action="emergency.lifted",
        object_type="emergency_suspension",
        object_id=suspension.id,
        details={"scope": suspension.scope, "target": suspension.target, "imposed_by": suspension.imposed_by},
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

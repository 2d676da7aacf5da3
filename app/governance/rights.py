"""Granting and ending one held right, always together with its register entry and ledger event.

Every path that changes who holds what — an applied access request, an HR event, a lapsed
recertification, an expired grant, a closed branch, the bootstrap of a new installation — comes through
here, so the register (AC-3) cannot miss a change.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz import directory
from app.authz.models import AuthSession, User, UserRole
from app.authz.policy import ensure_roles_compatible
from app.authz.service import active_roles
from app.context import AppContext
from app.errors import Conflict, InvalidState, NotFound
from app.governance import register
from app.governance.register import Decision

# Accounts ended for good: no right is granted to them and no HR leave turns them back into "suspended",
# from which a reactivation would reopen them.
ENDED_STATUSES = frozenset({"resigned", "deactivated"})


async def grant_right(
    session: AsyncSession,
    *,
    ctx: AppContext,
    setter: Actor,
    user_id: str,
    role: str,
    branch_code: str | None,
    decision: Decision,
    source: str,
    source_id: str | None,
    reason: str,
    effective_from: date | None = None,
    expires_at: datetime | None = None,
    access_request_id: str | None = None,
) -> UserRole:
    # The user's row is locked first, so two grants applied at once are judged one after the other on
    # PostgreSQL (SQLite's writer lock serialises them anyway): both checks below read what the other set.
    user = await session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None:
        raise NotFound("No such user")
    if user.status in ENDED_STATUSES:
        # Checked when the request was made, and again here: the user may have resigned since (AC-4).
        raise InvalidState(f"The user is {user.status}; an ended account gets no rights")
    # One grant per right. Two requests for the same right may both be pending and approved; the second
    # to be applied is refused, not added as a twin that a single revoke would then end twice.
    if await active_grants(session, user_id=user_id, role=role, branch_code=branch_code):
        raise Conflict("The user already holds this right")
    ensure_roles_compatible(frozenset(await active_roles(session, user_id)), role)
    grant = await directory.grant_role(
        session, ctx=ctx, actor=setter, user_id=user_id, role=role, branch_code=branch_code
    )
    await session.flush()
    register.append(
        session,
        change="grant",
        user_id=user_id,
        role=role,
        branch_code=grant.branch_code,
        user_role_id=grant.id,
        source=source,
        source_id=source_id,
        decision=decision,
        reason=reason,
        effective_from=effective_from,
        expires_at=expires_at,
        access_request_id=access_request_id,
    )
    return grant


async def revoke_right(
    session: AsyncSession,
    *,
    setter: Actor,
    grant: UserRole,
    decision: Decision,
    source: str,
    source_id: str | None,
    reason: str,
    access_request_id: str | None = None,
) -> None:
    grant.revoked_at = decision.set_at
    grant.revoked_by = decision.set_by
    register.append(
        session,
        change="revoke",
        user_id=grant.user_id,
        role=grant.role,
        branch_code=grant.branch_code,
        user_role_id=grant.id,
        source=source,
        source_id=source_id,
        decision=decision,
        reason=reason,
        access_request_id=access_request_id,
    )
    record(
        session,
        actor=setter,
        action="directory.role_revoked",
        object_type="user",
        object_id=grant.user_id,
        details={"role": grant.role, "branch_code": grant.branch_code, "source": source},
    )


async def active_grants(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    role: str | None = None,
    branch_code: str | None = None,
    for_update: bool = False,
) -> list[UserRole]:
    query = select(UserRole).where(UserRole.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(UserRole.user_id == user_id)
    if role is not None:
        query = query.where(UserRole.role == role)
    if branch_code is not None:
        query = query.where(UserRole.branch_code == branch_code)
    if for_update:
        query = query.with_for_update()
    return list((await session.scalars(query.order_by(UserRole.id))).all())


async def end_sessions(
    session: AsyncSession,
    *,
    now: datetime,
    reason: str,
    user_id: str | None = None,
    terminal_ids: list[str] | None = None,
) -> int:
    """End live sessions of a user or of terminals at once; the next request of each is refused (AU-9)."""
    query = update(AuthSession).where(AuthSession.ended_at.is_(None))
    if user_id is not None:
        query = query.where(AuthSession.principal_id == user_id, AuthSession.principal_kind == "user")
    elif terminal_ids is not None:
        if not terminal_ids:
            return 0
        query = query.where(AuthSession.terminal_id.in_(terminal_ids))
    else:
        raise ValueError("name the user or the terminals whose sessions end")
    result = await session.execute(query.values(ended_at=now, end_reason=reason))
    return int(getattr(result, "rowcount", 0) or 0)


BOOTSTRAP_APPROVAL = "bootstrap: initial directory, no second person"


async def bootstrap_grant(
    session: AsyncSession, *, ctx: AppContext, actor: Actor, user_id: str, role: str, branch_code: str | None
) -> UserRole:
    """The one path that grants without an access request: the first directory of a new installation
    (the demo seed), before any approver exists. It is marked as such in the register."""
    now = ctx.clock.now()
    who = actor.id or "system"
    return await grant_right(
        session,
        ctx=ctx,
        setter=actor,
        user_id=user_id,
        role=role,
        branch_code=branch_code,
        decision=Decision(
            requested_by=who,
            requested_at=now,
            approved_by=BOOTSTRAP_APPROVAL,
            approved_at=now,
            set_by=who,
            set_at=now,
        ),
        source="bootstrap",
        source_id=None,
        reason="Initial directory",
    )

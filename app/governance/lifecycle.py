"""Terminals, branches and users at the end of their life, and the daily check that nothing is still
tied to them.

Decommissioning a terminal kills its key and ends its sessions; closing a branch revokes every right
held there (in the register), decommissions its terminals and ends their sessions; deactivating a user
revokes their rights and ends their sessions. The daily check lists access still tied to closed
branches or decommissioned terminals — it must show zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz import directory
from app.authz.models import AuthSession, Branch, Terminal, User, UserRole
from app.authz.policy import authorize, ensure_different_people
from app.authz.principal import Principal
from app.context import AppContext
from app.errors import InvalidState, NotFound
from app.governance import register, rights
from app.governance.register import Decision

CLOSURE_RULE = "rule:branch closure"
# Taking every right away needs no second person, like a branch closure; the register names the rule.
DEACTIVATION_RULE = "rule:user deactivation"


async def decommission_terminal(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, terminal_id: str
) -> Terminal:
    authorize(principal, "directory.manage")
    terminal = await directory.set_terminal_status(
        session, actor=principal.actor(), terminal_id=terminal_id, status="decommissioned"
    )
    await rights.end_sessions(
        session, now=ctx.clock.now(), reason="terminal_decommissioned", terminal_ids=[terminal_id]
    )
    await session.commit()
    return terminal


async def close_branch(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, branch_code: str, reason: str
) -> Branch:
    authorize(principal, "directory.manage")
    branch = await session.get(Branch, branch_code, with_for_update=True)
    if branch is None:
        raise NotFound("No such branch")
    if branch.is_hq:
        raise InvalidState("The HQ unit cannot be closed")
    if branch.status != "active":
        raise InvalidState("The branch is already closed")
    now = ctx.clock.now()
    actor = principal.actor()
    await _revoke_all_under_rule(
        session,
        principal=principal,
        now=now,
        rule=CLOSURE_RULE,
        grants=await rights.active_grants(session, branch_code=branch_code, for_update=True),
        source="branch_closure",
        source_id=branch_code,
        reason=reason,
    )
    terminal_ids = []
    for terminal in await directory.list_terminals(session, branch_code=branch_code):
        terminal_ids.append(terminal.id)
        if terminal.status != "decommissioned":
            await directory.set_terminal_status(
                session, actor=actor, terminal_id=terminal.id, status="decommissioned"
            )
    await rights.end_sessions(session, now=now, reason="branch_closed", terminal_ids=terminal_ids)
    branch.status = "closed"
    branch.closed_at = now  # its lists are still due for this day (DL-1)
    record(
        session, actor=actor, action="directory.branch_closed", object_type="branch", object_id=branch_code
    )
    await session.commit()
    return branch


async def deactivate_user(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, user_id: str, reason: str
) -> User:
    """End a user account for good: every right revoked (in the register), every session ended at once."""
    authorize(principal, "directory.manage")
    ensure_different_people(principal.id, others={"the user concerned": user_id})
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user")
    if user.status == "deactivated":
        raise InvalidState("The user is already deactivated")
    now = ctx.clock.now()
    actor = principal.actor()
    decision = await _revoke_all_under_rule(
        session,
        principal=principal,
        now=now,
        rule=DEACTIVATION_RULE,
        grants=await rights.active_grants(session, user_id=user_id, for_update=True),
        source="deactivation",
        source_id=user_id,
        reason=reason,
    )
    previous = user.status
    user.status = "deactivated"
    register.append(
        session,
        change="deactivate",
        user_id=user_id,
        role=None,
        branch_code=None,
        user_role_id=None,
        source="deactivation",
        source_id=user_id,
        decision=decision,
        reason=reason,
    )
    ended = await rights.end_sessions(session, now=now, reason="user_deactivated", user_id=user_id)
    record(
        session,
        actor=actor,
        action="directory.user_deactivated",
        object_type="user",
        object_id=user_id,
        details={"from": previous, "sessions_ended": ended},
    )
    await session.commit()
    return user


async def _revoke_all_under_rule(
    session: AsyncSession,
    *,
    principal: Principal,
    now: datetime,
    rule: str,
    grants: Sequence[UserRole],
    source: str,
    source_id: str,
    reason: str,
) -> Decision:
    """Revoke ``grants`` in the register under a standing rule instead of a second person's approval.

    Closing a branch or ending an account takes rights away only, so the rule stands in for the
    approver (AC-3); the register records which rule it was and who set the change."""
    decision = Decision(
        requested_by=principal.id,
        requested_at=now,
        approved_by=rule,
        approved_at=now,
        set_by=principal.id,
        set_at=now,
    )
    for grant in grants:
        await rights.revoke_right(
            session,
            setter=principal.actor(),
            grant=grant,
            decision=decision,
            source=source,
            source_id=source_id,
            reason=reason,
        )
    return decision


@dataclass
class LifecycleFindings:
    roles_at_closed_branches: list[dict[str, object]] = field(default_factory=list)
    active_terminals_at_closed_branches: list[str] = field(default_factory=list)
    live_sessions_on_retired_terminals: int = 0

    @property
    def total(self) -> int:
        return (
            len(self.roles_at_closed_branches)
            + len(self.active_terminals_at_closed_branches)
            + self.live_sessions_on_retired_terminals
        )


async def find_stale_access(session: AsyncSession, *, ctx: AppContext) -> LifecycleFindings:
    findings = LifecycleFindings()
    closed = select(Branch.code).where(Branch.status != "active")
    for grant in await session.scalars(
        select(UserRole)
        .where(UserRole.revoked_at.is_(None), UserRole.branch_code.in_(closed))
        .order_by(UserRole.id)
    ):
        findings.roles_at_closed_branches.append(
            {
                "user_role_id": grant.id,
                "user_id": grant.user_id,
                "role": grant.role,
                "branch_code": grant.branch_code,
            }
        )
    findings.active_terminals_at_closed_branches = list(
        (
            await session.scalars(
                select(Terminal.id).where(
                    Terminal.status != "decommissioned", Terminal.branch_code.in_(closed)
                )
            )
        ).all()
    )
    retired = select(Terminal.id).where(Terminal.status == "decommissioned")
    live = await session.scalars(
        select(AuthSession.id).where(
            AuthSession.ended_at.is_(None),
            AuthSession.expires_at > ctx.clock.now(),
            AuthSession.terminal_id.in_(retired),
        )
    )
    findings.live_sessions_on_retired_terminals = len(list(live.all()))
    return findings


async def daily_check(session: AsyncSession, *, ctx: AppContext, actor: Actor) -> LifecycleFindings:
    """Run the check and record its result (a non-zero result is an alert). The caller commits."""
    findings = await find_stale_access(session, ctx=ctx)
    record(
        session,
        actor=actor,
        action="governance.lifecycle_checked",
        object_type="system",
        outcome="alert" if findings.total else "success",
        details={
            "roles_at_closed_branches": len(findings.roles_at_closed_branches),
            "active_terminals_at_closed_branches": len(findings.active_terminals_at_closed_branches),
            "live_sessions_on_retired_terminals": findings.live_sessions_on_retired_terminals,
        },
    )
    return findings

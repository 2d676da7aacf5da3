"""Second factor enrolment and privileged sessions (AC-5, AU-8).

An administrator logs in like anyone else, but uses an administrator role only inside a privileged
session opened with a reason and a fresh TOTP code. Opening one raises an alert (a ledger event with
outcome ``alert`` and a review task), and someone other than the administrator reviews it afterwards.

A privileged session lives inside its login: closing it ends it, and so does the end of the login —
logout, a timeout, a suspension — whether or not anyone closes it. Its end is therefore read from both,
and a review waits for that end, so nothing the session does can come after the review of it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.models import AuthSession, User
from app.authz.policy import authorize, ensure_different_people
from app.authz.principal import Principal
from app.authz.roles import PERMISSIONS, PRIVILEGED_ROLES
from app.authz.service import count_failed_password, login_deadlines
from app.context import AppContext
from app.errors import Conflict, InvalidState, NotFound, PrivilegedSessionRequired, TotpRequired
from app.governance import totp
from app.governance.models import PrivilegedSession, ReviewTask, TotpEnrolment
from app.pagination import keyset_page


@dataclass(frozen=True)
class PrivilegedUse:
    """A privileged session with when and why it ended (None while it may still act)."""

    session: PrivilegedSession
    ended_at: datetime | None
    # closed | the login's end reason (logout, idle_timeout, absolute_timeout, suspended, ...)
    end_reason: str | None


@dataclass(frozen=True)
class Enrolment:
    secret: str
    provisioning_uri: str


async def enrol_totp(session: AsyncSession, *, ctx: AppContext, principal: Principal) -> Enrolment:
    """Start (or restart, while unconfirmed) the caller's own TOTP enrolment; the secret is shown once."""
    if principal.kind != "user":
        raise InvalidState("Service accounts have no second factor")
    existing = await session.get(TotpEnrolment, principal.id, with_for_update=True)
    if existing is not None and existing.confirmed_at is not None:
        # Replacing a confirmed factor would let a stolen session swap it; that is an access request.
        raise Conflict("A confirmed second factor exists; ask for a reset")
    secret = totp.new_secret()
    enrolment = existing or TotpEnrolment(user_id=principal.id, created_at=ctx.clock.now())
    totp.seal_secret(ctx, enrolment, secret)
    enrolment.created_at = ctx.clock.now()
    enrolment.last_used_step = None
    if existing is None:
        session.add(enrolment)
    record(
        session,
        actor=principal.actor(),
        action="totp.enrolment_started",
        object_type="user",
        object_id=principal.id,
    )
    await session.commit()
    return Enrolment(
        secret=totp.secret_text(secret),
        provisioning_uri=totp.provisioning_uri(
            secret, user_id=principal.id, issuer=ctx.settings.token_issuer
        ),
    )


async def confirm_totp(session: AsyncSession, *, ctx: AppContext, principal: Principal, code: str) -> None:
    enrolment = await session.get(TotpEnrolment, principal.id, with_for_update=True)
    if enrolment is None:
        raise NotFound("Start the enrolment first")
    if enrolment.confirmed_at is not None:
        raise Conflict("The second factor is already confirmed")
    step = totp.matching_step(totp.open_secret(ctx, enrolment), code, at=ctx.clock.now(), after_step=None)
    if step is None:
        record(
            session,
            actor=principal.actor(),
            action="totp.enrolment_refused",
            object_type="user",
            object_id=principal.id,
            outcome="denied",
        )
        await session.commit()
        raise TotpRequired("The code does not match the new secret", audited=True)
    enrolment.confirmed_at = ctx.clock.now()
    enrolment.last_used_step = step
    record(
        session, actor=principal.actor(), action="totp.enrolled", object_type="user", object_id=principal.id
    )
    await session.commit()


def uses_privilege(principal: Principal, action: str) -> bool:
    """Whether the caller would exercise an administrator role for ``action`` (AC-5)."""
    permission = PERMISSIONS.get(action)
    if principal.kind != "user" or permission is None:
        return False
    return bool(permission.roles & principal.roles & PRIVILEGED_ROLES)


async def current_privileged_session(session: AsyncSession, principal: Principal) -> PrivilegedSession | None:
    return await session.scalar(
        select(PrivilegedSession).where(
            PrivilegedSession.auth_session_id == principal.session_id,
            PrivilegedSession.user_id == principal.id,
            PrivilegedSession.ended_at.is_(None),
        )
    )


async def ensure_privileged(session: AsyncSession, principal: Principal, action: str) -> None:
    """``action`` by an administrator role needs an open privileged session on this login session."""
    authorize(principal, action)
    if uses_privilege(principal, action) and await current_privileged_session(session, principal) is None:
        raise PrivilegedSessionRequired("Open a privileged session (POST /privileged-sessions) with a reason")


async def open_privileged_session(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, reason: str, code: str
) -> PrivilegedUse:
    """Open a privileged session with a reason and a fresh TOTP code; alerted and queued for review."""
    if principal.kind != "user" or not principal.roles & PRIVILEGED_ROLES:
        raise InvalidState("Only holders of an administrator role open privileged sessions")
    if not await totp.verify_code(session, ctx=ctx, user_id=principal.id, code=code):
        if await totp.confirmed_enrolment(session, principal.id) is not None:
            # A wrong code against an enrolled factor is a guess, counted toward the lockout as at login
            # (AU-5): a held login would otherwise try the six digits without end. With no factor
            # enrolled there is nothing to guess, and the refusal only says one is needed.
            await count_failed_password(
                session,
                ctx=ctx,
                user=await session.get(User, principal.id),
                attempted_user_id=principal.id,
                actor=principal.actor(),
            )
        record(
            session,
            actor=principal.actor(),
            action="privileged.session_refused",
            object_type="user",
            object_id=principal.id,
            outcome="denied",
            details={"code": "TOTP_REQUIRED"},
        )
        await session.commit()
        raise TotpRequired("A confirmed second factor and a fresh code are required", audited=True)
    if await current_privileged_session(session, principal) is not None:
        raise Conflict("A privileged session is already open on this login")
    now = ctx.clock.now()
    privileged = PrivilegedSession(
        id=str(uuid.uuid4()),
        user_id=principal.id,
        auth_session_id=principal.session_id,
        reason=reason,
        opened_at=now,
    )
    session.add(privileged)
    session.add(
        ReviewTask(
            id=str(uuid.uuid4()),
            kind="privileged_session",
            user_id=principal.id,
            source_id=privileged.id,
            status="open",
            opened_at=now,
        )
    )
    record(
        session,
        actor=principal.actor(),
        action="privileged.session_opened",
        object_type="privileged_session",
        object_id=privileged.id,
        # An alert by outcome: monitoring picks up every privileged use, not just failures (AC-5).
        outcome="alert",
        details={"roles": sorted(principal.roles & PRIVILEGED_ROLES), "reason_length": len(reason)},
    )
    await session.commit()
    return PrivilegedUse(privileged, None, None)


async def close_privileged_session(session: AsyncSession, *, ctx: AppContext, principal: Principal) -> None:
    privileged = await current_privileged_session(session, principal)
    if privileged is None:
        raise NotFound("No privileged session is open on this login")
    privileged.ended_at = ctx.clock.now()
    record(
        session,
        actor=principal.actor(),
        action="privileged.session_closed",
        object_type="privileged_session",
        object_id=privileged.id,
    )
    await session.commit()


async def review_privileged_session(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, privileged_id: str, note: str
) -> PrivilegedUse:
    """Someone other than the administrator looks at what the privileged session did (AC-5)."""
    authorize(principal, "privileged.review")
    privileged = await session.get(PrivilegedSession, privileged_id, with_for_update=True)
    if privileged is None:
        raise NotFound("No such privileged session")
    ensure_different_people(principal.id, others={"the administrator": privileged.user_id})
    if privileged.reviewed_at is not None:
        raise InvalidState("This privileged session was already reviewed")
    (use,) = await _uses(ctx, session, [privileged])
    if use.ended_at is None:
        # Reviewed afterwards (AC-5): a review of a live session would vouch for what it has yet to do.
        raise InvalidState("This privileged session is still open; review it once it has ended")
    now = ctx.clock.now()
    privileged.reviewed_by = principal.id
    privileged.reviewed_at = now
    privileged.review_note = note
    task = await session.scalar(
        select(ReviewTask).where(
            ReviewTask.kind == "privileged_session",
            ReviewTask.source_id == privileged.id,
            ReviewTask.status == "open",
        )
    )
    if task is not None:
        task.status, task.closed_by, task.closed_at, task.outcome = "closed", principal.id, now, "reviewed"
    record(
        session,
        actor=principal.actor(),
        action="privileged.session_reviewed",
        object_type="privileged_session",
        object_id=privileged.id,
    )
    await session.commit()
    return use


def _use_of(ctx: AppContext, privileged: PrivilegedSession, login: AuthSession | None) -> PrivilegedUse:
    """When ``privileged`` stopped being usable: closed, or its login ended (also by a timeout that no
    request has noticed yet, which the login row does not show)."""
    if privileged.ended_at is not None:
        return PrivilegedUse(privileged, privileged.ended_at, "closed")
    if login is None:
        # Logins are never purged; a privileged session without one could never act.
        return PrivilegedUse(privileged, privileged.opened_at, "login_missing")
    if login.ended_at is not None:
        return PrivilegedUse(privileged, login.ended_at, login.end_reason)
    now = ctx.clock.now()
    passed = [deadline for deadline in login_deadlines(ctx, login) if deadline[0] <= now]
    if passed:
        at, reason = min(passed)  # the first to run out ended it
        return PrivilegedUse(privileged, at, reason)
    return PrivilegedUse(privileged, None, None)


async def _uses(ctx: AppContext, session: AsyncSession, rows: list[PrivilegedSession]) -> list[PrivilegedUse]:
    logins = {
        login.id: login
        for login in await session.scalars(
            select(AuthSession).where(AuthSession.id.in_({row.auth_session_id for row in rows}))
        )
    }
    return [_use_of(ctx, row, logins.get(row.auth_session_id)) for row in rows]


async def list_privileged_sessions(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    unreviewed_only: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[PrivilegedUse], str | None]:
    authorize(principal, "privileged.review")
    query = select(PrivilegedSession)
    if unreviewed_only:
        query = query.where(PrivilegedSession.reviewed_at.is_(None))
    rows, next_cursor = await keyset_page(
        session,
        query,
        at=PrivilegedSession.opened_at,
        row_id=PrivilegedSession.id,
        limit=limit,
        cursor=cursor,
    )
    return await _uses(ctx, session, rows), next_cursor

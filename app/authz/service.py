"""Login, service tokens, session checks, logout and password change (AU-1…AU-7, AU-9).

Unlocking a locked account takes two people: it is an access request with action ``unlock``
(app/governance/access_requests.py, AU-5, AC-2); nothing here unlocks.

Refusals that must survive the refusal (failed logins, locks, timeouts) are recorded and committed
here before the error is raised, and the error is marked ``audited`` so it is not recorded twice.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz import directory
from app.authz.models import (
    AuthSession,
    Branch,
    LoginThrottle,
    PasswordHistory,
    ServiceAccount,
    Terminal,
    User,
    UserRole,
)
from app.authz.password_policy import PasswordOwner, PasswordPolicy
from app.authz.passwords import PasswordCheck, machine_secret_matches, new_password_violations
from app.authz.principal import Principal
from app.authz.roles import ROLES
from app.authz.tokens import TokenClaims, decode_token, issue_token
from app.context import AppContext
from app.db import lock_or_create
from app.errors import (
    AccountLocked,
    InvalidCredentials,
    NotFound,
    PasswordPolicyViolated,
    SessionEnded,
    Suspended,
    TerminalMismatch,
    TerminalNotAllowed,
    TerminalNotRegistered,
    TotpRequired,
)
from app.governance.models import EmergencySuspension
from app.governance.switches import active_suspension, suspension_query
from app.governance.totp import confirmed_enrolment, verify_code
from app.inquiry.subject import unless_my_number

TOKEN_OUTLIVES_SESSION = timedelta(minutes=2)
# A request moves the session's idle clock at most this often: touching it on every call would make
# every read a write. The idle timeout is therefore exact to within this interval (of 10 minutes).
SESSION_TOUCH_INTERVAL = timedelta(seconds=15)


@dataclass(frozen=True)
class RequestOrigin:
    address: str | None
    request_id: str | None


@dataclass(frozen=True)
class PreviousLogin:
    at: datetime
    terminal_id: str | None
    address: str | None


@dataclass(frozen=True)
class LoginResult:
    access_token: str
    expires_in: int
    user: User
    roles: list[str]
    branch_codes: list[str]
    previous_login: PreviousLogin | None
    failed_attempts_since_previous_login: int
    password_expires_at: datetime
    must_change_password: bool


@dataclass(frozen=True)
class ServiceTokenResult:
    access_token: str
    expires_in: int
    scopes: list[str]


def password_policy(ctx: AppContext) -> PasswordPolicy:
    return PasswordPolicy(
        min_length=ctx.settings.password_min_length, history_depth=ctx.settings.password_history_depth
    )


def login_key(ctx: AppContext, user_id: str) -> str:
    return ctx.keyring.pseudonym(user_id.strip().casefold(), domain="login")


def active_role_join(user_id: Any) -> Any:
    """The join condition to a user's roles in force, for a query that reads them with the user."""
    return and_(UserRole.user_id == user_id, UserRole.revoked_at.is_(None))


def roles_of(rows: Iterable[tuple[str | None, str | None]]) -> dict[str, frozenset[str]]:
    """(role, branch_code) rows as role -> branches; a row without a role (an outer join) adds nothing."""
    by_role: dict[str, set[str]] = defaultdict(set)
    for role, branch_code in rows:
        if role is None:
            continue
        by_role[role]  # a bank-wide role is present with no branches
        if branch_code is not None:
            by_role[role].add(branch_code)
    return {role: frozenset(codes) for role, codes in by_role.items()}


async def active_roles(session: AsyncSession, user_id: str) -> dict[str, frozenset[str]]:
    rows = await session.execute(select(UserRole.role, UserRole.branch_code).where(active_role_join(user_id)))
    return roles_of((role, branch_code) for role, branch_code in rows)


def password_expires_at(ctx: AppContext, user: User) -> datetime:
    return user.password_changed_at + timedelta(days=ctx.settings.password_max_age_days)


def password_change_required(ctx: AppContext, user: User) -> bool:
    return user.must_change_password or password_expires_at(ctx, user) <= ctx.clock.now()


async def _check_terminal(
    session: AsyncSession, *, terminal_id: str | None, terminal_key: str | None
) -> Terminal | None:
    if terminal_id is None and terminal_key is None:
        return None
    terminal = await session.get(Terminal, terminal_id) if terminal_id else None
    if terminal is None or not machine_secret_matches(
        terminal.key_hash if terminal else None, terminal_key or ""
    ):
        return None
    return terminal


async def check_password_first(
    ctx: AppContext, user_id: str, password: str, *, rehash: bool = False
) -> PasswordCheck:
    """Check ``user_id``'s password before any write transaction (see :class:`PasswordCheck`).

    Call it before the caller's session runs its first statement. The hash is read on the read engine,
    which on SQLite never takes the writer lock; an unknown ID is checked against the decoy, as before.
    With ``rehash`` (login), a matching hash made at older cost parameters is also hashed anew here.
    """
    async with ctx.db.read_session() as reader:
        stored = await reader.scalar(select(User.password_hash).where(User.id == user_id))
    result = await ctx.passwords.verify_async(stored, password)
    rehashed = None
    if rehash and result and stored is not None and ctx.passwords.needs_rehash(stored):
        rehashed = await ctx.passwords.hash_async(password)
    return PasswordCheck(stored, result, password, rehashed)


def _record_login_denied(session: AsyncSession, actor: Actor, user_id: str, details: dict[str, Any]) -> None:
    """A login refused for a known user after the password was right (suspended, no second factor)."""
    record(
        session,
        actor=actor,
        action="auth.login_denied",
        object_type="user",
        object_id=user_id,
        outcome="denied",
        details=details,
    )


async def login(
    session: AsyncSession,
    *,
    ctx: AppContext,
    user_id: str,
    password: str,
    terminal_id: str | None,
    terminal_key: str | None,
    origin: RequestOrigin,
    totp: str | None = None,
) -> LoginResult:
    """Authenticate a person from a terminal and open a server-side session."""
    now = ctx.clock.now()
    # The terminal ID as typed is recorded with every refusal below; an Individual Number typed there is
    # withheld (PL-4).
    anonymous = Actor(
        id=None,
        terminal_id=unless_my_number(terminal_id),
        address=origin.address,
        request_id=origin.request_id,
    )
    attempt_ref = login_key(ctx, user_id)

    terminal: Terminal | None = None
    if terminal_id is not None or terminal_key is not None:
        # Read outside the write transaction like the password below, and first: an unknown terminal is
        # refused without costing an Argon2id check.
        async with ctx.db.read_session() as reader:
            terminal = await _check_terminal(reader, terminal_id=terminal_id, terminal_key=terminal_key)
        if terminal is None:
            record(
                session,
                actor=anonymous,
                action="auth.login_denied",
                object_type="terminal",
                object_id=anonymous.terminal_id,
                outcome="denied",
                details={"code": "TERMINAL_NOT_REGISTERED"},
            )
            await session.commit()
            ctx.metrics.logins.labels("terminal_not_registered").inc()
            raise TerminalNotRegistered(audited=True)
    # Before the transaction: the throttle row read next takes the write lock.
    checked = await check_password_first(ctx, user_id, password, rehash=True)

    # Locked (created if absent) before the lock state is judged, so parallel attempts at one user id
    # take turns: none judges a state another is about to change.
    throttle = await lock_throttle(session, ctx, user_id)
    if throttle.locked_at is not None:
        record(
            session,
            actor=anonymous,
            action="auth.login_denied",
            object_type="login",
            object_id=attempt_ref,
            outcome="denied",
            details={"code": "ACCOUNT_LOCKED"},
        )
        await session.commit()
        ctx.metrics.logins.labels("locked").inc()
        raise AccountLocked(audited=True)

    user = await session.get(User, user_id)
    if not await checked.matches(ctx.passwords, user.password_hash if user else None):
        await count_failed_password(session, ctx=ctx, user=user, attempted_user_id=user_id, actor=anonymous)
        await session.commit()
        ctx.metrics.logins.labels("invalid_credentials").inc()
        raise InvalidCredentials(audited=True)
    assert user is not None  # verify() is never true without a stored hash

    roles = await active_roles(session, user.id)
    actor = Actor(
        id=user.id,
        roles=tuple(sorted(roles)),
        terminal_id=terminal_id,
        address=origin.address,
        request_id=origin.request_id,
    )

    if user.status != "active":
        _record_login_denied(session, actor, user.id, {"code": "SUSPENDED", "user_status": user.status})
        await session.commit()
        ctx.metrics.logins.labels("suspended").inc()
        raise Suspended("This account is suspended", audited=True)

    refusal = await _terminal_refusal(session, roles=roles, terminal=terminal)
    if refusal is not None:
        record(
            session,
            actor=actor,
            action="auth.login_denied",
            object_type="terminal",
            object_id=terminal_id,
            outcome="denied",
            details={"code": refusal.code},
        )
        await session.commit()
        ctx.metrics.logins.labels(refusal.code.lower()).inc()
        refusal.audited = True
        raise refusal

    suspension = await active_suspension(
        session,
        user_id=user.id,
        terminal_id=terminal.id if terminal else None,
        branch_code=terminal.branch_code if terminal else None,
    )
    if suspension is not None:
        # An emergency switch (IR-1) refuses the login at once, like a suspended account.
        _record_login_denied(
            session, actor, user.id, {"code": "SUSPENDED", "emergency_suspension_id": suspension.id}
        )
        await session.commit()
        ctx.metrics.logins.labels("suspended").inc()
        raise Suspended("Suspended by an emergency control", audited=True)

    if await confirmed_enrolment(session, user.id) is not None and not await verify_code(
        session, ctx=ctx, user_id=user.id, code=totp
    ):
        # A second factor, once enrolled, is part of every login (AU-8, AC-5). A wrong code is a failure
        # toward the lockout (AU-5); a missing one is no guess — a client asking for the code only once
        # told it is needed — and is refused without counting, as at A1 and release (approvals.py).
        if totp:
            await count_failed_password(session, ctx=ctx, user=user, attempted_user_id=user_id, actor=actor)
        else:
            _record_login_denied(session, actor, user.id, {"code": "TOTP_REQUIRED"})
        await session.commit()
        ctx.metrics.logins.labels("totp_required").inc()
        raise TotpRequired("Enter the current code of your second factor", audited=True)

    previous = (
        PreviousLogin(user.last_login_at, user.last_login_terminal_id, user.last_login_address)
        if user.last_login_at is not None
        else None
    )
    failed_since = user.failed_since_last_login
    throttle.consecutive_failures = 0
    user.failed_since_last_login = 0
    user.last_login_at = now
    user.last_login_terminal_id = terminal_id
    user.last_login_address = origin.address
    upgraded = await checked.upgraded_hash(ctx.passwords, user.password_hash)
    if upgraded is not None:
        user.password_hash = upgraded

    auth_session = AuthSession(
        id=secrets.token_urlsafe(32),
        principal_kind="user",
        principal_id=user.id,
        terminal_id=terminal_id,
        address=origin.address,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=ctx.settings.session_absolute_hours),
    )
    session.add(auth_session)
    record(
        session,
        actor=actor,
        action="auth.login",
        object_type="session",
        object_id=_session_ref(auth_session.id),
        details={"failed_attempts_since_previous_login": failed_since},
    )
    await session.commit()
    ctx.metrics.logins.labels("success").inc()

    token = issue_token(
        ctx.keyring,
        issuer=ctx.settings.token_issuer,
        subject=user.id,
        kind="user",
        session_id=auth_session.id,
        terminal_id=terminal_id,
        issued_at=now,
        # A little longer than the session, so the server-side check ends it and records why (LG-1).
        expires_at=auth_session.expires_at + TOKEN_OUTLIVES_SESSION,
    )
    branch_codes = sorted({code for codes in roles.values() for code in codes})
    return LoginResult(
        access_token=token,
        expires_in=int(
            (auth_session.expires_at - now).total_seconds()
        ),  # the session's limit, not the token's
        user=user,
        roles=sorted(roles),
        branch_codes=branch_codes,
        previous_login=previous,
        failed_attempts_since_previous_login=failed_since,
        password_expires_at=password_expires_at(ctx, user),
        must_change_password=password_change_required(ctx, user),
    )


def _session_ref(session_id: str) -> str:
    """Sessions appear in the ledger by a short digest, never by the bearer secret itself."""
    return "s-" + hashlib.sha256(session_id.encode()).hexdigest()[:20]


async def lock_throttle(
    session: AsyncSession, ctx: AppContext, attempted_user_id: str, *, shared: bool = False
) -> LoginThrottle:
    """The lockout counter of a typed user id, locked for this transaction and read fresh (created at zero
    if absent). Parallel first failures must not collide on its INSERT (a 500 on PostgreSQL), nor count
    on a copy another failure has already changed (lost updates would let guesses past the threshold).
    ``shared`` is for an attempt that only reads the lock: it waits for failures being counted, and
    they wait for it, but such readers do not wait for one another."""
    return await lock_or_create(
        session,
        LoginThrottle,
        {"login_key": login_key(ctx, attempted_user_id)},
        {"consecutive_failures": 0},
        shared=shared,
    )


async def count_failed_password(
    session: AsyncSession,
    *,
    ctx: AppContext,
    user: User | None,
    attempted_user_id: str,
    actor: Actor,
) -> None:
    """One more consecutive failure for a user id (login, re-authentication, confirmer credentials).

    The caller commits. Known users are named in the ledger; an unknown id appears only as its
    pseudonym, since what was typed may be a password in the wrong field.
    """
    now = ctx.clock.now()
    attempt_ref = login_key(ctx, attempted_user_id)
    throttle = await lock_throttle(session, ctx, attempted_user_id)
    throttle.consecutive_failures += 1
    throttle.last_failure_at = now
    if user is None:
        # The lockout counts a user id however it is capitalised ("OP001" guesses lock op001), so the
        # person whose account the guesses were against is shown them at their next login and has their
        # sessions ended at the lock, as when the id is typed exactly.
        known = await directory.users_known_as(session, attempted_user_id)
        user = known[0] if len(known) == 1 else None
    if user is not None:
        # Other failures for this user id wait on the throttle's lock: count on from what they committed,
        # not from the copy read before it.
        await session.refresh(user, attribute_names=["failed_since_last_login"])
        user.failed_since_last_login += 1
    subject = Actor(
        id=user.id if user else None,
        terminal_id=actor.terminal_id,
        address=actor.address,
        request_id=actor.request_id,
    )
    record(
        session,
        actor=subject,
        action="auth.login_failed",
        object_type="login",
        object_id=attempt_ref,
        outcome="failure",
        details={"consecutive_failures": throttle.consecutive_failures},
    )
    if throttle.consecutive_failures >= ctx.settings.lockout_threshold and throttle.locked_at is None:
        throttle.locked_at = now
        record(
            session,
            actor=subject,
            action="auth.account_locked",
            object_type="login",
            object_id=attempt_ref,
            outcome="success",
            details={"threshold": ctx.settings.lockout_threshold},
        )
        if user is not None:
            await _end_sessions(session, principal_id=user.id, reason="locked", now=now)


def _terminal_unfit(roles: dict[str, frozenset[str]], terminal: Terminal | None) -> bool:
    """Whether these roles need a terminal this login lacks (AU-2): roles bound to terminals are used
    only from a registered terminal of a branch one of them is held at."""
    bound = [codes for role, codes in roles.items() if ROLES[role].terminal_bound]
    if not bound:
        return False
    return terminal is None or not any(terminal.branch_code in codes for codes in bound)


async def _terminal_refusal(
    session: AsyncSession, *, roles: dict[str, frozenset[str]], terminal: Terminal | None
) -> TerminalNotRegistered | TerminalNotAllowed | Suspended | None:
    if terminal is None:
        if _terminal_unfit(roles, terminal):
            return TerminalNotRegistered("This user must log in from a registered terminal")
        return None
    if terminal.status != "active":
        return TerminalNotAllowed("This terminal is not active")
    branch = await session.get(Branch, terminal.branch_code)
    if branch is None or branch.status != "active":
        return TerminalNotAllowed("This terminal's branch is closed")
    if _terminal_unfit(roles, terminal):
        return TerminalNotAllowed("This terminal belongs to a branch you are not assigned to")
    return None


async def _end_sessions(session: AsyncSession, *, principal_id: str, reason: str, now: datetime) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.principal_id == principal_id, AuthSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )


async def issue_service_token(
    session: AsyncSession, *, ctx: AppContext, client_id: str, client_secret: str, origin: RequestOrigin
) -> ServiceTokenResult:
    """Client-credentials token for HQ batch jobs and the HR feed; bound to a server-side session too."""
    now = ctx.clock.now()
    account = await session.get(ServiceAccount, client_id)
    actor = Actor(
        id=f"service:{client_id}" if account else None, address=origin.address, request_id=origin.request_id
    )
    if (
        account is None
        or not machine_secret_matches(account.secret_hash, client_secret)
        or account.status != "active"
    ):
        record(
            session,
            actor=actor,
            action="auth.token_denied",
            object_type="service_account",
            object_id=client_id if account else None,
            outcome="denied",
            details={"code": "INVALID_CREDENTIALS"},
        )
        await session.commit()
        raise InvalidCredentials("The client id or secret is wrong", audited=True)
    auth_session = AuthSession(
        id=secrets.token_urlsafe(32),
        principal_kind="service",
        principal_id=client_id,
        terminal_id=None,
        address=origin.address,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(minutes=ctx.settings.service_token_minutes),
    )
    session.add(auth_session)
    record(
        session,
        actor=actor,
        action="auth.token_issued",
        object_type="session",
        object_id=_session_ref(auth_session.id),
        details={"scopes": sorted(account.scopes)},
    )
    await session.commit()
    token = issue_token(
        ctx.keyring,
        issuer=ctx.settings.token_issuer,
        subject=client_id,
        kind="service",
        session_id=auth_session.id,
        terminal_id=None,
        scopes=tuple(sorted(account.scopes)),
        issued_at=now,
        expires_at=auth_session.expires_at,
    )
    return ServiceTokenResult(token, ctx.settings.service_token_minutes * 60, sorted(account.scopes))


async def authenticate(
    session: AsyncSession,
    *,
    ctx: AppContext,
    token: str,
    terminal_header: str | None,
    origin: RequestOrigin,
) -> Principal:
    """Check the token, its session (idle/absolute timeouts, logout, suspension) and its terminal binding."""
    now = ctx.clock.now()
    claims = decode_token(
        ctx.keyring,
        token,
        issuer=ctx.settings.token_issuer,
        now=now,
        retired_key_grace=timedelta(hours=ctx.settings.retired_signing_key_grace_hours),
    )
    # Everything is read outside the request's write transaction: on SQLite that transaction holds the
    # database-wide writer lock, which an authenticated read-only call should never take.
    async with ctx.db.read_session() as reader:
        return await _check_session(
            session, reader, ctx=ctx, claims=claims, terminal_header=terminal_header, origin=origin, now=now
        )


@cache
def _session_check_statement() -> Select[Any]:
    """One round trip for the session, its user, the user's lock, the session's terminal, the emergency
    switch on any of them and the user's roles in force (a row per role).

    This runs before every call, and each statement is a turn through the driver; it is built once, as
    building it (and its cache key) cost more than running it. What is read is only used in the order of
    the checks in :func:`_check_session`."""
    switch = suspension_query(
        user_id=bindparam("subject"), terminal_id=AuthSession.terminal_id, branch_code=Terminal.branch_code
    )
    assert switch is not None
    return (
        select(
            AuthSession,
            User,
            LoginThrottle.locked_at,
            Terminal,
            switch.with_only_columns(EmergencySuspension.id).scalar_subquery(),
            UserRole.role,
            UserRole.branch_code,
        )
        .select_from(AuthSession)
        .outerjoin(User, User.id == AuthSession.principal_id)
        .outerjoin(LoginThrottle, LoginThrottle.login_key == bindparam("throttle_key"))
        .outerjoin(Terminal, Terminal.id == AuthSession.terminal_id)
        .outerjoin(UserRole, active_role_join(User.id))
        .where(AuthSession.id == bindparam("session_id"))
    )


def login_deadlines(ctx: AppContext, login: AuthSession) -> list[tuple[datetime, str]]:
    """When ``login`` runs out and why: its absolute lifetime, then (for people) its idle limit. The row
    shows a timeout only once a request notices it, so whatever needs the end of a login asks here."""
    deadlines = [(login.expires_at, "absolute_timeout")]
    if login.principal_kind == "user":
        idle_limit = timedelta(minutes=ctx.settings.session_idle_minutes)
        deadlines.append((login.last_seen_at + idle_limit, "idle_timeout"))
    return deadlines


async def _check_session(
    session: AsyncSession,
    reader: AsyncSession,
    *,
    ctx: AppContext,
    claims: TokenClaims,
    terminal_header: str | None,
    origin: RequestOrigin,
    now: datetime,
) -> Principal:
    user: User | None = None
    throttle_locked_at: datetime | None = None
    session_terminal: Terminal | None = None
    suspension_id: str | None = None
    role_rows: list[tuple[str | None, str | None]] = []
    if claims.kind == "user":
        joined = (
            await reader.execute(
                _session_check_statement(),
                {
                    "session_id": claims.session_id,
                    "subject": claims.subject,
                    "throttle_key": login_key(ctx, claims.subject),
                },
            )
        ).all()
        auth_session = joined[0][0] if joined else None
        if joined:
            user, throttle_locked_at, session_terminal, suspension_id = joined[0][1:5]
            role_rows = [(row[5], row[6]) for row in joined]
    else:
        auth_session = await reader.get(AuthSession, claims.session_id)
    if (
        auth_session is None
        or auth_session.principal_id != claims.subject
        or auth_session.principal_kind != claims.kind
    ):
        raise SessionEnded("The session does not exist")
    if auth_session.ended_at is not None:
        raise SessionEnded("The session has ended; log in again")
    if claims.terminal_id is not None and terminal_header != claims.terminal_id:
        raise TerminalMismatch("X-Terminal-Id does not match the terminal this session was opened on")
    if claims.terminal_id is None and terminal_header is not None and claims.kind == "user":
        raise TerminalMismatch("This session was not opened on a terminal")

    idle_limit = timedelta(minutes=ctx.settings.session_idle_minutes)
    reason = next((why for at, why in login_deadlines(ctx, auth_session) if at <= now), None)
    actor = Actor(
        id=claims.subject if claims.kind == "user" else f"service:{claims.subject}",
        terminal_id=auth_session.terminal_id,
        address=origin.address,
        request_id=origin.request_id,
    )

    if claims.kind == "user":
        if reason is None and (user is None or user.status != "active"):
            reason = "suspended"
        if reason is None and throttle_locked_at is not None:
            reason = "locked"
        if reason is None and session_terminal is not None and session_terminal.status != "active":
            reason = "terminal_inactive"
        if reason is None and suspension_id is not None:
            # The emergency switch reaches live sessions on their next request (IR-1).
            reason = "emergency_suspension"
        roles = roles_of(role_rows)
        if reason is None and _terminal_unfit(roles, session_terminal):
            # A role granted during the login that the login's terminal (or its lack of one) would not
            # have been let in with at login: log in again, from a terminal that fits (AU-2).
            reason = "terminal_required"
    else:
        account = await reader.get(ServiceAccount, claims.subject)
        if reason is None and (account is None or account.status != "active"):
            reason = "suspended"

    if reason is not None:
        ended = await session.execute(
            update(AuthSession)
            .where(AuthSession.id == auth_session.id, AuthSession.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )
        if not getattr(ended, "rowcount", 0):
            await session.rollback()
            raise SessionEnded("The session has ended; log in again")
        record(
            session,
            actor=actor,
            action="auth.session_ended",
            object_type="session",
            object_id=_session_ref(auth_session.id),
            outcome="success",
            details={"reason": reason},
        )
        await session.commit()
        raise SessionEnded(f"The session has ended ({reason}); log in again", audited=True)

    last_seen = auth_session.last_seen_at
    if now - last_seen >= SESSION_TOUCH_INTERVAL:
        # The idle clock moved; commit that before the endpoint's own unit of work begins.
        await session.execute(
            update(AuthSession).where(AuthSession.id == auth_session.id).values(last_seen_at=now)
        )
        await session.commit()
        last_seen = now
    if claims.kind == "user":
        assert user is not None
        terminal_branch = session_terminal.branch_code if session_terminal else None
        return Principal(
            kind="user",
            id=user.id,
            name=user.name,
            session_id=auth_session.id,
            session_expires_at=auth_session.expires_at,
            idle_expires_at=last_seen + idle_limit,
            role_branches=roles,
            terminal_id=auth_session.terminal_id,
            terminal_branch_code=terminal_branch,
            address=origin.address,
            request_id=origin.request_id,
            password_change_required=password_change_required(ctx, user),
        )
    return Principal(
        kind="service",
        id=claims.subject,
        name=claims.subject,
        session_id=auth_session.id,
        session_expires_at=auth_session.expires_at,
        idle_expires_at=None,
        scopes=frozenset(claims.scopes),
        address=origin.address,
        request_id=origin.request_id,
    )


async def logout(session: AsyncSession, *, ctx: AppContext, principal: Principal) -> None:
    auth_session = await session.get(AuthSession, principal.session_id)
    if auth_session is not None and auth_session.ended_at is None:
        auth_session.ended_at = ctx.clock.now()
        auth_session.end_reason = "logout"
    record(
        session,
        actor=principal.actor(),
        action="auth.logout",
        object_type="session",
        object_id=_session_ref(principal.session_id),
    )
    await session.commit()


@dataclass(frozen=True)
class _PasswordChangeCheck:
    """The Argon2id work of a password change, done on one stored hash (``checked_hash``)."""

    checked_hash: str
    current_ok: bool
    violations: list[str]
    new_hash: str | None


async def _check_password_change(
    ctx: AppContext,
    user: User,
    history: list[str],
    *,
    current_password: str,
    new_password: str,
) -> _PasswordChangeCheck:
    current_ok = await ctx.passwords.verify_async(user.password_hash, current_password)
    violations = (
        await new_password_violations(
            ctx.passwords,
            new_password=new_password,
            owner=password_owner(user),
            policy=password_policy(ctx),
            current_password=current_password,
            recent_hashes=history or [user.password_hash],
        )
        if current_ok
        else []
    )
    new_hash = await ctx.passwords.hash_async(new_password) if current_ok and not violations else None
    return _PasswordChangeCheck(user.password_hash, current_ok, violations, new_hash)


def _history_query(ctx: AppContext, user_id: str) -> Select[Any]:
    return (
        select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user_id)
        .order_by(PasswordHistory.set_at.desc(), PasswordHistory.id.desc())
        .limit(ctx.settings.password_history_depth)
    )


async def change_password(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, current_password: str, new_password: str
) -> None:
    """AU-4/AU-7: the current password re-authenticates; the new one must pass every rule.

    Up to ``password_history_depth`` + 2 Argon2id runs: all of them before the write transaction, on the
    hash read first, as with :class:`PasswordCheck`; done again inside only if the hash changed meanwhile.
    """
    async with ctx.db.read_session() as reader:
        seen = await reader.get(User, principal.id)
        history = list((await reader.scalars(_history_query(ctx, principal.id))).all())
    if seen is None:
        raise NotFound("No such user")
    checked = await _check_password_change(
        ctx, seen, history, current_password=current_password, new_password=new_password
    )
    now = ctx.clock.now()
    user = await session.get(User, principal.id)
    if user is None:
        raise NotFound("No such user")
    if user.password_hash != checked.checked_hash:
        history = list((await session.scalars(_history_query(ctx, user.id))).all())
        checked = await _check_password_change(
            ctx, user, history, current_password=current_password, new_password=new_password
        )
    if not checked.current_ok:
        await count_failed_password(
            session, ctx=ctx, user=user, attempted_user_id=user.id, actor=principal.actor()
        )
        await session.commit()
        raise InvalidCredentials("The current password is wrong", audited=True)
    if checked.violations:
        record(
            session,
            actor=principal.actor(),
            action="auth.password_change_refused",
            object_type="user",
            object_id=user.id,
            outcome="denied",
            details={"violations": checked.violations},
        )
        await session.commit()
        raise PasswordPolicyViolated(
            "The new password breaks the password policy", audited=True, violations=checked.violations
        )
    assert checked.new_hash is not None
    user.password_hash = checked.new_hash
    user.password_changed_at = now
    user.must_change_password = False
    session.add(PasswordHistory(user_id=user.id, password_hash=checked.new_hash, set_at=now))
    # Other sessions opened with the old password end; the one that made the change goes on.
    await session.execute(
        update(AuthSession)
        .where(
            AuthSession.principal_id == user.id,
            AuthSession.ended_at.is_(None),
            AuthSession.id != principal.session_id,
        )
        .values(ended_at=now, end_reason="password_changed")
    )
    record(
        session,
        actor=principal.actor(),
        action="auth.password_changed",
        object_type="user",
        object_id=user.id,
    )
    await session.commit()


def password_owner(user: User) -> PasswordOwner:
    names = tuple(n for n in (user.name, user.name_kana, user.name_latin) if n)
    return PasswordOwner(user_id=user.id, names=names, birth_date=user.birth_date, phone=user.phone)

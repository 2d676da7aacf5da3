"""Access requests (AC-2): request → approve (access_approver) → apply (access_admin).

The requester, the approver and the setter are named; the approver is not the requester, the setter is
not the approver, and none of them is the user whose access changes (SOD_VIOLATION). A request that is
not approved and applied within its lifetime lapses. Unlocking an account, resetting a password and
reactivating a suspended user take the same two people; a reset password is issued in two halves, one
to the setter and one to the approver, so no administrator ever knows the whole of it.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz import directory
from app.authz.models import Branch, LoginThrottle, PasswordHistory, User
from app.authz.policy import authorize, ensure_different_people, ensure_roles_compatible
from app.authz.principal import Principal
from app.authz.roles import ROLES
from app.authz.service import active_roles, login_key
from app.clock import EARLIEST_BIRTH_DATE, business_date_of, is_plausible_birth_date
from app.context import AppContext
from app.crypto.envelope import Sealed, open_sealed, seal
from app.errors import AccessRequestLapsed, Conflict, Forbidden, InvalidState, NotFound, ValidationFailed
from app.governance import register, rights
from app.governance.models import AccessRequest
from app.governance.register import Decision
from app.idempotency import UNKEYED, KeyedRequest, commit_keyed, create_once, replayed_object
from app.pagination import keyset_page

ROLE_ACTIONS = ("grant", "revoke")
ACCOUNT_ACTIONS = ("unlock", "reset_password", "reactivate")
SECRET_HALF_LENGTH = 8
# A new user holds nothing, so creating one needs no second person; the register names the rule.
USER_CREATION_RULE = "rule:AC-2 user without rights"


@dataclass(frozen=True)
class NewAccessRequest:
    user_id: str
    action: str
    reason: str
    role: str | None = None
    branch_code: str | None = None
    effective_from: date | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Applied:
    request: AccessRequest
    # reset_password only: the setter's half of the one-time password, shown once.
    secret_half: str | None = None


def _secret_aad(request_id: str) -> bytes:
    return f"access-request:{request_id}:secret-half".encode()


async def _scoped_branch(session: AsyncSession, role: str, branch_code: str | None) -> str | None:
    spec = ROLES.get(role)
    if spec is None:
        raise ValidationFailed("Unknown role")
    if spec.hq:
        return (await directory.hq_branch(session)).code
    if not spec.branch_scoped:
        if branch_code is not None:
            raise ValidationFailed("This role is held bank-wide; do not name a branch")
        return None
    if branch_code is None:
        raise ValidationFailed("This role is held per branch; name the branch")
    branch = await session.get(Branch, branch_code)
    if branch is None or branch.is_hq or branch.status != "active":
        raise ValidationFailed("No such open branch")
    return branch_code


async def _may_request_for(
    session: AsyncSession, principal: Principal, *, user_id: str, role: str | None, branch: str | None
) -> None:
    """Access admins request anything; a branch manager only rights at, and accounts of, their branch."""
    authorize(principal, "access.request")
    if principal.has_role("access_admin"):
        return
    if branch is not None:
        authorize(principal, "access.request", branch_code=branch)
        return
    if role is not None:
        # A bank-wide role (auditor, access approver, security officer, ...) is at no branch of theirs.
        raise Forbidden("A branch manager requests rights only at their own branch")
    held = await active_roles(session, user_id)
    if not any(codes & principal.role_branches.get("branch_manager", frozenset()) for codes in held.values()):
        raise Forbidden("A branch manager requests rights only at their own branch")


async def create_request(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    new: NewAccessRequest,
    keyed: KeyedRequest = UNKEYED,
) -> AccessRequest:
    """Record a request; nothing changes until an approver and a different setter act on it. With an
    Idempotency-Key a retry gets the first request back, not a twin to be approved again."""
    ensure_different_people(principal.id, others={"the user concerned": new.user_id})
    if (replayed := await replayed_object(session, AccessRequest, keyed, principal=principal)) is not None:
        return replayed
    user = await session.get(User, new.user_id)
    if user is None:
        raise NotFound("No such user")
    branch: str | None = None
    if new.action in ROLE_ACTIONS:
        if new.role is None:
            raise ValidationFailed("Name the role")
        branch = await _scoped_branch(session, new.role, new.branch_code)
    elif new.role is not None or new.branch_code is not None:
        raise ValidationFailed(f"{new.action} concerns the account, not a role")
    await _may_request_for(session, principal, user_id=new.user_id, role=new.role, branch=branch)
    if new.action == "grant":
        assert new.role is not None
        if await rights.active_grants(session, user_id=new.user_id, role=new.role, branch_code=branch):
            raise Conflict("The user already holds this right")
        ensure_roles_compatible(frozenset(await active_roles(session, new.user_id)), new.role)
        if user.status in rights.ENDED_STATUSES:
            raise InvalidState(f"The user is {user.status}")
    elif new.action == "revoke":
        if not await rights.active_grants(session, user_id=new.user_id, role=new.role, branch_code=branch):
            raise InvalidState("The user does not hold this right")
    elif new.action == "reactivate" and user.status != "suspended":
        raise InvalidState("Only a suspended user can be reactivated")
    elif new.action == "unlock":
        throttle = await session.get(LoginThrottle, login_key(ctx, user.id))
        if throttle is None or throttle.locked_at is None:
            raise InvalidState("The account is not locked")
    now = ctx.clock.now()
    if new.expires_at is not None and new.expires_at <= now:
        raise ValidationFailed("expires_at must be in the future")
    # The register states from when a right holds (AC-3): a right cannot be set to have held before it
    # was even asked for, nor to end before it begins.
    if new.effective_from is not None and new.effective_from < business_date_of(now):
        raise ValidationFailed("effective_from cannot be before today")
    if (
        new.effective_from is not None
        and new.expires_at is not None
        and business_date_of(new.expires_at) < new.effective_from
    ):
        raise ValidationFailed("expires_at is before effective_from")
    request = AccessRequest(
        id=str(uuid.uuid4()),
        user_id=new.user_id,
        action=new.action,
        role=new.role,
        branch_code=branch,
        reason=new.reason,
        effective_from=new.effective_from,
        role_expires_at=new.expires_at,
        status="pending",
        requested_by=principal.id,
        requested_at=now,
        lapses_at=now + timedelta(days=ctx.settings.access_request_lapse_days),
    )
    session.add(request)
    record(
        session,
        actor=principal.actor(),
        action="access.requested",
        object_type="access_request",
        object_id=request.id,
        details={"user_id": new.user_id, "action": new.action, "role": new.role, "branch_code": branch},
    )
    return await commit_keyed(session, ctx, request, keyed, principal=principal)


async def _load(session: AsyncSession, request_id: str) -> AccessRequest:
    request = await session.get(AccessRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound("No such access request")
    return request


async def _lapse_if_stale(
    session: AsyncSession, ctx: AppContext, request: AccessRequest, actor: Actor
) -> None:
    if request.status in ("pending", "approved") and request.lapses_at <= ctx.clock.now():
        request.status = "expired"
        record(
            session,
            actor=actor,
            action="access.request_expired",
            object_type="access_request",
            object_id=request.id,
        )
        await session.commit()
        raise AccessRequestLapsed("The request lapsed; make a new one", audited=True)


async def decide(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    request_id: str,
    approve: bool,
    note: str | None,
) -> AccessRequest:
    """An access approver who is neither the requester nor the user concerned approves or rejects."""
    authorize(principal, "access.approve")
    request = await _load(session, request_id)
    ensure_different_people(
        principal.id, others={"the requester": request.requested_by, "the user concerned": request.user_id}
    )
    await _lapse_if_stale(session, ctx, request, principal.actor())
    if request.status != "pending":
        raise InvalidState(f"The request is {request.status}")
    now = ctx.clock.now()
    if approve:
        request.status, request.approved_by, request.approved_at = "approved", principal.id, now
    else:
        request.status, request.rejected_by, request.rejected_at = "rejected", principal.id, now
    request.decision_note = note
    record(
        session,
        actor=principal.actor(),
        action="access.approved" if approve else "access.rejected",
        object_type="access_request",
        object_id=request.id,
        details={"user_id": request.user_id, "action": request.action, "requested_by": request.requested_by},
    )
    await session.commit()
    return request


async def apply(session: AsyncSession, *, ctx: AppContext, principal: Principal, request_id: str) -> Applied:
    """An access admin who is neither the approver nor the user concerned applies an approved request."""
    authorize(principal, "access.apply")
    request = await _load(session, request_id)
    ensure_different_people(
        principal.id, others={"the approver": request.approved_by, "the user concerned": request.user_id}
    )
    await _lapse_if_stale(session, ctx, request, principal.actor())
    if request.status != "approved" or request.approved_by is None or request.approved_at is None:
        # The one rule everything else rests on: nothing is applied that a second person did not approve.
        raise InvalidState(f"Only an approved request can be applied; this one is {request.status}")
    now = ctx.clock.now()
    if request.effective_from is not None and request.effective_from > business_date_of(now):
        raise InvalidState(f"The request takes effect on {request.effective_from.isoformat()}")
    if request.role_expires_at is not None and request.role_expires_at <= now:
        # Applied now, it would be held until the next sweep ended it, past the date approved.
        raise InvalidState("The right's expiry date has passed: file a new request")
    setter = principal.actor()
    decision = Decision(
        requested_by=request.requested_by,
        requested_at=request.requested_at,
        approved_by=request.approved_by,
        approved_at=request.approved_at,
        set_by=principal.id,
        set_at=now,
    )
    secret_half: str | None = None
    if request.action == "grant":
        assert request.role is not None
        grant = await rights.grant_right(
            session,
            ctx=ctx,
            setter=setter,
            user_id=request.user_id,
            role=request.role,
            branch_code=request.branch_code,
            decision=decision,
            source="access_request",
            source_id=request.id,
            reason=request.reason,
            effective_from=request.effective_from,
            expires_at=request.role_expires_at,
            access_request_id=request.id,
        )
        request.user_role_id = grant.id
    elif request.action == "revoke":
        grants = await rights.active_grants(
            session,
            user_id=request.user_id,
            role=request.role,
            branch_code=request.branch_code,
            for_update=True,
        )
        if not grants:
            raise InvalidState("The user no longer holds this right")
        for grant in grants:
            await rights.revoke_right(
                session,
                setter=setter,
                grant=grant,
                decision=decision,
                source="access_request",
                source_id=request.id,
                reason=request.reason,
                access_request_id=request.id,
            )
        request.user_role_id = grants[0].id
        await rights.end_sessions(session, now=now, reason="role_revoked", user_id=request.user_id)
    else:
        secret_half = await _apply_account_change(
            session, ctx=ctx, request=request, decision=decision, setter=setter
        )
    request.status, request.applied_by, request.applied_at = "applied", principal.id, now
    record(
        session,
        actor=setter,
        action="access.applied",
        object_type="access_request",
        object_id=request.id,
        details={
            "user_id": request.user_id,
            "action": request.action,
            "role": request.role,
            "branch_code": request.branch_code,
            "requested_by": request.requested_by,
            "approved_by": request.approved_by,
        },
    )
    await session.commit()
    return Applied(request, secret_half)


def _random_half() -> str:
    alphabet = string.ascii_letters + string.digits
    while True:
        half = "".join(secrets.choice(alphabet) for _ in range(SECRET_HALF_LENGTH))
        if (
            any(c.isdigit() for c in half)
            and any(c.isupper() for c in half)
            and any(c.islower() for c in half)
        ):
            return half


async def _apply_account_change(
    session: AsyncSession, *, ctx: AppContext, request: AccessRequest, decision: Decision, setter: Actor
) -> str | None:
    user = await session.get(User, request.user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user")
    now = decision.set_at
    change = {"unlock": "unlock", "reset_password": "password_reset", "reactivate": "reactivate"}[
        request.action
    ]
    secret_half: str | None = None
    if request.action == "unlock":
        throttle = await session.get(LoginThrottle, login_key(ctx, user.id), with_for_update=True)
        if throttle is not None:
            throttle.locked_at = None
            throttle.consecutive_failures = 0
        record(
            session,
            actor=setter,
            action="auth.account_unlocked",
            object_type="login",
            object_id=login_key(ctx, user.id),
            details={"user_id": user.id, "access_request_id": request.id},
        )
    elif request.action == "reset_password":
        setter_half, approver_half = _random_half(), _random_half()
        password_hash = await ctx.passwords.hash_async(setter_half + approver_half)
        user.password_hash = password_hash
        user.password_changed_at = now
        # One-time: the user must choose their own password at the first login (AU-4).
        user.must_change_password = True
        session.add(PasswordHistory(user_id=user.id, password_hash=password_hash, set_at=now))
        sealed = seal(ctx.keyring, approver_half.encode(), associated_data=_secret_aad(request.id))
        request.secret_half_sealed = sealed.ciphertext
        request.secret_half_nonce = sealed.nonce
        request.secret_half_wrapped_key = sealed.wrapped_key
        request.secret_half_kek_id = sealed.kek_id
        await rights.end_sessions(session, now=now, reason="password_reset", user_id=user.id)
        record(session, actor=setter, action="auth.password_reset", object_type="user", object_id=user.id)
        secret_half = setter_half
    else:
        if user.status != "suspended":
            raise InvalidState("Only a suspended user can be reactivated")
        user.status = "active"
        record(
            session, actor=setter, action="directory.user_reactivated", object_type="user", object_id=user.id
        )
    register.append(
        session,
        change=change,
        user_id=user.id,
        role=None,
        branch_code=None,
        user_role_id=None,
        source="access_request",
        source_id=request.id,
        decision=decision,
        reason=request.reason,
        access_request_id=request.id,
    )
    return secret_half


async def collect_secret_half(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, request_id: str
) -> str:
    """The approver collects their half of a reset password, once; it is then destroyed."""
    request = await _load(session, request_id)
    if principal.id != request.approved_by:
        raise Forbidden("Only the approver of this reset collects this half")
    if request.action != "reset_password" or request.status != "applied":
        raise InvalidState("There is no password half to collect")
    if request.secret_half_sealed is None or request.secret_half_nonce is None:
        raise InvalidState("The half was already collected")
    assert request.secret_half_wrapped_key is not None and request.secret_half_kek_id is not None
    sealed = Sealed(
        request.secret_half_sealed,
        request.secret_half_nonce,
        request.secret_half_wrapped_key,
        request.secret_half_kek_id,
    )
    half = open_sealed(ctx.keyring, sealed, associated_data=_secret_aad(request.id)).decode()
    request.secret_half_sealed = None
    request.secret_half_nonce = None
    request.secret_half_wrapped_key = None
    request.secret_half_kek_id = None
    record(
        session,
        actor=principal.actor(),
        action="access.secret_half_collected",
        object_type="access_request",
        object_id=request.id,
    )
    await session.commit()
    return half


async def list_requests(
    session: AsyncSession,
    *,
    principal: Principal,
    status: str | None,
    user_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AccessRequest], str | None]:
    authorize(principal, "access.review")
    query = select(AccessRequest)
    if status is not None:
        query = query.where(AccessRequest.status == status)
    if user_id is not None:
        query = query.where(AccessRequest.user_id == user_id)
    return await keyset_page(
        session, query, at=AccessRequest.requested_at, row_id=AccessRequest.id, limit=limit, cursor=cursor
    )


async def get_request(session: AsyncSession, *, principal: Principal, request_id: str) -> AccessRequest:
    authorize(principal, "access.review")
    request = await session.get(AccessRequest, request_id)
    if request is None:
        raise NotFound("No such access request")
    return request


async def lapse_stale_requests(session: AsyncSession, *, ctx: AppContext, actor: Actor) -> int:
    """Requests neither approved nor applied within their lifetime lapse (the governance sweep)."""
    now = ctx.clock.now()
    stale = list(
        (
            await session.scalars(
                select(AccessRequest.id).where(
                    AccessRequest.status.in_(("pending", "approved")), AccessRequest.lapses_at <= now
                )
            )
        ).all()
    )
    if stale:
        await session.execute(
            update(AccessRequest).where(AccessRequest.id.in_(stale)).values(status="expired")
        )
        for request_id in stale:
            record(
                session,
                actor=actor,
                action="access.request_expired",
                object_type="access_request",
                object_id=request_id,
            )
    return len(stale)


async def create_user(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    user_id: str,
    name: str,
    name_kana: str | None,
    birth_date: date | None,
    phone: str | None,
    keyed: KeyedRequest = UNKEYED,
) -> User:
    """A new user starts with no roles and no usable password: both come through access requests.

    With an Idempotency-Key a retry of a creation that went through gets the user, not 409 ``CONFLICT``."""
    authorize(principal, "directory.manage")
    _check_birth_date(ctx, birth_date)

    async def make() -> User:
        # Nobody knows this password; the first password is issued by a reset_password request (two halves).
        user = await directory.create_user(
            session,
            ctx=ctx,
            actor=principal.actor(),
            user_id=user_id,
            name=name,
            password=secrets.token_urlsafe(32),
            name_kana=name_kana,
            birth_date=birth_date,
            phone=phone,
            must_change_password=True,
        )
        _register_creation(session, ctx, principal, user_id)
        return user

    return await create_once(session, ctx, User, keyed, principal=principal, make=make, client_named=True)


def _register_creation(session: AsyncSession, ctx: AppContext, principal: Principal, user_id: str) -> None:
    now = ctx.clock.now()
    register.append(
        session,
        change="create",
        user_id=user_id,
        role=None,
        branch_code=None,
        user_role_id=None,
        source="user_creation",
        source_id=None,
        decision=Decision(
            requested_by=principal.id,
            requested_at=now,
            approved_by=USER_CREATION_RULE,
            approved_at=now,
            set_by=principal.id,
            set_at=now,
        ),
        reason="New user: no roles and no usable password until access requests give them",
    )


def _check_birth_date(ctx: AppContext, birth_date: object) -> None:
    """A member of staff's birth date is what the self-inquiry check (PL-5) compares a subject with: one
    in year 9999 or before 1900 is a mistyped year, and would make the check miss them for good."""
    if isinstance(birth_date, date) and not is_plausible_birth_date(
        birth_date, today=business_date_of(ctx.clock.now())
    ):
        raise ValidationFailed(f"birth_date must lie between {EARLIEST_BIRTH_DATE} and today")


async def update_user(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, user_id: str, changes: dict[str, object]
) -> User:
    """Correct a user's record (names, birth date, phone): never roles, never one's own record."""
    authorize(principal, "directory.manage")
    ensure_different_people(principal.id, others={"the user concerned": user_id})
    if not changes:
        raise ValidationFailed("Name at least one field to change")
    _check_birth_date(ctx, changes.get("birth_date"))
    user = await directory.update_user(session, actor=principal.actor(), user_id=user_id, changes=changes)
    await session.commit()
    return user

"""Method A: the confirmer's check before the inquiry is sent (VI(1)① A; E: A1 and A2).

A1 — the confirmer's own credentials entered for this inquiry (a wrong password counts toward the
confirmer's lockout, exactly like a failed login).
A2 — an approval number the confirmer issues for one draft: random, single use, expiring, bound to a
keyed hash of the draft's content; a change of the draft or five wrong entries void it; only its keyed
hash is stored. Every number ends in exactly one state, so the daily register balances:
issued = used + voided + expired + outstanding.

Who may confirm is decided by app/authz/policy.py (ensure_may_confirm), nowhere else.
"""

from __future__ import annotations

import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache

from sqlalchemy import Row, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.audit.models import AuditEvent
from app.authz.models import LoginThrottle, User, UserRole
from app.authz.passwords import PasswordCheck
from app.authz.policy import ensure_may_confirm
from app.authz.service import (
    active_role_join,
    check_password_first,
    count_failed_password,
    lock_throttle,
    login_key,
    password_change_required,
    roles_of,
)
from app.clock import TOKYO, business_date_of, rfc3339
from app.context import AppContext
from app.errors import ApprovalInvalid, DomainError, NotAConfirmer, Suspended
from app.governance.models import EmergencySuspension
from app.governance.switches import suspension_query
from app.governance.totp import verify_code
from app.hq import execution as hq_execution
from app.inquiry.models import ApprovalNumber, Inquiry
from app.inquiry.schemas import Approval, ApprovalNumberApproval


@dataclass(frozen=True)
class GrantedApproval:
    method: str
    confirmer_id: str
    approved_at: datetime


def _number_hash(ctx: AppContext, inquiry_id: str, number: str) -> str:
    # A number read out and typed with the Japanese input still in full-width mode (６２６３－０９３４)
    # is the same number: NFKC makes those digits ASCII. Other scripts' digits stay and do not match.
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", number) if ch.isdigit())
    return ctx.keyring.blind_index(digits, domain=f"approval-number:{inquiry_id}")


def new_approval_number() -> str:
    digits = f"{secrets.randbelow(10**8):08d}"
    return f"{digits[:4]}-{digits[4:]}"


async def issue_number(
    session: AsyncSession,
    *,
    ctx: AppContext,
    inquiry: Inquiry,
    confirmer: Actor,
    purpose: str,
    bound_hash: str,
) -> tuple[str, ApprovalNumber]:
    now = ctx.clock.now()
    number = new_approval_number()
    row = ApprovalNumber(
        id=str(uuid.uuid4()),
        inquiry_id=inquiry.id,
        branch_code=inquiry.branch_code,
        business_date=business_date_of(now),
        issued_by=confirmer.id or "",
        issued_at=now,
        issued_terminal_id=confirmer.terminal_id,
        expires_at=now + timedelta(minutes=ctx.policy.approval_number_minutes),
        number_hash=_number_hash(ctx, inquiry.id, number),
        purpose=purpose,
        draft_hash=bound_hash,
        state="outstanding",
        failed_attempts=0,
    )
    session.add(row)
    record(
        session,
        actor=confirmer,
        action="approval_number.issued",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"approval_number_id": row.id, "purpose": purpose, "expires_at": row.expires_at.isoformat()},
        # The register counts issued numbers from these events by their day and the rest from the rows'
        # business date: both from one clock read, or a number issued at midnight unbalances two days.
        at=now,
    )
    return number, row


async def _outstanding_numbers(
    session: AsyncSession, *, ctx: AppContext, inquiry_id: str, actor: Actor
) -> list[ApprovalNumber]:
    """The inquiry's outstanding numbers, locked, those past their lifetime closed as expired first.

    The register already counts a number past its lifetime as expired (``register_balance``), also on
    the day it was issued; closing it as anything else later — voided because the draft was sent by A1
    the next morning — would rewrite that past day's figures after they were read and reconciled.
    """
    now = ctx.clock.now()
    outstanding = list(
        (
            await session.scalars(
                select(ApprovalNumber)
                .where(ApprovalNumber.inquiry_id == inquiry_id, ApprovalNumber.state == "outstanding")
                .with_for_update()
            )
        ).all()
    )
    for row in outstanding:
        if row.expires_at <= now:
            row.state, row.closed_at, row.void_reason = "expired", now, "lifetime_elapsed"
            record(
                session,
                actor=actor,
                action="approval_number.expired",
                object_type="inquiry",
                object_id=inquiry_id,
                details={"approval_number_id": row.id},
            )
    return [row for row in outstanding if row.state == "outstanding"]


async def close_numbers(
    session: AsyncSession, *, ctx: AppContext, inquiry_id: str, state: str, reason: str, actor: Actor
) -> int:
    """Void (or expire) every outstanding number of an inquiry, e.g. because the draft changed; one
    already past its lifetime is closed as expired, as the register has counted it."""
    now = ctx.clock.now()
    live = await _outstanding_numbers(session, ctx=ctx, inquiry_id=inquiry_id, actor=actor)
    for row in live:
        row.state, row.closed_at, row.void_reason = state, now, reason
    count = len(live)
    if count:
        record(
            session,
            actor=actor,
            action=f"approval_number.{state}",
            object_type="inquiry",
            object_id=inquiry_id,
            details={"count": count, "reason": reason},
        )
    return count


async def check_confirmer_first(ctx: AppContext, approval: Approval) -> PasswordCheck | None:
    """An A1 approval's password, checked before the caller's write transaction (``PasswordCheck``)."""
    if isinstance(approval, ApprovalNumberApproval):
        return None
    return await check_password_first(ctx, approval.confirmer_user_id, approval.confirmer_password)


async def verify_approval(
    session: AsyncSession,
    *,
    ctx: AppContext,
    inquiry: Inquiry,
    approval: Approval,
    checked: PasswordCheck | None,
    purpose: str,
    bound_hash: str,
    actor: Actor,
) -> GrantedApproval:
    """Check an A1 or A2 approval for ``purpose`` (submit | cancel); raise APPROVAL_INVALID and friends.

    ``checked`` is :func:`check_confirmer_first`'s answer for this approval, taken before the transaction.
    """
    if isinstance(approval, ApprovalNumberApproval):
        return await _use_number(
            session,
            ctx=ctx,
            inquiry=inquiry,
            number=approval.approval_number,
            purpose=purpose,
            bound_hash=bound_hash,
            actor=actor,
        )
    if checked is None:
        # Every caller checks an A1 password before its write transaction (check_confirmer_first), so
        # that Argon2id never runs under SQLite's writer lock. Checking it here instead would hide a
        # caller that forgot, so that is refused as the programming error it is.
        raise AssertionError("an A1 approval reached the transaction without check_confirmer_first")
    return await _check_credentials(
        session,
        ctx=ctx,
        inquiry=inquiry,
        user_id=approval.confirmer_user_id,
        checked=checked,
        totp=approval.confirmer_totp,
        actor=actor,
    )


async def _use_number(
    session: AsyncSession,
    *,
    ctx: AppContext,
    inquiry: Inquiry,
    number: str,
    purpose: str,
    bound_hash: str,
    actor: Actor,
) -> GrantedApproval:
    now = ctx.clock.now()
    outstanding = await _outstanding_numbers(session, ctx=ctx, inquiry_id=inquiry.id, actor=actor)
    live = [row for row in outstanding if row.purpose == purpose]
    wanted = _number_hash(ctx, inquiry.id, number)
    match = next((row for row in live if secrets.compare_digest(row.number_hash, wanted)), None)
    if match is not None and match.draft_hash == bound_hash:
        refusal = await _confirmer_not_in_force(
            session, ctx=ctx, confirmer_id=match.issued_by, inquiry=inquiry
        )
        if refusal is not None:
            # The number was the issuer's approval; it ends with their right to give one.
            match.state, match.closed_at, match.void_reason = "voided", now, "confirmer_not_in_force"
            record(
                session,
                actor=actor,
                action="approval_number.voided",
                object_type="inquiry",
                object_id=inquiry.id,
                details={"approval_number_id": match.id, "reason": "confirmer_not_in_force"},
            )
            record(
                session,
                actor=actor,
                action="approval.refused",
                object_type="inquiry",
                object_id=inquiry.id,
                outcome="denied",
                details={"method": "approval_number", "purpose": purpose, "code": refusal.code},
            )
            await session.commit()
            raise ApprovalInvalid("The confirmer who issued this number can no longer approve", audited=True)
        match.state, match.closed_at = "used", now
        record(
            session,
            actor=actor,
            action="approval_number.used",
            object_type="inquiry",
            object_id=inquiry.id,
            details={"approval_number_id": match.id, "purpose": purpose, "confirmer_id": match.issued_by},
        )
        return GrantedApproval("approval_number", match.issued_by, now)
    # A wrong entry counts against every live number of this inquiry; the fifth voids them.
    for row in live:
        row.failed_attempts += 1
        if row.failed_attempts >= ctx.policy.approval_number_max_failures:
            row.state, row.closed_at, row.void_reason = "voided", now, "too_many_wrong_entries"
            record(
                session,
                actor=actor,
                action="approval_number.voided",
                object_type="inquiry",
                object_id=inquiry.id,
                details={"approval_number_id": row.id, "reason": "too_many_wrong_entries"},
            )
    record(
        session,
        actor=actor,
        action="approval.refused",
        object_type="inquiry",
        object_id=inquiry.id,
        outcome="denied",
        details={"method": "approval_number", "purpose": purpose},
    )
    await session.commit()
    raise ApprovalInvalid(
        "The approval number is wrong, expired, used, voided or not for this inquiry", audited=True
    )


@cache
def _confirmer_statement() -> Select[User, datetime | None, str, str | None, str | None]:
    # Built once: every A1 approval runs it, and building it cost more than running it. The last column is
    # an emergency switch on the confirmer (IR-1), read in the same turn through the driver.
    switched = suspension_query(user_id=User.id)
    assert switched is not None
    return (
        select(
            User,
            LoginThrottle.locked_at,
            UserRole.role,
            UserRole.branch_code,
            switched.with_only_columns(EmergencySuspension.id).scalar_subquery(),
        )
        .select_from(User)
        .outerjoin(LoginThrottle, LoginThrottle.login_key == bindparam("throttle_key"))
        .outerjoin(UserRole, active_role_join(User.id))
        .where(User.id == bindparam("user_id"))
    )


def _ensure_may_confirm(
    confirmer: User,
    rows: Sequence[Row[User, datetime | None, str, str | None, str | None]],
    *,
    branch_code: str,
    operator_ids: tuple[str, ...],
) -> None:
    """:func:`ensure_may_confirm` on a confirmer read with :func:`_confirmer_statement` (a row per role)."""
    ensure_may_confirm(
        confirmer_id=confirmer.id,
        confirmer_roles=roles_of((row[2], row[3]) for row in rows),
        confirmer_active=confirmer.status == "active" and rows[0][1] is None,
        branch_code=branch_code,
        operator_ids=operator_ids,
    )


async def _confirmer_not_in_force(
    session: AsyncSession, *, ctx: AppContext, confirmer_id: str, inquiry: Inquiry
) -> DomainError | None:
    """Why the issuer of an approval number may not approve now, or None.

    A number carries its issuer's approval to the moment it is used, so their right is judged then as an
    A1 confirmer's would be: roles and branch in force, account active and not locked, no emergency
    switch on them (IR-1). A suspension, a revoked role or a switch after the issue stops the number too.
    """
    rows = (
        await session.execute(
            _confirmer_statement(), {"user_id": confirmer_id, "throttle_key": login_key(ctx, confirmer_id)}
        )
    ).all()
    if not rows:
        return NotAConfirmer("The issuer of this number is no longer a user")
    try:
        _ensure_may_confirm(
            rows[0][0],
            rows,
            branch_code=inquiry.branch_code,
            operator_ids=await hq_execution.operators_of(session, inquiry),
        )
    except (NotAConfirmer, Suspended) as refusal:
        return refusal
    if rows[0][4] is not None:
        return Suspended("The confirmer is stopped by an emergency control")
    return None


@dataclass(frozen=True)
class ApprovalTarget:
    """What a confirmer's credentials approve (an inquiry, or a branch's request to HQ): whose branch and
    whose work it is, and where a refusal is recorded."""

    branch_code: str
    operator_ids: tuple[str, ...]
    object_type: str
    object_id: str | None
    refused_action: str


async def _locked_out(
    session: AsyncSession, *, ctx: AppContext, user_id: str, read: bool, may_count: bool
) -> bool:
    """Whether the typed ID is locked out, judged so that no parallel attempt at it changes that meanwhile.

    ``read`` is the lock state as this transaction's first read saw it. On SQLite that read is final:
    the writer lock taken at ``BEGIN IMMEDIATE`` orders this whole transaction after every other write.
    On PostgreSQL it is a snapshot, and the right password sent while the fifth wrong one is still being
    counted would pass; so were a hundred guesses sent at once, every one would be judged (AU-5). There
    the counter is locked first: for update when this attempt may count a failure (a wrong password, or
    a second factor still to check), as login does; otherwise shared, so the confirmer's approvals do not
    queue behind one another but do wait for a failure being counted and then see its lock. Each attempt
    takes one mode only: two that both held it shared and then both asked for update would deadlock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return read
    if may_count:
        return (await lock_throttle(session, ctx, user_id)).locked_at is not None
    # Created at zero if no failure was ever counted for this ID: a shared lock on no row would let the
    # first failures count up to the lock while this approval is open, and it was then granted after it.
    return (await lock_throttle(session, ctx, user_id, shared=True)).locked_at is not None


async def check_confirmer_credentials(
    session: AsyncSession,
    *,
    ctx: AppContext,
    target: ApprovalTarget,
    user_id: str,
    checked: PasswordCheck,
    actor: Actor,
    totp: str | None = None,
) -> User:
    """Method A1: the confirmer's own password (checked before the transaction) and, where the branch asks
    for it, their second factor; their lock, account, roles in force and emergency switches. A wrong
    password or code counts toward the confirmer's lockout as at login. Returns the confirmer; a refusal
    is recorded and committed, then raised."""
    # The confirmer, their lock and their roles in force in one round trip (a row per role); an unknown
    # ID may still be locked (failures count against the typed ID), so its lock is read on its own.
    rows = (
        await session.execute(
            _confirmer_statement(), {"user_id": user_id, "throttle_key": login_key(ctx, user_id)}
        )
    ).all()
    confirmer = rows[0][0] if rows else None
    if rows:
        read = rows[0][1] is not None
    else:
        throttle = await session.get(LoginThrottle, login_key(ctx, user_id))
        read = throttle is not None and throttle.locked_at is not None
    matched = await checked.matches(ctx.passwords, confirmer.password_hash if confirmer else None)
    totp_required = ctx.policy.totp_required_for(target.branch_code)
    locked = await _locked_out(
        session, ctx=ctx, user_id=user_id, read=read, may_count=not matched or totp_required
    )

    def refuse(code: str | None) -> None:
        # A known confirmer is named; an ID that names nobody appears only as its pseudonym, as at login:
        # what was typed there may be a password in the wrong field, or the subject's name.
        details: dict[str, str] = {"method": "confirmer_credentials"}
        if confirmer is not None:
            details["confirmer_id"] = confirmer.id
        else:
            details["confirmer_ref"] = login_key(ctx, user_id)
        if code:
            details["code"] = code
        record(
            session,
            actor=actor,
            action=target.refused_action,
            object_type=target.object_type,
            object_id=target.object_id,
            outcome="denied",
            details=details,
        )

    if locked or not matched:
        if not locked:
            await count_failed_password(
                session, ctx=ctx, user=confirmer, attempted_user_id=user_id, actor=actor
            )
        refuse(None)
        await session.commit()
        raise ApprovalInvalid("The confirmer's credentials are not valid", audited=True)
    assert confirmer is not None
    _ensure_may_confirm(confirmer, rows, branch_code=target.branch_code, operator_ids=target.operator_ids)
    if rows[0][4] is not None:
        raise Suspended("The confirmer is stopped by an emergency control")
    if password_change_required(ctx, confirmer):
        # As at login (AU-4): an expired password opens nothing but the change of itself.
        refuse("PASSWORD_EXPIRED")
        await session.commit()
        raise ApprovalInvalid("The confirmer's password has expired and must be changed first", audited=True)
    if totp_required and not await verify_code(session, ctx=ctx, user_id=confirmer.id, code=totp):
        # The branch's policy asks confirmers for their second factor too (AU-8). A wrong code counts
        # toward the confirmer's lockout as at login (AU-5); a missing one is no guess and is only refused.
        if totp:
            await count_failed_password(
                session, ctx=ctx, user=confirmer, attempted_user_id=user_id, actor=actor
            )
        refuse("TOTP_REQUIRED")
        await session.commit()
        raise ApprovalInvalid("The confirmer's second-factor code is missing or wrong", audited=True)
    return confirmer


async def _check_credentials(
    session: AsyncSession,
    *,
    ctx: AppContext,
    inquiry: Inquiry,
    user_id: str,
    checked: PasswordCheck,
    actor: Actor,
    totp: str | None = None,
) -> GrantedApproval:
    now = ctx.clock.now()
    confirmer = await check_confirmer_credentials(
        session,
        ctx=ctx,
        target=ApprovalTarget(
            branch_code=inquiry.branch_code,
            operator_ids=await hq_execution.operators_of(session, inquiry),
            object_type="inquiry",
            object_id=inquiry.id,
            refused_action="approval.refused",
        ),
        user_id=user_id,
        checked=checked,
        totp=totp,
        actor=actor,
    )
    record(
        session,
        actor=actor,
        action="approval.confirmer_credentials",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"confirmer_id": confirmer.id},
    )
    return GrantedApproval("confirmer_credentials", confirmer.id, now)


async def register_balance(
    session: AsyncSession, *, branch_code: str, business_date: date, now: datetime
) -> dict[str, int]:
    """The approval-number register for one branch and day, as it stands at ``now``.

    ``issued`` is counted from the ledger (numbers issued that day for the branch's inquiries) and the
    other figures from the register's rows, so a number lost from the register shows as an imbalance.
    A number still outstanding past its lifetime counts as expired: it can no longer be used, whether or
    not anyone tried it (its row is closed the next time its draft is touched).
    """
    overdue = ApprovalNumber.expires_at <= now
    rows = await session.execute(
        select(ApprovalNumber.state, overdue, func.count())
        .where(ApprovalNumber.branch_code == branch_code, ApprovalNumber.business_date == business_date)
        .group_by(ApprovalNumber.state, overdue)
    )
    counts = {"used": 0, "voided": 0, "expired": 0, "outstanding": 0}
    for state, past_lifetime, count in rows:
        closed_as = "expired" if state == "outstanding" and past_lifetime else str(state)
        counts[closed_as] += int(count)
    start = datetime.combine(business_date, time(0, 0), tzinfo=TOKYO)
    issued = await session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "approval_number.issued",
            AuditEvent.at >= rfc3339(start),
            AuditEvent.at < rfc3339(start + timedelta(days=1)),
            AuditEvent.object_id.in_(select(Inquiry.id).where(Inquiry.branch_code == branch_code)),
        )
    )
    counts["issued"] = int(issued or 0)
    return counts

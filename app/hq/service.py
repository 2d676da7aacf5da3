"""HQ inquiries on behalf of branches (VI(1)②; HQ-1…HQ-4).

HQ-1 A branch operator sends a request (照会依頼); an HQ operator executes it with ``POST /inquiries``
     and ``hq_request_id`` (app/hq/execution.py); one request, one inquiry, enforced by the database.
HQ-2 The branch's return option (policy data) decides how the branch checks HQ's inquiry: on its own
     subject list (C) or count list (D) — app/lists/service.py adds the line — or, with ``none``, by
     method A before the request leaves the branch (a confirmer's approval here) and/or method B.
HQ-3 Each day HQ's executed inquiries must equal the branch requests executed plus HQ's own
     initiative; a difference (``HQ_COUNT_MISMATCH``, critical) blocks HQ's sign-off.
HQ-4 An HQ inquiry with no request is HQ's own and goes through the HQ branch's methods A–D with HQ
     confirmers, exactly as a branch inquiry does (app/inquiry/service.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz.models import Branch
from app.authz.passwords import PasswordCheck
from app.authz.policy import authorize, ensure_not_operator, may
from app.authz.principal import Principal
from app.authz.service import check_password_first
from app.clock import business_date_of
from app.context import AppContext
from app.crypto.envelope import Sealed, open_sealed, seal
from app.errors import (
    ApprovalRequired,
    DomainError,
    Forbidden,
    HqCountMismatch,
    InvalidState,
    NotFound,
    SelfInquiry,
    TerminalNotAllowed,
    ValidationFailed,
)
from app.escalation.models import Escalation, balance_note
from app.hq.execution import request_content_hash
from app.hq.models import HqDailySignOff, HqRequest
from app.hq.schemas import HqRequestCreate
from app.idempotency import remember_idempotency, replayed_id, request_fingerprint
from app.inquiry.approvals import ApprovalTarget, GrantedApproval, check_confirmer_credentials
from app.inquiry.models import Inquiry
from app.inquiry.outbox import NOT_SENDABLE
from app.inquiry.schemas import ConfirmerCredentialsApproval
from app.inquiry.sealing import subject_lookup_key
from app.inquiry.service import (
    check_consent_obtained,
    check_purpose,
    is_about_user,
    normalised_subject,
    refuse_my_number,
)
from app.pagination import keyset_page

IDEMPOTENCY_ENDPOINT = "hq_request.create"


# -- sealing the requested subject (EN-1) -------------------------------------------------------------


def _subject_aad(request_id: str) -> bytes:
    return f"hq_request:{request_id}:subject".encode()


def _seal_subject(ctx: AppContext, request: HqRequest, subject: dict[str, Any]) -> None:
    sealed = seal(
        ctx.keyring,
        json.dumps(subject, ensure_ascii=False).encode(),
        associated_data=_subject_aad(request.id),
    )
    request.subject_sealed, request.subject_nonce = sealed.ciphertext, sealed.nonce
    request.subject_wrapped_key, request.subject_kek_id = sealed.wrapped_key, sealed.kek_id
    # The same index and pseudonym as the executing inquiry's: one person, one key, across both tables.
    lookup = subject_lookup_key(subject["name_kana"], subject["birth_date"])
    request.subject_index = ctx.keyring.blind_index(lookup, domain="subject")
    request.subject_pseudonym = ctx.keyring.pseudonym(lookup, domain="subject")


def open_request_subject(ctx: AppContext, request: HqRequest) -> dict[str, Any]:
    sealed = Sealed(
        request.subject_sealed, request.subject_nonce, request.subject_wrapped_key, request.subject_kek_id
    )
    return dict(json.loads(open_sealed(ctx.keyring, sealed, associated_data=_subject_aad(request.id))))


# -- the branch's request (HQ-1, HQ-2) ----------------------------------------------------------------


async def _confirmer_approval(
    session: AsyncSession,
    *,
    ctx: AppContext,
    approval: ConfirmerCredentialsApproval,
    checked: PasswordCheck,
    branch_code: str,
    operator_id: str,
    actor: Actor,
) -> GrantedApproval:
    """Method A1 for a request: judged exactly as an inquiry's A1 approval is (lock, second factor,
    expired password, roles in force, emergency switches), with the refusal recorded on the request."""
    now = ctx.clock.now()
    confirmer = await check_confirmer_credentials(
        session,
        ctx=ctx,
        target=ApprovalTarget(
            branch_code=branch_code,
            operator_ids=(operator_id,),
            object_type="hq_request",
            object_id=None,
            refused_action="hq_request.approval_refused",
        ),
        user_id=approval.confirmer_user_id,
        checked=checked,
        totp=approval.confirmer_totp,
        actor=actor,
    )
    return GrantedApproval("confirmer_credentials", confirmer.id, now)


@dataclass(frozen=True)
class CreatedRequest:
    request: HqRequest
    replayed: bool


async def create_request(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    body: HqRequestCreate,
    raw_body: Any,
    idempotency_key: str | None,
) -> CreatedRequest:
    """A branch operator asks HQ to inquire; A1 approval is required when the return option is ``none``
    and the branch uses method A (HQ-2)."""
    # Before the first statement, so no write transaction waits on Argon2id (PasswordCheck).
    checked = (
        await check_password_first(ctx, body.approval.confirmer_user_id, body.approval.confirmer_password)
        if isinstance(body.approval, ConfirmerCredentialsApproval)
        else None
    )
    fingerprint = request_fingerprint(ctx, raw_body)
    replay = await replayed_id(
        session,
        key=idempotency_key,
        principal=principal,
        endpoint=IDEMPOTENCY_ENDPOINT,
        fingerprint=fingerprint,
    )
    if replay is not None:
        return CreatedRequest(await _load(session, replay), True)
    actor = principal.actor()
    await refuse_my_number(session, actor=actor, raw_body=raw_body, action="hq_request.refused")
    branch_code = principal.terminal_branch_code
    if branch_code is None:
        raise TerminalNotAllowed("HQ requests are entered at a registered terminal")
    authorize(principal, "hq_request.create", branch_code=branch_code)
    branch = await session.get(Branch, branch_code)
    if branch is None or branch.is_hq:
        raise Forbidden("HQ inquires for itself directly; requests come from branches")
    check_purpose(
        ctx,
        purpose=body.purpose,
        customer_status=body.customer_status,
        document_type=body.consent_document.type,
    )
    today = business_date_of(ctx.clock.now())
    subject = normalised_subject(body.subject, today=today)
    check_consent_obtained(
        body.consent_document.obtained_on, business_date=today, born_on=subject["birth_date"]
    )
    if ctx.policy.self_inquiry == "refuse" and await is_about_user(session, principal.id, subject):
        record(
            session,
            actor=actor,
            action="hq_request.refused",
            outcome="denied",
            details={"code": "SELF_INQUIRY"},
        )
        await session.commit()
        raise SelfInquiry("You cannot request an inquiry about yourself", audited=True)
    return_option = ctx.policy.hq_return_option_for(branch_code)
    approval_required = return_option == "none" and "A" in ctx.policy.methods_for(branch_code)
    approved: GrantedApproval | None = None
    if body.approval is not None:
        if not isinstance(body.approval, ConfirmerCredentialsApproval) or checked is None:
            raise ValidationFailed("Approve a request with the confirmer's credentials (method A1)")
        approved = await _confirmer_approval(
            session,
            ctx=ctx,
            approval=body.approval,
            checked=checked,
            branch_code=branch_code,
            operator_id=principal.id,
            actor=actor,
        )
    elif approval_required:
        record(
            session,
            actor=actor,
            action="hq_request.refused",
            outcome="denied",
            details={"code": "APPROVAL_REQUIRED", "return_option": return_option},
        )
        await session.commit()
        raise ApprovalRequired(
            "This branch gets no list back from HQ: a confirmer must approve the request first (method A)",
            audited=True,
        )
    now = ctx.clock.now()
    request = HqRequest(
        id=str(uuid.uuid4()),
        branch_code=branch_code,
        operator_id=principal.id,
        terminal_id=principal.terminal_id,
        purpose=body.purpose,
        customer_status=body.customer_status,
        consent_type=body.consent_document.type,
        consent_reference=body.consent_document.reference,
        consent_obtained_on=body.consent_document.obtained_on,
        content_hash=request_content_hash(
            ctx,
            purpose=body.purpose,
            customer_status=body.customer_status,
            subject=subject,
            consent_type=body.consent_document.type,
            consent_reference=body.consent_document.reference,
            consent_obtained_on=body.consent_document.obtained_on,
        ),
        return_option=return_option,
        status="pending",
        approval_method=approved.method if approved else None,
        approval_confirmer_id=approved.confirmer_id if approved else None,
        approved_at=approved.approved_at if approved else None,
        created_at=now,
        business_date=business_date_of(now),
        updated_at=now,
    )
    _seal_subject(ctx, request, subject)
    session.add(request)
    record(
        session,
        actor=actor,
        action="hq_request.created",
        object_type="hq_request",
        object_id=request.id,
        details={
            "purpose": request.purpose,
            "customer_status": request.customer_status,
            "consent_type": request.consent_type,
            "subject_pseudonym": request.subject_pseudonym,
            "return_option": return_option,
            "approval_method": request.approval_method,
            "confirmer_id": request.approval_confirmer_id,
        },
    )
    remember_idempotency(
        session,
        ctx,
        key=idempotency_key,
        principal=principal,
        endpoint=IDEMPOTENCY_ENDPOINT,
        fingerprint=fingerprint,
        object_id=request.id,
        status_code=201,
    )
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won; answer with its request.
        await session.rollback()
        replay = await replayed_id(
            session,
            key=idempotency_key,
            principal=principal,
            endpoint=IDEMPOTENCY_ENDPOINT,
            fingerprint=fingerprint,
        )
        if replay is None:
            raise
        return CreatedRequest(await _load(session, replay), True)
    return CreatedRequest(request, False)


async def _load(session: AsyncSession, request_id: str) -> HqRequest:
    request = await session.get(HqRequest, request_id)
    if request is None:
        raise NotFound("No such HQ request")
    return request


def may_see_subject(principal: Principal, request: HqRequest) -> bool:
    return may(principal, "hq_request.read_subject", branch_code=request.branch_code)


async def list_requests(
    session: AsyncSession,
    *,
    principal: Principal,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[HqRequest], str | None]:
    """HQ sees every branch's requests; a branch sees its own. Reading them is recorded (subjects)."""
    authorize(principal, "hq_request.read")
    query = select(HqRequest)
    if not may(principal, "hq_request.read", branch_code="*"):
        query = query.where(HqRequest.branch_code.in_(sorted(principal.branch_codes)))
    if status is not None:
        query = query.where(HqRequest.status == status)
    rows, next_cursor = await keyset_page(
        session, query, at=HqRequest.created_at, row_id=HqRequest.id, limit=limit, cursor=cursor
    )
    record(
        session,
        actor=principal.actor(),
        action="hq_request.listed",
        object_type="hq_request",
        details={
            "status": status,
            "request_ids": [row.id for row in rows],
            "with_subjects": any(may_see_subject(principal, row) for row in rows),
        },
    )
    await session.commit()
    return rows, next_cursor


# -- HQ's daily balance and sign-off (HQ-3) -----------------------------------------------------------


@dataclass(frozen=True)
class HqBalance:
    business_date: date
    hq_executed: int
    by_branch: dict[str, int]
    own_initiative: int
    operators: frozenset[str]

    @property
    def branch_requests_executed(self) -> int:
        return sum(self.by_branch.values())

    @property
    def balanced(self) -> bool:
        return self.hq_executed == self.branch_requests_executed + self.own_initiative


async def _hq_branch_code(session: AsyncSession, *, lock: bool = False) -> str:
    """The HQ branch's code; ``lock``: its row FOR UPDATE, which serialises HQ-wide writes."""
    query = select(Branch.code).where(Branch.is_hq.is_(True))
    code = await session.scalar(query.with_for_update() if lock else query)
    if code is None:
        raise NotFound("No HQ branch is registered")
    return code


async def compute_balance(session: AsyncSession, *, business_date: date) -> HqBalance:
    """Count HQ's side from the inquiries and the branches' side from the requests, independently, so
    a request marked executed without its inquiry (or the reverse) shows as a difference."""
    hq_code = await _hq_branch_code(session)
    # Executed = handed to the center: queued in the outbox, or sent (held, released, refused by the
    # center, or cancelled after sending), or settled unsent because what it stored cannot be carried to
    # the center (NOT_SENDABLE: HQ did act on the request, marked executed with it). Drafts awaiting
    # approval, expired or cancelled unsent are not.
    executed = (
        Inquiry.branch_code == hq_code,
        Inquiry.business_date == business_date,
        or_(
            Inquiry.status == "queued",
            Inquiry.sent_at.is_not(None),
            Inquiry.center_result_code == NOT_SENDABLE,
        ),
    )
    hq_executed = await session.scalar(select(func.count()).select_from(Inquiry).where(*executed))
    own = await session.scalar(
        select(func.count()).select_from(Inquiry).where(*executed, Inquiry.hq_request_id.is_(None))
    )
    rows = await session.execute(
        select(HqRequest.branch_code, func.count())
        .where(HqRequest.status == "executed", HqRequest.executed_business_date == business_date)
        .group_by(HqRequest.branch_code)
        .order_by(HqRequest.branch_code)
    )
    operators = await session.scalars(
        select(Inquiry.operator_id)
        .where(Inquiry.branch_code == hq_code, Inquiry.business_date == business_date)
        .distinct()
    )
    return HqBalance(
        business_date=business_date,
        hq_executed=int(hq_executed or 0),
        by_branch={str(code): int(count) for code, count in rows},
        own_initiative=int(own or 0),
        operators=frozenset(operators.all()),
    )


async def _raise_mismatch_alert(
    session: AsyncSession, *, ctx: AppContext, balance: HqBalance, actor: Actor
) -> None:
    """HQ_COUNT_MISMATCH is critical: a ledger event each time it is seen, and an escalation to HQ
    compliance for each difference — one at a time while it is open, and again after it was handled
    only if the figures have moved (a difference handled and still there blocks the sign-off, which
    says so; a new one is news)."""
    day = balance.business_date.isoformat()
    figures = balance_note(balance.hq_executed, balance.branch_requests_executed, balance.own_initiative)
    # Confirmers reading the same difference at once would each find it not yet raised and each raise
    # it (on PostgreSQL; SQLite's writer lock already serialises them): whoever holds the HQ branch's
    # row raises it, the others wait and then see it. Only a difference takes this lock.
    hq_code = await _hq_branch_code(session, lock=True)
    raised = (
        await session.execute(
            select(Escalation.acknowledged_at, Escalation.note).where(
                Escalation.kind == "hq_count_mismatch", Escalation.object_id == day
            )
        )
    ).all()
    # Escalations raised before the figures were noted have none: they count as this difference.
    seen = any(acknowledged_at is None or note in (None, figures) for acknowledged_at, note in raised)
    if not seen:
        session.add(
            Escalation(
                id=str(uuid.uuid4()),
                kind="hq_count_mismatch",
                branch_code=hq_code,
                object_type="hq_reconciliation",
                object_id=day,
                recipients=["hq_compliance", "auditor"],
                created_at=ctx.clock.now(),
                note=figures,
            )
        )
    record(
        session,
        actor=actor,
        action="hq_reconciliation.mismatch",
        object_type="hq_reconciliation",
        object_id=day,
        outcome="alert",
        details={
            "severity": "critical",
            "code": "HQ_COUNT_MISMATCH",
            "hq_executed": balance.hq_executed,
            "branch_requests_executed": balance.branch_requests_executed,
            "own_initiative": balance.own_initiative,
        },
    )


async def reconciliation(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, business_date: date
) -> tuple[HqBalance, HqDailySignOff | None]:
    """The day's balance for HQ's confirmers and auditors; a difference is alerted at once."""
    authorize(principal, "hq_reconciliation.read")
    balance = await compute_balance(session, business_date=business_date)
    actor = principal.actor()
    record(
        session,
        actor=actor,
        action="hq_reconciliation.read",
        object_type="hq_reconciliation",
        object_id=business_date.isoformat(),
        details={"balanced": balance.balanced, "hq_executed": balance.hq_executed},
    )
    if not balance.balanced:
        await _raise_mismatch_alert(session, ctx=ctx, balance=balance, actor=actor)
    await session.commit()
    return balance, await session.get(HqDailySignOff, business_date)


class DayNotOver(DomainError):
    status = 409
    code = "DAY_NOT_OVER"
    title = "The business day is not over yet"


async def sign_off(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, business_date: date
) -> HqDailySignOff:
    """An HQ confirmer who ran none of the day's HQ inquiries signs the balanced day off."""
    hq_code = await _hq_branch_code(session)
    authorize(principal, "hq_reconciliation.sign_off", branch_code=hq_code)
    if business_date >= business_date_of(ctx.clock.now()):
        # A day still running (or to come) can gain inquiries after its balance was signed.
        raise DayNotOver(f"{business_date.isoformat()} is not over yet (Asia/Tokyo)")
    if await session.get(HqDailySignOff, business_date) is not None:
        raise InvalidState("This day is already signed off")
    balance = await compute_balance(session, business_date=business_date)
    for operator_id in sorted(balance.operators):
        ensure_not_operator(principal.id, operator_id=operator_id)
    actor = principal.actor()
    if not balance.balanced:
        await _raise_mismatch_alert(session, ctx=ctx, balance=balance, actor=actor)
        record(
            session,
            actor=actor,
            action="hq_reconciliation.sign_off_refused",
            object_type="hq_reconciliation",
            object_id=business_date.isoformat(),
            outcome="denied",
            details={"code": "HQ_COUNT_MISMATCH"},
        )
        await session.commit()
        raise HqCountMismatch(
            f"HQ executed {balance.hq_executed}; branch requests executed "
            f"{balance.branch_requests_executed} + own initiative {balance.own_initiative}",
            audited=True,
        )
    signed = HqDailySignOff(
        business_date=business_date,
        signed_by=principal.id,
        signed_at=ctx.clock.now(),
        hq_executed=balance.hq_executed,
        branch_requests_executed=balance.branch_requests_executed,
        own_initiative=balance.own_initiative,
    )
    session.add(signed)
    record(
        session,
        actor=actor,
        action="hq_reconciliation.signed_off",
        object_type="hq_reconciliation",
        object_id=business_date.isoformat(),
        details={
            "hq_executed": balance.hq_executed,
            "branch_requests_executed": balance.branch_requests_executed,
            "own_initiative": balance.own_initiative,
            "by_branch": balance.by_branch,
        },
    )
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise InvalidState("This day was signed off at the same moment by someone else") from None
    return signed

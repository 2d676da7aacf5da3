"""The inquiry's life (api.md "Inquiries"): create → approve (A) → queue → held → release (B) → read.

States: awaiting_approval → queued → held → released; or center_error, cancelled, expired.
Every transition is a ledger event in the same transaction. Who may do what is asked of
app/authz/policy.py; the rules of purpose and approval live here and in approvals.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import orjson
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.forensics import TracedEvent, inquiry_trace_events
from app.audit.ledger import Actor, record
from app.audit.models import AuditEvent
from app.authz.models import User
from app.authz.policy import authorize, ensure_may_confirm, may, may_confirm
from app.authz.principal import Principal
from app.authz.service import check_password_first, count_failed_password, lock_throttle
from app.center.interface import RECORD_SCOPE_BY_PURPOSE, TRADE_INFO_PURPOSES, CenterSubject
from app.clock import EARLIEST_BIRTH_DATE, business_date_of, is_plausible_birth_date
from app.context import AppContext
from app.crypto.sealed_text import seal_text
from app.errors import (
    CustomerStatusNotAllowed,
    DocumentNotAllowedForPurpose,
    DomainError,
    Forbidden,
    HqRequestAlreadyExecuted,
    InvalidState,
    MyNumberForbidden,
    NotFound,
    OutOfScope,
    PurposeUnknown,
    ReauthFailed,
    ResponseDestroyed,
    ResponseHeld,
    SelfInquiry,
    Suspended,
    TerminalNotAllowed,
    ValidationFailed,
)
from app.escalation.models import Escalation
from app.governance.models import EmergencySuspension
from app.governance.switches import SWITCH_USER, switch_parameters, switch_statement
from app.governance.totp import verify_code
from app.hq import execution as hq_execution
from app.hq.models import HqRequest
from app.idempotency import (
    KeyedRequest,
    commit_or_replay,
    end_replay,
    remember_idempotency,
    replayed_id,
    replayed_object,
    request_fingerprint,
)
from app.inquiry import approvals, outbox
from app.inquiry.models import (
    Inquiry,
    InquiryCorrection,
    InquiryFlag,
    InquiryNumberCounter,
    OutboxMessage,
    SealedResponse,
)
from app.inquiry.schemas import (
    Approval,
    ApprovalNumberApproval,
    CorrectionFields,
    InquiryCreate,
    InquiryUpdate,
    SubjectIn,
)
from app.inquiry.sealing import open_response, open_subject, seal_subject
from app.inquiry.subject import (
    is_katakana_name,
    kana_key,
    normalise_kana,
    normalise_text,
    typed_an_individual_number,
)
from app.pagination import keyset_page

# How often a waiting submit re-reads the inquiry in case another gateway process stored the answer.
CROSS_PROCESS_POLL_SECONDS = 0.5

OPEN_FOR_CANCEL = ("awaiting_approval", "held", "released", "center_error")
# A record the center holds (it has a center inquiry id) can be corrected once it has answered.
OPEN_FOR_CORRECT = ("held", "released", "center_error")


# -- purpose policy (PL-1, PL-2) ---------------------------------------------------------------------


def check_purpose(ctx: AppContext, *, purpose: str, customer_status: str, document_type: str) -> None:
    rule = ctx.policy.purposes.get(purpose)
    if rule is None:
        raise PurposeUnknown("The purpose is not in the purpose table")
    allowed = rule.documents.get(customer_status)  # type: ignore[call-overload]
    if not allowed:
        raise CustomerStatusNotAllowed(f"{purpose} is allowed only for: {', '.join(sorted(rule.documents))}")
    if document_type not in allowed:
        raise DocumentNotAllowedForPurpose(f"{purpose} ({customer_status}) accepts: {', '.join(allowed)}")


def check_consent_obtained(obtained_on: date, *, business_date: date, born_on: date | str) -> None:
    """Consent must have been obtained by the inquiry's business date, and not before the subject was
    born: consent given after the inquiry is no consent, a day not yet begun is no day anything was
    obtained on, and a date before the birth date is a mistyped year, not consent. Entry, draft change
    and correction alike."""
    if obtained_on > business_date:
        raise ValidationFailed("Consent must have been obtained by the day of the inquiry")
    if obtained_on < (born_on if isinstance(born_on, date) else date.fromisoformat(born_on)):
        raise ValidationFailed("Consent cannot have been obtained before the subject's birth date")


def normalised_subject(subject: SubjectIn, *, today: date) -> dict[str, Any]:
    """The subject as it is sealed, hashed and sent; refused unless the center can carry it."""
    if not is_plausible_birth_date(subject.birth_date, today=today):
        raise ValidationFailed(f"birth_date must lie between {EARLIEST_BIRTH_DATE} and today")
    name_kana = normalise_kana(subject.name_kana)
    if not is_katakana_name(name_kana):
        raise ValidationFailed("name_kana must be written in kana")
    normalised = {
        "name_kana": name_kana,
        "name_kanji": normalise_text(subject.name_kanji),
        "birth_date": subject.birth_date.isoformat(),
        "phone": normalise_text(subject.phone),
        "postal_code": normalise_text(subject.postal_code),
        "address": normalise_text(subject.address),
    }
    # The center's limits hold for what is sent, and NFKC can lengthen text within SubjectIn's limits
    # ('㍿' is '株式会社'): checked here, where every subject (inquiry, draft change, HQ request) is
    # normalised, so an accepted subject can always be sent.
    try:
        CenterSubject.model_validate(normalised)
    except PydanticValidationError as invalid:
        raise ValidationFailed(
            "The subject is longer than the center accepts once normalised (NFKC)",
            errors=[
                {
                    "loc": ["body", "subject", *map(str, error["loc"])],
                    "type": error["type"],
                    "msg": error["msg"],
                }
                for error in invalid.errors(include_input=False)
            ],
        ) from None
    return normalised


def draft_hash(ctx: AppContext, inquiry: Inquiry, subject: dict[str, Any]) -> str:
    """Keyed hash of what the confirmer approved: branch, operator, purpose, subject, document."""
    content = orjson.dumps(
        {
            "branch": inquiry.branch_code,
            "operator": inquiry.operator_id,
            "purpose": inquiry.purpose,
            "customer_status": inquiry.customer_status,
            "subject": subject,
            "document": [
                inquiry.consent_type,
                inquiry.consent_reference,
                inquiry.consent_obtained_on.isoformat(),
            ],
        },
        option=orjson.OPT_SORT_KEYS,
    ).decode()
    return ctx.keyring.blind_index(content, domain="draft")


def cancel_binding(ctx: AppContext, inquiry: Inquiry) -> str:
    return ctx.keyring.blind_index(f"cancel:{inquiry.id}:{inquiry.draft_hash}", domain="draft")


# -- helpers ------------------------------------------------------------------------------------------


@cache
def _count_up_statement(dialect: str) -> Any:
    # Built once per dialect (it runs for every draft, under the writer lock on SQLite).
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table: Table = InquiryNumberCounter.__table__  # type: ignore[assignment]
    statement = insert(table).values(
        branch_code=bindparam("counter_branch"), business_date=bindparam("counter_day"), last_value=1
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.branch_code, table.c.business_date],
        set_={"last_value": table.c.last_value + 1},
    ).returning(table.c.last_value)


async def _next_number(session: AsyncSession, *, branch_code: str, business_date: date) -> str:
    """The branch's next number of the day, in one statement: INSERT ... ON CONFLICT DO UPDATE ...
    RETURNING creates the day's counter or counts it up under the row's lock (PostgreSQL; SQLite's
    writer lock), so the day's first drafts racing each other still get 1, 2, 3 without a gap."""
    value = await session.scalar(
        _count_up_statement(session.get_bind().dialect.name),
        {"counter_branch": branch_code, "counter_day": business_date},
    )
    return f"{branch_code}-{business_date:%Y%m%d}-{value:04d}"


async def load_inquiry(session: AsyncSession, inquiry_id: str, *, for_update: bool = False) -> Inquiry:
    inquiry = await session.get(Inquiry, inquiry_id, with_for_update=for_update)
    if inquiry is None:
        raise NotFound("No such inquiry")
    return inquiry


def _ensure_can_see(principal: Principal, inquiry: Inquiry) -> None:
    # An inquiry outside the caller's branches is reported as absent, not forbidden: its existence is data.
    if not may(principal, "inquiry.read", branch_code=inquiry.branch_code):
        raise OutOfScope("No such inquiry")


async def _expire_if_stale(session: AsyncSession, ctx: AppContext, inquiry: Inquiry, actor: Actor) -> bool:
    if inquiry.status == "awaiting_approval" and inquiry.expires_at <= ctx.clock.now():
        inquiry.status = "expired"
        inquiry.updated_at = ctx.clock.now()
        await approvals.close_numbers(
            session, ctx=ctx, inquiry_id=inquiry.id, state="expired", reason="draft_expired", actor=actor
        )
        record(session, actor=actor, action="inquiry.expired", object_type="inquiry", object_id=inquiry.id)
        return True
    return False


# Drafts expired per sweep transaction: a backlog (a gateway down for days) goes in turns of the sweep
# instead of one long write holding SQLite's writer lock.
STALE_DRAFTS_PER_SWEEP = 500


async def expire_stale_drafts(session: AsyncSession, ctx: AppContext, *, actor: Actor) -> int:
    """Expire every draft past its approval deadline that nobody acted on since (the same rule as an
    action on it meets): until then it read as 「承認待ち」 in its own view, the status filter and the
    dashboard, while the approval register already counted it out. Locked, so an approval under way
    either ends first or finds it expired. The caller commits."""
    stale = (
        await session.scalars(
            select(Inquiry)
            .where(Inquiry.status == "awaiting_approval", Inquiry.expires_at <= ctx.clock.now())
            .order_by(Inquiry.expires_at, Inquiry.id)
            .limit(STALE_DRAFTS_PER_SWEEP)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).all()
    return sum([await _expire_if_stale(session, ctx, inquiry, actor) for inquiry in stale])


@dataclass(frozen=True)
class _Operator:
    """What the self-inquiry check needs of the operator."""

    name_kana: str | None
    birth_date: date | None


@cache
def _switch_and_operator_statement() -> Select[Any]:
    # Built once (it runs in every inquiry's transaction): building it cost more than running it.
    return select(
        switch_statement(include_all=True).with_only_columns(EmergencySuspension.id).scalar_subquery(),
        select(User.name_kana).where(User.id == bindparam(SWITCH_USER)).scalar_subquery(),
        select(User.birth_date).where(User.id == bindparam(SWITCH_USER)).scalar_subquery(),
    )


async def _refuse_if_suspended(session: AsyncSession, principal: Principal, *, branch_code: str) -> _Operator:
    """Emergency switches (IR-1), asked again inside this transaction: one thrown after this request was
    authenticated still stops the inquiry, and the bank-wide switch stops every inquiry.

    The operator's name and birth date come in the same statement (scalar subqueries, so the switch is
    read even if the operator's row were gone): the self-inquiry check needs them, and each statement is a
    turn through the driver while the writer lock is held."""
    suspension_id, name_kana, birth_date = (
        await session.execute(
            _switch_and_operator_statement(),
            switch_parameters(
                user_id=principal.id, terminal_id=principal.terminal_id, branch_code=branch_code
            ),
        )
    ).one()
    if suspension_id is not None:
        raise Suspended("Inquiries are suspended by an emergency control")
    return _Operator(name_kana, birth_date)


def _approve(inquiry: Inquiry, granted: approvals.GrantedApproval, terminal_id: str | None) -> None:
    inquiry.approval_method = granted.method
    inquiry.approval_confirmer_id = granted.confirmer_id
    inquiry.approved_at = granted.approved_at
    inquiry.approval_terminal_id = terminal_id


def _queue(session: AsyncSession, ctx: AppContext, inquiry: Inquiry, actor: Actor) -> OutboxMessage | None:
    """Queue for the center; the row comes back when it is claimed for this request to deliver after
    commit (:func:`_deliver_after_commit`)."""
    inquiry.status = "queued"
    inquiry.updated_at = ctx.clock.now()
    claimed = ctx.outbox_deliver_claimed is not None
    message = outbox.enqueue(session, ctx=ctx, inquiry=inquiry, kind="inquire", claimed=claimed)
    record(
        session,
        actor=actor,
        action="inquiry.queued",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"approval_method": inquiry.approval_method, "confirmer_id": inquiry.approval_confirmer_id},
    )
    return message if claimed else None


def _deliver_after_commit(ctx: AppContext, message: OutboxMessage | None, inquiry: Inquiry) -> None:
    if message is not None and ctx.outbox_deliver_claimed is not None:
        ctx.outbox_deliver_claimed(message, inquiry)


# -- idempotency (ER-2) -------------------------------------------------------------------------------


async def refuse_my_number(session: AsyncSession, *, actor: Actor, raw_body: Any, action: str) -> None:
    """PL-4: an Individual Number anywhere in the request is refused before anything is stored; the
    refusal itself is recorded (its code only, never the number) and committed before raising."""
    if not typed_an_individual_number(raw_body):
        return
    record(session, actor=actor, action=action, outcome="denied", details={"code": "MY_NUMBER_FORBIDDEN"})
    await session.commit()
    raise MyNumberForbidden("Remove the Individual Number: the gateway may not collect it", audited=True)


async def _locked_or_replayed(
    session: AsyncSession,
    inquiry_id: str,
    *,
    key: str | None,
    principal: Principal,
    endpoint: str,
    fingerprint: str,
) -> tuple[Inquiry, bool]:
    """The inquiry, row-locked, and whether this request is a replay of one already done with ``key``.

    The lock comes before the key's lookup: a retry sent while the first request is still running waits
    for it to commit and then finds its record, instead of meeting a state it cannot act on (409). On
    PostgreSQL that is the row lock; on SQLite the writer lock serialises the two anyway.
    """
    inquiry = await load_inquiry(session, inquiry_id, for_update=True)
    replay = await replayed_id(
        session, key=key, principal=principal, endpoint=endpoint, fingerprint=fingerprint
    )
    if replay is None:
        return inquiry, False
    return (inquiry if replay == inquiry.id else await load_inquiry(session, replay)), True


async def replay_after_lost_race(
    session: AsyncSession, *, key: str | None, principal: Principal, endpoint: str, fingerprint: str
) -> Inquiry:
    """After :func:`commit_or_replay` rolled back: the inquiry of the concurrent request with this
    Idempotency-Key that committed first (409 if its body differed). The caller's own objects were
    rolled back with the transaction, so they must not be answered with."""
    keyed = KeyedRequest(key, endpoint, fingerprint)
    if (replayed := await replayed_object(session, Inquiry, keyed, principal=principal)) is None:
        # The commit failed on something other than the key; the rollback wrote nothing.
        raise InvalidState("The inquiry was changed by another request at the same moment: reload it")
    return replayed


# -- creating and changing drafts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    inquiry: Inquiry
    replayed: bool


async def create_inquiry(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    body: InquiryCreate,
    raw_body: Any,
    idempotency_key: str | None,
) -> Created:
    """Create an inquiry from a terminal; send it at once with A1 approval or when method A is off."""
    # Before the first statement, so no write transaction waits on Argon2id (PasswordCheck).
    checked = await approvals.check_confirmer_first(ctx, body.approval) if body.approval else None
    fingerprint = request_fingerprint(ctx, raw_body)
    replay = await replayed_id(
        session, key=idempotency_key, principal=principal, endpoint="create", fingerprint=fingerprint
    )
    if replay is not None:
        replayed = await load_inquiry(session, replay)
        await end_replay(session, replayed)
        return Created(replayed, True)
    await refuse_my_number(session, actor=principal.actor(), raw_body=raw_body, action="inquiry.refused")
    branch_code = principal.terminal_branch_code
    if branch_code is None:
        raise TerminalNotAllowed("Inquiries are entered at a registered terminal")
    authorize(principal, "inquiry.create", branch_code=branch_code)
    operator = await _refuse_if_suspended(session, principal, branch_code=branch_code)
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
    hq_request = None
    if body.hq_request_id is not None:
        # HQ executing a branch's request (HQ-1); its checks are the requesting branch's (HQ-2).
        if body.approval is not None:
            raise ValidationFailed(
                "A branch's HQ request carries the branch's controls; send it without approval"
            )
        # A retry sent while the first execution runs waits here for its lock (PostgreSQL) and must then
        # get the first one's inquiry, not a refusal as a second execution: look the key up again.
        await hq_execution.lock_request(session, principal=principal, request_id=body.hq_request_id)
        replay = await replayed_id(
            session, key=idempotency_key, principal=principal, endpoint="create", fingerprint=fingerprint
        )
        if replay is not None:
            await session.rollback()  # let the request's row go
            replayed = await load_inquiry(session, replay)
            await end_replay(session, replayed)
            return Created(replayed, True)
        hq_request = await hq_execution.claim_pending_request(
            session,
            principal=principal,
            request_id=body.hq_request_id,
            content_hash=hq_execution.request_content_hash(
                ctx,
                purpose=body.purpose,
                customer_status=body.customer_status,
                subject=subject,
                consent_type=body.consent_document.type,
                consent_reference=body.consent_document.reference,
                consent_obtained_on=body.consent_document.obtained_on,
            ),
        )
    now = ctx.clock.now()
    actor = principal.actor()
    flags = (
        [InquiryFlag.SELF_INQUIRY]
        if await _self_inquiry_checked(session, ctx, actor, operator, subject)
        else []
    )
    if hq_request is not None and not flags and await is_about_user(session, hq_request.operator_id, subject):
        # A branch operator's request about themself, let through by the flag policy when it was made
        # (app/hq/service.py): the inquiry HQ runs on it carries the flag as a direct one would.
        flags.append(InquiryFlag.SELF_INQUIRY)
    business_date = business_date_of(now)
    inquiry = Inquiry(
        id=str(uuid.uuid4()),
        branch_code=branch_code,
        terminal_id=principal.terminal_id,
        operator_id=principal.id,
        purpose=body.purpose,
        customer_status=body.customer_status,
        consent_type=body.consent_document.type,
        consent_reference=body.consent_document.reference,
        consent_obtained_on=body.consent_document.obtained_on,
        status="awaiting_approval",
        flags=flags,
        response_state="none",
        hq_request_id=hq_request.id if hq_request is not None else None,
        created_at=now,
        updated_at=now,
        business_date=business_date,
        expires_at=ctx.calendar.end_of_next_business_day(business_date, branch_code)
        if ctx.policy.draft_lifetime_business_days == 1
        else _draft_expiry(ctx, business_date, branch_code),
    )
    seal_subject(ctx, inquiry, subject)
    inquiry.draft_hash = draft_hash(ctx, inquiry, subject)
    methods = ctx.policy.methods_for(branch_code)
    granted: approvals.GrantedApproval | None = None
    if hq_request is None and "A" in methods and body.approval is not None:
        if isinstance(body.approval, ApprovalNumberApproval):
            raise ValidationFailed(
                "An approval number is issued for an existing draft; submit it with /submit"
            )
        # Before the draft, its number and its event are in the session: a refusal commits its own
        # record (and the failure toward the confirmer's lockout), never a draft the caller was refused.
        granted = await approvals.verify_approval(
            session,
            ctx=ctx,
            inquiry=inquiry,
            approval=body.approval,
            checked=checked,
            purpose="submit",
            bound_hash=inquiry.draft_hash,
            actor=actor,
        )
    inquiry.number = await _next_number(session, branch_code=branch_code, business_date=business_date)
    # Not flushed here: the draft is written once, with the state it ends in (queued and approved, for
    # an A1 submit), instead of an INSERT followed by an UPDATE.
    session.add(inquiry)
    record(
        session,
        actor=actor,
        action="inquiry.created",
        object_type="inquiry",
        object_id=inquiry.id,
        details={
            "number": inquiry.number,
            "purpose": inquiry.purpose,
            "customer_status": inquiry.customer_status,
            "consent_type": inquiry.consent_type,
            "subject_pseudonym": inquiry.subject_pseudonym,
            "flags": flags,
        },
    )
    claimed: OutboxMessage | None = None
    if hq_request is not None:
        hq_execution.mark_executed(session, ctx=ctx, request=hq_request, inquiry=inquiry, actor=actor)
        claimed = _queue(session, ctx, inquiry, actor)
    elif "A" not in methods:
        claimed = _queue(session, ctx, inquiry, actor)
    elif granted is not None:
        _approve(inquiry, granted, principal.terminal_id)
        record(
            session,
            actor=actor,
            action="inquiry.approved",
            object_type="inquiry",
            object_id=inquiry.id,
            details={"method": granted.method, "confirmer_id": granted.confirmer_id},
        )
        claimed = _queue(session, ctx, inquiry, actor)
    remember_idempotency(
        session,
        ctx,
        key=idempotency_key,
        principal=principal,
        endpoint="create",
        fingerprint=fingerprint,
        object_id=inquiry.id,
        status_code=201,
    )
    try:
        committed = await commit_or_replay(session, key=idempotency_key)
    except IntegrityError:
        if hq_request is None:
            raise
        # uq_inquiries_hq_request_id: another HQ operator executed the request at the same moment.
        raise HqRequestAlreadyExecuted("The request was executed by another inquiry") from None
    if not committed:
        replay = await replayed_id(
            session, key=idempotency_key, principal=principal, endpoint="create", fingerprint=fingerprint
        )
        if replay is None and hq_request is not None:
            raise HqRequestAlreadyExecuted("The request was executed by another inquiry")
        replayed = await load_inquiry(session, replay or "")
        await end_replay(session, replayed)
        return Created(replayed, True)
    _deliver_after_commit(ctx, claimed, inquiry)
    return Created(inquiry, False)


def _draft_expiry(ctx: AppContext, business_date: date, branch_code: str) -> datetime:
    day = business_date
    for _ in range(ctx.policy.draft_lifetime_business_days - 1):
        day = ctx.calendar.next_business_day(day, branch_code)
    return ctx.calendar.end_of_next_business_day(day, branch_code)


async def _self_inquiry_checked(
    session: AsyncSession, ctx: AppContext, actor: Actor, operator: _Operator, subject: dict[str, Any]
) -> bool:
    """PL-5, for a new draft and for every change of one: an inquiry about the operator themself is
    refused (the refusal recorded and committed) or, where the policy says ``flag``, goes on flagged.
    True when it is to be flagged."""
    if not _is_self_inquiry(operator, subject):
        return False
    if ctx.policy.self_inquiry == "refuse":
        record(
            session, actor=actor, action="inquiry.refused", outcome="denied", details={"code": "SELF_INQUIRY"}
        )
        await session.commit()
        raise SelfInquiry("You cannot inquire about yourself", audited=True)
    return True


async def is_about_user(session: AsyncSession, user_id: str, subject: dict[str, Any]) -> bool:
    """True when ``subject`` is the user ``user_id`` (PL-5): the branch operator behind an HQ request."""
    user = await session.get(User, user_id)
    return user is not None and _is_self_inquiry(_Operator(user.name_kana, user.birth_date), subject)


def _is_self_inquiry(operator: _Operator, subject: dict[str, Any]) -> bool:
    if operator.name_kana is None or operator.birth_date is None:
        return False
    return (
        kana_key(operator.name_kana) == kana_key(subject["name_kana"])
        and operator.birth_date.isoformat() == subject["birth_date"]
    )


async def update_draft(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    inquiry_id: str,
    body: InquiryUpdate,
    raw_body: Any,
) -> Inquiry:
    """Change a draft awaiting approval; its outstanding approval numbers are voided (A2)."""
    inquiry = await load_inquiry(session, inquiry_id, for_update=True)
    _ensure_can_see(principal, inquiry)
    if principal.id != inquiry.operator_id:
        raise Forbidden("Only the operator who entered the draft can change it")
    actor = principal.actor()
    await refuse_my_number(session, actor=actor, raw_body=raw_body, action="inquiry.refused")
    if await _expire_if_stale(session, ctx, inquiry, actor):
        await session.commit()
        raise InvalidState("The draft expired before it was approved")
    if inquiry.status != "awaiting_approval":
        raise InvalidState("Only a draft awaiting approval can be changed")
    today = business_date_of(ctx.clock.now())
    subject = (
        open_subject(ctx, inquiry) if body.subject is None else normalised_subject(body.subject, today=today)
    )
    # The changed subject is checked as a new one is, before anything of the draft changes (a refusal
    # commits its record): a draft about someone else must not become one about the operator. IR-1's
    # switches are asked again in the same statement.
    operator = await _refuse_if_suspended(session, principal, branch_code=inquiry.branch_code)
    # Checked whichever of the two changed: a new birth date can make the recorded consent date wrong.
    check_consent_obtained(
        body.consent_document.obtained_on
        if body.consent_document is not None
        else inquiry.consent_obtained_on,
        business_date=inquiry.business_date,
        born_on=subject["birth_date"],
    )
    flagged = await _self_inquiry_checked(session, ctx, actor, operator, subject)
    inquiry.flags = [flag for flag in inquiry.flags if flag != InquiryFlag.SELF_INQUIRY] + (
        [InquiryFlag.SELF_INQUIRY] if flagged else []
    )
    inquiry.purpose = body.purpose or inquiry.purpose
    inquiry.customer_status = body.customer_status or inquiry.customer_status
    if body.consent_document is not None:
        inquiry.consent_type = body.consent_document.type
        inquiry.consent_reference = body.consent_document.reference
        inquiry.consent_obtained_on = body.consent_document.obtained_on
    check_purpose(
        ctx,
        purpose=inquiry.purpose,
        customer_status=inquiry.customer_status,
        document_type=inquiry.consent_type,
    )
    seal_subject(ctx, inquiry, subject)
    new_hash = draft_hash(ctx, inquiry, subject)
    if new_hash != inquiry.draft_hash:
        inquiry.draft_hash = new_hash
        # A corrected draft goes back to the confirmer without the earlier refusal against it.
        inquiry.flags = [flag for flag in inquiry.flags if flag != InquiryFlag.APPROVAL_REFUSED]
        await approvals.close_numbers(
            session, ctx=ctx, inquiry_id=inquiry.id, state="voided", reason="draft_changed", actor=actor
        )
    inquiry.updated_at = ctx.clock.now()
    record(
        session,
        actor=actor,
        action="inquiry.draft_changed",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"purpose": inquiry.purpose, "subject_pseudonym": inquiry.subject_pseudonym},
    )
    await session.commit()
    return inquiry


# -- method A -----------------------------------------------------------------------------------------


async def issue_approval_number(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    inquiry_id: str,
    correction: CorrectionFields | None = None,
) -> tuple[str, datetime]:
    """A confirmer ≠ operator issues a one-time number for this draft, for cancelling it, or for
    exactly the ``correction`` given (CC-1)."""
    # The route's own permission, asked here so the API and the panel run the same check (AU-6).
    authorize(principal, "inquiry.approve")
    inquiry = await load_inquiry(session, inquiry_id, for_update=True)
    _ensure_can_see(principal, inquiry)
    actor = principal.actor()
    ensure_may_confirm(
        confirmer_id=principal.id,
        confirmer_roles=principal.role_branches,
        confirmer_active=True,
        branch_code=inquiry.branch_code,
        operator_ids=await hq_execution.operators_of(session, inquiry),
    )
    if correction is not None:
        # The number approves exactly this correction (CC-1): it is bound to the changes it makes.
        _ensure_correctable(inquiry)
        purpose, bound = (
            "correct",
            correction_binding(ctx, inquiry, correction_changes(ctx, inquiry, correction)),
        )
    elif await _expire_if_stale(session, ctx, inquiry, actor):
        await session.commit()
        raise InvalidState("The draft expired before it was approved")
    elif inquiry.status == "awaiting_approval":
        _ensure_not_refused(inquiry)
        purpose, bound = "submit", inquiry.draft_hash
    elif inquiry.status in OPEN_FOR_CANCEL:
        purpose, bound = "cancel", cancel_binding(ctx, inquiry)
    else:
        raise InvalidState(f"No approval can be issued while the inquiry is {inquiry.status}")
    number, row = await approvals.issue_number(
        session, ctx=ctx, inquiry=inquiry, confirmer=actor, purpose=purpose, bound_hash=bound
    )
    await session.commit()
    return number, row.expires_at


# Why a confirmer declines to approve a draft (method A): a closed list, so the ledger never holds free
# text that might name the subject.
APPROVAL_REFUSAL_REASONS = (
    "document_missing",
    "document_mismatch",
    "purpose_not_covered",
    "subject_mismatch",
    "other",
)


def _ensure_not_refused(inquiry: Inquiry) -> None:
    """A refusal stands until the operator corrects the draft (which clears it) or cancels it: another
    confirmer's number or credentials for the very draft one confirmer declined would overrule it."""
    if InquiryFlag.APPROVAL_REFUSED in inquiry.flags:
        raise InvalidState("A confirmer refused this draft: correct it or cancel it")


async def refuse_approval(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, inquiry_id: str, reason: str
) -> Inquiry:
    """A confirmer ≠ operator declines a draft: its numbers are voided and it is flagged until corrected.

    The draft stays awaiting approval so the operator can correct it (which clears the flag) or cancel it.
    """
    if reason not in APPROVAL_REFUSAL_REASONS:
        raise ValidationFailed(f"reason must be one of: {', '.join(APPROVAL_REFUSAL_REASONS)}")
    # The route's own permission, asked here so the API and the panel run the same check (AU-6).
    authorize(principal, "inquiry.approve")
    inquiry = await load_inquiry(session, inquiry_id, for_update=True)
    _ensure_can_see(principal, inquiry)
    actor = principal.actor()
    ensure_may_confirm(
        confirmer_id=principal.id,
        confirmer_roles=principal.role_branches,
        confirmer_active=True,
        branch_code=inquiry.branch_code,
        operator_ids=await hq_execution.operators_of(session, inquiry),
    )
    if await _expire_if_stale(session, ctx, inquiry, actor):
        await session.commit()
        raise InvalidState("The draft expired before it was approved")
    if inquiry.status != "awaiting_approval":
        raise InvalidState(f"Only a draft awaiting approval can be refused; the inquiry is {inquiry.status}")
    await approvals.close_numbers(
        session, ctx=ctx, inquiry_id=inquiry.id, state="voided", reason="approval_refused", actor=actor
    )
    inquiry.flags = sorted({*inquiry.flags, InquiryFlag.APPROVAL_REFUSED})
    inquiry.updated_at = ctx.clock.now()
    record(
        session,
        actor=actor,
        action="inquiry.approval_refused",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"reason": reason},
    )
    await session.commit()
    return inquiry


async def submit(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    inquiry_id: str,
    approval: Approval,
    raw_body: Any,
    idempotency_key: str | None,
) -> Inquiry:
    """The operator sends an approved draft: it is queued for the center in the same transaction."""
    checked = await approvals.check_confirmer_first(ctx, approval)
    fingerprint = request_fingerprint(ctx, {"inquiry": inquiry_id, "body": raw_body})
    inquiry, is_replay = await _locked_or_replayed(
        session,
        inquiry_id,
        key=idempotency_key,
        principal=principal,
        endpoint="submit",
        fingerprint=fingerprint,
    )
    if is_replay:
        await end_replay(session, inquiry)
        return inquiry
    # The typed confirmer ID is kept with a refused approval (PL-4).
    await refuse_my_number(session, actor=principal.actor(), raw_body=raw_body, action="inquiry.refused")
    _ensure_can_see(principal, inquiry)
    authorize(principal, "inquiry.submit", branch_code=inquiry.branch_code)
    await _refuse_if_suspended(session, principal, branch_code=inquiry.branch_code)
    if principal.id != inquiry.operator_id:
        raise Forbidden("Only the operator who entered the draft can submit it")
    actor = principal.actor()
    if await _expire_if_stale(session, ctx, inquiry, actor):
        await session.commit()
        raise InvalidState("The draft expired before it was approved")
    if inquiry.status != "awaiting_approval":
        raise InvalidState(f"The inquiry is already {inquiry.status}")
    _ensure_not_refused(inquiry)
    # Checked against the policy in force now, not only the one the draft was entered under: after a
    # restart with a stricter table a waiting draft must not reach the center (PL-1, PL-2).
    check_purpose(
        ctx,
        purpose=inquiry.purpose,
        customer_status=inquiry.customer_status,
        document_type=inquiry.consent_type,
    )
    granted = await approvals.verify_approval(
        session,
        ctx=ctx,
        inquiry=inquiry,
        approval=approval,
        checked=checked,
        purpose="submit",
        bound_hash=inquiry.draft_hash,
        actor=actor,
    )
    # Every number ends in exactly one state: a spare one issued for this draft can no longer be used.
    await approvals.close_numbers(
        session, ctx=ctx, inquiry_id=inquiry.id, state="voided", reason="draft_sent", actor=actor
    )
    _approve(inquiry, granted, principal.terminal_id)
    record(
        session,
        actor=actor,
        action="inquiry.approved",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"method": granted.method, "confirmer_id": granted.confirmer_id},
    )
    claimed = _queue(session, ctx, inquiry, actor)
    remember_idempotency(
        session,
        ctx,
        key=idempotency_key,
        principal=principal,
        endpoint="submit",
        fingerprint=fingerprint,
        object_id=inquiry.id,
        status_code=200,
    )
    if not await commit_or_replay(session, key=idempotency_key):
        return await replay_after_lost_race(
            session, key=idempotency_key, principal=principal, endpoint="submit", fingerprint=fingerprint
        )
    _deliver_after_commit(ctx, claimed, inquiry)
    return inquiry


async def wait_for_center(ctx: AppContext, inquiry_id: str) -> Inquiry | None:
    """Wait briefly for the center's answer so an interactive submit usually returns it at once."""
    started = ctx.deliveries.take_started(inquiry_id)
    if started is not None:
        # This request's own delivery: its result is the inquiry as stored, no need to read it again.
        done, _ = await asyncio.wait({started}, timeout=ctx.policy.interactive_submit_wait_seconds)
        if done and started.result() is not None:
            stored: Inquiry = started.result()
            return stored
        # Still on its way (it goes on without us), or left for a retry: answer with the state as it is.
        async with ctx.db.read_session() as session:
            return await session.get(Inquiry, inquiry_id)
    with ctx.deliveries.watch(inquiry_id) as settled:
        ctx.outbox_kick()
        try:
            async with asyncio.timeout(ctx.policy.interactive_submit_wait_seconds):
                while True:
                    # The signal comes from this process's sender; the timeout catches another's.
                    with contextlib.suppress(TimeoutError):
                        # asyncio.timeout, not wait_for (which on 3.11 can lose a cancellation).
                        async with asyncio.timeout(CROSS_PROCESS_POLL_SECONDS):
                            await settled.wait()
                    settled.clear()
                    async with ctx.db.read_session() as session:
                        inquiry = await session.get(Inquiry, inquiry_id)
                    if inquiry is None or inquiry.status != "queued":
                        return inquiry
        except TimeoutError:
            pass
    async with ctx.db.read_session() as session:
        return await session.get(Inquiry, inquiry_id)


# -- method B -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Released:
    inquiry: Inquiry
    response: SealedResponse
    record: dict[str, Any]


@dataclass(frozen=True)
class ReleaseDuty:
    """Method B for one inquiry: whose confirmer releases its response, who counts as its operator (may
    never release it), and which of those reads it as its operator after release when the policy allows."""

    branch_code: str
    operator_ids: tuple[str, ...]
    reading_operator_ids: tuple[str, ...]


async def release_duty(session: AsyncSession, *, ctx: AppContext, inquiry: Inquiry) -> ReleaseDuty:
    operators = await hq_execution.operators_of(session, inquiry)
    request = await hq_execution.releasing_request(session, ctx=ctx, inquiry=inquiry)
    if request is None:
        # The requester of an HQ inquiry whose answer stays at HQ is still its operator: they may not
        # release it (SD-1), but they get only the list back, not the answer to read.
        return ReleaseDuty(inquiry.branch_code, operators, (inquiry.operator_id,))
    # HQ-2, method B at the requesting branch: that branch's confirmer, neither the operator who asked
    # nor HQ's operator who ran the inquiry; the one who asked reads the answer once it is released.
    return ReleaseDuty(request.branch_code, operators, operators)


def _ensure_can_see_for(principal: Principal, inquiry: Inquiry, duty: ReleaseDuty) -> str:
    """The branch (the inquiry's, or the one that releases it) in whose name the caller sees it."""
    for branch_code in dict.fromkeys((inquiry.branch_code, duty.branch_code)):
        if may(principal, "inquiry.read", branch_code=branch_code):
            return branch_code
    raise OutOfScope("No such inquiry")


async def release(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    inquiry_id: str,
    password: str,
    document_check: str,
    note: str | None,
    totp: str | None = None,
) -> Released:
    """A confirmer ≠ operator re-authenticates, checks the response against the document and releases it."""
    # The route's own permission, asked here so the API and the panel run the same check (AU-6).
    authorize(principal, "inquiry.release")
    # The re-authentication's Argon2id runs before the transaction and its row lock (PasswordCheck).
    checked = await check_password_first(ctx, principal.id, password)
    # The note is kept with the release, sealed, and a mismatch's with its escalation too (PL-4).
    await refuse_my_number(
        session, actor=principal.actor(), raw_body={"note": note}, action="inquiry.refused"
    )
    inquiry = await load_inquiry(session, inquiry_id, for_update=True)
    duty = await release_duty(session, ctx=ctx, inquiry=inquiry)
    _ensure_can_see_for(principal, inquiry, duty)
    actor = principal.actor()
    ensure_may_confirm(
        confirmer_id=principal.id,
        confirmer_roles=principal.role_branches,
        confirmer_active=True,
        branch_code=duty.branch_code,
        operator_ids=duty.operator_ids,
    )
    if inquiry.status != "held":
        raise InvalidState(f"Only a held response can be released; the inquiry is {inquiry.status}")
    if inquiry.response_state == "destroyed":
        # Before the password is judged: a confirmer's typing error on a response that is gone would
        # otherwise count towards their lockout.
        raise ResponseDestroyed("The response was destroyed at the end of its use period")
    confirmer = await session.get(User, principal.id)
    # Locked before it is judged: parallel re-authentications take turns, so none releases on a lock
    # state another wrong password is about to change (AU-5).
    throttle = await lock_throttle(session, ctx, principal.id)
    fresh = confirmer is not None and throttle.locked_at is None
    if not fresh or not await checked.matches(ctx.passwords, confirmer.password_hash if confirmer else None):
        await count_failed_password(
            session, ctx=ctx, user=confirmer, attempted_user_id=principal.id, actor=actor
        )
        record(
            session,
            actor=actor,
            action="inquiry.release_refused",
            object_type="inquiry",
            object_id=inquiry.id,
            outcome="denied",
            details={"code": "REAUTH_FAILED"},
        )
        await session.commit()
        raise ReauthFailed("The password is wrong", audited=True)
    if ctx.policy.totp_required_for(duty.branch_code) and not await verify_code(
        session, ctx=ctx, user_id=principal.id, code=totp
    ):
        # The branch's policy asks confirmers for their second factor at release too (AU-8). A wrong
        # code counts toward the lockout as at login (AU-5), or a held session and password would allow
        # guessing the six digits without end; a missing one is no guess and is only refused.
        if totp:
            await count_failed_password(
                session, ctx=ctx, user=confirmer, attempted_user_id=principal.id, actor=actor
            )
        record(
            session,
            actor=actor,
            action="inquiry.release_refused",
            object_type="inquiry",
            object_id=inquiry.id,
            outcome="denied",
            details={"code": "REAUTH_FAILED", "reason": "totp"},
        )
        await session.commit()
        raise ReauthFailed("The second-factor code is missing or wrong", audited=True)
    response = await session.get(SealedResponse, inquiry.id)
    assert response is not None
    content = open_response(ctx, response)
    now = ctx.clock.now()
    inquiry.status = "released"
    inquiry.response_state = "released"
    inquiry.released_by = principal.id
    inquiry.released_at = now
    inquiry.document_check = document_check
    # Kept with the release whatever the check found (a mismatch's also goes to its escalation).
    seal_text(ctx.keyring, inquiry, "release_note", (note or "")[:400])
    inquiry.updated_at = now
    record(
        session,
        actor=actor,
        action="inquiry.released",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"document_check": document_check, "note_given": bool(note)},
    )
    if document_check == "mismatch":
        inquiry.flags = sorted({*inquiry.flags, InquiryFlag.SUSPECTED_MISUSE})
        escalation = Escalation(
            id=str(uuid.uuid4()),
            kind="document_mismatch",
            # The releasing branch's manager: for HQ's answer released at the requesting branch, theirs.
            branch_code=duty.branch_code,
            object_type="inquiry",
            object_id=inquiry.id,
            recipients=["branch_manager", "hq_compliance"],
            created_at=now,
            raised_by=principal.id,
        )
        seal_text(ctx.keyring, escalation, "remark", (note or "")[:400])
        session.add(escalation)
        record(
            session,
            actor=actor,
            action="inquiry.suspected_misuse",
            object_type="inquiry",
            object_id=inquiry.id,
            details={"escalation_id": escalation.id, "recipients": escalation.recipients},
        )
    record(
        session,
        actor=actor,
        action="inquiry.response_read",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"reader_role": "releasing_confirmer", "subject_pseudonym": inquiry.subject_pseudonym},
    )
    await session.commit()
    return Released(inquiry, response, content)


async def read_response(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, inquiry_id: str
) -> tuple[Inquiry, SealedResponse, dict[str, Any]]:
    """The releasing confirmer, or the operator when policy allows; never auditors. Every read is logged."""
    inquiry = await load_inquiry(session, inquiry_id)
    duty = await release_duty(session, ctx=ctx, inquiry=inquiry)
    _ensure_may_read_response(ctx, principal, inquiry, duty)
    response = await session.get(SealedResponse, inquiry.id)
    assert response is not None
    content = open_response(ctx, response)
    record(
        session,
        actor=principal.actor(),
        action="inquiry.response_read",
        object_type="inquiry",
        object_id=inquiry.id,
        details={
            "reader_role": "operator" if principal.id in duty.reading_operator_ids else "releasing_confirmer",
            "subject_pseudonym": inquiry.subject_pseudonym,
        },
    )
    await session.commit()
    return inquiry, response, content


def _ensure_may_read_response(
    ctx: AppContext, principal: Principal, inquiry: Inquiry, duty: ReleaseDuty
) -> None:
    authorize(principal, "inquiry.read_response", branch_code=_ensure_can_see_for(principal, inquiry, duty))
    if inquiry.response_state == "destroyed":
        raise ResponseDestroyed("The response was destroyed at the end of its use period")
    if inquiry.status == "cancelled":
        # CC-1: the inquiry was made in error and is void at the center too; its answer has no purpose
        # left to serve, so nobody reads it any more (a held one was never released: release refuses).
        raise Forbidden("The inquiry was cancelled: its response may no longer be read")
    if inquiry.response_state == "none":
        # Still RESPONSE_HELD, as the contract says for a response nobody may read yet, but the detail
        # says why: staff waiting on a queued inquiry or looking at a failed one should not be told to
        # ask a confirmer for a release that can never come.
        raise ResponseHeld(f"No response has been received for this inquiry (it is {inquiry.status})")
    if inquiry.response_state == "held":
        raise ResponseHeld("The response is held until a confirmer other than the operator releases it")
    if principal.id in duty.reading_operator_ids:
        if not ctx.policy.operator_reads_after_release:
            raise Forbidden("The policy does not let operators read released responses")
        if InquiryFlag.SUSPECTED_MISUSE in inquiry.flags:
            raise Forbidden("The response is withheld: the document check found a mismatch")
    elif principal.id != inquiry.released_by:
        raise Forbidden("Only the releasing confirmer and the operator may read this response")


@dataclass(frozen=True)
class OfferedActions:
    """What an inquiry's page offers its caller: exactly what the service would let them do now."""

    approve: bool
    release: bool
    read_response: bool


async def offered_actions(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, inquiry: Inquiry
) -> OfferedActions:
    """Asked of the same rules as :func:`issue_approval_number`, :func:`release` and :func:`read_response`
    (method A, method B, SD-1), so a page never hands the operator a form to release their own answer."""
    duty = await release_duty(session, ctx=ctx, inquiry=inquiry)
    try:
        _ensure_may_read_response(ctx, principal, inquiry, duty)
        readable = True
    except DomainError:
        readable = False
    return OfferedActions(
        approve=inquiry.status == "awaiting_approval"
        # The duty's operators are the inquiry's (``hq_execution.operators_of``), at either stage.
        and may_confirm(
            principal, "inquiry.approve", branch_code=inquiry.branch_code, operator_ids=duty.operator_ids
        ),
        release=inquiry.status == "held"
        and may_confirm(
            principal, "inquiry.release", branch_code=duty.branch_code, operator_ids=duty.operator_ids
        ),
        read_response=readable,
    )


# -- cancellation (CC-1) ------------------------------------------------------------------------------


async def cancel(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    inquiry_id: str,
    reason: str,
    approval: Approval,
    raw_body: Any,
    idempotency_key: str | None,
) -> Inquiry:
    """Cancel with the same two-person control as sending; a sent inquiry is cancelled at the center too."""
    checked = await approvals.check_confirmer_first(ctx, approval)
    fingerprint = request_fingerprint(ctx, {"inquiry": inquiry_id, "body": raw_body})
    inquiry, is_replay = await _locked_or_replayed(
        session,
        inquiry_id,
        key=idempotency_key,
        principal=principal,
        endpoint="cancel",
        fingerprint=fingerprint,
    )
    if is_replay:
        await end_replay(session, inquiry)
        return inquiry
    # The reason is stored and sent to the center with the cancellation (PL-4).
    await refuse_my_number(session, actor=principal.actor(), raw_body=raw_body, action="inquiry.refused")
    _ensure_can_see(principal, inquiry)
    authorize(principal, "inquiry.cancel", branch_code=inquiry.branch_code)
    if principal.id != inquiry.operator_id:
        raise Forbidden("Only the operator who entered the inquiry can cancel it")
    actor = principal.actor()
    # A draft past its lifetime has already ended as expired (api.md), whoever looks at it first.
    if await _expire_if_stale(session, ctx, inquiry, actor):
        await session.commit()
        raise InvalidState("The draft expired before it was approved; there is nothing to cancel")
    if inquiry.status not in OPEN_FOR_CANCEL:
        raise InvalidState(f"An inquiry that is {inquiry.status} cannot be cancelled")
    bound = inquiry.draft_hash if inquiry.status == "awaiting_approval" else cancel_binding(ctx, inquiry)
    purpose = "submit" if inquiry.status == "awaiting_approval" else "cancel"
    granted = await approvals.verify_approval(
        session,
        ctx=ctx,
        inquiry=inquiry,
        approval=approval,
        checked=checked,
        purpose=purpose,
        bound_hash=bound,
        actor=actor,
    )
    now = ctx.clock.now()
    sent = inquiry.center_inquiry_id is not None
    inquiry.status = "cancelled"
    inquiry.cancelled_at = now
    inquiry.cancelled_by = principal.id
    inquiry.cancel_confirmer_id = granted.confirmer_id
    seal_text(ctx.keyring, inquiry, "cancel_reason", reason)
    inquiry.updated_at = now
    await approvals.close_numbers(
        session, ctx=ctx, inquiry_id=inquiry.id, state="voided", reason="cancelled", actor=actor
    )
    if sent:
        outbox.enqueue(session, ctx=ctx, inquiry=inquiry, kind="cancel", payload={"reason": reason})
    record(
        session,
        actor=actor,
        action="inquiry.cancelled",
        object_type="inquiry",
        object_id=inquiry.id,
        details={"confirmer_id": granted.confirmer_id, "method": granted.method, "at_center": sent},
    )
    remember_idempotency(
        session,
        ctx,
        key=idempotency_key,
        principal=principal,
        endpoint="cancel",
        fingerprint=fingerprint,
        object_id=inquiry.id,
        status_code=200,
    )
    if not await commit_or_replay(session, key=idempotency_key):
        return await replay_after_lost_race(
            session, key=idempotency_key, principal=principal, endpoint="cancel", fingerprint=fingerprint
        )
    if sent:
        ctx.outbox_kick()
    return inquiry


# -- correction (CC-1) --------------------------------------------------------------------------------


def _ensure_correctable(inquiry: Inquiry) -> None:
    if inquiry.status not in OPEN_FOR_CORRECT or inquiry.center_inquiry_id is None:
        raise InvalidState(
            f"Only a record the center holds can be corrected; the inquiry is {inquiry.status}"
        )
    if InquiryFlag.CORRECTED in inquiry.flags:
        raise InvalidState("The record was corrected once already: cancel it and inquire anew")


def correction_changes(ctx: AppContext, inquiry: Inquiry, fields: CorrectionFields) -> dict[str, list[Any]]:
    """Each field the correction changes as ``[before, after]``, after the rules a correction must keep.

    The corrected record must still pass the purpose table (PL-2) with the inquiry's customer status.
    A purpose may only be corrected to one for which the center answers the same part of the record
    (RECORD_SCOPE_BY_PURPOSE) in the same way (the trade-information purposes): the answer already in
    hand was cut for the purpose sent, and one that would have seen more or less is another inquiry.
    Consent must have been obtained by the day of the inquiry.
    """
    changes: dict[str, list[Any]] = {}
    recorded = {
        "type": inquiry.consent_type,
        "reference": inquiry.consent_reference,
        "obtained_on": inquiry.consent_obtained_on.isoformat(),
    }
    purpose = fields.purpose if fields.purpose is not None else inquiry.purpose
    document = recorded
    if purpose != inquiry.purpose:
        changes["purpose"] = [inquiry.purpose, purpose]
    if fields.consent_document is not None:
        document = fields.consent_document.model_dump(mode="json")
        check_consent_obtained(
            fields.consent_document.obtained_on,
            business_date=inquiry.business_date,
            born_on=open_subject(ctx, inquiry)["birth_date"],
        )
        if document != recorded:
            changes["consent_document"] = [recorded, document]
    if not changes:
        raise ValidationFailed("The correction changes nothing in the record")
    check_purpose(
        ctx, purpose=purpose, customer_status=inquiry.customer_status, document_type=document["type"]
    )
    if "purpose" in changes and (
        RECORD_SCOPE_BY_PURPOSE.get(inquiry.purpose) != RECORD_SCOPE_BY_PURPOSE.get(purpose)
        or (inquiry.purpose in TRADE_INFO_PURPOSES) != (purpose in TRADE_INFO_PURPOSES)
    ):
        raise ValidationFailed(
            "The center answers this purpose differently: cancel the inquiry and inquire anew"
        )
    return changes


def correction_binding(ctx: AppContext, inquiry: Inquiry, changes: dict[str, list[Any]]) -> str:
    content = orjson.dumps(changes, option=orjson.OPT_SORT_KEYS).decode()
    return ctx.keyring.blind_index(f"correct:{inquiry.id}:{inquiry.draft_hash}:{content}", domain="draft")


async def correction_of(session: AsyncSession, inquiry_id: str) -> InquiryCorrection | None:
    return await session.scalar(select(InquiryCorrection).where(InquiryCorrection.inquiry_id == inquiry_id))


async def correct(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    inquiry_id: str,
    reason: str,
    fields: CorrectionFields,
    approval: Approval,
    raw_body: Any,
    idempotency_key: str | None,
) -> tuple[Inquiry, InquiryCorrection]:
    """Correct a sent inquiry's record with the same two-person control as cancelling it; a corrected
    purpose is corrected at the center too (through the outbox, with its own idempotency key)."""
    checked = await approvals.check_confirmer_first(ctx, approval)
    fingerprint = request_fingerprint(ctx, {"inquiry": inquiry_id, "body": raw_body})
    inquiry, is_replay = await _locked_or_replayed(
        session,
        inquiry_id,
        key=idempotency_key,
        principal=principal,
        endpoint="correct",
        fingerprint=fingerprint,
    )
    if is_replay:
        stored = await correction_of(session, inquiry.id)
        assert stored is not None
        await end_replay(session, inquiry, stored)
        return inquiry, stored
    # The reason and the corrected fields are stored, and a corrected purpose goes to the center (PL-4).
    await refuse_my_number(session, actor=principal.actor(), raw_body=raw_body, action="inquiry.refused")
    _ensure_can_see(principal, inquiry)
    authorize(principal, "inquiry.correct", branch_code=inquiry.branch_code)
    if principal.id != inquiry.operator_id:
        raise Forbidden("Only the operator who entered the inquiry can correct it")
    _ensure_correctable(inquiry)
    changes = correction_changes(ctx, inquiry, fields)
    actor = principal.actor()
    granted = await approvals.verify_approval(
        session,
        ctx=ctx,
        inquiry=inquiry,
        approval=approval,
        checked=checked,
        purpose="correct",
        bound_hash=correction_binding(ctx, inquiry, changes),
        actor=actor,
    )
    now = ctx.clock.now()
    # The inquiry keeps what was sent and approved (its list lines, checked then, must not change under
    # their checks); the correction is a record of its own, as the center keeps a correction entry.
    inquiry.flags = sorted({*inquiry.flags, InquiryFlag.CORRECTED})
    inquiry.updated_at = now
    # Only the purpose is on the center's record; the consent document is the gateway's alone.
    at_center = "purpose" in changes
    correction = InquiryCorrection(
        id=str(uuid.uuid4()),
        inquiry_id=inquiry.id,
        branch_code=inquiry.branch_code,
        corrected_at=now,
        corrected_by=principal.id,
        confirmer_id=granted.confirmer_id,
        approval_method=granted.method,
        changes=changes,
        at_center=at_center,
    )
    seal_text(ctx.keyring, correction, "reason", reason)
    session.add(correction)
    await approvals.close_numbers(
        session, ctx=ctx, inquiry_id=inquiry.id, state="voided", reason="corrected", actor=actor
    )
    if at_center:
        outbox.enqueue(
            session,
            ctx=ctx,
            inquiry=inquiry,
            kind="correct",
            payload={"reason": reason[:200], "purpose": changes["purpose"][1]},
        )
    record(
        session,
        actor=actor,
        action="inquiry.corrected",
        object_type="inquiry",
        object_id=inquiry.id,
        # Field names only: the consent document number is personal data (see the data ledger).
        details={
            "correction_id": correction.id,
            "fields": sorted(changes),
            "confirmer_id": granted.confirmer_id,
            "method": granted.method,
            "at_center": at_center,
        },
    )
    remember_idempotency(
        session,
        ctx,
        key=idempotency_key,
        principal=principal,
        endpoint="correct",
        fingerprint=fingerprint,
        object_id=inquiry.id,
        status_code=200,
    )
    if not await commit_or_replay(session, key=idempotency_key):
        replayed = await replay_after_lost_race(
            session, key=idempotency_key, principal=principal, endpoint="correct", fingerprint=fingerprint
        )
        stored = await correction_of(session, replayed.id)
        assert stored is not None
        await end_replay(session, replayed, stored)
        return replayed, stored
    if at_center:
        ctx.outbox_kick()
    return inquiry, correction


# -- reading ------------------------------------------------------------------------------------------


async def get_inquiry(session: AsyncSession, *, principal: Principal, inquiry_id: str) -> Inquiry:
    """The inquiry if the caller may see it in the name of its own branch."""
    inquiry = await load_inquiry(session, inquiry_id)
    _ensure_can_see(principal, inquiry)
    return inquiry


async def get_inquiry_and_duty(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, inquiry_id: str
) -> tuple[Inquiry, ReleaseDuty]:
    """The inquiry and who releases its answer, if the caller may see it: HQ's inquiry whose answer the
    caller's branch releases (HQ-2, method B at the requesting branch) is visible to that branch too."""
    inquiry = await load_inquiry(session, inquiry_id)
    duty = await release_duty(session, ctx=ctx, inquiry=inquiry)
    _ensure_can_see_for(principal, inquiry, duty)
    return inquiry, duty


async def list_inquiries(
    session: AsyncSession,
    *,
    principal: Principal,
    branch_code: str | None,
    business_date: date | None,
    status: str | None,
    operator_id: str | None,
    limit: int,
    cursor: str | None,
    with_response_only: bool = False,
) -> tuple[list[Inquiry], str | None]:
    authorize(principal, "inquiry.read", branch_code=branch_code)
    query = select(Inquiry)
    if branch_code is not None:
        query = query.where(Inquiry.branch_code == branch_code)
    elif not may(principal, "inquiry.read", branch_code="*"):
        query = query.where(Inquiry.branch_code.in_(sorted(principal.branch_codes)))
    if business_date is not None:
        query = query.where(Inquiry.business_date == business_date)
    if status is not None:
        query = query.where(Inquiry.status == status)
    if operator_id is not None:
        query = query.where(Inquiry.operator_id == operator_id)
    if with_response_only:
        query = query.where(Inquiry.response_state != "destroyed")
    return await keyset_page(
        session, query, at=Inquiry.created_at, row_id=Inquiry.id, limit=limit, cursor=cursor
    )


def _confirming_branches(principal: Principal, action: str) -> list[str]:
    """The branches where the caller approves or releases (``action``): reading the whole bank, as an HQ
    confirmer does, is not confirming for every branch (method A, method B)."""
    return sorted(
        code
        for code in principal.branch_codes
        if may(principal, action, branch_code=code) and may(principal, "inquiry.confirm", branch_code=code)
    )


async def awaiting_approval(
    session: AsyncSession, *, principal: Principal, limit: int
) -> tuple[list[Inquiry], bool]:
    """Drafts this confirmer may approve, oldest first, and whether there are more than ``limit``: only
    their own branches', never one they entered (SD-1), so the page is not filled with work they would be
    refused and their own cut off."""
    drafts = (
        await session.scalars(
            select(Inquiry)
            .where(
                Inquiry.status == "awaiting_approval",
                Inquiry.branch_code.in_(_confirming_branches(principal, "inquiry.approve")),
                Inquiry.operator_id != principal.id,
            )
            .order_by(Inquiry.created_at, Inquiry.id)
            .limit(limit + 1)
        )
    ).all()
    shown = [
        draft
        for draft in drafts
        # An HQ inquiry run on a branch's request has its requester as a second operator.
        if draft.hq_request_id is None
        or may_confirm(
            principal,
            "inquiry.approve",
            branch_code=draft.branch_code,
            operator_ids=await hq_execution.operators_of(session, draft),
        )
    ]
    return shown[:limit], len(drafts) > limit


async def awaiting_release(
    session: AsyncSession, *, ctx: AppContext, principal: Principal, limit: int
) -> tuple[list[Inquiry], bool]:
    """Held responses this confirmer may release (method B), oldest first, and whether there are more
    than ``limit``: their branches' own that they did not enter, less HQ's answers that a requesting
    branch releases (HQ-2), plus HQ's answers held for release at one of their branches."""
    confirming = _confirming_branches(principal, "inquiry.release")
    held = [
        Inquiry.status == "held",
        # A response destroyed before anyone released it (RT-1) has nothing left to release; left out in
        # SQL, since those are the oldest and would fill the page.
        Inquiry.response_state != "destroyed",
    ]
    own = (
        await session.scalars(
            select(Inquiry)
            .where(*held, Inquiry.branch_code.in_(confirming), Inquiry.operator_id != principal.id)
            .order_by(Inquiry.created_at, Inquiry.id)
            .limit(limit + 1)
        )
    ).all()
    releasing = [code for code in confirming if "B" in ctx.policy.methods_for(code)]
    for_branch: list[Inquiry] = []
    if releasing:
        for_branch = list(
            (
                await session.scalars(
                    select(Inquiry)
                    .join(HqRequest, HqRequest.id == Inquiry.hq_request_id)
                    .where(*held, HqRequest.return_option == "none", HqRequest.branch_code.in_(releasing))
                    .order_by(Inquiry.created_at, Inquiry.id)
                    .limit(limit + 1)
                )
            ).all()
        )
    more = len(own) > limit or len(for_branch) > limit
    shown: list[Inquiry] = []
    for inquiry in sorted(
        {i.id: i for i in (*own, *for_branch)}.values(), key=lambda i: (i.created_at, i.id)
    ):
        if inquiry.hq_request_id is not None:
            # Only HQ's inquiries are released elsewhere than at their own branch, and have two operators.
            duty = await release_duty(session, ctx=ctx, inquiry=inquiry)
            if not may_confirm(
                principal, "inquiry.release", branch_code=duty.branch_code, operator_ids=duty.operator_ids
            ):
                continue
        shown.append(inquiry)
    return shown[:limit], more or len(shown) > limit


def may_see_subject(principal: Principal, inquiry: Inquiry, *, releasing_branch: str | None = None) -> bool:
    """Whether the caller may see the inquiry's subject: in its own branch's name, or in the name of the
    branch that releases it (HQ's answer released at the requesting branch, HQ-2 — that branch's
    confirmer checks the answer against the document, so must see whom it is about)."""
    branches = dict.fromkeys(code for code in (inquiry.branch_code, releasing_branch) if code is not None)
    return any(may(principal, "inquiry.read_subject", branch_code=code) for code in branches)


async def record_subject_views(
    session: AsyncSession,
    *,
    principal: Principal,
    inquiries: list[Inquiry],
    releasing_branch: str | None = None,
) -> None:
    """The API is about to show these inquiries: each one whose subject the caller may see is a view of
    that person (AC-6), recorded under the pseudonym before anything is returned. A failed write
    raises, so nothing is shown without its record. ``releasing_branch``: see :func:`may_see_subject`."""
    shown = [
        inquiry
        for inquiry in inquiries
        if may_see_subject(principal, inquiry, releasing_branch=releasing_branch)
    ]
    for inquiry in shown:
        record(
            session,
            actor=principal.actor(),
            action="inquiry.subject_viewed",
            object_type="inquiry",
            object_id=inquiry.id,
            details={"subject_pseudonym": inquiry.subject_pseudonym},
        )
    if shown:
        await session.commit()


async def trace(
    session: AsyncSession, *, principal: Principal, inquiry_id: str
) -> tuple[Inquiry, list[TracedEvent]]:
    """Every ledger event about this inquiry and the list lines it is on, in order (LG-5).
    Reading the trace is itself recorded."""
    # The role first (403 whether or not the inquiry exists), then the branch: an inquiry of a branch the
    # caller may not trace is reported as absent, as GET /inquiries/{id} does, since its existence is data.
    authorize(principal, "inquiry.trace")
    inquiry = await load_inquiry(session, inquiry_id)
    lists_of_branch = None
    if not may(principal, "inquiry.trace", branch_code=inquiry.branch_code):
        # HQ's inquiry run on a branch's request is that branch's inquiry too (HQ-1, HQ-2): its manager
        # follows what became of the request, on the branch's own lists; a branch that did not ask
        # still sees nothing.
        lists_of_branch = await hq_execution.requesting_branch(session, inquiry=inquiry)
        if lists_of_branch is None or not may(principal, "inquiry.trace", branch_code=lists_of_branch):
            raise NotFound("No such inquiry")
    events = await inquiry_trace_events(session, inquiry_id=inquiry.id, lists_of_branch=lists_of_branch)
    record(
        session,
        actor=principal.actor(),
        action="inquiry.trace_read",
        object_type="inquiry",
        object_id=inquiry.id,
    )
    await session.commit()
    return inquiry, events


def event_details(event: AuditEvent) -> dict[str, Any]:
    return dict(json.loads(event.details))


async def inquiry_numbers(session: AsyncSession, inquiry_ids: Iterable[str]) -> dict[str, str]:
    """Each inquiry's human number by id, for naming inquiries that other records point at (an
    escalation): staff know an inquiry by its number, not by its id."""
    wanted = sorted(set(inquiry_ids))
    if not wanted:
        return {}
    rows = await session.execute(select(Inquiry.id, Inquiry.number).where(Inquiry.id.in_(wanted)))
    return {row.id: row.number for row in rows}

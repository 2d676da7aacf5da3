"""Governance endpoints (api.md "Access governance and emergency controls"). Thin: parse, call one
service function, shape the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from app.authz.deps import CurrentPrincipal
from app.authz.schemas import Page, TerminalOut
from app.context import AppContext
from app.db import BIGINT_MAX
from app.deps import Context, DbSession
from app.errors import problem_responses
from app.governance import (
    access_requests,
    emergency,
    hr,
    incidents,
    lifecycle,
    privileged,
    recertification,
    register,
)
from app.governance.deps import (
    AccessApprover,
    AccessRequester,
    AccessReviewer,
    AccessSetter,
    Attester,
    CampaignManager,
    CampaignReader,
    DirectoryAdmin,
    HrFeed,
    IncidentManager,
    IncidentReader,
    InquiryWithdrawer,
    LifecycleChecker,
    PrivilegeReviewer,
    RegisterReader,
    SecurityOfficer,
    SuspensionReader,
)
from app.governance.models import Incident, IncidentEntry
from app.governance.schemas import (
    AccessRequestIn,
    AccessRequestOut,
    AppliedOut,
    AttestIn,
    BranchCloseIn,
    CampaignIn,
    CampaignItemOut,
    CampaignOut,
    DecisionIn,
    HrEventIn,
    HrEventOut,
    IncidentCloseIn,
    IncidentEntryIn,
    IncidentEntryOut,
    IncidentIn,
    IncidentOut,
    LifecycleCheckOut,
    LiftIn,
    PrivilegedSessionIn,
    PrivilegedSessionOut,
    RegisterEntryOut,
    ReviewCloseIn,
    ReviewIn,
    ReviewTaskOut,
    SecretHalfOut,
    SuspensionIn,
    SuspensionOut,
    TotpCodeIn,
    TotpEnrolmentOut,
    UserDeactivateIn,
    UserIn,
    UserOut,
    UserPatchIn,
)
from app.idempotency import IdempotencyKey, keyed_request
from app.inquiry import held
from app.inquiry.schemas import HeldInquiryOut, WithdrawRequest
from app.inquiry.subject import OptionalFreeText
from app.pagination import PageCursor, PageLimit

API_PREFIX = "/api/v1"
router = APIRouter(tags=["access governance"])
emergency_router = APIRouter(tags=["emergency controls and incidents"])


# -- access requests (AC-2) ---------------------------------------------------------------------------


@router.post(
    "/access-requests",
    summary="Request a grant, a revocation or an account change (AC-2)",
    status_code=status.HTTP_201_CREATED,
    response_model=AccessRequestOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_access_request(
    body: AccessRequestIn,
    principal: AccessRequester,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> AccessRequestOut:
    request = await access_requests.create_request(
        session,
        ctx=ctx,
        principal=principal,
        new=access_requests.NewAccessRequest(**body.model_dump()),
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="access_request.create", body=body.model_dump(mode="json")
        ),
    )
    return AccessRequestOut.model_validate(request)


@router.get(
    "/access-requests",
    summary="Access requests",
    response_model=Page[AccessRequestOut],
    responses=problem_responses(401, 403),
)
async def list_access_requests(
    principal: CurrentPrincipal,
    session: DbSession,
    # The request's states (access_requests.py): a filter on any other is refused, not answered empty.
    status_filter: Annotated[
        Literal["pending", "approved", "rejected", "applied", "expired"] | None, Query(alias="status")
    ] = None,
    user_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[AccessRequestOut]:
    rows, next_cursor = await access_requests.list_requests(
        session, principal=principal, status=status_filter, user_id=user_id, limit=limit, cursor=cursor
    )
    return Page[AccessRequestOut](
        items=[AccessRequestOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/access-requests/{request_id}/approve",
    summary="Approve: an access approver other than the requester and the user concerned",
    response_model=AccessRequestOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def approve_access_request(
    request_id: str,
    principal: AccessApprover,
    session: DbSession,
    ctx: Context,
    body: DecisionIn | None = None,
) -> AccessRequestOut:
    request = await access_requests.decide(
        session,
        ctx=ctx,
        principal=principal,
        request_id=request_id,
        approve=True,
        note=body.note if body else None,
    )
    return AccessRequestOut.model_validate(request)


@router.post(
    "/access-requests/{request_id}/reject",
    summary="Reject: an access approver other than the requester and the user concerned",
    response_model=AccessRequestOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def reject_access_request(
    request_id: str,
    principal: AccessApprover,
    session: DbSession,
    ctx: Context,
    body: DecisionIn | None = None,
) -> AccessRequestOut:
    request = await access_requests.decide(
        session,
        ctx=ctx,
        principal=principal,
        request_id=request_id,
        approve=False,
        note=body.note if body else None,
    )
    return AccessRequestOut.model_validate(request)


@router.post(
    "/access-requests/{request_id}/apply",
    summary="Apply an approved request: an access admin other than the approver and the user concerned",
    response_model=AppliedOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def apply_access_request(
    request_id: str, principal: AccessSetter, session: DbSession, ctx: Context
) -> AppliedOut:
    applied = await access_requests.apply(session, ctx=ctx, principal=principal, request_id=request_id)
    out = AccessRequestOut.model_validate(applied.request)
    return AppliedOut(**out.model_dump(), initial_password_half=applied.secret_half)


@router.post(
    "/access-requests/{request_id}/password-half",
    summary="The approver collects their half of a reset password, once",
    response_model=SecretHalfOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def collect_password_half(
    request_id: str, principal: AccessApprover, session: DbSession, ctx: Context
) -> SecretHalfOut:
    half = await access_requests.collect_secret_half(
        session, ctx=ctx, principal=principal, request_id=request_id
    )
    return SecretHalfOut(request_id=request_id, initial_password_half=half)


@router.post(
    "/users",
    summary="Create a user with no roles and no usable password (both come through access requests)",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_user(
    body: UserIn,
    principal: DirectoryAdmin,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> UserOut:
    user = await access_requests.create_user(
        session,
        ctx=ctx,
        principal=principal,
        user_id=body.id,
        name=body.name,
        name_kana=body.name_kana,
        birth_date=body.birth_date,
        phone=body.phone,
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="user.create", body=body.model_dump(mode="json")
        ),
    )
    return UserOut.model_validate(user)


@router.patch(
    "/users/{user_id}",
    summary="Correct a user's name fields, birth date or phone (roles change only by access request)",
    response_model=UserOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def update_user(
    user_id: str, body: UserPatchIn, principal: DirectoryAdmin, session: DbSession, ctx: Context
) -> UserOut:
    user = await access_requests.update_user(
        session, ctx=ctx, principal=principal, user_id=user_id, changes=body.model_dump(exclude_unset=True)
    )
    return UserOut.model_validate(user)


@router.post(
    "/users/{user_id}/deactivate",
    summary="Deactivate a user: every right revoked in the register, every session ended at once",
    response_model=UserOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def deactivate_user(
    user_id: str, body: UserDeactivateIn, principal: DirectoryAdmin, session: DbSession, ctx: Context
) -> UserOut:
    user = await lifecycle.deactivate_user(
        session, ctx=ctx, principal=principal, user_id=user_id, reason=body.reason
    )
    return UserOut.model_validate(user)


# -- the register (AC-3) ------------------------------------------------------------------------------


@router.get(
    "/access-register",
    summary="The append-only access-rights register; ?format=csv for the export (AC-3)",
    description=(
        "JSON pages by `limit` and `cursor`. The CSV export holds every entry after `cursor` (all of "
        "them without one; `limit` does not cut it), so a batch job fetches what was added since the "
        "`seq` of the last row it took."
    ),
    response_model=Page[RegisterEntryOut],
    responses={**problem_responses(401, 403), 200: {"content": {"text/csv": {}}}},
)
async def access_register(
    principal: RegisterReader,
    session: DbSession,
    # Recorded in the ledger with the read: an Individual Number typed here is refused as one (PL-4).
    user_id: Annotated[OptionalFreeText, Query(max_length=40)] = None,
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,  # ASCII: \d takes any script's
) -> Response | Page[RegisterEntryOut]:
    if format == "csv":
        exported = await register.export_csv(
            session,
            actor=principal.actor(),
            user_id=user_id,
            branch_code=branch_code,
            after_seq=int(cursor or 0),
        )
        return Response(
            exported,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="access-register.csv"'},
        )
    rows = await register.read_page(
        session,
        actor=principal.actor(),
        user_id=user_id,
        branch_code=branch_code,
        after_seq=int(cursor or 0),
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page[RegisterEntryOut](
        items=[RegisterEntryOut.model_validate(r) for r in rows],
        next_cursor=str(rows[-1].seq) if more and rows else None,
    )


# -- HR events, reviews and recertification (AC-4) ----------------------------------------------------


@router.post(
    "/hr-events",
    summary="An HR event: transfer, long leave, resignation or return (AC-4)",
    status_code=status.HTTP_201_CREATED,
    response_model=HrEventOut,
    responses=problem_responses(401, 403, 404, 422),
)
async def hr_event(
    body: HrEventIn,
    principal: HrFeed,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> HrEventOut:
    event = await hr.receive_event(
        session,
        ctx=ctx,
        principal=principal,
        user_id=body.user_id,
        kind=body.kind,
        effective_on=body.effective_on,
        to_branch_code=body.to_branch_code,
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="hr_event.create", body=body.model_dump(mode="json")
        ),
    )
    return HrEventOut.model_validate(event)


@router.get(
    "/reviews",
    summary="Review tasks",
    response_model=Page[ReviewTaskOut],
    responses=problem_responses(401, 403),
)
async def review_tasks(
    principal: AccessReviewer,
    session: DbSession,
    status_filter: Annotated[str | None, Query(alias="status", pattern="^(open|closed)$")] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[ReviewTaskOut]:
    rows, next_cursor = await recertification.list_review_tasks(
        session, principal=principal, status=status_filter, limit=limit, cursor=cursor
    )
    return Page[ReviewTaskOut](items=[ReviewTaskOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post(
    "/reviews/{task_id}/close",
    summary="Close a review task with its outcome",
    response_model=ReviewTaskOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def close_review(
    task_id: str, body: ReviewCloseIn, principal: AccessReviewer, session: DbSession, ctx: Context
) -> ReviewTaskOut:
    task = await recertification.close_review_task(
        session, ctx=ctx, principal=principal, task_id=task_id, outcome=body.outcome
    )
    return ReviewTaskOut.model_validate(task)


@router.post(
    "/recertification-campaigns",
    summary="Start a recertification campaign on demand or at a release (AC-4)",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignOut,
    responses=problem_responses(401, 403, 409),
)
async def start_campaign(
    body: CampaignIn,
    principal: CampaignManager,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> CampaignOut:
    campaign = await recertification.start_on_demand(
        session,
        ctx=ctx,
        principal=principal,
        reason=body.reason,
        note=body.note,
        deadline_at=body.deadline_at,
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="recertification.start", body=body.model_dump(mode="json")
        ),
    )
    return CampaignOut.model_validate(campaign)


@router.get(
    "/recertification-campaigns/{campaign_id}/items",
    summary="The rights the caller attests in a campaign (every item for access admins and auditors)",
    response_model=Page[CampaignItemOut],
    responses=problem_responses(401, 403, 404),
)
async def campaign_items(
    campaign_id: str,
    principal: CampaignReader,
    session: DbSession,
    pending: bool = False,
    limit: PageLimit = 100,
    # The id of the last item of the page before (ASCII digits: \d takes any script's).
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> Page[CampaignItemOut]:
    rows, last_id = await recertification.items_for(
        session,
        principal=principal,
        campaign_id=campaign_id,
        pending_only=pending,
        limit=limit,
        after_id=int(cursor) if cursor is not None else None,
    )
    await session.commit()  # the read is on the record
    return Page[CampaignItemOut](
        items=[CampaignItemOut.model_validate(r) for r in rows],
        next_cursor=str(last_id) if last_id is not None else None,
    )


@router.post(
    "/recertification-campaigns/{campaign_id}/items/{item_id}",
    summary="Attest or revoke one held right",
    response_model=CampaignItemOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def decide_item(
    campaign_id: str,
    item_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)],
    body: AttestIn,
    principal: Attester,
    session: DbSession,
    ctx: Context,
) -> CampaignItemOut:
    item = await recertification.decide_item(
        session,
        ctx=ctx,
        principal=principal,
        campaign_id=campaign_id,
        item_id=item_id,
        attest=body.decision == "attest",
        reason=body.reason,
    )
    return CampaignItemOut.model_validate(item)


# -- second factor and privileged sessions (AC-5, AU-8) -----------------------------------------------


@router.post(
    "/me/totp",
    summary="Start TOTP enrolment; the secret is shown once",
    status_code=status.HTTP_201_CREATED,
    response_model=TotpEnrolmentOut,
    responses=problem_responses(401, 409),
)
async def enrol_totp(principal: CurrentPrincipal, session: DbSession, ctx: Context) -> TotpEnrolmentOut:
    enrolment = await privileged.enrol_totp(session, ctx=ctx, principal=principal)
    return TotpEnrolmentOut(secret=enrolment.secret, provisioning_uri=enrolment.provisioning_uri)


@router.post(
    "/me/totp/confirm",
    summary="Confirm TOTP enrolment with a first code",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 409),
)
async def confirm_totp(
    body: TotpCodeIn, principal: CurrentPrincipal, session: DbSession, ctx: Context
) -> Response:
    await privileged.confirm_totp(session, ctx=ctx, principal=principal, code=body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/privileged-sessions",
    summary="Open a privileged session with a reason and a TOTP code (alerted, reviewed later)",
    status_code=status.HTTP_201_CREATED,
    response_model=PrivilegedSessionOut,
    responses=problem_responses(401, 409),
)
async def open_privileged_session(
    body: PrivilegedSessionIn, principal: CurrentPrincipal, session: DbSession, ctx: Context
) -> PrivilegedSessionOut:
    opened = await privileged.open_privileged_session(
        session, ctx=ctx, principal=principal, reason=body.reason, code=body.totp
    )
    return PrivilegedSessionOut.of(opened)


@router.delete(
    "/privileged-sessions/current",
    summary="Close the privileged session of this login",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404),
)
async def close_privileged_session(principal: CurrentPrincipal, session: DbSession, ctx: Context) -> Response:
    await privileged.close_privileged_session(session, ctx=ctx, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/privileged-sessions",
    summary="Privileged sessions, for review",
    response_model=Page[PrivilegedSessionOut],
    responses=problem_responses(401, 403),
)
async def privileged_sessions(
    principal: PrivilegeReviewer,
    session: DbSession,
    ctx: Context,
    unreviewed: bool = False,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[PrivilegedSessionOut]:
    rows, next_cursor = await privileged.list_privileged_sessions(
        session, ctx=ctx, principal=principal, unreviewed_only=unreviewed, limit=limit, cursor=cursor
    )
    return Page[PrivilegedSessionOut](
        items=[PrivilegedSessionOut.of(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/privileged-sessions/{privileged_id}/review",
    summary="Review a privileged session (someone other than the administrator)",
    response_model=PrivilegedSessionOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def review_privileged_session(
    privileged_id: str, body: ReviewIn, principal: PrivilegeReviewer, session: DbSession, ctx: Context
) -> PrivilegedSessionOut:
    reviewed = await privileged.review_privileged_session(
        session, ctx=ctx, principal=principal, privileged_id=privileged_id, note=body.note
    )
    return PrivilegedSessionOut.of(reviewed)


# -- terminals and branches at the end of their life --------------------------------------------------


@router.post(
    "/terminals/{terminal_id}/deactivate",
    summary="Decommission a terminal: its key dies and its sessions end",
    response_model=TerminalOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def deactivate_terminal(
    terminal_id: str, principal: DirectoryAdmin, session: DbSession, ctx: Context
) -> TerminalOut:
    terminal = await lifecycle.decommission_terminal(
        session, ctx=ctx, principal=principal, terminal_id=terminal_id
    )
    return TerminalOut.model_validate(terminal)


@router.post(
    "/branches/{branch_code}/deactivate",
    summary="Close a branch: its rights are revoked, its terminals decommissioned, its sessions ended",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409),
)
async def close_branch(
    branch_code: str, body: BranchCloseIn, principal: DirectoryAdmin, session: DbSession, ctx: Context
) -> Response:
    await lifecycle.close_branch(
        session, ctx=ctx, principal=principal, branch_code=branch_code, reason=body.reason
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/governance/lifecycle-check",
    summary="Access still tied to closed branches or decommissioned terminals (must be zero)",
    response_model=LifecycleCheckOut,
    responses=problem_responses(401, 403),
)
async def lifecycle_check(principal: LifecycleChecker, session: DbSession, ctx: Context) -> LifecycleCheckOut:
    findings = await lifecycle.daily_check(session, ctx=ctx, actor=principal.actor())
    await session.commit()
    return LifecycleCheckOut(
        total=findings.total,
        roles_at_closed_branches=findings.roles_at_closed_branches,
        active_terminals_at_closed_branches=findings.active_terminals_at_closed_branches,
        live_sessions_on_retired_terminals=findings.live_sessions_on_retired_terminals,
    )


# -- emergency switches and incidents (IR-1, IR-2) ----------------------------------------------------


@emergency_router.post(
    "/emergency/suspensions",
    summary="Suspend a user, a terminal, a branch or all inquiries at once (IR-1)",
    status_code=status.HTTP_201_CREATED,
    response_model=SuspensionOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def suspend(
    body: SuspensionIn,
    principal: SecurityOfficer,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> SuspensionOut:
    suspension = await emergency.suspend(
        session,
        ctx=ctx,
        principal=principal,
        scope=body.scope,
        target=body.target,
        reason=body.reason,
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="emergency.suspend", body=body.model_dump(mode="json")
        ),
    )
    return SuspensionOut.model_validate(suspension)


@emergency_router.post(
    "/emergency/suspensions/{suspension_id}/lift",
    summary="Lift a suspension: two security officers, one asking (202, still on) and another lifting (200)",
    response_model=SuspensionOut,
    responses={
        **problem_responses(401, 403, 404, 409),
        202: {"description": "Asked to lift: the switch stays on until a second officer lifts it"},
    },
)
async def lift(
    suspension_id: str,
    body: LiftIn,
    principal: SecurityOfficer,
    session: DbSession,
    ctx: Context,
    response: Response,
) -> SuspensionOut:
    suspension = await emergency.lift(
        session, ctx=ctx, principal=principal, suspension_id=suspension_id, reason=body.reason
    )
    if suspension.status == "active":
        response.status_code = 202
    return SuspensionOut.model_validate(suspension)


@emergency_router.get(
    "/emergency/suspensions",
    summary="Emergency switches",
    response_model=Page[SuspensionOut],
    responses=problem_responses(401, 403),
)
async def suspensions(
    principal: SuspensionReader,
    session: DbSession,
    active: bool = False,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[SuspensionOut]:
    rows, next_cursor = await emergency.list_suspensions(
        session, principal=principal, active_only=active, limit=limit, cursor=cursor
    )
    return Page[SuspensionOut](items=[SuspensionOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@emergency_router.get(
    "/emergency/held-inquiries",
    summary="Inquiries a switch keeps from the center now, oldest first (no subject data)",
    response_model=Page[HeldInquiryOut],
    responses=problem_responses(401, 403, 422),
)
async def held_inquiries(
    principal: SuspensionReader, session: DbSession, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[HeldInquiryOut]:
    rows, next_cursor = await held.held_inquiries(session, principal=principal, limit=limit, cursor=cursor)
    return Page[HeldInquiryOut](
        items=[HeldInquiryOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@emergency_router.post(
    "/emergency/held-inquiries/{inquiry_id}/withdraw",
    summary="Withdraw an inquiry a switch holds before it is sent: cancelled, it never reaches the center",
    response_model=HeldInquiryOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def withdraw_held_inquiry(
    inquiry_id: str, body: WithdrawRequest, principal: InquiryWithdrawer, session: DbSession, ctx: Context
) -> HeldInquiryOut:
    inquiry = await held.withdraw(
        session, ctx=ctx, principal=principal, inquiry_id=inquiry_id, reason=body.reason
    )
    return HeldInquiryOut.model_validate(inquiry)


def _incident_out(
    ctx: AppContext, incident: Incident, entries: list[IncidentEntry] | None = None
) -> IncidentOut:
    texts = incidents.incident_texts(ctx, incident)
    return IncidentOut(
        id=incident.id,
        title=texts["title"] or "",
        severity=incident.severity,
        status=incident.status,
        opened_by=incident.opened_by,
        opened_at=incident.opened_at,
        affected_subjects=list(incident.affected_subjects),
        branch_code=incident.branch_code,
        checklist=dict(incident.checklist),
        cause=texts["cause"],
        recurrence_prevention=texts["recurrence_prevention"],
        closed_by=incident.closed_by,
        closed_at=incident.closed_at,
        timeline=[
            IncidentEntryOut(at=e.at, author=e.author, kind=e.kind, text=incidents.entry_text(ctx, e))
            for e in entries or []
        ],
        forensic_links=incidents.forensic_links(incident, api_prefix=API_PREFIX),
    )


@emergency_router.post(
    "/incidents",
    summary="Open an incident record (IR-2)",
    status_code=status.HTTP_201_CREATED,
    response_model=IncidentOut,
    responses=problem_responses(401, 403, 422),
)
async def open_incident(
    body: IncidentIn,
    principal: IncidentManager,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> IncidentOut:
    incident = await incidents.open_incident(
        session,
        ctx=ctx,
        principal=principal,
        **body.model_dump(),
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="incident.open", body=body.model_dump(mode="json")
        ),
    )
    return _incident_out(ctx, incident)


@emergency_router.get(
    "/incidents",
    summary="Incident records",
    response_model=Page[IncidentOut],
    responses=problem_responses(401, 403),
)
async def list_incidents(
    principal: IncidentReader,
    session: DbSession,
    ctx: Context,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[IncidentOut]:
    rows, next_cursor = await incidents.list_incidents(
        session, principal=principal, limit=limit, cursor=cursor
    )
    return Page[IncidentOut](items=[_incident_out(ctx, r) for r in rows], next_cursor=next_cursor)


@emergency_router.get(
    "/incidents/{incident_id}",
    summary="One incident with its timeline and forensic links",
    response_model=IncidentOut,
    responses=problem_responses(401, 404),
)
async def get_incident(
    incident_id: str, principal: CurrentPrincipal, session: DbSession, ctx: Context
) -> IncidentOut:
    incident, entries = await incidents.get_incident(session, principal=principal, incident_id=incident_id)
    return _incident_out(ctx, incident, entries)


@emergency_router.post(
    "/incidents/{incident_id}/entries",
    summary="Add a timeline note or complete a reporting-checklist item",
    response_model=IncidentOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def add_incident_entry(
    incident_id: str,
    body: IncidentEntryIn,
    principal: IncidentManager,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> IncidentOut:
    incident = await incidents.add_entry(
        session,
        ctx=ctx,
        principal=principal,
        incident_id=incident_id,
        text=body.text,
        checklist_item=body.checklist_item,
        # The incident is part of what the key stands for: one key sent to two incidents is refused.
        keyed=keyed_request(
            ctx,
            key=idempotency_key,
            endpoint="incident.add_entry",
            body={"incident_id": incident_id, **body.model_dump(mode="json")},
        ),
    )
    return _incident_out(ctx, incident)


@emergency_router.post(
    "/incidents/{incident_id}/close",
    summary="Close an incident: cause and recurrence prevention are required",
    response_model=IncidentOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def close_incident(
    incident_id: str, body: IncidentCloseIn, principal: IncidentManager, session: DbSession, ctx: Context
) -> IncidentOut:
    incident = await incidents.close_incident(
        session,
        ctx=ctx,
        principal=principal,
        incident_id=incident_id,
        cause=body.cause,
        recurrence_prevention=body.recurrence_prevention,
    )
    return _incident_out(ctx, incident)

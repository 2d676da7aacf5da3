"""Authentication and directory endpoints. Thin: parse, call one service function, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from app.authz import directory, service
from app.authz.deps import AnyPrincipal, DirectoryReader
from app.authz.schemas import (
    BranchIn,
    BranchOut,
    BranchPatchIn,
    LoginRequest,
    LoginResponse,
    MeResponse,
    Page,
    PasswordChangeRequest,
    PreviousLoginOut,
    TerminalIn,
    TerminalOut,
    TerminalRegistered,
    TerminalStatusIn,
    TokenRequest,
    TokenResponse,
    UserSummary,
)
from app.deps import Context, DbSession, Origin
from app.errors import problem_responses
from app.governance import lifecycle
from app.governance.deps import DirectoryAdmin
from app.idempotency import IdempotencyKey, commit_created, keyed_request
from app.pagination import PageCursor, PageLimit

router = APIRouter(tags=["authentication"])
directory_router = APIRouter(tags=["directory"])


@router.post(
    "/auth/login",
    summary="Log in from a terminal",
    response_model=LoginResponse,
    responses=problem_responses(401, 403, 422),
)
async def login(
    body: LoginRequest,
    session: DbSession,
    ctx: Context,
    origin: Origin,
    x_terminal_id: Annotated[str | None, Header(max_length=40)] = None,
    x_terminal_key: Annotated[str | None, Header(max_length=200)] = None,
) -> LoginResponse:
    result = await service.login(
        session,
        ctx=ctx,
        user_id=body.user_id,
        password=body.password,
        terminal_id=x_terminal_id,
        terminal_key=x_terminal_key,
        origin=origin,
        totp=body.totp,
    )
    previous = result.previous_login
    return LoginResponse(
        access_token=result.access_token,
        expires_in=result.expires_in,
        user=UserSummary(
            id=result.user.id, name=result.user.name, roles=result.roles, branch_codes=result.branch_codes
        ),
        previous_login=PreviousLoginOut(
            at=previous.at, terminal_id=previous.terminal_id, address=previous.address
        )
        if previous
        else None,
        failed_attempts_since_previous_login=result.failed_attempts_since_previous_login,
        password_expires_at=result.password_expires_at,
        must_change_password=result.must_change_password,
    )


@router.post(
    "/auth/token",
    summary="Client-credentials token for a service account",
    response_model=TokenResponse,
    responses=problem_responses(401, 422),
)
async def token(body: TokenRequest, session: DbSession, ctx: Context, origin: Origin) -> TokenResponse:
    result = await service.issue_service_token(
        session, ctx=ctx, client_id=body.client_id, client_secret=body.client_secret, origin=origin
    )
    return TokenResponse(access_token=result.access_token, expires_in=result.expires_in, scopes=result.scopes)


@router.post(
    "/auth/logout",
    summary="End the session at once",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
)
async def logout(principal: AnyPrincipal, session: DbSession, ctx: Context) -> Response:
    await service.logout(session, ctx=ctx, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/auth/password",
    summary="Change the password (AU-4, AU-7)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 422),
)
async def change_password(
    body: PasswordChangeRequest, principal: AnyPrincipal, session: DbSession, ctx: Context
) -> Response:
    await service.change_password(
        session,
        ctx=ctx,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me", summary="Who am I, and until when", response_model=MeResponse, responses=problem_responses(401)
)
async def me(principal: AnyPrincipal) -> MeResponse:
    return MeResponse(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        roles=sorted(principal.roles),
        role_branches={role: sorted(codes) for role, codes in principal.role_branches.items()},
        branch_codes=sorted(principal.branch_codes),
        scopes=sorted(principal.scopes),
        terminal_id=principal.terminal_id,
        session_expires_at=principal.session_expires_at,
        idle_expires_at=principal.idle_expires_at,
        must_change_password=principal.password_change_required,
    )


@directory_router.get(
    "/branches",
    summary="Branches and the HQ unit",
    response_model=Page[BranchOut],
    responses=problem_responses(401, 403),
)
async def list_branches(
    _principal: DirectoryReader, session: DbSession, limit: PageLimit = 100, cursor: PageCursor = None
) -> Page[BranchOut]:
    branches, next_cursor = await directory.branch_page(session, limit=limit, cursor=cursor)
    return Page[BranchOut](items=[BranchOut.model_validate(b) for b in branches], next_cursor=next_cursor)


@directory_router.post(
    "/branches",
    summary="Register a branch",
    status_code=status.HTTP_201_CREATED,
    response_model=BranchOut,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_branch(
    body: BranchIn,
    principal: DirectoryAdmin,
    session: DbSession,
    ctx: Context,
    idempotency_key: IdempotencyKey = None,
) -> BranchOut:
    branch = await directory.register_branch(
        session,
        ctx=ctx,
        principal=principal,
        code=body.code,
        name=body.name,
        keyed=keyed_request(
            ctx, key=idempotency_key, endpoint="branch.create", body=body.model_dump(mode="json")
        ),
    )
    return BranchOut.model_validate(branch)


@directory_router.patch(
    "/branches/{branch_code}",
    summary="Rename a branch (closing one is POST /branches/{code}/deactivate)",
    response_model=BranchOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_branch(
    branch_code: str, body: BranchPatchIn, principal: DirectoryAdmin, session: DbSession
) -> BranchOut:
    branch = await directory.rename_branch(
        session, actor=principal.actor(), branch_code=branch_code, name=body.name
    )
    await session.commit()
    return BranchOut.model_validate(branch)


@directory_router.get(
    "/terminals",
    summary="Registered terminals",
    response_model=Page[TerminalOut],
    responses=problem_responses(401, 403),
)
async def list_terminals(
    _principal: DirectoryReader,
    session: DbSession,
    branch_code: Annotated[str | None, Query(max_length=8)] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[TerminalOut]:
    terminals, next_cursor = await directory.terminal_page(
        session, branch_code=branch_code, limit=limit, cursor=cursor
    )
    return Page[TerminalOut](
        items=[TerminalOut.model_validate(t) for t in terminals], next_cursor=next_cursor
    )


@directory_router.post(
    "/terminals",
    summary="Register a terminal; its key is returned once",
    status_code=status.HTTP_201_CREATED,
    response_model=TerminalRegistered,
    responses=problem_responses(401, 403, 409, 422),
)
async def register_terminal(
    body: TerminalIn, principal: DirectoryAdmin, session: DbSession, ctx: Context
) -> TerminalRegistered:
    registered = await directory.register_terminal(
        session,
        ctx=ctx,
        actor=principal.actor(),
        terminal_id=body.id,
        branch_code=body.branch_code,
        description=body.description,
    )
    await commit_created(session)
    out = TerminalOut.model_validate(registered.terminal)
    return TerminalRegistered(**out.model_dump(), key=registered.key)


@directory_router.patch(
    "/terminals/{terminal_id}",
    summary="Suspend, reactivate or decommission a terminal",
    response_model=TerminalOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def set_terminal_status(
    terminal_id: str, body: TerminalStatusIn, principal: DirectoryAdmin, session: DbSession, ctx: Context
) -> TerminalOut:
    if body.status == "decommissioned":
        # The same path as POST /terminals/{id}/deactivate: the key dies and the sessions end with it.
        terminal = await lifecycle.decommission_terminal(
            session, ctx=ctx, principal=principal, terminal_id=terminal_id
        )
        return TerminalOut.model_validate(terminal)
    terminal = await directory.set_terminal_status(
        session, actor=principal.actor(), terminal_id=terminal_id, status=body.status
    )
    await session.commit()
    return TerminalOut.model_validate(terminal)

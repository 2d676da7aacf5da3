"""Who may call what, as typed Annotated dependencies (the Polar ``auth.py`` pattern)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from app.authz import service
from app.authz.policy import authorize
from app.authz.principal import Principal
from app.deps import Context, DbSession, Origin
from app.errors import NotAuthenticated, PasswordChangeRequired


async def _authenticated(request: Request, session: DbSession, ctx: Context, origin: Origin) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send Authorization: Bearer <token>")
    principal = await service.authenticate(
        session,
        ctx=ctx,
        token=token.strip(),
        terminal_header=request.headers.get("x-terminal-id"),
        origin=origin,
    )
    request.state.principal = principal
    return principal


async def _ready_principal(principal: Annotated[Principal, Depends(_authenticated)]) -> Principal:
    if principal.password_change_required:
        raise PasswordChangeRequired("Change your password first (POST /api/v1/auth/password)")
    return principal


# Any logged-in caller, even one who must change the password (only /auth/password, /auth/logout, /me).
AnyPrincipal = Annotated[Principal, Depends(_authenticated)]
# Any logged-in caller whose password is current.
CurrentPrincipal = Annotated[Principal, Depends(_ready_principal)]


def require(action: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency factory: the caller must be allowed ``action`` by app/authz/policy.py."""

    async def _dependency(principal: CurrentPrincipal) -> Principal:
        authorize(principal, action)
        return principal

    _dependency.__name__ = f"require_{action.replace('.', '_')}"
    return _dependency


AuditReader = Annotated[Principal, Depends(require("audit.read"))]
DirectoryReader = Annotated[Principal, Depends(require("directory.read"))]
DirectoryManager = Annotated[Principal, Depends(require("directory.manage"))]

"""Request-scoped dependencies shared by every router: the app context, the DB session, the origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.service import RequestOrigin
from app.context import AppContext


# The dependencies are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in
# its thread pool, a thread hand-off on every request for what is an attribute read.
async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Context = Annotated[AppContext, Depends(get_context)]


async def get_db_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    """One session per request; services commit their own unit of work, anything left is rolled back."""
    async with ctx.db.session() as session:
        try:
            yield session
        finally:
            if session.in_transaction():
                await session.rollback()


DbSession = Annotated[AsyncSession, Depends(get_db_session)]


def client_address(request: Request, ctx: AppContext) -> str | None:
    if ctx.settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return request.client.host if request.client else None


async def get_origin(request: Request, ctx: Context) -> RequestOrigin:
    return RequestOrigin(
        address=client_address(request, ctx), request_id=getattr(request.state, "request_id", None)
    )


Origin = Annotated[RequestOrigin, Depends(get_origin)]

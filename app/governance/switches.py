"""Which emergency switch (IR-1) stops this user, terminal or branch now — asked on every request.

Authentication (app/authz/service.py) asks for the user, the session's terminal and its branch, so a
switch takes effect on the next request of a live session; the inquiry paths ask again inside their own
transaction (and for the bank-wide switch), so a request that passed authentication a moment before the
switch was thrown still cannot send an inquiry. Nothing here imports the authentication service.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.governance.models import EmergencySuspension

Scope = str | QueryableAttribute[Any] | ColumnElement[Any]


def suspension_query(
    *,
    user_id: Scope | None = None,
    terminal_id: Scope | None = None,
    branch_code: Scope | None = None,
    include_all: bool = False,
) -> Select[EmergencySuspension] | None:
    """The first active switch that covers any of the given scopes, as a query (None: no scope given).

    For callers that read it together with something else in one statement; a scope may then be a column
    of that statement or a bound parameter (a NULL one matches no switch, as a scope left out)."""
    conditions = []
    if user_id is not None:
        conditions.append(and_(EmergencySuspension.scope == "user", EmergencySuspension.target == user_id))
    if terminal_id is not None:
        conditions.append(
            and_(EmergencySuspension.scope == "terminal", EmergencySuspension.target == terminal_id)
        )
    if branch_code is not None:
        conditions.append(
            and_(EmergencySuspension.scope == "branch", EmergencySuspension.target == branch_code)
        )
    if include_all:
        conditions.append(EmergencySuspension.scope == "all")
    if not conditions:
        return None
    return (
        select(EmergencySuspension)
        .where(EmergencySuspension.status == "active", or_(*conditions))
        .order_by(EmergencySuspension.imposed_at)
        .limit(1)
    )


async def active_suspension(
    session: AsyncSession,
    *,
    user_id: str | None = None,
    terminal_id: str | None = None,
    branch_code: str | None = None,
    include_all: bool = False,
) -> EmergencySuspension | None:
    """The first active switch that covers any of the given scopes, or None."""
    if user_id is None and terminal_id is None and branch_code is None and not include_all:
        return None
    return await session.scalar(
        switch_statement(include_all=include_all),
        switch_parameters(user_id=user_id, terminal_id=terminal_id, branch_code=branch_code),
    )


# The bound parameters of :func:`switch_statement`; a scope given as None matches no switch.
SWITCH_USER, SWITCH_TERMINAL, SWITCH_BRANCH = "switch_user_id", "switch_terminal_id", "switch_branch_code"


def switch_parameters(
    *, user_id: str | None, terminal_id: str | None, branch_code: str | None
) -> dict[str, str | None]:
    return {SWITCH_USER: user_id, SWITCH_TERMINAL: terminal_id, SWITCH_BRANCH: branch_code}


@cache
def switch_statement(*, include_all: bool) -> Select[EmergencySuspension]:
    """:func:`suspension_query` over all three scopes as bound parameters (:func:`switch_parameters`).

    Built once: asked on every inquiry and delivery, and building the statement (and its cache key)
    cost more than running it."""
    query = suspension_query(
        user_id=bindparam(SWITCH_USER),
        terminal_id=bindparam(SWITCH_TERMINAL),
        branch_code=bindparam(SWITCH_BRANCH),
        include_all=include_all,
    )
    assert query is not None
    return query

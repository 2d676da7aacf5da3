"""Small helpers the API tests share (logging in as a demo user, reading the ledger)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.subject import contains_my_number, my_number_check_digit


def user(demo: DemoCredentials, user_id: str) -> dict[str, Any]:
    return next(u for u in demo.users if u["id"] == user_id)


def terminal(demo: DemoCredentials, branch_code: str, index: int = 0) -> dict[str, Any]:
    return [t for t in demo.terminals if t["branch_code"] == branch_code][index]


def terminal_headers(term: dict[str, Any]) -> dict[str, str]:
    return {"X-Terminal-Id": term["id"], "X-Terminal-Key": term["key"]}


def home_terminal(demo: DemoCredentials, user_id: str) -> dict[str, Any] | None:
    """The first terminal of the user's branch (HQ for HQ roles); None for roles that need no terminal."""
    u = user(demo, user_id)
    if u["branch_codes"]:
        return terminal(demo, u["branch_codes"][0])
    return None


async def login(
    client: httpx.AsyncClient, demo: DemoCredentials, user_id: str, *, password: str | None = None
) -> httpx.Response:
    term = home_terminal(demo, user_id)
    headers = terminal_headers(term) if term else {}
    return await client.post(
        "/auth/login",
        json={"user_id": user_id, "password": password or user(demo, user_id)["password"]},
        headers=headers,
    )


async def auth_headers(client: httpx.AsyncClient, demo: DemoCredentials, user_id: str) -> dict[str, str]:
    response = await login(client, demo, user_id)
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    term = home_terminal(demo, user_id)
    if term:
        headers["X-Terminal-Id"] = term["id"]
    return headers


async def ledger_events(ctx: AppContext, *, action: str | None = None) -> list[AuditEvent]:
    async with ctx.db.read_session() as session:
        query = select(AuditEvent).order_by(AuditEvent.seq)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list((await session.scalars(query)).all())


# A synthetic Individual Number (valid check digit), grouped as people write it (PL-4 tests).
_ELEVEN = "12345678901"
MY_NUMBER = _ELEVEN + str(my_number_check_digit(_ELEVEN))
MY_NUMBER_GROUPED = f"{MY_NUMBER[:4]}-{MY_NUMBER[4:8]}-{MY_NUMBER[8:]}"


async def ledger_text(ctx: AppContext) -> str:
    """Every event's details and object ID as one text, to search for what must never be recorded."""
    async with ctx.db.read_session() as session:
        rows = (await session.execute(select(AuditEvent.details, AuditEvent.object_id))).all()
    return repr([tuple(row) for row in rows])


def my_number_forbidden(response: httpx.Response) -> dict[str, Any]:
    """The PL-4 refusal, with the number not echoed; its problem body."""
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "MY_NUMBER_FORBIDDEN"
    assert MY_NUMBER[:4] not in response.text
    return body


def as_recorded(path: str, template: str) -> str:
    """A request path as the ledger keeps it: as it came, or its route's ``template`` where a random id in
    it happens to read as an Individual Number (12 digits across a UUID's hyphen with a valid check
    digit), which the ledger never keeps (PL-4)."""
    return template if contains_my_number(path) else path

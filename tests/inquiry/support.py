"""Helpers for inquiry tests: synthetic subjects from the simulator, drafts, the center's own record."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import OutboxMessage
from tests.helpers import auth_headers, user


def sim_client(ctx: AppContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=ctx.center_simulator), base_url="http://sim")


async def synthetic_people(ctx: AppContext, *, limit: int = 200) -> list[dict[str, Any]]:
    async with sim_client(ctx) as sim:
        response = await sim.get("/center/v1/_sim/population", params={"limit": limit})
        return list(response.json()["items"])


async def person(ctx: AppContext, *, has_transactions: bool = True, index: int = 0) -> dict[str, Any]:
    people = [p for p in await synthetic_people(ctx) if p["has_transactions"] == has_transactions]
    return people[index]


async def center_record(ctx: AppContext) -> list[dict[str, Any]]:
    """Everything the simulated center recorded for our member (its own inquiry record)."""
    entries: list[dict[str, Any]] = []
    async with sim_client(ctx) as sim:
        cursor = None
        while True:
            params = {
                "member_code": ctx.settings.center_member_code,
                "from": "2000-01-01",
                "to": "2100-01-01",
            }
            if cursor:
                params["cursor"] = cursor
            page = (await sim.get("/center/v1/inquiry-record", params=params)).json()
            entries.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return entries


async def center_record_when_nothing_waits(ctx: AppContext) -> list[dict[str, Any]]:
    """The center's record once the outbox has nothing left to deliver: after a refusal, whatever it had
    wrongly queued (an inquiry, a cancellation) would have reached the center and be in it."""
    for _ in range(200):
        async with ctx.db.read_session() as session:
            waiting = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
            )
        if not waiting:
            return await center_record(ctx)
        ctx.outbox_kick()
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox still had messages to deliver")


async def center_record_once_sent(ctx: AppContext) -> list[dict[str, Any]]:
    """The center's record once something is in it: on a loaded machine the answer, and so the entry,
    can come after the submit's interactive wait has returned ``queued``."""
    for _ in range(100):
        recorded = await center_record(ctx)
        if recorded:
            return recorded
        await asyncio.sleep(0.05)
    return []


def draft_body(subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "new_credit",
        "customer_status": "new",
        "subject": {
            "name_kana": subject["name_kana"],
            "name_kanji": subject.get("name_kanji"),
            "birth_date": subject["birth_date"],
            "address": subject.get("address"),
        },
        "consent_document": {
            "type": "loan_application",
            "reference": "LA-2026-000123",
            "obtained_on": "2026-11-10",
        },
    }
    body.update(overrides)
    return body


async def as_user(client: httpx.AsyncClient, demo: DemoCredentials, user_id: str) -> dict[str, str]:
    return await auth_headers(client, demo, user_id)


def password_of(demo: DemoCredentials, user_id: str) -> str:
    return str(user(demo, user_id)["password"])


def a1(demo: DemoCredentials, confirmer: str = "cf001", password: str | None = None) -> dict[str, str]:
    """Method A1: a confirmer's own credentials (their demo password unless another is given)."""
    return {
        "method": "confirmer_credentials",
        "confirmer_user_id": confirmer,
        "confirmer_password": password or password_of(demo, confirmer),
    }


async def submit_with_a1(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> tuple[dict[str, str], httpx.Response]:
    """op001 enters an inquiry approved at once by cf001's credentials: the operator and the answer."""
    operator = await as_user(client, demo, "op001")
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }
    submitted = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=approval), headers=operator
    )
    return operator, submitted


async def released_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> tuple[str, dict[str, str], dict[str, str]]:
    """op001's inquiry, approved at once with cf001's credentials (A1) and released by cf001b after a
    matching document check: its id, and the operator's and the releasing confirmer's headers."""
    operator, created = await submit_with_a1(client, demo, ctx)
    assert created.status_code == 201, created.text
    inquiry_id = str(created.json()["id"])
    releaser = await as_user(client, demo, "cf001b")
    released = await client.post(
        f"/inquiries/{inquiry_id}/release",
        headers=releaser,
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    assert released.status_code == 200, released.text
    return inquiry_id, operator, releaser

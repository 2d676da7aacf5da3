"""Helpers for HQ tests: a branch's request, HQ executing it, HQ's balance for the day."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.inquiry.support import draft_body

# The ManualClock starts at 2026-11-24 10:00 JST (a Tuesday): every test's business day.
TODAY = "2026-11-24"


def request_body(subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """What a branch asks HQ to inquire: the same fields as an inquiry."""
    return draft_body(subject, **overrides)


async def branch_request(
    client: httpx.AsyncClient, headers: dict[str, str], subject: dict[str, Any], **overrides: Any
) -> dict[str, Any]:
    response = await client.post("/hq-requests", json=request_body(subject, **overrides), headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def execute(
    client: httpx.AsyncClient, hq: dict[str, str], request_id: str, subject: dict[str, Any], **overrides: Any
) -> httpx.Response:
    """HQ runs the branch's request: the inquiry re-states exactly what the branch asked for."""
    return await client.post(
        "/inquiries", json=draft_body(subject, hq_request_id=request_id, **overrides), headers=hq
    )


async def balance(client: httpx.AsyncClient, headers: dict[str, str], day: str = TODAY) -> dict[str, Any]:
    response = await client.get("/reconciliation/hq", params={"business_date": day}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def held(client: httpx.AsyncClient, headers: dict[str, str], inquiry_id: str) -> dict[str, Any]:
    """The HQ inquiry once the outbox has sent it and stored the center's answer (held for release)."""
    for _ in range(200):
        inquiry = (await client.get(f"/inquiries/{inquiry_id}", headers=headers)).json()
        if inquiry["status"] != "queued":
            assert inquiry["status"] == "held", inquiry
            return dict(inquiry)
        await asyncio.sleep(0.05)
    raise AssertionError("the HQ inquiry never left the outbox")

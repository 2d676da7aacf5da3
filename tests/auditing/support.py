"""Scripting a day of branch activity for the audit tests: logins at a chosen terminal, inquiries with
approval numbers or confirmer credentials, releases and reads."""

from __future__ import annotations

from typing import Any

import httpx

from app.context import AppContext
from app.demo import DemoCredentials
from tests.helpers import terminal, terminal_headers, user
from tests.inquiry.support import draft_body, password_of, person


async def login_at(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    user_id: str,
    *,
    branch: str | None = None,
    index: int = 0,
) -> dict[str, str]:
    """Headers of a fresh session of ``user_id`` at terminal ``index`` of ``branch`` (default: their own)."""
    u = user(demo, user_id)
    headers: dict[str, str] = {}
    term = None
    if branch is not None or u["branch_codes"]:
        term = terminal(demo, branch or u["branch_codes"][0], index)
        headers = terminal_headers(term)
    response = await client.post(
        "/auth/login", json={"user_id": user_id, "password": u["password"]}, headers=headers
    )
    assert response.status_code == 200, response.text
    out = {"Authorization": f"Bearer {response.json()['access_token']}"}
    if term is not None:
        out["X-Terminal-Id"] = term["id"]
    return out


async def inquire_with_number(
    client: httpx.AsyncClient,
    operator: dict[str, str],
    confirmer: dict[str, str],
    subject: dict[str, Any],
    **overrides: Any,
) -> dict[str, Any]:
    """Method A2: draft, an approval number from the confirmer's session, submit; returns the inquiry."""
    created = await client.post("/inquiries", json=draft_body(subject, **overrides), headers=operator)
    assert created.status_code == 201, created.text
    inquiry_id = created.json()["id"]
    issued = await client.post(f"/inquiries/{inquiry_id}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201, issued.text
    submitted = await client.post(
        f"/inquiries/{inquiry_id}/submit",
        json={"approval": {"method": "approval_number", "approval_number": issued.json()["approval_number"]}},
        headers=operator,
    )
    assert submitted.status_code == 200, submitted.text
    return dict(submitted.json())


async def inquire_with_credentials(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    operator: dict[str, str],
    confirmer_id: str,
    subject: dict[str, Any],
    **overrides: Any,
) -> dict[str, Any]:
    """Method A1: the confirmer types their own credentials into the operator's draft."""
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": confirmer_id,
        "confirmer_password": password_of(demo, confirmer_id),
    }
    created = await client.post(
        "/inquiries", json=draft_body(subject, approval=approval, **overrides), headers=operator
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def release(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    confirmer_id: str,
    headers: dict[str, str],
    inquiry_id: str,
) -> None:
    released = await client.post(
        f"/inquiries/{inquiry_id}/release",
        json={"password": password_of(demo, confirmer_id), "document_check": "match"},
        headers=headers,
    )
    assert released.status_code == 200, released.text


async def subjects(ctx: AppContext, count: int, *, has_transactions: bool = True) -> list[dict[str, Any]]:
    return [await person(ctx, index=i, has_transactions=has_transactions) for i in range(count)]

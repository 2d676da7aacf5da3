"""Helpers for governance tests: administrators in privileged sessions, the HR feed, extra people."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import httpx

from app.audit.ledger import Actor
from app.authz import directory
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance import rights
from app.governance.totp import code_at
from tests.helpers import auth_headers

SETUP = Actor(id="test:setup", roles=("system",))
EXTRA_PASSWORD = "Gov-Extra-Passw0rd-19"


def secret_bytes(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


async def enrol_totp(client: httpx.AsyncClient, headers: dict[str, str], clock: ManualClock) -> bytes:
    """Enrol and confirm a second factor; the clock moves on one step so the next code is fresh."""
    started = await client.post("/me/totp", headers=headers)
    assert started.status_code == 201, started.text
    secret = secret_bytes(started.json()["secret"])
    confirmed = await client.post(
        "/me/totp/confirm", json={"code": code_at(secret, clock.now())}, headers=headers
    )
    assert confirmed.status_code == 204, confirmed.text
    clock.advance(seconds=30)
    return secret


async def privileged_headers(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    clock: ManualClock,
    user_id: str,
    *,
    reason: str = "governance test",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """An administrator logged in, with TOTP enrolled and a privileged session open (AC-5)."""
    headers = headers or await auth_headers(client, demo, user_id)
    secret = await enrol_totp(client, headers, clock)
    opened = await client.post(
        "/privileged-sessions", json={"reason": reason, "totp": code_at(secret, clock.now())}, headers=headers
    )
    assert opened.status_code == 201, opened.text
    return headers


async def hr_feed_headers(client: httpx.AsyncClient, demo: DemoCredentials) -> dict[str, str]:
    account = next(a for a in demo.service_accounts if a["client_id"] == "hr-feed")
    token = await client.post(
        "/auth/token", json={"client_id": "hr-feed", "client_secret": account["client_secret"]}
    )
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def add_person(
    ctx: AppContext, demo: DemoCredentials, user_id: str, grants: tuple[tuple[str, str | None], ...]
) -> None:
    """A further person through the bootstrap path (e.g. a second security officer) for the helpers."""
    async with ctx.db.session() as session:
        await directory.create_user(
            session,
            ctx=ctx,
            actor=SETUP,
            user_id=user_id,
            name=f"試験 {user_id}",
            password=EXTRA_PASSWORD,
            birth_date=date(1980, 1, 1),
            must_change_password=False,
        )
        await session.flush()
        codes: set[str] = set()
        for role, branch in grants:
            grant = await rights.bootstrap_grant(
                session, ctx=ctx, actor=SETUP, user_id=user_id, role=role, branch_code=branch
            )
            if grant.branch_code:
                codes.add(grant.branch_code)
        await session.commit()
    demo.users.append(
        {
            "id": user_id,
            "password": EXTRA_PASSWORD,
            "name": user_id,
            "roles": [r for r, _ in grants],
            "branch_codes": sorted(codes),
        }
    )


async def request_apply(
    client: httpx.AsyncClient,
    *,
    requester: dict[str, str],
    approver: dict[str, str],
    setter: dict[str, str],
    body: dict[str, Any],
) -> dict[str, Any]:
    """One access request through its three people; returns the applied request."""
    created = await client.post("/access-requests", json=body, headers=requester)
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    approved = await client.post(f"/access-requests/{request_id}/approve", headers=approver)
    assert approved.status_code == 200, approved.text
    applied = await client.post(f"/access-requests/{request_id}/apply", headers=setter)
    assert applied.status_code == 200, applied.text
    return dict(applied.json())


async def two_officers(
    client: httpx.AsyncClient, ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> tuple[dict[str, str], dict[str, str]]:
    """Two security officers (secoff and a second, secoff2) in privileged sessions: lifting takes two."""
    await add_person(ctx, demo, "secoff2", (("security_officer", None),))
    officer = await privileged_headers(client, demo, clock, "secoff")
    return officer, await privileged_headers(client, demo, clock, "secoff2")


async def throw_switch(
    client: httpx.AsyncClient,
    officer: dict[str, str],
    *,
    scope: str = "branch",
    target: str | None = "001",
    reason: str = "不正照会の疑い",
) -> str:
    """IR-1: an emergency switch thrown at once by one officer; its id."""
    thrown = await client.post(
        "/emergency/suspensions", json={"scope": scope, "target": target, "reason": reason}, headers=officer
    )
    assert thrown.status_code == 201, thrown.text
    return str(thrown.json()["id"])


async def lift_switch(
    client: httpx.AsyncClient,
    suspension_id: str,
    *,
    asking: dict[str, str],
    lifting: dict[str, str],
    reason: str = "調査完了",
) -> dict[str, Any]:
    """IR-1: one officer asks to lift the switch (still on), a second lifts it; the lifted switch."""
    path = f"/emergency/suspensions/{suspension_id}/lift"
    asked = await client.post(path, json={"reason": reason}, headers=asking)
    assert asked.status_code == 202 and asked.json()["status"] == "active", asked.text
    lifted = await client.post(path, json={"reason": reason}, headers=lifting)
    assert lifted.status_code == 200 and lifted.json()["status"] == "lifted", lifted.text
    return dict(lifted.json())

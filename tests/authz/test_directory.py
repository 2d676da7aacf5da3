"""Terminals are registered with a key shown once; their lifecycle decides who can log in (AU-2).

Directory writes use an administrator role, so they happen only inside a privileged session (AC-5)."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.authz.models import Terminal
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from tests.governance.support import privileged_headers
from tests.helpers import auth_headers, ledger_events, user


async def _login_from(
    client: httpx.AsyncClient, demo: DemoCredentials, terminal_id: str, key: str
) -> httpx.Response:
    return await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": user(demo, "op001")["password"]},
        headers={"X-Terminal-Id": terminal_id, "X-Terminal-Key": key},
    )


async def test_registered_terminal_key_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    created = await client.post(
        "/terminals", json={"id": "T001-03", "branch_code": "001", "description": "窓口3"}, headers=admin
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert len(key) >= 40

    listed = await client.get("/terminals", params={"branch_code": "001"}, headers=admin)
    assert listed.status_code == 200
    assert "key" not in listed.json()["items"][0]
    async with ctx.db.read_session() as session:
        stored = await session.scalar(select(Terminal).where(Terminal.id == "T001-03"))
    assert stored is not None and key not in stored.key_hash

    assert (await _login_from(client, demo, "T001-03", key)).status_code == 200
    registered = await ledger_events(ctx, action="directory.terminal_registered")
    assert registered[-1].object_id == "T001-03" and registered[-1].actor_id == "accadmin"
    assert key not in registered[-1].details


async def test_suspended_and_decommissioned_terminals_cannot_be_used(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    key = (
        await client.post("/terminals", json={"id": "T001-04", "branch_code": "001"}, headers=admin)
    ).json()["key"]

    suspended = await client.patch("/terminals/T001-04", json={"status": "suspended"}, headers=admin)
    assert suspended.json()["status"] == "suspended"
    refused = await _login_from(client, demo, "T001-04", key)
    assert refused.status_code == 403 and refused.json()["code"] == "TERMINAL_NOT_ALLOWED"

    await client.patch("/terminals/T001-04", json={"status": "active"}, headers=admin)
    live = await _login_from(client, demo, "T001-04", key)
    assert live.status_code == 200
    session_headers = {"Authorization": f"Bearer {live.json()['access_token']}", "X-Terminal-Id": "T001-04"}

    decommissioned = await client.patch(
        "/terminals/T001-04", json={"status": "decommissioned"}, headers=admin
    )
    assert decommissioned.status_code == 200 and decommissioned.json()["status"] == "decommissioned"
    # Decommissioning through PATCH ends the terminal's live sessions at once, like /deactivate.
    after = await client.get("/me", headers=session_headers)
    assert after.status_code == 401 and after.json()["code"] == "SESSION_EXPIRED"
    gone = await _login_from(client, demo, "T001-04", key)
    assert gone.status_code == 403 and gone.json()["code"] == "TERMINAL_NOT_REGISTERED"
    again = await client.patch("/terminals/T001-04", json={"status": "active"}, headers=admin)
    assert again.status_code == 409

    changes = await ledger_events(ctx, action="directory.terminal_status_changed")
    assert [e.details for e in changes] == [
        '{"from":"active","to":"suspended"}',
        '{"from":"suspended","to":"active"}',
        '{"from":"active","to":"decommissioned"}',
    ]


async def test_only_access_admins_manage_the_directory(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    manager = await auth_headers(client, demo, "bm001")
    response = await client.post("/terminals", json={"id": "T001-05", "branch_code": "001"}, headers=manager)
    assert response.status_code == 403
    auditor = await auth_headers(client, demo, "auditor")
    assert (await client.get("/terminals", headers=auditor)).status_code == 200
    assert (
        await client.post("/branches", json={"code": "003", "name": "横浜支店"}, headers=auditor)
    ).status_code == 403


async def test_directory_writes_need_a_privileged_session(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    admin = await auth_headers(client, demo, "accadmin")
    attempts = [
        await client.post("/branches", json={"code": "003", "name": "横浜支店"}, headers=admin),
        await client.patch("/branches/001", json={"name": "新宿本店"}, headers=admin),
        await client.post("/terminals", json={"id": "T001-06", "branch_code": "001"}, headers=admin),
        await client.patch(
            "/terminals/" + demo.terminals[1]["id"], json={"status": "suspended"}, headers=admin
        ),
        await client.patch(
            "/terminals/" + demo.terminals[1]["id"], json={"status": "decommissioned"}, headers=admin
        ),
    ]
    assert [(r.status_code, r.json()["code"]) for r in attempts] == [
        (403, "PRIVILEGED_SESSION_REQUIRED")
    ] * len(attempts)
    branches = (await client.get("/branches", headers=admin)).json()["items"]
    assert {b["code"] for b in branches} == {"000", "001", "002"}
    assert not await ledger_events(ctx, action="directory.terminal_status_changed")


async def test_a_branch_is_renamed_in_a_privileged_session_and_the_ledger_shows_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    created = await client.post("/branches", json={"code": "003", "name": "横浜支店"}, headers=admin)
    assert created.status_code == 201, created.text
    renamed = await client.patch("/branches/003", json={"name": "横浜中央支店"}, headers=admin)
    assert renamed.status_code == 200 and renamed.json()["name"] == "横浜中央支店"
    listed = (await client.get("/branches", headers=admin)).json()["items"]
    assert next(b for b in listed if b["code"] == "003")["name"] == "横浜中央支店"
    events = await ledger_events(ctx, action="directory.branch_renamed")
    assert [(e.actor_id, e.object_id) for e in events] == [("accadmin", "003")]

    assert (await client.patch("/branches/009", json={"name": "x"}, headers=admin)).status_code == 404
    assert (await client.patch("/branches/003", json={"name": ""}, headers=admin)).status_code == 422
    closed = await client.post("/branches/003/deactivate", json={"reason": "統合"}, headers=admin)
    assert closed.status_code == 204
    frozen = await client.patch("/branches/003", json={"name": "y"}, headers=admin)
    assert frozen.status_code == 409


async def test_branches_and_terminals_come_in_pages_as_every_list_does(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    """api.md: lists are cursor-paginated (found by an API review: `limit` was ignored on these two and
    `limit=abc` answered 200)."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    for code in ("003", "004"):
        clock.advance(seconds=1)
        assert (
            await client.post("/branches", json={"code": code, "name": f"支店{code}"}, headers=admin)
        ).status_code == 201
    everything = (await client.get("/branches", params={"limit": 1000}, headers=admin)).json()
    for path, key in (("/branches", "code"), ("/terminals", "id")):
        whole = [
            item[key]
            for item in (await client.get(path, params={"limit": 1000}, headers=admin)).json()["items"]
        ]
        assert len(whole) >= 3, path
        seen: list[str] = []
        cursor = None
        while True:
            page = (
                await client.get(
                    path, params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=admin
                )
            ).json()
            assert len(page["items"]) <= 2
            seen += [item[key] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == whole, path
        bad = await client.get(path, params={"limit": "abc"}, headers=admin)
        assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR")
    assert [b["code"] for b in everything["items"]][-2:] == ["003", "004"]

"""Governance lists page as every list does (api.md: ``limit`` default 100, max 1000, ``cursor``):
they ignored both, so ``limit=1`` answered every row and ``limit=-1`` a 200."""

from __future__ import annotations

import httpx

from app.clock import ManualClock, business_date_of
from app.context import AppContext
from app.demo import DemoCredentials
from tests.governance.support import hr_feed_headers, privileged_headers
from tests.helpers import auth_headers


async def _every_page(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[str]:
    """The ids of every item, read one per page."""
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 1}
    while True:
        page = await client.get(path, params=params, headers=headers)
        assert page.status_code == 200, (path, page.text)
        items = page.json()["items"]
        assert len(items) <= 1, path
        seen += [str(item["id"]) for item in items]
        if page.json()["next_cursor"] is None:
            return seen
        params = {"limit": 1, "cursor": page.json()["next_cursor"]}


async def test_each_governance_list_pages_through_every_row_once_and_refuses_a_bad_limit_or_cursor(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    officer = await privileged_headers(client, demo, clock, "secoff")
    auditor = await auth_headers(client, demo, "auditor")
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    for user_id in ("op001", "op002", "cf001b"):
        grant = {"user_id": user_id, "action": "reset_password", "reason": "忘失"}
        assert (await client.post("/access-requests", json=grant, headers=admin)).status_code == 201
        event = {"user_id": user_id, "kind": "leave", "effective_on": today}
        assert (await client.post("/hr-events", json=event, headers=feed)).status_code == 201
        incident = {"title": f"調査 {user_id}", "severity": "low"}
        assert (await client.post("/incidents", json=incident, headers=officer)).status_code == 201
    lists = (
        ("/access-requests", approver),
        ("/reviews", approver),
        ("/privileged-sessions", auditor),
        ("/incidents", auditor),
        ("/emergency/suspensions", auditor),
    )
    for path, headers in lists:
        whole = await client.get(path, headers=headers)
        assert whole.status_code == 200, (path, whole.text)
        assert whole.json()["next_cursor"] is None
        everything = [str(item["id"]) for item in whole.json()["items"]]
        assert len(everything) >= 2 or path == "/emergency/suspensions", (path, everything)
        assert await _every_page(client, path, headers) == everything, path
        for bad in (
            {"limit": 0},
            {"limit": -1},
            {"limit": 1001},
            {"cursor": "2026-11-24"},
            {"cursor": "x|y"},
        ):
            refused = await client.get(path, params=bad, headers=headers)
            assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR", (path, bad)
    # A state no request can be in is refused, not answered with an empty page; the register's cursor is
    # its sequence number in ASCII digits only.
    for status in ("x", ""):
        wrong = await client.get("/access-requests", params={"status": status}, headers=approver)
        assert wrong.status_code == 422 and wrong.json()["code"] == "VALIDATION_ERROR", status
    pending = await client.get("/access-requests", params={"status": "pending"}, headers=approver)
    assert len(pending.json()["items"]) == 3
    assert (await client.get("/access-register", params={"cursor": "1"}, headers=auditor)).status_code == 200
    for cursor in ("١", "１", "৩"):
        foreign = await client.get("/access-register", params={"cursor": cursor}, headers=auditor)
        assert foreign.status_code == 422, cursor

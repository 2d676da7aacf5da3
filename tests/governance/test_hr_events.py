"""HR events (AC-4): a transfer ends the old branch's rights and the live session at once, leave and
resignation suspend at once, a return restores nothing by itself; each opens a review task."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from app.authz.models import User
from app.clock import ManualClock, business_date_of
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance import sweep
from app.governance.hr import HR_RULE
from tests.governance.support import hr_feed_headers, privileged_headers, request_apply
from tests.helpers import auth_headers, ledger_events, login, terminal, terminal_headers, user
from tests.inquiry.support import draft_body, person


async def test_transfer_during_a_live_session_cuts_off_the_old_branch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await auth_headers(client, demo, "op001")
    subject = await person(ctx)
    created = await client.post("/inquiries", json=draft_body(subject), headers=operator)
    assert created.status_code == 201, created.text
    inquiry_id = created.json()["id"]

    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    event = await client.post(
        "/hr-events",
        json={"user_id": "op001", "kind": "transfer", "effective_on": today, "to_branch_code": "002"},
        headers=feed,
    )
    assert event.status_code == 201 and event.json()["status"] == "applied"

    # The very next request of the live session is refused.
    after = await client.get(f"/inquiries/{inquiry_id}", headers=operator)
    assert after.status_code == 401 and after.json()["code"] == "SESSION_EXPIRED"

    # New rights at the new branch come only through a request; the old branch's inquiries are gone.
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    await request_apply(
        client,
        requester=await auth_headers(client, demo, "bm002"),
        approver=approver,
        setter=admin,
        body={
            "user_id": "op001",
            "action": "grant",
            "role": "operator",
            "branch_code": "002",
            "reason": "異動",
        },
    )
    term = terminal(demo, "002")
    relogin = await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": user(demo, "op001")["password"]},
        headers=terminal_headers(term),
    )
    assert relogin.status_code == 200, relogin.text
    assert relogin.json()["user"]["branch_codes"] == ["002"]
    moved = {"Authorization": f"Bearer {relogin.json()['access_token']}", "X-Terminal-Id": term["id"]}
    assert (await client.get(f"/inquiries/{inquiry_id}", headers=moved)).status_code == 404
    listed = (await client.get("/inquiries", headers=moved)).json()["items"]
    assert all(item["branch_code"] == "002" for item in listed)

    register = (await client.get("/access-register", params={"user_id": "op001"}, headers=admin)).json()[
        "items"
    ]
    revoked = [e for e in register if e["change"] == "revoke"]
    assert [(e["role"], e["branch_code"], e["source"]) for e in revoked] == [("operator", "001", "hr_event")]
    assert (revoked[0]["requested_by"], revoked[0]["approved_by"], revoked[0]["set_by"]) == (
        "service:hr-feed",
        HR_RULE,
        "system",
    )
    tasks = (await client.get("/reviews", params={"status": "open"}, headers=approver)).json()["items"]
    assert [(t["kind"], t["user_id"]) for t in tasks if t["kind"].startswith("hr_")] == [
        ("hr_transfer", "op001")
    ]


async def test_resignation_refuses_login_and_revokes_every_right(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    assert (await login(client, demo, "op002")).status_code == 200
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    event = await client.post(
        "/hr-events", json={"user_id": "op002", "kind": "resignation", "effective_on": today}, headers=feed
    )
    assert event.status_code == 201
    refused = await login(client, demo, "op002")
    assert refused.status_code == 403 and refused.json()["code"] == "SUSPENDED"
    auditor = await auth_headers(client, demo, "auditor")
    register = (await client.get("/access-register", params={"user_id": "op002"}, headers=auditor)).json()[
        "items"
    ]
    assert [e["change"] for e in register if e["source"] == "hr_event"] == ["suspend", "revoke"]


async def test_return_from_leave_restores_nothing_until_a_reactivation_is_approved(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    for kind in ("leave", "return"):
        event = await client.post(
            "/hr-events", json={"user_id": "cf001b", "kind": kind, "effective_on": today}, headers=feed
        )
        assert event.status_code == 201, event.text
    refused = await login(client, demo, "cf001b")
    assert refused.status_code == 403 and refused.json()["code"] == "SUSPENDED"

    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    await request_apply(
        client,
        requester=admin,
        approver=approver,
        setter=admin,
        body={"user_id": "cf001b", "action": "reactivate", "reason": "復職確認済み"},
    )
    back = await login(client, demo, "cf001b")
    assert back.status_code == 200 and back.json()["user"]["roles"] == ["confirmer"]


async def test_an_hr_event_effective_later_waits_for_its_day(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    feed = await hr_feed_headers(client, demo)
    later = business_date_of(clock.now()) + timedelta(days=2)
    event = await client.post(
        "/hr-events",
        json={"user_id": "cf002b", "kind": "leave", "effective_on": later.isoformat()},
        headers=feed,
    )
    assert event.json()["status"] == "pending"
    assert (await login(client, demo, "cf002b")).status_code == 200
    clock.advance(days=2)
    assert (await sweep.run_once(ctx)).hr_events_applied == 1
    assert (await login(client, demo, "cf002b")).json()["code"] == "SUSPENDED"


async def test_only_the_hr_feed_and_access_admins_file_hr_events(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    manager = await auth_headers(client, demo, "bm001")
    today = business_date_of(clock.now()).isoformat()
    refused = await client.post(
        "/hr-events", json={"user_id": "op001", "kind": "leave", "effective_on": today}, headers=manager
    )
    assert refused.status_code == 403
    bad = await client.post(
        "/hr-events",
        json={"user_id": "op001", "kind": "transfer", "effective_on": today},
        headers=await hr_feed_headers(client, demo),
    )
    assert bad.status_code == 422
    assert (await login(client, demo, "op001")).status_code == 200


async def test_a_transfer_out_of_hq_takes_the_hq_roles_away(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    hq = await auth_headers(client, demo, "hqop")
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    event = await client.post(
        "/hr-events",
        json={"user_id": "hqop", "kind": "transfer", "effective_on": today, "to_branch_code": "001"},
        headers=feed,
    )
    assert event.status_code == 201 and event.json()["status"] == "applied"
    assert (await client.get("/me", headers=hq)).status_code == 401

    auditor = await auth_headers(client, demo, "auditor")
    register = (await client.get("/access-register", params={"user_id": "hqop"}, headers=auditor)).json()
    revoked = [(e["role"], e["branch_code"]) for e in register["items"] if e["change"] == "revoke"]
    assert revoked == [("hq_operator", "000")]
    # Logging in again at HQ gives no HQ role: the user now holds nothing until a request grants it.
    relogin = await login(client, demo, "hqop")
    assert relogin.status_code == 200, relogin.text
    assert relogin.json()["user"]["roles"] == []


async def test_a_transfer_into_hq_keeps_the_hq_roles(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    event = await client.post(
        "/hr-events",
        json={"user_id": "hqcf", "kind": "transfer", "effective_on": today, "to_branch_code": "000"},
        headers=feed,
    )
    assert event.status_code == 201
    relogin = await login(client, demo, "hqcf")
    assert relogin.status_code == 200 and relogin.json()["user"]["roles"] == ["hq_confirmer"]


async def test_leave_and_resignation_end_the_live_session_at_the_next_request_and_open_a_review(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    on_leave = await auth_headers(client, demo, "cf001b")
    resigning = await auth_headers(client, demo, "op002")
    assert (await client.get("/me", headers=on_leave)).status_code == 200
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()
    for user_id, kind in (("cf001b", "leave"), ("op002", "resignation")):
        event = await client.post(
            "/hr-events", json={"user_id": user_id, "kind": kind, "effective_on": today}, headers=feed
        )
        assert event.status_code == 201 and event.json()["status"] == "applied", event.text

    for headers in (on_leave, resigning):
        after = await client.get("/me", headers=headers)
        assert after.status_code == 401 and after.json()["code"] == "SESSION_EXPIRED"
    approver = await privileged_headers(client, demo, clock, "accappr")
    tasks = (await client.get("/reviews", params={"status": "open"}, headers=approver)).json()["items"]
    assert sorted((t["kind"], t["user_id"]) for t in tasks if t["kind"].startswith("hr_")) == [
        ("hr_leave", "cf001b"),
        ("hr_resignation", "op002"),
    ]


async def test_the_hr_feeds_retry_with_its_idempotency_key_records_one_event(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The feed is a batch job that retries on a timeout, sometimes before the first attempt has finished:
    the same key and body get the first event, another body under the key is refused (api.md)."""
    feed = await hr_feed_headers(client, demo)
    later = (business_date_of(clock.now()) + timedelta(days=10)).isoformat()
    body = {"user_id": "op002", "kind": "leave", "effective_on": later}
    keyed = {**feed, "Idempotency-Key": "hr-feed-20261124-0001"}
    first = await client.post("/hr-events", json=body, headers=keyed)
    assert first.status_code == 201, first.text
    again = await client.post("/hr-events", json=body, headers=keyed)
    assert again.status_code == 201 and again.json() == first.json()
    other = await client.post("/hr-events", json={**body, "effective_on": "2026-12-21"}, headers=keyed)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"

    together = {**feed, "Idempotency-Key": "hr-feed-20261124-0002"}
    moved = {"user_id": "op002", "kind": "return", "effective_on": later}
    answers = await asyncio.gather(
        *(client.post("/hr-events", json=moved, headers=together) for _ in range(6))
    )
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    received = await ledger_events(ctx, action="hr.event_received")
    assert len(received) == 2  # the leave and the return, once each
    # Without a key each request is its own event, as before.
    assert (await client.post("/hr-events", json=body, headers=feed)).json()["id"] != first.json()["id"]


async def test_an_ended_account_stays_ended_whatever_arrives_after(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AC-4: a grant approved before a resignation is not applied after it, and a leave reported for a
    deactivated account does not make it "suspended" — from which a reactivation would reopen it."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    feed = await hr_feed_headers(client, demo)
    today = business_date_of(clock.now()).isoformat()

    created = await client.post(
        "/access-requests",
        json={
            "user_id": "op002",
            "action": "grant",
            "role": "operator",
            "branch_code": "001",
            "reason": "応援",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert (await client.post(f"/access-requests/{request_id}/approve", headers=approver)).status_code == 200
    resigned = await client.post(
        "/hr-events", json={"user_id": "op002", "kind": "resignation", "effective_on": today}, headers=feed
    )
    assert resigned.status_code == 201, resigned.text
    applied = await client.post(f"/access-requests/{request_id}/apply", headers=admin)
    assert (applied.status_code, applied.json()["code"]) == (409, "INVALID_STATE")
    assert "resigned" in applied.json()["detail"]
    register = (await client.get("/access-register", params={"user_id": "op002"}, headers=admin)).json()
    assert [e for e in register["items"] if e["change"] == "grant" and e["branch_code"] == "001"] == []

    done = await client.post("/users/op001/deactivate", json={"reason": "退職（人事未連携）"}, headers=admin)
    assert done.status_code == 200, done.text
    leave = await client.post(
        "/hr-events", json={"user_id": "op001", "kind": "leave", "effective_on": today}, headers=feed
    )
    assert leave.status_code == 201, leave.text
    async with ctx.db.read_session() as session:
        op001 = await session.get(User, "op001")
        assert op001 is not None and op001.status == "deactivated"
    reopen = await client.post(
        "/access-requests",
        json={"user_id": "op001", "action": "reactivate", "reason": "復職"},
        headers=admin,
    )
    assert (reopen.status_code, reopen.json()["code"]) == (409, "INVALID_STATE"), reopen.text

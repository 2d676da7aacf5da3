"""Forensic queries for incident response (AC-6) and the end-to-end trace of one inquiry (LG-5)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR
from app.authz import directory
from app.authz.models import UserRole
from app.clock import ManualClock, business_date_of, rfc3339
from app.context import AppContext
from app.demo import DEMO_ACTOR, DemoCredentials
from app.lists import service as lists_service
from app.lists.models import DailyList
from tests.auditing.support import inquire_with_credentials, inquire_with_number, login_at, release, subjects
from tests.governance.support import add_person, hr_feed_headers, lift_switch, privileged_headers
from tests.helpers import ledger_events, terminal
from tests.hq.support import branch_request


async def test_subject_access_lists_exactly_the_users_and_terminals_that_touched_the_person(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    person, other = await subjects(ctx, 2)
    op001 = await login_at(client, demo, "op001", index=0)
    cf001 = await login_at(client, demo, "cf001", index=1)
    cf001b = await login_at(client, demo, "cf001b", index=1)
    op002 = await login_at(client, demo, "op002", index=0)
    # Branch 001: A2 by cf001, released by cf001b, read by the operator.
    first = await inquire_with_number(client, op001, cf001, person)
    await release(client, demo, "cf001b", cf001b, first["id"])
    assert (await client.get(f"/inquiries/{first['id']}/response", headers=op001)).status_code == 200
    # Branch 002: the same person, A1 by cf002; someone else's inquiry approved by cf002b.
    second = await inquire_with_credentials(client, demo, op002, "cf002", person)
    await inquire_with_credentials(client, demo, op002, "cf002b", other)

    # The branch manager opens the day's subject list (it names the person); the auditor opens it too,
    # but an auditor's view carries no names, so it is not an access to this person.
    today = business_date_of(ctx.clock.now())
    await lists_service.generate(ctx, day=today, actor=SYSTEM_ACTOR, branch_code="001")
    async with ctx.db.read_session() as session:
        # Today's only: the lifespan's list schedule makes the earlier days' lists (empty ones too)
        # meanwhile, and whether it has reached branch 001 yet depends on the machine's load.
        subject_list = (
            await session.scalars(
                select(DailyList).where(
                    DailyList.branch_code == "001",
                    DailyList.kind == "subject",
                    DailyList.business_date == today,
                )
            )
        ).one()
    bm001 = await login_at(client, demo, "bm001", index=0)
    assert (await client.get(f"/daily-lists/{subject_list.id}", headers=bm001)).status_code == 200
    auditor = await login_at(client, demo, "auditor")
    assert (await client.get(f"/daily-lists/{subject_list.id}", headers=auditor)).status_code == 200
    # The count list carries the inquiry as a line but no name: reading it is not seeing the person.
    async with ctx.db.read_session() as session:
        count_list = (
            await session.scalars(
                select(DailyList).where(
                    DailyList.branch_code == "001",
                    DailyList.kind == "count",
                    DailyList.business_date == today,
                )
            )
        ).one()
    assert (await client.get(f"/daily-lists/{count_list.id}", headers=bm001)).status_code == 200

    # The API shows the subject's name to managers: the list and the single inquiry are views of them.
    assert (await client.get("/inquiries", params={"branch_code": "001"}, headers=bm001)).status_code == 200
    bm002 = await login_at(client, demo, "bm002", index=0)
    assert (await client.get(f"/inquiries/{second['id']}", headers=bm002)).status_code == 200
    # A confirmer opens the inquiry in the panel (session cookie and terminal binding, as a browser does).
    cf002b_term = terminal(demo, "002", 0)
    cf002b = await login_at(client, demo, "cf002b", index=0)
    panel = await client.get(
        f"http://testserver/panel/inquiries/{second['id']}",
        headers={
            "Cookie": f"shokai_panel={cf002b['Authorization'].removeprefix('Bearer ')}; "
            f"shokai_terminal={cf002b_term['id']}:{cf002b_term['key']}"
        },
    )
    assert panel.status_code == 200, panel.text
    # A branch's request to HQ about the person, and HQ listing the pending requests with their subjects.
    hq_request = await branch_request(client, op001, person)
    hqop = await login_at(client, demo, "hqop")
    assert (await client.get("/hq-requests", headers=hqop)).status_code == 200

    query = {"name_kana": person["name_kana"], "birth_date": person["birth_date"]}
    found = await client.get("/audit/subject-access", params=query, headers=auditor)
    assert found.status_code == 200, found.text
    report = found.json()
    assert report["users"] == [
        "bm001",
        "bm002",
        "cf001",
        "cf001b",
        "cf002",
        "cf002b",
        "hqop",
        "op001",
        "op002",
    ]
    assert report["terminals"] == ["T001-01", "T001-02", "T002-01", "THQ-01"]
    actions = {(a["user_id"], a["action"]) for a in report["accesses"]}
    assert {
        ("bm001", "inquiry.subject_viewed"),
        ("bm002", "inquiry.subject_viewed"),
        ("cf002b", "panel.inquiry_viewed"),
        ("op001", "hq_request.created"),
        ("hqop", "hq_request.listed"),
    } <= actions
    assert {a["hq_request_id"] for a in report["accesses"] if a["hq_request_id"]} == {hq_request["id"]}
    assert count_list.id not in {a["daily_list_id"] for a in report["accesses"]}
    # The view events name the person by pseudonym only.
    for event in await ledger_events(ctx, action="inquiry.subject_viewed"):
        assert person["name_kana"] not in event.details and report["subject_pseudonym"] in event.details
    assert len(report["inquiries"]) == 2
    kinds = {(a["user_id"], a["kind"]) for a in report["accesses"]}
    assert {
        ("op001", "inquired"),
        ("cf001", "approved"),
        ("cf001b", "released"),
        ("op001", "viewed"),
    } <= kinds
    assert ("bm001", "viewed") in kinds and ("cf002", "approved") in kinds
    # The same answer with the person in the body rather than the URL.
    by_body = await client.post("/audit/subject-access", json=query, headers=auditor)
    assert by_body.json()["users"] == report["users"]
    # And by the pseudonym the ledger and incident records carry, without typing the name again.
    by_pseudonym = await client.get(
        "/audit/subject-access", params={"subject_pseudonym": report["subject_pseudonym"]}, headers=auditor
    )
    assert by_pseudonym.status_code == 200, by_pseudonym.text
    assert by_pseudonym.json()["users"] == report["users"]
    assert by_pseudonym.json()["accesses"] == report["accesses"]
    # An incident's window: only what happened inside it (nothing, for a window that ended before).
    window = {"subject_pseudonym": report["subject_pseudonym"], "until": "2020-01-01T00:00:00Z"}
    early = await client.get("/audit/subject-access", params=window, headers=auditor)
    assert early.status_code == 200 and early.json()["accesses"] == []
    assert len(early.json()["inquiries"]) == 2
    # Neither way of naming the person, or both at once, is a bad request.
    assert (await client.get("/audit/subject-access", headers=auditor)).status_code == 422
    both = {**query, "subject_pseudonym": report["subject_pseudonym"]}
    assert (await client.get("/audit/subject-access", params=both, headers=auditor)).status_code == 422

    # Asking is itself on the record, under the pseudonym, never the name.
    asked = await ledger_events(ctx, action="audit.subject_access_read")
    assert len(asked) == 4 and asked[0].actor_id == "auditor"
    assert {a.object_id for a in asked} == {report["subject_pseudonym"]}
    assert asked[0].object_id == report["subject_pseudonym"]
    assert person["name_kana"] not in asked[0].details and person["birth_date"] not in asked[0].details

    # Only auditors may ask.
    assert (await client.get("/audit/subject-access", params=query, headers=bm001)).status_code == 403


async def test_nobody_touched_a_person_never_inquired_about(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    auditor = await login_at(client, demo, "auditor")
    found = await client.get(
        "/audit/subject-access",
        params={"name_kana": "ダレモ シラナイ", "birth_date": "1960-01-01"},
        headers=auditor,
    )
    assert found.status_code == 200
    assert (found.json()["users"], found.json()["inquiries"]) == ([], [])


async def test_a_birth_date_not_written_yyyy_mm_dd_is_refused_not_misread(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """api.md: dates are YYYY-MM-DD. Read leniently, 0 would ask about people born on 1 January 1970 and
    answer "nobody touched them" for a person the auditor never named."""
    auditor = await login_at(client, demo, "auditor")
    for birth_date in (0, "1960-01-01T00:00:00", "1960/01/01"):
        query = {"name_kana": "ダレモ シラナイ", "birth_date": birth_date}
        refused = await client.post("/audit/subject-access", json=query, headers=auditor)
        assert refused.status_code == 422, (birth_date, refused.text)
        assert refused.json()["code"] == "VALIDATION_ERROR"


async def test_access_holders_at_t_follow_the_role_history(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    before = clock.now()
    clock.advance(hours=1)
    # op002 is given the operator role at branch 001 an hour later.
    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=DEMO_ACTOR, user_id="op002", role="operator", branch_code="001"
        )
        await session.commit()
    clock.advance(minutes=5)
    auditor = await login_at(client, demo, "auditor")

    async def holders(at: str) -> dict[str, list[str]]:
        response = await client.get(
            "/audit/access-holders", params={"branch_code": "001", "at": at}, headers=auditor
        )
        assert response.status_code == 200, response.text
        return {u["user_id"]: u["may"] for u in response.json()["users"]}

    then = await holders(rfc3339(before))
    now = await holders(rfc3339(clock.now()))
    assert "op002" not in then
    assert "op002" in now and "inquiry.read" in now["op002"]
    # Branch 001's own staff, HQ (bank-wide) and the auditor (metadata everywhere) could reach it then.
    assert {"op001", "cf001", "cf001b", "bm001", "hqop", "hqcf", "auditor"} <= set(then)
    # Branch 002's staff and people without data roles could not.
    assert not {"op002", "cf002", "bm002", "accadmin", "secoff"} & set(then)
    assert "inquiry.read_response" not in then["auditor"]
    # Before anyone existed, nobody held anything.
    assert await holders(rfc3339(before - timedelta(days=365))) == {}
    naive = await client.get(
        "/audit/access-holders", params={"branch_code": "001", "at": "2026-11-24T10:00:00"}, headers=auditor
    )
    assert naive.status_code == 422
    # Each answered question is on the record with its branch and time; the refused one is not.
    asked = await ledger_events(ctx, action="audit.access_holders_read")
    assert [(e.actor_id, e.object_id) for e in asked] == [("auditor", "001")] * 3
    assert json.loads(asked[0].details)["at"] == before.isoformat()


async def test_trace_runs_from_the_request_through_the_list_line_to_its_confirmation(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    (person,) = await subjects(ctx, 1)
    op001 = await login_at(client, demo, "op001", index=0)
    cf001 = await login_at(client, demo, "cf001", index=1)
    inquiry = await inquire_with_number(client, op001, cf001, person)
    await release(client, demo, "cf001", cf001, inquiry["id"])
    await client.get(f"/inquiries/{inquiry['id']}/response", headers=op001)
    day = clock.now().date()
    clock.advance(days=1)
    await lists_service.generate(ctx, day=day, actor=SYSTEM_ACTOR, branch_code="001")
    cf001 = await login_at(client, demo, "cf001", index=1)
    async with ctx.db.read_session() as session:
        subject_list = (
            await session.scalars(
                select(DailyList).where(
                    DailyList.branch_code == "001",
                    DailyList.kind == "subject",
                    DailyList.business_date == day,
                )
            )
        ).one()
    checked = await client.post(
        f"/daily-lists/{subject_list.id}/lines/1/check", json={"result": "matched"}, headers=cf001
    )
    assert checked.status_code == 200, checked.text
    confirmed = await client.post(f"/daily-lists/{subject_list.id}/confirm", json={}, headers=cf001)
    assert confirmed.status_code == 200, confirmed.text

    auditor = await login_at(client, demo, "auditor")
    trace = await client.get(f"/inquiries/{inquiry['id']}/trace", headers=auditor)
    assert trace.status_code == 200, trace.text
    events = trace.json()["events"]
    actions = [e["action"] for e in events]
    for expected in (
        "inquiry.created",
        "approval_number.issued",
        "inquiry.approved",
        "inquiry.queued",
        "center.inquiry_sent",
        "inquiry.response_received",
        "inquiry.released",
        "inquiry.response_read",
        "daily_list.generated",
        "daily_list.line_checked",
        "daily_list.confirmed",
    ):
        assert expected in actions, expected
    assert (
        actions.index("inquiry.released")
        < actions.index("daily_list.generated")
        < actions.index("daily_list.confirmed")
    )
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    # Reading the trace is recorded against the inquiry.
    reads = await ledger_events(ctx, action="inquiry.trace_read")
    assert [(e.actor_id, e.object_id) for e in reads] == [("auditor", inquiry["id"])]
    list_events = [e for e in events if e["via"] == "daily_list"]
    # The subject list and the count list both carry the inquiry as a line.
    assert subject_list.id in {e["object_id"] for e in list_events}


async def test_access_holders_at_t_carry_the_roles_and_status_of_that_moment(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    before = clock.now()
    clock.advance(hours=1)
    # op001's operator role at 001 ends; cf001b goes on leave (HR feed); cf001 is suspended in an emergency.
    async with ctx.db.session() as session:
        grant = (
            await session.scalars(
                select(UserRole).where(UserRole.user_id == "op001", UserRole.revoked_at.is_(None))
            )
        ).one()
        grant.revoked_at = clock.now()
        await session.commit()
    feed = await hr_feed_headers(client, demo)
    leave = await client.post(
        "/hr-events",
        json={"user_id": "cf001b", "kind": "leave", "effective_on": clock.now().date().isoformat()},
        headers=feed,
    )
    assert leave.status_code == 201, leave.text
    officer = await privileged_headers(client, demo, clock, "secoff")
    suspended = await client.post(
        "/emergency/suspensions",
        json={"scope": "user", "target": "cf001", "reason": "資格情報の貸与の疑い"},
        headers=officer,
    )
    assert suspended.status_code == 201, suspended.text
    clock.advance(minutes=5)
    auditor = await login_at(client, demo, "auditor")

    async def holders(at: str) -> dict[str, str]:
        response = await client.get(
            "/audit/access-holders", params={"branch_code": "001", "at": at}, headers=auditor
        )
        assert response.status_code == 200, response.text
        return {u["user_id"]: u["status"] for u in response.json()["users"]}

    then = await holders(rfc3339(before))
    now = await holders(rfc3339(clock.now()))
    # Before: everyone as they were, active, whatever happened to them since.
    assert (then["op001"], then["cf001"], then["cf001b"]) == ("active", "active", "active")
    # After: the revoked role is gone; the suspended users held their roles but could not use them.
    assert "op001" not in now
    assert (now["cf001"], now["cf001b"]) == ("suspended", "suspended")
    assert now["bm001"] == "active"

    # Two more officers lift the switch: cf001 is active again from then on, suspended in between.
    suspended_at = clock.now()
    clock.advance(minutes=5)
    await add_person(ctx, demo, "secoff2", (("security_officer", None),))
    second = await privileged_headers(client, demo, clock, "secoff2")
    await add_person(ctx, demo, "secoff3", (("security_officer", None),))
    third = await privileged_headers(client, demo, clock, "secoff3")
    await lift_switch(client, suspended.json()["id"], asking=second, lifting=third, reason="誤報と確認")
    clock.advance(minutes=5)
    auditor = await login_at(client, demo, "auditor")
    assert (await holders(rfc3339(suspended_at)))["cf001"] == "suspended"
    after = await holders(rfc3339(clock.now()))
    assert (after["cf001"], after["cf001b"]) == ("active", "suspended")

"""Emergency switches (IR-1) and incident records (IR-2)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.audit.forensics import subject_pseudonym
from app.clock import ManualClock
from app.context import AppContext
from app.crypto.sealed_text import open_text
from app.demo import DemoCredentials
from app.governance.models import EmergencySuspension
from app.inquiry.models import Inquiry, OutboxMessage
from app.inquiry.outbox import OutboxSender
from app.lists import scheduler as list_schedule
from app.lists.models import DailyList, DailyListLine
from tests.governance.support import add_person, lift_switch, privileged_headers, throw_switch, two_officers
from tests.helpers import auth_headers, ledger_events, login
from tests.hq.support import branch_request, execute
from tests.inquiry.support import a1, center_record, draft_body, person
from tests.reconciliation.support import reconcile


async def test_branch_suspension_is_immediate_and_lifting_takes_two_officers(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await auth_headers(client, demo, "op001")
    other_branch = await auth_headers(client, demo, "op002")
    officer, second = await two_officers(client, ctx, demo, clock)
    subject = await person(ctx)

    suspension_id = await throw_switch(client, officer)

    # The live session's next inquiry is refused, and so is a new login at the branch.
    refused = await client.post("/inquiries", json=draft_body(subject), headers=operator)
    assert refused.status_code == 401
    relogin = await login(client, demo, "op001")
    assert relogin.status_code == 403 and relogin.json()["code"] == "SUSPENDED"
    # Another branch carries on.
    assert (
        await client.post("/inquiries", json=draft_body(subject), headers=other_branch)
    ).status_code == 201

    # Lifting takes two officers at the time: the first one's call only asks, and the switch stays on.
    lift = f"/emergency/suspensions/{suspension_id}/lift"
    asked = await client.post(lift, json={"reason": "調査完了"}, headers=second)
    assert asked.status_code == 202, asked.text
    assert (asked.json()["status"], asked.json()["lift_requested_by"]) == ("active", "secoff2")
    assert (await login(client, demo, "op001")).status_code == 403
    # The same officer again is not a second person, whoever threw the switch.
    again = await client.post(lift, json={"reason": "調査完了"}, headers=second)
    assert again.status_code == 403 and again.json()["code"] == "SOD_VIOLATION"
    assert (await login(client, demo, "op001")).status_code == 403

    lifted = await client.post(lift, json={"reason": "調査完了"}, headers=officer)
    assert lifted.status_code == 200
    assert (lifted.json()["status"], lifted.json()["lift_requested_by"], lifted.json()["lifted_by"]) == (
        "lifted",
        "secoff2",
        "secoff",
    )
    over = await client.post(lift, json={"reason": "調査完了"}, headers=second)
    assert over.status_code == 409 and over.json()["code"] == "INVALID_STATE"
    back = await auth_headers(client, demo, "op001")
    assert (await client.post("/inquiries", json=draft_body(subject), headers=back)).status_code == 201

    events = [(e.action, e.actor_id) for e in await ledger_events(ctx) if e.action.startswith("emergency.")]
    assert events == [
        ("emergency.suspended", "secoff"),
        ("emergency.lift_requested", "secoff2"),
        ("emergency.lifted", "secoff"),
    ]


async def test_a_request_to_lift_that_nobody_acted_on_for_a_shift_lapses(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """IR-1: two officers at the time. A request to lift made a shift ago, and left, is no second opinion
    for today's officer; their call asks anew and the switch stays on until someone else lifts it."""
    officer, second = await two_officers(client, ctx, demo, clock)
    lift = f"/emergency/suspensions/{await throw_switch(client, officer)}/lift"
    assert (await client.post(lift, json={"reason": "調査完了"}, headers=second)).status_code == 202
    # The request was left for longer than a shift (moved back in the database: the officers' logins
    # would not outlive the wait).
    asked_at = clock.now() - timedelta(hours=ctx.settings.emergency_lift_request_hours, minutes=1)
    async with ctx.db.session() as session:
        await session.execute(update(EmergencySuspension).values(lift_requested_at=asked_at))
        await session.commit()
    anew = await client.post(lift, json={"reason": "再調査完了"}, headers=officer)
    assert anew.status_code == 202, anew.text
    assert (anew.json()["status"], anew.json()["lift_requested_by"]) == ("active", "secoff")
    assert (await login(client, demo, "op001")).json()["code"] == "SUSPENDED"
    lifted = await client.post(lift, json={"reason": "再調査完了"}, headers=second)
    assert lifted.status_code == 200
    assert (lifted.json()["lift_requested_by"], lifted.json()["lifted_by"]) == ("secoff", "secoff2")
    requests = await ledger_events(ctx, action="emergency.lift_requested")
    assert [e.actor_id for e in requests] == ["secoff2", "secoff"]
    assert json.loads(requests[-1].details)["lapsed_request"]["requested_by"] == "secoff2"


async def test_user_and_terminal_switches_end_live_sessions(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    officer = await privileged_headers(client, demo, clock, "secoff")
    confirmer = await auth_headers(client, demo, "cf002")
    operator = await auth_headers(client, demo, "op001")
    for scope, target in (("user", "cf002"), ("terminal", operator["X-Terminal-Id"])):
        thrown = await client.post(
            "/emergency/suspensions",
            json={"scope": scope, "target": target, "reason": "緊急停止"},
            headers=officer,
        )
        assert thrown.status_code == 201 and thrown.json()["sessions_ended"] == 1
    assert (await client.get("/me", headers=confirmer)).status_code == 401
    assert (await client.get("/me", headers=operator)).status_code == 401
    assert (await login(client, demo, "cf002")).json()["code"] == "SUSPENDED"
    # An officer cannot switch themselves off, and a switch already on is not thrown twice.
    self_switch = await client.post(
        "/emergency/suspensions", json={"scope": "user", "target": "secoff", "reason": "x"}, headers=officer
    )
    assert self_switch.json()["code"] == "SOD_VIOLATION"
    twice = await client.post(
        "/emergency/suspensions", json={"scope": "user", "target": "cf002", "reason": "x"}, headers=officer
    )
    assert twice.status_code == 409


async def test_suspending_all_inquiries_stops_every_branch_but_not_the_officers(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await auth_headers(client, demo, "op002")
    officer = await privileged_headers(client, demo, clock, "secoff")
    thrown = await client.post(
        "/emergency/suspensions", json={"scope": "all", "reason": "センター障害"}, headers=officer
    )
    assert thrown.status_code == 201
    refused = await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)
    assert refused.status_code == 403 and refused.json()["code"] == "SUSPENDED"
    listed = await client.get("/emergency/suspensions", params={"active": True}, headers=officer)
    assert [s["scope"] for s in listed.json()["items"]] == ["all"]
    plain = await client.post(
        "/emergency/suspensions", json={"scope": "all", "reason": "x"}, headers=operator
    )
    assert plain.status_code == 403


async def test_incident_is_restricted_and_closes_only_with_cause_and_prevention(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    officer = await privileged_headers(client, demo, clock, "secoff")
    opened = await client.post(
        "/incidents",
        json={
            "title": "支店001 目的外照会の疑い",
            "severity": "high",
            "branch_code": "001",
            "window_from": "2026-11-20T00:00:00Z",
            "affected_subjects": [
                subject_pseudonym(ctx, name_kana="シケン ジロウ", birth_date=date(1970, 4, 1))
            ],
        },
        headers=officer,
    )
    assert opened.status_code == 201, opened.text
    incident = opened.json()
    assert set(incident["checklist"]) == {"supervisor_ppc", "individuals", "center", "publication"}
    assert "access_holders" in incident["forensic_links"]
    assert any(k.startswith("subject:") for k in incident["forensic_links"])
    # Every forensic link answers the auditor who follows it (AC-6).
    auditor = await auth_headers(client, demo, "auditor")
    for name, link in incident["forensic_links"].items():
        followed = await client.get(f"http://testserver{link}", headers=auditor)
        assert followed.status_code == 200, (name, followed.text)

    # Restricted: a branch manager cannot even tell it exists; an auditor can read it.
    manager = await auth_headers(client, demo, "bm001")
    assert (await client.get(f"/incidents/{incident['id']}", headers=manager)).status_code == 404
    auditor = await auth_headers(client, demo, "auditor")
    assert (await client.get(f"/incidents/{incident['id']}", headers=auditor)).status_code == 200

    await client.post(
        f"/incidents/{incident['id']}/entries",
        json={"text": "監督当局へ報告", "checklist_item": "supervisor_ppc"},
        headers=officer,
    )
    incomplete = await client.post(
        f"/incidents/{incident['id']}/close", json={"cause": "端末の共用"}, headers=officer
    )
    assert incomplete.status_code == 422 and incomplete.json()["code"] == "INCIDENT_CLOSE_INCOMPLETE"
    closed = await client.post(
        f"/incidents/{incident['id']}/close",
        json={"cause": "端末の共用", "recurrence_prevention": "個人IDの再教育と端末ロック"},
        headers=officer,
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    full = (await client.get(f"/incidents/{incident['id']}", headers=auditor)).json()
    assert [e["kind"] for e in full["timeline"]] == ["opened", "checklist", "closed"]
    assert full["checklist"]["supervisor_ppc"]["by"] == "secoff"
    # The ledger names the incident, never its free text.
    for event in await ledger_events(ctx):
        if event.action.startswith("incident."):
            assert "目的外" not in event.details


def _no_submit_wait(ctx: AppContext) -> None:
    # These tests run no background sender: a submit need not wait for an answer that cannot come.
    ctx.policy = ctx.policy.model_copy(update={"interactive_submit_wait_seconds": 0})


async def test_hq_cannot_execute_a_request_of_a_suspended_branch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    _no_submit_wait(ctx)
    subject = await person(ctx)
    request = await branch_request(client, await auth_headers(client, demo, "op001"), subject)
    hq = await auth_headers(client, demo, "hqop")
    officer, second = await two_officers(client, ctx, demo, clock)
    suspension_id = await throw_switch(client, officer)

    refused = await execute(client, hq, request["id"], subject)
    assert refused.status_code == 403 and refused.json()["code"] == "SUSPENDED"
    pending = (await client.get("/hq-requests", params={"status": "pending"}, headers=hq)).json()["items"]
    assert [r["id"] for r in pending] == [request["id"]]
    assert await center_record(ctx) == []
    refusals = await ledger_events(ctx, action="hq_request.execution_refused")
    assert [(e.actor_id, e.object_id) for e in refusals] == [("hqop", request["id"])]
    assert '"code":"SUSPENDED"' in refusals[0].details

    await lift_switch(client, suspension_id, asking=second, lifting=officer)
    executed = await execute(client, hq, request["id"], subject)
    assert executed.status_code == 201, executed.text


@pytest.mark.parametrize("scope", ["branch", "terminal", "user", "all"])
async def test_a_queued_inquiry_stays_queued_under_a_switch_and_goes_out_when_it_is_lifted(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock, scope: str
) -> None:
    _no_submit_wait(ctx)
    operator = await auth_headers(client, demo, "op001")
    created = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=a1(demo, "cf001")), headers=operator
    )
    assert created.status_code == 201 and created.json()["status"] == "queued", created.text
    inquiry_id = created.json()["id"]

    officer, second = await two_officers(client, ctx, demo, clock)
    target = {"branch": "001", "terminal": operator["X-Terminal-Id"], "user": "op001", "all": None}[scope]
    suspension_id = await throw_switch(client, officer, scope=scope, target=target, reason="緊急停止")

    sender = OutboxSender(ctx)
    for _ in range(2):
        await sender.deliver_due()
        clock.advance(seconds=31)
    async with ctx.db.read_session() as session:
        inquiry = await session.get(Inquiry, inquiry_id)
        message = await session.scalar(select(OutboxMessage).where(OutboxMessage.inquiry_id == inquiry_id))
    # Held back, not failed: still queued, nothing sent, no attempt counted against the center.
    assert inquiry is not None and inquiry.status == "queued"
    assert message is not None and message.delivered_at is None and message.attempts == 0
    assert await center_record(ctx) == []
    held = await ledger_events(ctx, action="center.send_held")
    assert [e.object_id for e in held] == [inquiry_id]

    await lift_switch(client, suspension_id, asking=second, lifting=officer)
    clock.advance(seconds=31)
    await sender.deliver_due()
    async with ctx.db.read_session() as session:
        inquiry = await session.get(Inquiry, inquiry_id)
    assert inquiry is not None and inquiry.status in ("held", "released")
    assert len(await center_record(ctx)) == 1


async def test_a_security_officer_withdraws_an_inquiry_a_switch_holds_and_it_never_reaches_the_center(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The operator suspected of misuse is suspended and cannot cancel what they queued; an officer sees
    the held inquiries (no subject) and withdraws one before the switch is lifted. It is cancelled, never
    sent and on no daily list; the one left goes out once the switch is lifted. An inquiry a sender has
    in hand is not withdrawn under it."""
    _no_submit_wait(ctx)
    operator = await auth_headers(client, demo, "op001")
    queued = []
    for index in range(3):
        created = await client.post(
            "/inquiries", json=draft_body(await person(ctx, index=index), approval=a1(demo)), headers=operator
        )
        assert created.json()["status"] == "queued", created.text
        queued.append(created.json()["id"])
    withdrawn, in_hand, sent_later = queued
    officer, second = await two_officers(client, ctx, demo, clock)
    suspension_id = await throw_switch(client, officer, scope="user", target="op001")
    sender = OutboxSender(ctx)
    for _ in range(2):  # past the submits' own claims, then each row is found held
        await sender.deliver_due()
        clock.advance(seconds=31)

    auditor = await auth_headers(client, demo, "auditor")
    listed = await client.get("/emergency/held-inquiries", headers=auditor)
    assert listed.status_code == 200, listed.text
    assert sorted(item["id"] for item in listed.json()["items"]) == sorted(queued)
    assert all("subject" not in item and item["operator_id"] == "op001" for item in listed.json()["items"])
    confirmer = await auth_headers(client, demo, "cf001")
    assert (await client.get("/emergency/held-inquiries", headers=confirmer)).status_code == 403

    url = f"/emergency/held-inquiries/{withdrawn}/withdraw"
    reason = "不正照会の疑いにより取下げ（本人確認中）"
    assert (await client.post(url, json={"reason": reason}, headers=auditor)).status_code == 403
    blank = await client.post(url, json={"reason": "\u3000"}, headers=officer)
    assert (blank.status_code, blank.json()["code"]) == (422, "VALIDATION_ERROR")
    done = await client.post(url, json={"reason": reason}, headers=officer)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["flags"]) == ("cancelled", ["withdrawn_under_switch"])
    again = await client.post(url, json={"reason": reason}, headers=officer)
    assert (again.status_code, again.json()["code"]) == (409, "INVALID_STATE")

    # A call made before the switch whose answer was lost may have reached the center, and a sender that
    # has claimed a row is calling the center with it: neither is withdrawn under the center's feet.
    for may_have_reached_the_center in (
        {"attempts": 1},
        {"claimed_until": clock.now() + timedelta(seconds=30)},
    ):
        async with ctx.db.session() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.inquiry_id == in_hand)
                .values(attempts=0, claimed_until=None)
                .values(**may_have_reached_the_center)
            )
            await session.commit()
        busy = await client.post(
            f"/emergency/held-inquiries/{in_hand}/withdraw", json={"reason": reason}, headers=officer
        )
        assert (busy.status_code, busy.json()["code"]) == (409, "INVALID_STATE"), may_have_reached_the_center
    listed = (await client.get("/emergency/held-inquiries", headers=auditor)).json()["items"]
    assert sorted(item["id"] for item in listed) == sorted([in_hand, sent_later])

    await lift_switch(client, suspension_id, asking=second, lifting=officer)
    # Lifted, nothing holds it any more: it goes out as approved, so it is not withdrawn "under a switch".
    late = await client.post(
        f"/emergency/held-inquiries/{sent_later}/withdraw", json={"reason": reason}, headers=officer
    )
    assert (late.status_code, late.json()["code"]) == (409, "INVALID_STATE")
    clock.advance(seconds=31)
    await sender.deliver_due()
    async with ctx.db.read_session() as session:
        rows = {i.id: i for i in (await session.scalars(select(Inquiry).where(Inquiry.id.in_(queued)))).all()}
    assert rows[withdrawn].status == "cancelled" and rows[withdrawn].sent_at is None
    assert rows[in_hand].status in ("held", "released") and rows[sent_later].status in ("held", "released")
    assert len(await center_record(ctx)) == 2
    assert open_text(ctx.keyring, rows[withdrawn], "cancel_reason") == reason
    [event] = await ledger_events(ctx, action="inquiry.withdrawn")
    assert (event.actor_id, event.object_id) == ("secoff", withdrawn)
    assert "本人確認" not in event.details  # the reason stays sealed on the inquiry

    clock.advance(days=1)
    lists = await client.post(
        "/daily-lists/generate",
        json={"business_date": "2026-11-24", "branch_code": "001"},
        headers=await auth_headers(client, demo, "hqop"),
    )
    [subject_list] = [item for item in lists.json()["items"] if item["kind"] == "subject"]
    manager = await auth_headers(client, demo, "cf001b")
    lines = (await client.get(f"/daily-lists/{subject_list['id']}", headers=manager)).json()["lines"]
    assert sorted(line["inquiry_id"] for line in lines) == sorted([in_hand, sent_later])
    # Nor is it a cancellation without a second person in the reconciliation with the center: the center
    # never had it.
    run = await reconcile(client, demo)
    assert (run["undual_cancellations"], run["unmatched_gateway"], run["unmatched_center"]) == ([], [], [])


async def test_an_hq_inquiry_run_for_a_branch_request_is_not_withdrawn_under_a_switch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """HQ's day balances its executed inquiries against the branches' executed requests (HQ-3): one
    withdrawn would leave its request executed for an inquiry that never went out, so it is refused and
    the inquiry waits, unchanged, for the switch to be lifted."""
    _no_submit_wait(ctx)
    subject = await person(ctx)
    request = await branch_request(client, await auth_headers(client, demo, "op001"), subject)
    hq = await auth_headers(client, demo, "hqop")
    executed = await execute(client, hq, request["id"], subject)
    assert executed.json()["status"] == "queued", executed.text
    officer, _second = await two_officers(client, ctx, demo, clock)
    await throw_switch(client, officer, scope="user", target="hqop")
    sender = OutboxSender(ctx)
    for _ in range(2):
        await sender.deliver_due()
        clock.advance(seconds=31)
    listed = (await client.get("/emergency/held-inquiries", headers=officer)).json()["items"]
    assert [item["id"] for item in listed] == [executed.json()["id"]]

    refused = await client.post(
        f"/emergency/held-inquiries/{executed.json()['id']}/withdraw",
        json={"reason": "取下げ"},
        headers=officer,
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "INVALID_STATE")
    async with ctx.db.read_session() as session:
        inquiry = await session.get(Inquiry, executed.json()["id"])
    assert inquiry is not None and inquiry.status == "queued"
    assert await center_record(ctx) == []
    assert await ledger_events(ctx, action="inquiry.withdrawn") == []


async def test_a_time_without_its_zone_or_outside_the_calendar_is_refused_in_every_governance_body(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A naive time has no one meaning and the UTC columns refuse it; an offset at the calendar's edge has
    no UTC form. Either was a 500 once the service compared it with now; each is 422 and nothing is kept."""
    officer = await privileged_headers(client, demo, clock, "secoff")
    admin = await privileged_headers(client, demo, clock, "accadmin")
    manager = await auth_headers(client, demo, "bm002")
    grant = {
        "user_id": "cf002",
        "action": "grant",
        "role": "branch_manager",
        "branch_code": "002",
        "reason": "代理",
    }
    incident = {"title": "支店001 目的外照会の疑い", "severity": "high", "branch_code": "001"}
    refused = (
        ("/access-requests", {**grant, "expires_at": "2026-12-31T00:00:00"}, manager),
        ("/access-requests", {**grant, "expires_at": "9999-12-31T23:59:59-23:59"}, manager),
        ("/recertification-campaigns", {"deadline_at": "2026-12-31T00:00:00"}, admin),
        ("/recertification-campaigns", {"deadline_at": "0001-01-01T00:00:00+14:00"}, admin),
        ("/incidents", {**incident, "window_from": "2026-11-20T00:00:00"}, officer),
        ("/incidents", {**incident, "window_to": "9999-12-31T23:59:59-23:59"}, officer),
        # A number is not a time (pydantic alone reads it as seconds since 1970), and a window must not
        # end before it starts (its forensic links would all answer empty).
        ("/recertification-campaigns", {"deadline_at": 1893456000}, admin),
        ("/recertification-campaigns", {"deadline_at": "1893456000"}, admin),
        (
            "/incidents",
            {**incident, "window_from": "2026-11-21T00:00:00Z", "window_to": "2026-11-20T00:00:00Z"},
            officer,
        ),
    )
    events_before = len(await ledger_events(ctx))
    for path, body, headers in refused:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 422, (path, body, response.text)
        assert response.json()["code"] == "VALIDATION_ERROR"
    assert len(await ledger_events(ctx)) == events_before  # nothing opened, requested or started


async def test_an_incident_names_a_real_branch_and_names_hold_no_control_characters(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """Found by fuzzing: an incident for branch "NOSUCH" was opened (its forensic links then answered
    empty, as if nobody had had access), and a user named with an ESC sequence was created."""
    officer = await privileged_headers(client, demo, clock, "secoff")
    admin = await privileged_headers(client, demo, clock, "accadmin")
    events_before = len(await ledger_events(ctx))
    nowhere = await client.post(
        "/incidents", json={"title": "調査", "severity": "low", "branch_code": "NOSUCH"}, headers=officer
    )
    assert nowhere.status_code == 422 and nowhere.json()["code"] == "VALIDATION_ERROR", nowhere.text
    # ... nor one whose right-to-left override shows the name reversed in every register and page.
    for name in ("試験\x1b[2J太郎", "試験\x85太郎", "試験\u202e太郎", "\u2067試験太郎"):
        escaped = await client.post("/users", json={"id": "fz001", "name": name}, headers=admin)
        assert escaped.status_code == 422 and escaped.json()["code"] == "VALIDATION_ERROR", escaped.text
        assert [(e["loc"], e["type"]) for e in escaped.json()["errors"]] == [
            (["body", "name"], "control_character")
        ]
    assert len(await ledger_events(ctx)) == events_before
    # A note may still run over lines.
    opened = await client.post(
        "/incidents",
        json={"title": "調査\n支店001", "severity": "low", "branch_code": "001"},
        headers=officer,
    )
    assert opened.status_code == 201, opened.text


async def test_an_inquiry_sent_long_after_its_day_still_reaches_that_days_list(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """DL-2: held in the outbox past the re-check window (here by an emergency switch), an inquiry
    sent at last is on a supplementary version of its own day's list, not on no list at all."""
    _no_submit_wait(ctx)
    clock.set(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))  # Tuesday 24 November, 10:00 JST
    operator = await auth_headers(client, demo, "op001")
    created = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=a1(demo, "cf001")), headers=operator
    )
    assert created.status_code == 201 and created.json()["status"] == "queued", created.text
    await add_person(ctx, demo, "secoff2", (("security_officer", None),))
    officer = await privileged_headers(client, demo, clock, "secoff")
    thrown = await client.post(
        "/emergency/suspensions", json={"scope": "all", "target": None, "reason": "緊急停止"}, headers=officer
    )
    assert thrown.status_code == 201, thrown.text

    clock.set(datetime(2026, 11, 24, 15, 31, tzinfo=UTC))  # 00:31 JST the next day
    await OutboxSender(ctx).deliver_due()  # held back by the switch
    await list_schedule.run_once(ctx)

    async def subject_lists() -> list[DailyList]:
        async with ctx.db.read_session() as session:
            found = await session.scalars(
                select(DailyList)
                .where(
                    DailyList.branch_code == "001",
                    DailyList.kind == "subject",
                    DailyList.business_date == date(2026, 11, 24),
                )
                .order_by(DailyList.version)
            )
            return list(found.all())

    [first] = await subject_lists()
    sent_that_day = first.inquiries_total  # the demo's own inquiries of the day
    # Ten days on, beyond the week the schedule re-checks, the inquiry goes out.
    clock.set(datetime(2026, 12, 4, 1, 0, tzinfo=UTC))  # Friday 4 December, 10:00 JST
    assert date(2026, 11, 24) not in list_schedule.due_days(ctx)
    second = await privileged_headers(client, demo, clock, "secoff2")
    await add_person(ctx, demo, "secoff3", (("security_officer", None),))
    third = await privileged_headers(client, demo, clock, "secoff3")
    await lift_switch(client, thrown.json()["id"], asking=second, lifting=third)
    await OutboxSender(ctx).deliver_due()
    await list_schedule.run_once(ctx)
    first, supplement = await subject_lists()
    assert (first.state, supplement.version) == ("superseded", 2)
    assert supplement.inquiries_total == sent_that_day + 1
    assert supplement.supersedes == first.id and supplement.state == "pending"
    async with ctx.db.read_session() as session:
        lines = (
            await session.scalars(select(DailyListLine).where(DailyListLine.list_id == supplement.id))
        ).all()
    assert created.json()["id"] in {line.inquiry_id for line in lines}

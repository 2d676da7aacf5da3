"""Escalations are handled: a branch manager of the branch or HQ compliance acknowledges one, once, with
what was done; nobody it concerns may, other branches do not see it, auditors only read it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from app.audit.ledger import Actor
from app.authz import directory
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.hq.models import HqRequest
from app.inquiry.models import Inquiry
from tests.helpers import MY_NUMBER_GROUPED, as_recorded, ledger_events, my_number_forbidden
from tests.hq.support import balance, branch_request, execute
from tests.inquiry.support import a1, as_user, draft_body, password_of, person
from tests.lists.test_daily_lists import FRIDAY_MORNING, generate, send


async def _mismatch(client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext) -> str:
    """op001's inquiry released by cf001b with a document mismatch; its id."""
    operator = await as_user(client, demo, "op001")
    created = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=a1(demo)), headers=operator
    )
    assert created.status_code == 201, created.text
    releaser = await as_user(client, demo, "cf001b")
    released = await client.post(
        f"/inquiries/{created.json()['id']}/release",
        headers=releaser,
        json={"password": password_of(demo, "cf001b"), "document_check": "mismatch"},
    )
    assert released.status_code == 200, released.text
    return str(created.json()["id"])


async def _open(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    listed = await client.get("/escalations", params=params, headers=headers)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def test_the_branch_manager_acknowledges_a_mismatch_once_with_what_was_done(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry_id = await _mismatch(client, demo, ctx)
    manager = await as_user(client, demo, "bm001")
    [escalation] = await _open(client, manager)
    assert (escalation["kind"], escalation["object_id"], escalation["acknowledged_at"]) == (
        "document_mismatch",
        inquiry_id,
        None,
    )

    # What was done is the point: an empty note, or one holding an Individual Number, is refused.
    path = f"/escalations/{escalation['id']}/acknowledge"
    for blank in ("", " ", "\u3000\u3000"):  # nothing, or only spaces half- or full-width
        empty = await client.post(path, json={"note": blank}, headers=manager)
        assert (empty.status_code, empty.json()["code"]) == (422, "VALIDATION_ERROR"), repr(blank)
    my_number_forbidden(await client.post(path, json={"note": f"番号 {MY_NUMBER_GROUPED}"}, headers=manager))

    done = await client.post(path, json={"note": "本人に電話で確認、申込書の記載誤り"}, headers=manager)
    assert done.status_code == 200, done.text
    assert (done.json()["acknowledged_by"], done.json()["acknowledgement_note"]) == (
        "bm001",
        "本人に電話で確認、申込書の記載誤り",
    )
    again = await client.post(path, json={"note": "二度目"}, headers=manager)
    assert (again.status_code, again.json()["code"]) == (409, "INVALID_STATE")

    assert await _open(client, manager) == []
    [closed] = await _open(client, manager, state="acknowledged")
    assert closed["acknowledgement_note"] == "本人に電話で確認、申込書の記載誤り"  # the first stands
    [event] = await ledger_events(ctx, action="escalation.acknowledged")
    assert (event.actor_id, event.object_id) == ("bm001", escalation["id"])
    assert "電話" not in event.details  # free text stays in the escalation, not in the ledger

    # The inquiry's trace (LG-5) runs on to how its escalation was handled.
    traced = (await client.get(f"/inquiries/{inquiry_id}/trace", headers=manager)).json()["events"]
    steps = [(e["action"], e["via"]) for e in traced]
    raised = steps.index(("inquiry.suspected_misuse", "inquiry"))
    assert steps.index(("escalation.acknowledged", "escalation")) > raised
    [handled] = [e for e in traced if e["via"] == "escalation"]
    assert (handled["actor_id"], handled["object_id"]) == ("bm001", escalation["id"])


async def test_other_branches_auditors_and_confirmers_cannot_acknowledge_and_hq_compliance_can(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await _mismatch(client, demo, ctx)
    [escalation] = await _open(client, await as_user(client, demo, "auditor"))  # auditors read it
    path = f"/escalations/{escalation['id']}/acknowledge"
    body = {"note": "確認済み"}

    other_branch = await as_user(client, demo, "bm002")
    assert await _open(client, other_branch) == []
    refused = await client.post(path, json=body, headers=other_branch)
    assert (refused.status_code, refused.json()["code"]) == (404, "NOT_FOUND")
    for user_id in ("auditor", "cf001b", "op001"):
        refused = await client.post(path, json=body, headers=await as_user(client, demo, user_id))
        assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN"), user_id

    hq = await as_user(client, demo, "hqcf")
    done = await client.post(path, json=body, headers=hq)
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "hqcf"
    assert [e.actor_id for e in await ledger_events(ctx, action="escalation.acknowledged")] == ["hqcf"]


async def test_a_manager_who_released_the_response_cannot_close_the_concern_they_raised(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """SD-1: nobody settles a concern about, or raised by, themselves. Here the branch manager is the one
    who released with the mismatch (a manager who also confirms); then the operator's own manager role."""
    inquiry_id = await _mismatch(client, demo, ctx)
    async with ctx.db.session() as session:
        await session.execute(update(Inquiry).where(Inquiry.id == inquiry_id).values(released_by="bm001"))
        await session.commit()
    manager = await as_user(client, demo, "bm001")
    [escalation] = await _open(client, manager)
    path = f"/escalations/{escalation['id']}/acknowledge"

    refused = await client.post(path, json={"note": "問題なし"}, headers=manager)
    assert (refused.status_code, refused.json()["code"]) == (403, "SOD_VIOLATION")

    async with ctx.db.session() as session:
        await session.execute(
            update(Inquiry).where(Inquiry.id == inquiry_id).values(released_by="cf001b", operator_id="bm001")
        )
        await session.commit()
    refused = await client.post(path, json={"note": "問題なし"}, headers=manager)
    assert (refused.status_code, refused.json()["code"]) == (403, "SOD_VIOLATION")
    assert await ledger_events(ctx, action="escalation.acknowledged") == []
    [still_open] = await _open(client, manager)
    assert still_open["acknowledged_at"] is None


async def test_two_handlers_at_once_close_it_once_and_the_first_note_stands(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """The branch manager and HQ compliance press at the same moment: one closes it, the other is told
    it was already closed, and the record holds one handler and one note (the row is locked while
    decided)."""
    await _mismatch(client, demo, ctx)
    manager = await as_user(client, demo, "bm001")
    hq = await as_user(client, demo, "hqcf")
    [escalation] = await _open(client, manager)
    path = f"/escalations/{escalation['id']}/acknowledge"

    answers = await asyncio.gather(
        client.post(path, json={"note": "支店で対応"}, headers=manager),
        client.post(path, json={"note": "本部で対応"}, headers=hq),
    )

    codes = sorted((r.status_code, r.json().get("code")) for r in answers)
    assert codes == [(200, None), (409, "INVALID_STATE")], [r.text for r in answers]
    winner = next(r.json() for r in answers if r.status_code == 200)
    [closed] = await _open(client, manager, state="acknowledged")
    assert (closed["acknowledged_by"], closed["acknowledgement_note"]) == (
        winner["acknowledged_by"],
        winner["acknowledgement_note"],
    )
    events = await ledger_events(ctx, action="escalation.acknowledged")
    assert [e.actor_id for e in events] == [winner["acknowledged_by"]]


async def _grant(ctx: AppContext, user_id: str, role: str, branch_code: str | None) -> None:
    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=Actor(id="test"), user_id=user_id, role=role, branch_code=branch_code
        )
        await session.commit()


async def test_the_confirmer_who_approved_the_inquiry_cannot_close_its_mismatch_as_manager(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await _mismatch(client, demo, ctx)  # approved by cf001 (A1), released by cf001b
    await _grant(ctx, "cf001", "branch_manager", "001")
    approver = await as_user(client, demo, "cf001")
    [escalation] = await _open(client, approver)
    refused = await client.post(
        f"/escalations/{escalation['id']}/acknowledge", json={"note": "問題なし"}, headers=approver
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "SOD_VIOLATION")
    assert "approved the inquiry" in refused.json()["detail"]


async def test_a_list_line_escalation_is_closed_by_neither_its_checker_nor_the_lines_operator(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)  # entered by op001
    clock.set(FRIDAY_MORNING + timedelta(days=1))
    subject_list = next(g for g in await generate(client, demo, "2026-11-13") if g["kind"] == "subject")
    checker = await as_user(client, demo, "cf001b")
    checked = await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check",
        json={"result": "mismatch", "note": "書類の日付が違う"},
        headers=checker,
    )
    assert checked.status_code == 200, checked.text
    for user_id in ("cf001b", "op001"):  # a manager as well, each of them
        await _grant(ctx, user_id, "branch_manager", "001")
    manager = await as_user(client, demo, "bm001")
    [escalation] = await _open(client, manager)
    assert (escalation["kind"], escalation["raised_by"]) == ("list_line_mismatch", "cf001b")
    path = f"/escalations/{escalation['id']}/acknowledge"

    for user_id, how in (("cf001b", "raised it"), ("op001", "are named in it")):
        refused = await client.post(
            path, json={"note": "確認済み"}, headers=await as_user(client, demo, user_id)
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "SOD_VIOLATION"), user_id
        assert how in refused.json()["detail"]
    done = await client.post(path, json={"note": "  申込書を再確認し、入力誤りを訂正依頼  "}, headers=manager)
    assert done.status_code == 200, done.text
    # Kept without the spaces around it, as the panel keeps it.
    assert done.json()["acknowledgement_note"] == "申込書を再確認し、入力誤りを訂正依頼"


async def test_hq_compliance_who_ran_an_hq_inquiry_that_day_cannot_close_its_mismatch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """As for the day's sign-off (HQ-3): nobody settles the balance of a day they worked."""
    await _grant(ctx, "hqcf", "hq_operator", None)
    op001, hqcf = await as_user(client, demo, "op001"), await as_user(client, demo, "hqcf")
    subject = await person(ctx)
    request = await branch_request(client, op001, subject)
    assert (await execute(client, hqcf, request["id"], subject)).status_code == 201
    async with ctx.db.session() as session:  # the request loses its executed mark: the day cannot balance
        await session.execute(update(HqRequest).where(HqRequest.id == request["id"]).values(status="pending"))
        await session.commit()
    assert (await balance(client, hqcf))["balanced"] is False

    [escalation] = await _open(client, hqcf)
    assert escalation["kind"] == "hq_count_mismatch"
    path = f"/escalations/{escalation['id']}/acknowledge"
    refused = await client.post(path, json={"note": "原因調査中"}, headers=hqcf)
    assert (refused.status_code, refused.json()["code"]) == (403, "SOD_VIOLATION")
    assert "ran an HQ inquiry" in refused.json()["detail"]
    # A branch's manager neither sees nor closes HQ's day.
    manager = await as_user(client, demo, "bm001")
    assert await _open(client, manager) == []
    refused = await client.post(path, json={"note": "確認済み"}, headers=manager)
    assert (refused.status_code, refused.json()["code"]) == (404, "NOT_FOUND")
    assert await ledger_events(ctx, action="escalation.acknowledged") == []
    # Absent for them, and on the record as the denied request it was (LG-1).
    denied = [e for e in await ledger_events(ctx, action="request.denied") if e.actor_id == "bm001"]
    assert [e.object_id for e in denied] == [
        as_recorded(f"/api/v1{path}", "/escalations/{escalation_id}/acknowledge")
    ]


async def test_a_manager_reads_the_escalations_of_the_branch_they_manage_not_of_one_they_confirm_at(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await _mismatch(client, demo, ctx)
    async with ctx.db.session() as session:  # an escalation at 002 (its overdue sweep, say)
        session.add(
            Escalation(
                id=str(uuid.uuid4()),
                kind="list_overdue",
                branch_code="002",
                object_type="daily_list",
                object_id=str(uuid.uuid4()),
                recipients=["branch_manager", "hq"],
                created_at=ctx.clock.now(),
                note="count list 2026-11-20",
            )
        )
        await session.commit()
    await _grant(ctx, "bm001", "confirmer", "002")
    manager = await as_user(client, demo, "bm001")
    assert {e["branch_code"] for e in await _open(client, manager, state="all")} == {"001"}
    assert {e["branch_code"] for e in await _open(client, await as_user(client, demo, "bm002"))} == {"002"}
    everyone = await _open(client, await as_user(client, demo, "auditor"))
    assert {e["branch_code"] for e in everyone} == {"001", "002"}


async def test_bad_input_to_the_escalation_endpoints_is_refused_as_problem_json_and_changes_nothing(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await _mismatch(client, demo, ctx)
    manager = await as_user(client, demo, "bm001")
    [escalation] = await _open(client, manager)
    path = f"/escalations/{escalation['id']}/acknowledge"
    for params in ({"state": "closed"}, {"cursor": "not-a-cursor"}, {"limit": 0}, {"branch_code": "x" * 9}):
        refused = await client.get("/escalations", params=params, headers=manager)
        assert (refused.status_code, refused.json()["code"]) == (422, "VALIDATION_ERROR"), params
        assert refused.headers["content-type"] == "application/problem+json"
    for body in ({}, {"note": 5}, {"note": "x" * 401}, {"note": "対応\x07済み"}, [], "text"):
        refused = await client.post(path, json=body, headers=manager)
        assert (refused.status_code, refused.json()["code"]) == (422, "VALIDATION_ERROR"), body
    not_json = await client.post(
        path, content=b"{note:", headers={**manager, "Content-Type": "application/json"}
    )
    assert not_json.status_code == 422
    answers = {}
    for unknown in ("no-such-id", "x" * 500, "%00"):
        missing = await client.post(
            f"/escalations/{unknown}/acknowledge", json={"note": "済"}, headers=manager
        )
        assert missing.headers["content-type"] == "application/problem+json"
        answers[unknown[:5]] = (missing.status_code, missing.json()["code"])
    # No such escalation, however long the id; a NUL in the path is refused before any route runs.
    assert answers == {
        "no-su": (404, "NOT_FOUND"),
        "xxxxx": (404, "NOT_FOUND"),
        "%00": (422, "VALIDATION_ERROR"),
    }
    [still_open] = await _open(client, manager)
    assert still_open["acknowledged_at"] is None
    assert await ledger_events(ctx, action="escalation.acknowledged") == []


async def test_an_hq_difference_handled_comes_back_only_when_the_figures_move(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """HQ-3: an acknowledged difference still there does not re-open on every read (the blocked sign-off
    says so); a different one is news and is raised again, with its figures."""
    op001, hqop = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    hqcf = await as_user(client, demo, "hqcf")
    subjects = [await person(ctx, index=i) for i in range(3)]
    requests = []
    for subject in subjects[:2]:
        requests.append(request := await branch_request(client, op001, subject))
        assert (await execute(client, hqop, request["id"], subject)).status_code == 201
    async with ctx.db.session() as session:  # one request loses its executed mark
        await session.execute(
            update(HqRequest).where(HqRequest.id == requests[0]["id"]).values(status="pending")
        )
        await session.commit()
    assert (await balance(client, hqcf))["balanced"] is False
    [first] = await _open(client, hqcf)
    assert first["note"] == "hq_executed 2, branch_requests 1, own 0"
    done = await client.post(
        f"/escalations/{first['id']}/acknowledge", json={"note": "原因調査中"}, headers=hqcf
    )
    assert done.status_code == 200, done.text

    # The same difference, read again: handled, not raised again.
    assert (await balance(client, hqcf))["balanced"] is False
    assert await _open(client, hqcf) == []
    # Another request executed: the difference is still there, but the figures moved.
    third = await branch_request(client, op001, subjects[2])
    assert (await execute(client, hqop, third["id"], subjects[2])).status_code == 201
    assert (await balance(client, hqcf))["balanced"] is False
    [again] = await _open(client, hqcf)
    assert again["id"] != first["id"] and again["note"] == "hq_executed 3, branch_requests 2, own 0"
    # Read once more while it is open: still one.
    await balance(client, hqcf)
    assert [e["id"] for e in await _open(client, hqcf)] == [again["id"]]
    assert len(await ledger_events(ctx, action="hq_reconciliation.mismatch")) >= 4

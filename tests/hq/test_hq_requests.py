"""HQ inquiries on behalf of branches (VI(1)②): HQ-1 requests, HQ-3 daily balance, HQ-4 own initiative."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.hq.models import HqRequest
from app.inquiry.models import Inquiry
from app.inquiry.subject import normalise_kana
from tests.helpers import ledger_events
from tests.hq.support import TODAY, balance, branch_request, execute
from tests.inquiry.support import a1, as_user, center_record, center_record_once_sent, draft_body, person


async def test_three_branch_requests_and_one_own_inquiry_balance_and_hq_signs_off(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """HQ-1, HQ-3, HQ-4: the acceptance walk of a day at HQ."""
    op001, op002 = await as_user(client, demo, "op001"), await as_user(client, demo, "op002")
    hq = await as_user(client, demo, "hqop")
    subjects = [await person(ctx, index=i) for i in range(4)]
    requests = [
        await branch_request(client, op001, subjects[0]),
        await branch_request(client, op001, subjects[1]),
        await branch_request(client, op002, subjects[2]),
    ]
    assert [r["status"] for r in requests] == ["pending"] * 3

    pending = (await client.get("/hq-requests", params={"status": "pending"}, headers=hq)).json()["items"]
    assert {r["id"] for r in pending} == {r["id"] for r in requests}
    # HQ reads the subject it has to inquire about; the request is sealed at rest like an inquiry.
    first = next(r for r in pending if r["id"] == requests[0]["id"])
    assert first["subject"]["name_kana"] == normalise_kana(subjects[0]["name_kana"])
    assert first["subject"]["birth_date"] == subjects[0]["birth_date"]

    executed = []
    for request, subject in zip(requests, subjects, strict=False):
        response = await execute(client, hq, request["id"], subject)
        assert response.status_code == 201, response.text
        inquiry = response.json()
        assert inquiry["branch_code"] == "000" and inquiry["hq_request_id"] == request["id"]
        # Sent at once: the requesting branch's controls apply, not HQ's method A.
        assert inquiry["status"] in ("queued", "held")
        executed.append(inquiry)

    # HQ's own initiative: HQ's method A with an HQ confirmer.
    own = await client.post("/inquiries", json=draft_body(subjects[3], approval=a1(demo, "hqcf")), headers=hq)
    assert own.status_code == 201, own.text
    assert own.json()["hq_request_id"] is None and own.json()["approval"]["confirmer_id"] == "hqcf"

    done = (await client.get("/hq-requests", params={"status": "executed"}, headers=hq)).json()["items"]
    assert {(r["id"], r["inquiry_id"]) for r in done} == {(i["hq_request_id"], i["id"]) for i in executed}
    assert len(await center_record(ctx)) == 4

    hqcf = await as_user(client, demo, "hqcf")
    day = await balance(client, hqcf)
    assert day["hq_executed"] == 4
    assert day["branch_requests_executed"] == 3
    assert day["by_branch"] == [
        {"branch_code": "001", "requests_executed": 2},
        {"branch_code": "002", "requests_executed": 1},
    ]
    assert day["own_initiative"] == 1
    assert day["balanced"] is True and day["sign_off"] is None

    # The day is signed off once it is over (Asia/Tokyo), not while inquiries can still be made.
    early = await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=hqcf)
    assert early.status_code == 409 and early.json()["code"] == "DAY_NOT_OVER"
    clock.set(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))  # 00:00 JST on Wednesday 25 November
    hq, hqcf = await as_user(client, demo, "hqop"), await as_user(client, demo, "hqcf")
    # The HQ operator who ran the day's inquiries is not the one who signs it off.
    assert (await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=hq)).status_code == 403
    signed = await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=hqcf)
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed_by"] == "hqcf" and signed.json()["hq_executed"] == 4
    again = await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=hqcf)
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"

    auditor = await as_user(client, demo, "auditor")
    seen = await balance(client, auditor)
    assert seen["balanced"] is True and seen["sign_off"]["signed_by"] == "hqcf"

    assert len(await ledger_events(ctx, action="hq_request.created")) == 3
    assert {e.object_id for e in await ledger_events(ctx, action="hq_request.executed")} == {
        r["id"] for r in requests
    }
    assert [e.object_id for e in await ledger_events(ctx, action="hq_reconciliation.signed_off")] == [TODAY]


async def test_a_request_is_executed_once_even_when_two_hq_operators_race(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """HQ-1: each HQ inquiry references exactly one branch request; duplicates refused."""
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    first_subject, raced_subject = await person(ctx, index=0), await person(ctx, index=1)
    first = await branch_request(client, op001, first_subject)
    assert (await execute(client, hq, first["id"], first_subject)).status_code == 201
    twice = await execute(client, hq, first["id"], first_subject)
    assert twice.status_code == 409 and twice.json()["code"] == "HQ_REQUEST_ALREADY_EXECUTED"

    raced = await branch_request(client, op001, raced_subject)
    outcomes = await asyncio.gather(
        execute(client, hq, raced["id"], raced_subject), execute(client, hq, raced["id"], raced_subject)
    )
    assert sorted(r.status_code for r in outcomes) == [201, 409]
    assert [r.json()["code"] for r in outcomes if r.status_code == 409] == ["HQ_REQUEST_ALREADY_EXECUTED"]
    refusals = await ledger_events(ctx, action="hq_request.execution_refused")
    assert [(e.object_id, e.outcome) for e in refusals] == [(first["id"], "denied"), (raced["id"], "denied")]
    # One inquiry per request reached the center.
    assert len(await center_record(ctx)) == 2

    # And the database itself refuses a second inquiry for one request, whatever the code path.
    async with ctx.db.session() as session:
        other = await session.scalar(select(Inquiry.id).where(Inquiry.hq_request_id == raced["id"]))
        assert other is not None
        try:
            await session.execute(
                update(Inquiry).where(Inquiry.hq_request_id == first["id"]).values(hq_request_id=raced["id"])
            )
            await session.flush()
        except IntegrityError:
            await session.rollback()
        else:
            raise AssertionError("two inquiries were allowed to execute one request")


async def test_hq_must_send_what_the_branch_asked_for(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx, index=0)
    request = await branch_request(client, op001, subject)

    widened = await execute(client, hq, request["id"], subject, purpose="gazette_check")
    assert widened.status_code == 422 and widened.json()["code"] == "HQ_REQUEST_MISMATCH"
    someone_else = await execute(client, hq, request["id"], await person(ctx, index=1))
    assert someone_else.json()["code"] == "HQ_REQUEST_MISMATCH"
    unknown = await execute(client, hq, "no-such-request", subject)
    assert unknown.status_code == 422 and unknown.json()["code"] == "VALIDATION_ERROR"
    # A branch operator cannot execute a request, not even their own.
    by_branch = await execute(client, op001, request["id"], subject)
    assert by_branch.status_code == 403

    refusals = await ledger_events(ctx, action="hq_request.execution_refused")
    assert [e.details for e in refusals] == ['{"code":"HQ_REQUEST_MISMATCH"}'] * 2
    still = (await client.get("/hq-requests", headers=hq)).json()["items"]
    assert [(r["id"], r["status"]) for r in still] == [(request["id"], "pending")]
    assert await center_record(ctx) == []


async def test_an_hq_inquiry_without_request_or_approval_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """HQ-4: HQ's own inquiry gets HQ's method A; nothing goes out without an HQ confirmer."""
    hq = await as_user(client, demo, "hqop")
    draft = await client.post("/inquiries", json=draft_body(await person(ctx)), headers=hq)
    assert draft.status_code == 201, draft.text
    assert draft.json()["status"] == "awaiting_approval" and draft.json()["hq_request_id"] is None
    submit = f"/inquiries/{draft.json()['id']}/submit"

    wrong = {"method": "approval_number", "approval_number": "0000-0000"}
    refused = await client.post(submit, json={"approval": wrong}, headers=hq)
    assert refused.status_code == 403 and refused.json()["code"] == "APPROVAL_INVALID"
    branch_confirmer = await client.post(submit, json={"approval": a1(demo, "cf001")}, headers=hq)
    assert branch_confirmer.status_code == 403 and branch_confirmer.json()["code"] == "NOT_A_CONFIRMER"
    oneself = await client.post(submit, json={"approval": a1(demo, "hqop")}, headers=hq)
    assert oneself.status_code == 403 and oneself.json()["code"] == "SAME_PERSON"

    assert await center_record(ctx) == []
    day = await balance(client, await as_user(client, demo, "hqcf"))
    assert (day["hq_executed"], day["own_initiative"], day["balanced"]) == (0, 0, True)

    approved = await client.post(submit, json={"approval": a1(demo, "hqcf")}, headers=hq)
    assert approved.status_code == 200, approved.text
    day = await balance(client, await as_user(client, demo, "hqcf"))
    assert (day["hq_executed"], day["own_initiative"], day["balanced"]) == (1, 1, True)


async def test_a_count_mismatch_blocks_hq_sign_off_and_alerts(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """HQ-3: a difference raises HQ_COUNT_MISMATCH (critical) and blocks the sign-off."""
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subjects = [await person(ctx, index=i) for i in range(2)]
    for subject in subjects:
        request = await branch_request(client, op001, subject)
        assert (await execute(client, hq, request["id"], subject)).status_code == 201
    # One request loses its executed mark (a restore, a hand edit): HQ's side no longer matches.
    async with ctx.db.session() as session:
        await session.execute(update(HqRequest).where(HqRequest.id == request["id"]).values(status="pending"))
        await session.commit()

    hqcf = await as_user(client, demo, "hqcf")
    day = await balance(client, hqcf)
    assert (day["hq_executed"], day["branch_requests_executed"], day["own_initiative"]) == (2, 1, 0)
    assert day["balanced"] is False

    clock.set(datetime(2026, 11, 25, 0, 0, tzinfo=UTC))  # the next morning
    hqcf = await as_user(client, demo, "hqcf")
    blocked = await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=hqcf)
    assert blocked.status_code == 409 and blocked.json()["code"] == "HQ_COUNT_MISMATCH"
    assert (await balance(client, hqcf))["sign_off"] is None

    alerts = await ledger_events(ctx, action="hq_reconciliation.mismatch")
    assert alerts and all('"severity":"critical"' in e.details for e in alerts)
    async with ctx.db.read_session() as session:
        escalations = list(
            (await session.scalars(select(Escalation).where(Escalation.kind == "hq_count_mismatch"))).all()
        )
    # One escalation per day however often the difference is seen.
    assert [(e.object_id, e.recipients) for e in escalations] == [(TODAY, ["hq_compliance", "auditor"])]


async def test_hq_balance_read_together_by_several_confirmers_raises_one_escalation(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """HQ-3: reads of a difference that arrive together still escalate it once, not once per reader."""
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx, index=0)
    request = await branch_request(client, op001, subject)
    assert (await execute(client, hq, request["id"], subject)).status_code == 201
    async with ctx.db.session() as session:
        await session.execute(update(HqRequest).where(HqRequest.id == request["id"]).values(status="pending"))
        await session.commit()

    hqcf = await as_user(client, demo, "hqcf")
    days = await asyncio.gather(*(balance(client, hqcf) for _ in range(6)))
    assert [day["balanced"] for day in days] == [False] * 6
    async with ctx.db.read_session() as session:
        escalations = list(
            (await session.scalars(select(Escalation).where(Escalation.kind == "hq_count_mismatch"))).all()
        )
    assert [e.object_id for e in escalations] == [TODAY]
    # Every read is still alerted in the ledger.
    assert len(await ledger_events(ctx, action="hq_reconciliation.mismatch")) == 6


async def test_each_branch_sees_its_own_requests_and_auditors_no_subjects(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    op001, op002 = await as_user(client, demo, "op001"), await as_user(client, demo, "op002")
    mine = await branch_request(client, op001, await person(ctx, index=0))
    theirs = await branch_request(client, op002, await person(ctx, index=1))

    seen_by_001 = (await client.get("/hq-requests", headers=op001)).json()["items"]
    assert [r["id"] for r in seen_by_001] == [mine["id"]]
    seen_by_cf002 = (await client.get("/hq-requests", headers=await as_user(client, demo, "cf002"))).json()
    assert [r["id"] for r in seen_by_cf002["items"]] == [theirs["id"]]
    assert seen_by_cf002["items"][0]["return_option"] == "count_list"

    audited = (await client.get("/hq-requests", headers=await as_user(client, demo, "auditor"))).json()
    assert {r["id"] for r in audited["items"]} == {mine["id"], theirs["id"]}
    assert all(r["subject"] is None for r in audited["items"])
    # Auditors read the balance but neither request, execute nor sign off.
    auditor = await as_user(client, demo, "auditor")
    assert (await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=auditor)).status_code == 403
    by_operator = await client.get("/reconciliation/hq", params={"business_date": TODAY}, headers=op001)
    assert by_operator.status_code == 403

    # HQ does not send requests to itself.
    hq = await as_user(client, demo, "hqop")
    to_itself = await client.post("/hq-requests", json=draft_body(await person(ctx)), headers=hq)
    assert to_itself.status_code == 403
    # A request never carries an Individual Number, and a refusal leaves nothing behind.
    body = draft_body(await person(ctx, index=2))
    body["consent_document"]["reference"] = "123456789018"
    refused = await client.post("/hq-requests", json=body, headers=op001)
    assert refused.status_code == 422 and refused.json()["code"] == "MY_NUMBER_FORBIDDEN"
    assert len((await client.get("/hq-requests", headers=op001)).json()["items"]) == 1
    # Nothing about the subject goes into the ledger, only the pseudonym.
    created = await ledger_events(ctx, action="hq_request.created")
    assert all("name_kana" not in e.details and "birth_date" not in e.details for e in created)


async def test_a_repeated_request_with_the_same_idempotency_key_is_one_request(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    op001 = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    headers = {**op001, "Idempotency-Key": "hq-request-0001"}
    first = await client.post("/hq-requests", json=body, headers=headers)
    retry = await client.post("/hq-requests", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert first.json()["id"] == retry.json()["id"]
    other = await client.post("/hq-requests", json={**body, "purpose": "gazette_check"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len((await client.get("/hq-requests", headers=op001)).json()["items"]) == 1


async def test_hq_executes_a_request_whose_id_happens_to_read_as_an_individual_number(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """PL-4 scans what people typed: the request's own UUID (about 1 in 370 read as a valid 12-digit
    number across its groups) is not refused, while the same field carrying a real number is."""
    from app.inquiry.subject import contains_my_number
    from tests.inquiry.test_inquiry_refusals import my_number

    unlucky = "3f933587-4429-45fa-aa5d-0b4bdf3c49ba"
    assert contains_my_number(unlucky)
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    request = await branch_request(client, op001, subject)
    async with ctx.db.session() as session:
        await session.execute(update(HqRequest).where(HqRequest.id == request["id"]).values(id=unlucky))
        await session.commit()

    smuggled = await execute(client, hq, my_number(), subject)
    assert smuggled.status_code == 422 and smuggled.json()["code"] == "MY_NUMBER_FORBIDDEN"
    executed = await execute(client, hq, unlucky, subject)
    assert executed.status_code == 201, executed.text
    assert executed.json()["hq_request_id"] == unlucky


async def test_a_request_whose_subject_normalisation_lengthens_past_the_centers_limits_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """The same entry rule as an inquiry: HQ could never send it, so the branch cannot file it."""
    op001 = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    body["subject"]["address"] = "㍿" * 60  # 60 characters as typed, 240 once normalised (center: 200)
    refused = await client.post("/hq-requests", json=body, headers=op001)
    assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR", refused.text
    assert [e["loc"] for e in refused.json()["errors"]] == [["body", "subject", "address"]]
    assert await ledger_events(ctx, action="hq_request.created") == []


async def test_retries_of_an_hq_execution_sent_together_all_get_its_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """An HQ terminal that times out sends the execution again at once. On PostgreSQL the retry waits on
    the request's row lock while the first runs; it must then get the first one's inquiry, not 409
    HQ_REQUEST_ALREADY_EXECUTED and a refusal in the ledger for an execution that never was a second."""
    subject = await person(ctx)
    request = await branch_request(client, await as_user(client, demo, "op001"), subject)
    hq = {**await as_user(client, demo, "hqop"), "Idempotency-Key": "HQ01-execute-000001"}
    body = draft_body(subject, hq_request_id=request["id"])

    sent = await asyncio.gather(*(client.post("/inquiries", json=body, headers=hq) for _ in range(3)))

    assert [r.status_code for r in sent] == [201] * 3, [r.text for r in sent]
    assert len({r.json()["id"] for r in sent}) == 1
    assert await ledger_events(ctx, action="hq_request.execution_refused") == []
    recorded = await center_record_once_sent(ctx)
    assert [entry["idempotency_key"] for entry in recorded] == [sent[0].json()["id"]]


async def test_the_requesting_branchs_manager_traces_the_hq_inquiry_and_another_branch_cannot(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """LG-5 for HQ-1: HQ's inquiry on branch 001's request is traced by 001's manager, not by 002's."""
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    request = await branch_request(client, op001, subject)
    executed = await execute(client, hq, request["id"], subject)
    assert executed.status_code == 201, executed.text
    inquiry_id = executed.json()["id"]

    # The day's lists: HQ's own carries the inquiry, and so does 001's (its return option).
    lists = {}
    for branch in ("000", "001"):
        generated = await client.post(
            "/daily-lists/generate", json={"business_date": TODAY, "branch_code": branch}, headers=hq
        )
        assert generated.status_code == 200, generated.text
        lists[branch] = {item["id"] for item in generated.json()["items"]}

    traced = await client.get(f"/inquiries/{inquiry_id}/trace", headers=await as_user(client, demo, "bm001"))
    assert traced.status_code == 200, traced.text
    events = traced.json()["events"]
    assert "inquiry.created" in [event["action"] for event in events]
    # Its own lists' events, none of HQ's lists.
    shown_lists = {e["object_id"] for e in events if e["action"].startswith("daily_list.")}
    assert shown_lists and shown_lists <= lists["001"]
    other = await client.get(f"/inquiries/{inquiry_id}/trace", headers=await as_user(client, demo, "bm002"))
    assert other.status_code == 404 and other.json()["code"] == "NOT_FOUND"
    reads = await ledger_events(ctx, action="inquiry.trace_read")
    assert [(e.actor_id, e.object_id) for e in reads] == [("bm001", inquiry_id)]


async def test_an_hq_inquiry_settled_unsendable_still_balances_its_executed_request(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """An inquiry whose stored entry the center's contract cannot carry is settled center_error with
    GATEWAY_NOT_SENDABLE and never sent (tests/inquiry/test_bad_input.py). For HQ it still executed the
    branch's request, which is marked executed with it: the day balances, with no false HQ alert."""
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    request = await branch_request(client, op001, subject)
    executed = await execute(client, hq, request["id"], subject)
    assert executed.status_code == 201, executed.text
    async with ctx.db.session() as session:
        # As the outbox settles such a row (outbox._store_not_sendable): unsent, center_error.
        await session.execute(
            update(Inquiry)
            .where(Inquiry.id == executed.json()["id"])
            .values(status="center_error", sent_at=None, center_result_code="GATEWAY_NOT_SENDABLE")
        )
        await session.commit()
    day = await balance(client, await as_user(client, demo, "hqcf"))
    assert (day["hq_executed"], day["branch_requests_executed"], day["balanced"]) == (1, 1, True)
    assert await ledger_events(ctx, action="hq_reconciliation.mismatch") == []


async def test_a_branch_operators_request_about_themself_is_refused_or_carried_flagged(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """PL-5 through HQ: refused at the branch under the default policy; under the flag policy the request
    goes on, and the inquiry HQ runs on it carries the flag a direct inquiry would."""
    operator = await as_user(client, demo, "op001")
    own = {"name_kana": "ｻﾄｳ ﾊﾅｺ", "birth_date": "1990-04-12"}
    refused = await client.post("/hq-requests", json=draft_body(own), headers=operator)
    assert (refused.status_code, refused.json()["code"]) == (403, "SELF_INQUIRY")

    ctx.policy = ctx.policy.model_copy(update={"self_inquiry": "flag"})
    request = await branch_request(client, operator, own)
    executed = await execute(client, await as_user(client, demo, "hqop"), request["id"], own)
    assert executed.status_code == 201, executed.text
    assert executed.json()["flags"] == ["self_inquiry"]
    # Someone else's request executed under the same policy carries no flag.
    someone = await person(ctx)
    other = await execute(
        client,
        await as_user(client, demo, "hqop"),
        (await branch_request(client, operator, someone))["id"],
        someone,
    )
    assert other.json()["flags"] == []


async def test_the_request_list_pages_by_cursor_and_refuses_a_cursor_it_never_wrote(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A cursor without a zone, or with an offset that has no UTC form, was a 500 in the driver."""
    op001 = await as_user(client, demo, "op001")
    made = []
    for index in range(3):
        made.append((await branch_request(client, op001, await person(ctx, index=index)))["id"])
        clock.advance(seconds=1)
    paged: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get("/hq-requests", params=params, headers=op001)).json()
        paged += [r["id"] for r in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert paged == made
    for cursor in (
        "2026-11-24T10:00:00|x",
        "0001-01-01T00:00:00+14:00|x",
        "9999-12-31T23:59:59-23:59|x",
        "not-a-time|x",
        "2026-11-24T10:00:00Z",
    ):
        refused = await client.get("/hq-requests", params={"cursor": cursor}, headers=op001)
        assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR", (
            cursor,
            refused.text,
        )

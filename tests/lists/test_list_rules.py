"""Rules of the daily lists a review found missing: refusals on count lists, bad dates, supplements'
deadlines, paging, the schedule, non-business days and service accounts (methods C and D, DL-1…DL-4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.lists import scheduler, service
from app.lists.models import DailyList
from tests.governance.support import privileged_headers
from tests.helpers import MY_NUMBER, MY_NUMBER_GROUPED, ledger_text, my_number_forbidden
from tests.inquiry.support import a1, as_user, draft_body, person
from tests.lists.test_daily_lists import FRIDAY_MORNING, generate, send
from tests.lists.test_formats import pdf_text


async def send_no_trade_info(client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext) -> Any:
    operator = await as_user(client, demo, "op001")
    body = draft_body(
        await person(ctx, has_transactions=False),
        purpose="credit_review",
        customer_status="existing",
        consent_document={"type": "ledger", "reference": "LEDGER-77", "obtained_on": "2026-11-01"},
        approval=a1(demo),
    )
    response = await client.post("/inquiries", json=body, headers=operator)
    assert response.status_code == 201, response.text
    assert response.json()["center"]["result_code"] == "CENTER_NO_TRADE_INFO"
    return response.json()


async def test_a_count_list_with_a_center_refusal_confirms_with_the_refusal_counted_as_in_hand(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    await send_no_trade_info(client, demo, ctx)
    clock.set(FRIDAY_MORNING + timedelta(days=1))
    count_list = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "count")
    assert count_list["totals"]["inquiries"] == 2 and count_list["totals"]["responses_delivered"] == 1

    confirmer = await as_user(client, demo, "cf001")
    detail = (await client.get(f"/daily-lists/{count_list['id']}", headers=confirmer)).json()
    assert detail["totals"]["center_refusals"] == 1
    assert [line["center_refusal"] for line in detail["lines"]] == [None, "CENTER_NO_TRADE_INFO"]
    for line_no in (1, 2):
        await client.post(
            f"/daily-lists/{count_list['id']}/lines/{line_no}/check",
            json={"result": "matched"},
            headers=confirmer,
        )
    for wrong in (0, 1, 3):
        refused = await client.post(
            f"/daily-lists/{count_list['id']}/confirm", json={"responses_in_hand": wrong}, headers=confirmer
        )
        assert refused.status_code == 409 and refused.json()["code"] == "COUNT_MISMATCH", wrong
    right = await client.post(
        f"/daily-lists/{count_list['id']}/confirm", json={"responses_in_hand": 2}, headers=confirmer
    )
    assert right.status_code == 200, right.text
    assert right.json()["state"] == "confirmed"

    pdf = await client.get(f"/daily-lists/{count_list['id']}", params={"format": "pdf"}, headers=confirmer)
    assert pdf.status_code == 200
    csv = await client.get(f"/daily-lists/{count_list['id']}", params={"format": "csv"}, headers=confirmer)
    assert "謝絶" in csv.content.decode("utf-8-sig")


async def test_a_day_of_only_one_refusal_confirms_with_one_in_hand(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    await send_no_trade_info(client, demo, ctx)
    clock.set(FRIDAY_MORNING + timedelta(days=1))
    count_list = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "count")
    confirmer = await as_user(client, demo, "cf001")
    await client.post(
        f"/daily-lists/{count_list['id']}/lines/1/check", json={"result": "matched"}, headers=confirmer
    )
    wrong = await client.post(
        f"/daily-lists/{count_list['id']}/confirm", json={"responses_in_hand": 0}, headers=confirmer
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "COUNT_MISMATCH"
    right = await client.post(
        f"/daily-lists/{count_list['id']}/confirm", json={"responses_in_hand": 1}, headers=confirmer
    )
    assert right.status_code == 200 and right.json()["state"] == "confirmed"


async def test_dates_outside_the_service_range_are_422_not_500(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    hq = await as_user(client, demo, "hqop")
    auditor = await as_user(client, demo, "auditor")
    for day in ("0001-01-01", "9999-12-30", "9999-12-31", "1999-12-31"):
        refused = await client.post("/daily-lists/generate", json={"business_date": day}, headers=hq)
        assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR", day
    period = {"from": "9999-12-31", "to": "9999-12-31"}
    refused = await client.post("/reconciliation/center", json=period, headers=auditor)
    assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR"
    for params in ({"from": "0001-01-01", "to": "9999-12-31"}, {"from": "2026-11-01", "to": "9999-12-31"}):
        refused = await client.get("/daily-lists/gaps", params=params, headers=auditor)
        assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR", params
    listed = await client.get("/daily-lists", params={"from": "0001-01-01"}, headers=auditor)
    assert listed.status_code == 422
    hq_conf = await as_user(client, demo, "hqcf")
    refused = await client.post("/reconciliation/hq/9999-12-31/sign-off", headers=hq_conf)
    assert refused.status_code == 422


async def test_gaps_answer_at_most_a_year_at_a_time(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    auditor = await as_user(client, demo, "auditor")
    too_long = await client.get(
        "/daily-lists/gaps", params={"from": "2025-01-01", "to": "2026-01-02"}, headers=auditor
    )
    assert too_long.status_code == 422 and too_long.json()["code"] == "PERIOD_TOO_LONG"
    backwards = await client.get(
        "/daily-lists/gaps", params={"from": "2026-11-02", "to": "2026-11-01"}, headers=auditor
    )
    assert backwards.status_code == 422 and backwards.json()["code"] == "VALIDATION_ERROR"
    a_year = await client.get(
        "/daily-lists/gaps",
        params={"from": "2025-12-01", "to": "2026-11-30", "branch_code": "001"},
        headers=auditor,
    )
    assert a_year.status_code == 200
    assert len(a_year.json()["missing_lists"]) > 400  # both kinds of every business day: none generated


async def test_a_huge_line_number_is_422(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    daily = next(i for i in await generate(client, demo, "2026-11-27") if i["kind"] == "subject")
    confirmer = await as_user(client, demo, "cf001")
    for line_no in ("99999999999999999999999", "9223372036854775808", "0"):
        refused = await client.post(
            f"/daily-lists/{daily['id']}/lines/{line_no}/check", json={"result": "matched"}, headers=confirmer
        )
        assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR", line_no
    missing = await client.post(
        f"/daily-lists/{daily['id']}/lines/5/check", json={"result": "matched"}, headers=confirmer
    )
    assert missing.status_code == 404


async def test_no_lists_for_a_day_that_has_not_begun_in_tokyo(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 14, 59, tzinfo=UTC))  # 23:59 JST on Monday 30 November
    hq = await as_user(client, demo, "hqop")
    tomorrow = await client.post(
        "/daily-lists/generate", json={"business_date": "2026-12-01", "branch_code": "001"}, headers=hq
    )
    assert tomorrow.status_code == 422 and tomorrow.json()["code"] == "BUSINESS_DATE_IN_FUTURE"
    assert len(await generate(client, demo, "2026-11-30")) == 2  # today's lists may be made
    clock.set(datetime(2026, 11, 30, 15, 0, tzinfo=UTC))  # 00:00 JST on 1 December
    assert len(await generate(client, demo, "2026-12-01")) == 2


async def test_a_supplement_made_days_later_is_due_after_its_own_generation_day(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    original = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert original["due_at"] == "2026-11-16T15:00:00Z"  # end of Monday 16 November, JST
    confirmer = await as_user(client, demo, "cf001")
    await client.post(
        f"/daily-lists/{original['id']}/lines/1/check", json={"result": "matched"}, headers=confirmer
    )
    confirmed = await client.post(f"/daily-lists/{original['id']}/confirm", json={}, headers=confirmer)
    assert confirmed.status_code == 200
    clock.advance(hours=5)
    await send(client, demo, ctx, 1)  # Friday afternoon, after the list was made and confirmed

    clock.set(datetime(2026, 11, 17, 1, 0, tzinfo=UTC))  # Tuesday 10:00 JST: the re-check finds it
    supplement = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert supplement["version"] == 2 and supplement["supersedes"] == original["id"]
    assert supplement["due_at"] == "2026-11-18T15:00:00Z"  # end of Wednesday, not Monday's past deadline
    assert supplement["state"] == "pending"

    # The replaced original still says it was confirmed, by whom and when.
    confirmer = await as_user(client, demo, "cf001")
    kept = (await client.get(f"/daily-lists/{original['id']}", headers=confirmer)).json()
    assert kept["state"] == "superseded"
    assert kept["confirmed_by"] == "cf001"
    assert kept["confirmed_at"] == confirmed.json()["confirmed_at"]
    pdf = await client.get(f"/daily-lists/{original['id']}", params={"format": "pdf"}, headers=confirmer)
    text = "\n".join(pdf_text(pdf.content)[1])
    assert "確認済・差替済" in text and "cf001" in text


async def test_a_supplement_of_an_overdue_unconfirmed_list_stays_overdue_and_is_not_escalated_again(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """Friday's list, due by the end of Monday, was never confirmed and was escalated. A late inquiry
    makes version 2 on Wednesday: Friday's lines are still as late as they were, so the supplement keeps
    Monday's deadline (its confirmation is late and needs a reason) and its escalation is not raised a
    second time. Before, the supplement got a new deadline and its confirmation showed as on time."""
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    original = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert original["due_at"] == "2026-11-16T15:00:00Z"
    clock.advance(hours=5)
    await send(client, demo, ctx, 1)  # Friday afternoon, after the list was made
    clock.set(datetime(2026, 11, 17, 1, 0, tzinfo=UTC))  # Tuesday: overdue
    await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR)

    clock.set(datetime(2026, 11, 18, 1, 0, tzinfo=UTC))  # Wednesday: the re-check finds the late one
    supplement = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert supplement["version"] == 2 and supplement["due_at"] == "2026-11-16T15:00:00Z"
    assert await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR) == 0
    confirmer = await as_user(client, demo, "cf001")
    for line_no in (1, 2):
        checked = await client.post(
            f"/daily-lists/{supplement['id']}/lines/{line_no}/check",
            json={"result": "matched"},
            headers=confirmer,
        )
        assert checked.status_code == 200, checked.text
    no_reason = await client.post(f"/daily-lists/{supplement['id']}/confirm", json={}, headers=confirmer)
    assert (no_reason.status_code, no_reason.json()["code"]) == (409, "LATE_REASON_REQUIRED")
    late = await client.post(
        f"/daily-lists/{supplement['id']}/confirm", json={"late_reason": "確認者不在"}, headers=confirmer
    )
    assert late.status_code == 200 and late.json()["late"] is True
    async with ctx.db.read_session() as session:
        escalations = (
            await session.scalars(select(Escalation).where(Escalation.kind == "list_overdue"))
        ).all()
    assert sorted(e.note for e in escalations if e.branch_code == "001") == [
        "count list 2026-11-13",
        "subject list 2026-11-13",
    ]


async def test_a_branch_closed_in_the_afternoon_has_that_days_lists_and_none_after(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """DL-1: an inquiry sent on the morning a branch closed was on no list and the gap check said nothing.
    The closing day's lists are made; the days after are neither made nor asked for."""
    clock.set(FRIDAY_MORNING)
    operator = await as_user(client, demo, "op002")
    body = draft_body(await person(ctx), approval=a1(demo, "cf002"))
    assert (await client.post("/inquiries", json=body, headers=operator)).status_code == 201
    clock.advance(hours=6)  # 16:00 JST
    admin = await privileged_headers(client, demo, clock, "accadmin")
    closed = await client.post("/branches/002/deactivate", json={"reason": "統廃合"}, headers=admin)
    assert closed.status_code == 204, closed.text

    clock.set(datetime(2026, 11, 17, 1, 0, tzinfo=UTC))  # Tuesday: Friday and Monday are due
    await scheduler.run_once(ctx)
    async with ctx.db.read_session() as session:
        made = {
            (d.kind, d.business_date.isoformat(), d.inquiries_total)
            for d in (await session.scalars(select(DailyList).where(DailyList.branch_code == "002"))).all()
        }
        gaps = await service.gaps(
            session, ctx, date_from=date(2026, 11, 12), date_to=date(2026, 11, 16), branch_code="002"
        )
    assert ("subject", "2026-11-13", 1) in made and ("count", "2026-11-13", 1) in made
    assert not [m for m in made if m[1] > "2026-11-13"]
    assert gaps["missing_lists"] == []
    hq = await as_user(client, demo, "hqop")
    after = await client.post(
        "/daily-lists/generate", json={"business_date": "2026-11-16", "branch_code": "002"}, headers=hq
    )
    assert (after.status_code, after.json()["code"]) == (404, "NOT_FOUND")


async def test_a_closed_branchs_last_lists_are_checked_and_confirmed_by_hq(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """DL-1, DL-4: closing a branch revokes every right held there, so its last day's lists had no one who
    could confirm them and stayed overdue for good. HQ's confirmers take them over, names shown."""
    clock.set(FRIDAY_MORNING)
    operator = await as_user(client, demo, "op002")
    subject = await person(ctx)
    body = draft_body(subject, approval=a1(demo, "cf002"))
    sent = await client.post("/inquiries", json=body, headers=operator)
    assert sent.status_code == 201, sent.text
    clock.advance(hours=6)
    admin = await privileged_headers(client, demo, clock, "accadmin")
    closed = await client.post("/branches/002/deactivate", json={"reason": "統廃合"}, headers=admin)
    assert closed.status_code == 204, closed.text
    clock.set(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))  # Monday 10:00: Friday's lists are due today
    await scheduler.run_once(ctx)

    hq_confirmer = await as_user(client, demo, "hqcf")
    found = await client.get("/daily-lists", params={"branch_code": "002"}, headers=hq_confirmer)
    (subject_list,) = [
        item
        for item in found.json()["items"]
        if (item["kind"], item["business_date"]) == ("subject", "2026-11-13")
    ]
    detail = (await client.get(f"/daily-lists/{subject_list['id']}", headers=hq_confirmer)).json()
    shown = detail["lines"][0]["subject"]
    assert (shown["name_kana"], shown["birth_date"]) == (
        subject["name_kana"].replace("\u3000", " "),  # stored with the space normalised
        subject["birth_date"],
    )
    checked = await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check", json={"result": "matched"}, headers=hq_confirmer
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["checked_by"] == "hqcf"
    confirmed = await client.post(f"/daily-lists/{subject_list['id']}/confirm", json={}, headers=hq_confirmer)
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["state"], confirmed.json()["late"]) == ("confirmed", False)

    # An open branch's lists stay its own confirmers' work: HQ's confirmer is refused there as before.
    clock.set(datetime(2026, 11, 16, 2, 0, tzinfo=UTC))
    (branch_one,) = [item for item in await generate(client, demo, "2026-11-13") if item["kind"] == "subject"]
    hq_confirmer = await as_user(client, demo, "hqcf")
    refused = await client.post(f"/daily-lists/{branch_one['id']}/confirm", json={}, headers=hq_confirmer)
    assert (refused.status_code, refused.json()["code"]) == (403, "NOT_A_CONFIRMER")


async def test_lists_page_by_cursor(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    for day in range(16, 21):  # Mon 16 .. Fri 20 November 2026: ten lists
        await generate(client, demo, f"2026-11-{day:02d}")
    auditor = await as_user(client, demo, "auditor")
    params = {"branch_code": "001", "from": "2026-11-16", "to": "2026-11-20"}
    everything = (await client.get("/daily-lists", params=params, headers=auditor)).json()
    assert len(everything["items"]) == 10 and everything["next_cursor"] is None

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = (
            await client.get(
                "/daily-lists",
                params={**params, "limit": 3, **({"cursor": cursor} if cursor else {})},
                headers=auditor,
            )
        ).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == [item["id"] for item in everything["items"]]
    bad = await client.get("/daily-lists", params={"cursor": "no-such-list"}, headers=auditor)
    assert bad.status_code == 422 and bad.json()["code"] == "VALIDATION_ERROR"


async def test_a_saturday_with_an_inquiry_gets_its_lists_and_gaps_report_it_until_then(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 14, 1, 0, tzinfo=UTC))  # Saturday 14 November 2026, 10:00 JST
    (sent,) = await send(client, demo, ctx, 1)
    clock.set(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))
    auditor = await as_user(client, demo, "auditor")
    params = {"branch_code": "001", "from": "2026-11-13", "to": "2026-11-15"}
    before = (await client.get("/daily-lists/gaps", params=params, headers=auditor)).json()
    assert {(g["kind"], g["business_date"]) for g in before["missing_lists"]} == {
        ("subject", "2026-11-13"),
        ("count", "2026-11-13"),
        ("subject", "2026-11-14"),
        ("count", "2026-11-14"),
    }
    assert await generate(client, demo, "2026-11-15") == []  # a Sunday without inquiries: no list
    saturday = {item["kind"]: item for item in await generate(client, demo, "2026-11-14")}
    assert set(saturday) == {"subject", "count"}
    assert saturday["subject"]["no_inquiries"] is False
    assert saturday["subject"]["totals"]["inquiries"] == 1
    detail = (await client.get(f"/daily-lists/{saturday['subject']['id']}", headers=auditor)).json()
    assert [line["inquiry_id"] for line in detail["lines"]] == [sent["id"]]
    after = (await client.get("/daily-lists/gaps", params=params, headers=auditor)).json()
    assert {g["business_date"] for g in after["missing_lists"]} == {"2026-11-13"}


async def service_token(client: httpx.AsyncClient, client_id: str, secret: str) -> dict[str, str]:
    response = await client.post("/auth/token", json={"client_id": client_id, "client_secret": secret})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_service_accounts_generate_and_read_lists_only_with_their_scopes(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    from app.audit.ledger import Actor
    from app.authz import directory

    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    secrets = {a["client_id"]: a["client_secret"] for a in demo.service_accounts}
    async with ctx.db.session() as session:
        _account, generate_only = await directory.create_service_account(
            session, ctx=ctx, actor=Actor(id="test"), client_id="lists-gen", scopes=["lists:generate"]
        )
        await session.commit()
    batch = await service_token(client, "hq-batch", secrets["hq-batch"])  # lists:generate, lists:read
    hr_feed = await service_token(client, "hr-feed", secrets["hr-feed"])
    generator = await service_token(client, "lists-gen", generate_only)

    made = await client.post("/daily-lists/generate", json={"business_date": "2026-11-27"}, headers=batch)
    assert made.status_code == 200, made.text
    items = made.json()["items"]
    assert {item["branch_code"] for item in items} >= {"001", "002"}  # every branch in one call
    one = items[0]["id"]
    day = {"from": "2026-11-27", "to": "2026-11-27"}
    listed = await client.get("/daily-lists", params=day, headers=batch)
    assert listed.status_code == 200 and len(listed.json()["items"]) == len(items)
    gaps = await client.get("/daily-lists/gaps", params=day, headers=batch)
    assert gaps.status_code == 200 and gaps.json()["missing_lists"] == []
    assert (await client.get(f"/daily-lists/{one}", headers=batch)).status_code == 200
    assert (
        await client.post("/daily-lists/generate", json={"business_date": "2026-11-26"}, headers=generator)
    ).status_code == 200

    for headers, may_generate in ((hr_feed, False), (generator, True)):
        if not may_generate:
            refused = await client.post(
                "/daily-lists/generate", json={"business_date": "2026-11-27"}, headers=headers
            )
            assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
        for path, params in (("/daily-lists", day), ("/daily-lists/gaps", day), (f"/daily-lists/{one}", {})):
            refused = await client.get(path, params=params, headers=headers)
            assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN", path
    # A service account never confirms (two-person control is between people).
    assert (
        await client.post(f"/daily-lists/{one}/confirm", json={"attest_no_inquiries": True}, headers=batch)
    ).status_code == 403


async def test_a_check_note_or_late_reason_with_an_individual_number_is_refused_and_nothing_is_kept(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """PL-4: the note is kept with the line and in the ledger, where the number could never be removed."""
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    clock.set(FRIDAY_MORNING + timedelta(days=1))
    subject_list = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    confirmer = await as_user(client, demo, "cf001")
    check = f"/daily-lists/{subject_list['id']}/lines/1/check"
    note = f"書類に番号{MY_NUMBER_GROUPED}の記載"
    my_number_forbidden(
        await client.post(check, json={"result": "mismatch", "note": note}, headers=confirmer)
    )
    # Also when the note is over its length limit as well: the number is what the caller is told about.
    my_number_forbidden(
        await client.post(check, json={"result": "mismatch", "note": note + "長" * 400}, headers=confirmer)
    )
    line = (await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)).json()["lines"][0]
    assert line["check"] is None and line["check_note"] is None
    checked = await client.post(check, json={"result": "matched", "note": "書類と一致"}, headers=confirmer)
    assert checked.status_code == 200, checked.text
    my_number_forbidden(
        await client.post(
            f"/daily-lists/{subject_list['id']}/confirm", json={"late_reason": MY_NUMBER}, headers=confirmer
        )
    )
    assert (await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)).json()[
        "state"
    ] == "pending"
    assert MY_NUMBER not in await ledger_text(ctx) and MY_NUMBER_GROUPED not in await ledger_text(ctx)

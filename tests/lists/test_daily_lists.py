"""Daily subject and count lists (methods C and D, DL-1…DL-4) on the business calendar."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text

from app.audit.ledger import SYSTEM_ACTOR
from app.audit.service import checkpoint_rule, verify_ledger
from app.authz.models import Branch
from app.authz.principal import Principal
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.lists import service
from app.lists.models import DailyList, DailyListLine
from tests.helpers import ledger_events
from tests.inquiry.support import a1, as_user, draft_body, person

FRIDAY_MORNING = datetime(2026, 11, 13, 1, 0, tzinfo=UTC)  # 10:00 JST, Friday 13 November 2026


async def send(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, n: int = 1
) -> list[dict[str, Any]]:
    operator = await as_user(client, demo, "op001")
    sent = []
    for index in range(n):
        body = draft_body(await person(ctx, index=index), approval=a1(demo))
        response = await client.post("/inquiries", json=body, headers=operator)
        assert response.status_code == 201, response.text
        sent.append(response.json())
    return sent


async def generate(
    client: httpx.AsyncClient, demo: DemoCredentials, day: str, branch: str = "001"
) -> list[Any]:
    hq = await as_user(client, demo, "hqop")
    response = await client.post(
        "/daily-lists/generate", json={"business_date": day, "branch_code": branch}, headers=hq
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_a_week_without_inquiries_gives_one_zero_list_per_business_day(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    for day in range(16, 23):  # Mon 16 .. Sun 22 November 2026
        await generate(client, demo, f"2026-11-{day:02d}")
    confirmer = await as_user(client, demo, "cf001")
    listed = (
        await client.get(
            "/daily-lists",
            params={"branch_code": "001", "from": "2026-11-16", "to": "2026-11-22", "kind": "subject"},
            headers=confirmer,
        )
    ).json()["items"]
    assert [item["business_date"] for item in listed] == [f"2026-11-{d}" for d in range(16, 21)]
    assert all(item["no_inquiries"] for item in listed)
    assert [item["sequence"] for item in listed] == [1, 2, 3, 4, 5]
    gaps = (
        await client.get(
            "/daily-lists/gaps",
            params={"branch_code": "001", "from": "2026-11-16", "to": "2026-11-22"},
            headers=confirmer,
        )
    ).json()
    assert gaps["missing_lists"] == [] and gaps["sequence_gaps"] == []

    first = listed[0]["id"]
    refused = await client.post(
        f"/daily-lists/{first}/confirm", json={"late_reason": "出張のため"}, headers=confirmer
    )
    assert refused.status_code == 409 and refused.json()["code"] == "ATTESTATION_REQUIRED"
    confirmed = await client.post(
        f"/daily-lists/{first}/confirm",
        json={"attest_no_inquiries": True, "late_reason": "出張のため"},
        headers=confirmer,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "confirmed" and confirmed.json()["late"] is True


async def test_a_zero_day_count_list_takes_no_responses_in_hand_but_none_or_zero(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock, ctx: AppContext
) -> None:
    """D on a day without inquiries (found by an API review): three responses in hand against no
    inquiry were accepted and stored. Responses with no inquiry to answer them are refused like a
    shortfall; 0 or no count is the zero day's answer."""
    clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # a holiday Monday: Friday's lists due Tuesday
    count_list = next(i for i in await generate(client, demo, "2026-11-20") if i["kind"] == "count")
    assert count_list["no_inquiries"] is True
    confirmer = await as_user(client, demo, "cf001")
    url = f"/daily-lists/{count_list['id']}/confirm"
    refused = await client.post(
        url, json={"responses_in_hand": 3, "attest_no_inquiries": True}, headers=confirmer
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "COUNT_MISMATCH")
    [kept] = await ledger_events(ctx, action="daily_list.count_refused")
    assert json.loads(kept.details)["responses_in_hand"] == 3
    confirmed = await client.post(
        url, json={"responses_in_hand": 0, "attest_no_inquiries": True}, headers=confirmer
    )
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["state"], confirmed.json()["late"]) == ("confirmed", False)


async def test_gaps_name_a_business_day_without_a_list(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    await generate(client, demo, "2026-11-16")
    await generate(client, demo, "2026-11-18")
    auditor = await as_user(client, demo, "auditor")
    gaps = (
        await client.get(
            "/daily-lists/gaps",
            params={"branch_code": "001", "from": "2026-11-16", "to": "2026-11-18"},
            headers=auditor,
        )
    ).json()
    assert {(g["kind"], g["business_date"]) for g in gaps["missing_lists"]} == {
        ("subject", "2026-11-17"),
        ("count", "2026-11-17"),
    }


async def test_gaps_never_name_today_or_a_day_to_come(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    """Found by an API review: asked up to next week, the gap check named today and every business day
    after it as missing, while the panel's calendar (rightly) shows them as not yet due."""
    clock.set(datetime(2026, 11, 26, 1, 0, tzinfo=UTC))  # Thursday 10:00 JST
    await generate(client, demo, "2026-11-24")
    auditor = await as_user(client, demo, "auditor")
    gaps = (
        await client.get(
            "/daily-lists/gaps",
            params={"branch_code": "001", "from": "2026-11-24", "to": "2026-12-04"},
            headers=auditor,
        )
    ).json()
    assert {(g["kind"], g["business_date"]) for g in gaps["missing_lists"]} == {
        ("subject", "2026-11-25"),
        ("count", "2026-11-25"),
    }
    assert (gaps["from"], gaps["to"]) == ("2026-11-24", "2026-12-04")


async def test_gaps_name_a_hole_in_one_branchs_sequence_and_each_branchs_missing_days(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    for day in range(16, 21):  # Mon 16 .. Fri 20 November 2026
        await generate(client, demo, f"2026-11-{day:02d}")
    for day in (16, 17):
        await generate(client, demo, f"2026-11-{day:02d}", branch="002")
    # Lists are never deleted by the gateway; two removed in the database itself must show as a hole.
    async with ctx.db.session() as session:
        removed = select(DailyList.id).where(
            DailyList.branch_code == "001",
            DailyList.kind == "subject",
            DailyList.business_date.in_([date(2026, 11, 17), date(2026, 11, 18)]),
        )
        await session.execute(delete(DailyListLine).where(DailyListLine.list_id.in_(removed)))
        await session.execute(delete(DailyList).where(DailyList.id.in_(removed)))
        await session.commit()
    auditor = await as_user(client, demo, "auditor")
    every_branch = (
        await client.get(
            "/daily-lists/gaps", params={"from": "2026-11-16", "to": "2026-11-20"}, headers=auditor
        )
    ).json()
    assert every_branch["sequence_gaps"] == [
        {"branch_code": "001", "kind": "subject", "missing_from": 2, "missing_to": 3}
    ]
    missing = {
        (g["branch_code"], g["kind"], g["business_date"])
        for g in every_branch["missing_lists"]
        if g["branch_code"] != "000"
    }
    assert missing == {("001", "subject", "2026-11-17"), ("001", "subject", "2026-11-18")} | {
        ("002", kind, f"2026-11-{day}") for kind in ("subject", "count") for day in (18, 19, 20)
    }
    one_branch = (
        await client.get(
            "/daily-lists/gaps",
            params={"branch_code": "002", "from": "2026-11-16", "to": "2026-11-20"},
            headers=auditor,
        )
    ).json()
    assert one_branch["sequence_gaps"] == []
    assert {g["branch_code"] for g in one_branch["missing_lists"]} == {"002"}
    assert len(one_branch["missing_lists"]) == 6


async def test_lines_are_checked_by_another_person_and_counts_must_match(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    sent = await send(client, demo, ctx, 2)
    clock.set(FRIDAY_MORNING + timedelta(days=1))
    lists = {item["kind"]: item for item in await generate(client, demo, "2026-11-13")}
    subject_list, count_list = lists["subject"], lists["count"]
    assert subject_list["totals"] == {"inquiries": 2, "responses_delivered": 2}

    confirmer = await as_user(client, demo, "cf001")
    detail = (await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)).json()
    assert [line["inquiry_id"] for line in detail["lines"]] == [s["id"] for s in sent]
    assert detail["lines"][0]["subject"]["name_kana"] == sent[0]["subject"]["name_kana"]

    # The operator of a line cannot check it, even holding the confirmer role elsewhere.
    operator = await as_user(client, demo, "op001")
    own = await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check", json={"result": "matched"}, headers=operator
    )
    assert own.status_code == 403

    unchecked = await client.post(f"/daily-lists/{subject_list['id']}/confirm", json={}, headers=confirmer)
    assert unchecked.json()["code"] == "LINES_UNCHECKED"
    for line_no, note in ((1, None), (2, "原本と照合済み")):
        checked = await client.post(
            f"/daily-lists/{subject_list['id']}/lines/{line_no}/check",
            json={"result": "matched", "note": note},
            headers=confirmer,
        )
        assert checked.status_code == 200 and checked.json()["checked_by"] == "cf001"
        assert checked.json()["check_note"] == note
    # The confirmer's notes stay with the lines for whoever reads the list later.
    detail = (await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)).json()
    assert [line["check_note"] for line in detail["lines"]] == [None, "原本と照合済み"]
    assert (
        await client.post(f"/daily-lists/{subject_list['id']}/confirm", json={}, headers=confirmer)
    ).json()["state"] == "confirmed"

    wrong = await client.post(
        f"/daily-lists/{count_list['id']}/confirm", json={"responses_in_hand": 1}, headers=confirmer
    )
    assert wrong.status_code == 409 and wrong.json()["code"] == "COUNT_MISMATCH"
    # A count that did not add up stays on record, with the figures, before any clean confirmation.
    [refused] = await ledger_events(ctx, action="daily_list.count_refused")
    assert (refused.actor_id, refused.object_id, refused.outcome) == ("cf001", count_list["id"], "denied")
    assert json.loads(refused.details) == {
        "code": "COUNT_MISMATCH",
        "responses_in_hand": 1,
        "inquiries_total": 2,
        "responses_delivered": 2,
        "center_refusals": 0,
    }
    for line_no in (1, 2):
        await client.post(
            f"/daily-lists/{count_list['id']}/lines/{line_no}/check",
            json={"result": "matched"},
            headers=confirmer,
        )
    right = await client.post(
        f"/daily-lists/{count_list['id']}/confirm", json={"responses_in_hand": 2}, headers=confirmer
    )
    assert right.status_code == 200 and right.json()["state"] == "confirmed"


async def test_same_person_cannot_check_a_line_they_operated(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    from app.audit.ledger import Actor
    from app.authz import directory

    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=Actor(id="test"), user_id="op001", role="confirmer", branch_code="001"
        )
        await session.commit()
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    clock.set(FRIDAY_MORNING + timedelta(days=1))
    subject_list = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    operator = await as_user(client, demo, "op001")
    response = await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check", json={"result": "matched"}, headers=operator
    )
    assert response.status_code == 403 and response.json()["code"] == "SAME_PERSON"


async def test_friday_list_is_overdue_after_monday_escalated_and_late_needs_a_reason(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    clock.set(datetime(2026, 11, 14, 0, 0, tzinfo=UTC))
    subject_list = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert subject_list["due_at"] == "2026-11-16T15:00:00Z"  # the end of Monday 16 November, JST

    clock.set(datetime(2026, 11, 16, 14, 59, tzinfo=UTC))
    assert await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR) == 0
    confirmer = await as_user(client, demo, "cf001")
    assert (await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)).json()[
        "state"
    ] == "pending"

    clock.set(datetime(2026, 11, 16, 15, 0, 1, tzinfo=UTC))
    # The app's own list schedule may tick first and escalate them itself; either way each list is
    # escalated exactly once (counted below), and a second run adds nothing.
    await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR)
    assert await service.escalate_overdue(ctx, actor=SYSTEM_ACTOR) == 0
    confirmer = await as_user(client, demo, "cf001")
    overdue = (
        await client.get("/daily-lists", params={"state": "overdue", "branch_code": "001"}, headers=confirmer)
    ).json()["items"]
    assert {item["kind"] for item in overdue} == {"subject", "count"}
    async with ctx.db.read_session() as session:
        kinds = [e.kind for e in (await session.scalars(select(Escalation))).all()]
    assert kinds.count("list_overdue") == 2
    assert len(await ledger_events(ctx, action="daily_list.overdue")) == 2

    await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check", json={"result": "matched"}, headers=confirmer
    )
    no_reason = await client.post(f"/daily-lists/{subject_list['id']}/confirm", json={}, headers=confirmer)
    assert no_reason.status_code == 409 and no_reason.json()["code"] == "LATE_REASON_REQUIRED"
    late = await client.post(
        f"/daily-lists/{subject_list['id']}/confirm",
        json={"late_reason": "確認者不在のため翌日確認"},
        headers=confirmer,
    )
    assert late.status_code == 200
    assert late.json()["late"] is True and late.json()["late_reason"] == "確認者不在のため翌日確認"


async def test_a_late_inquiry_makes_a_supplementary_version_and_the_original_is_unchanged(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    await send(client, demo, ctx, 1)
    original = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    again = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert again["id"] == original["id"]  # idempotent

    clock.advance(hours=2)
    await send(client, demo, ctx, 2)  # lands after the list was generated
    supplement = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert supplement["version"] == 2 and supplement["supersedes"] == original["id"]
    assert supplement["sequence"] == original["sequence"]
    assert supplement["supplement_reason"] == "late_inquiry"
    assert supplement["totals"]["inquiries"] == 3

    auditor = await as_user(client, demo, "auditor")
    kept = (await client.get(f"/daily-lists/{original['id']}", headers=auditor)).json()
    assert kept["content_sha256"] == original["content_sha256"]
    assert kept["state"] == "superseded" and len(kept["lines"]) == 1
    assert all(line["subject"] is None for line in kept["lines"])  # auditors see no names


async def test_a_supplementary_version_keeps_the_checks_made_on_the_version_before(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A confirmer who checked lines before a late inquiry arrived need not check them again: the
    supplement carries each line's check (result, who, when, note); only its new line is unchecked."""
    clock.set(FRIDAY_MORNING)
    sent = await send(client, demo, ctx, 2)
    original = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    clock.advance(minutes=30)
    confirmer = await as_user(client, demo, "cf001")
    checked = await client.post(
        f"/daily-lists/{original['id']}/lines/2/check",
        json={"result": "mismatch", "note": "同意書の日付が違う"},
        headers=confirmer,
    )
    assert checked.status_code == 200, checked.text
    checked_at = checked.json()["checked_at"]

    clock.advance(hours=1)
    [late] = await send(client, demo, ctx, 1)
    supplement = next(i for i in await generate(client, demo, "2026-11-13") if i["kind"] == "subject")
    assert supplement["version"] == 2 and supplement["supersedes"] == original["id"]
    confirmer = await as_user(client, demo, "cf001")
    lines = (await client.get(f"/daily-lists/{supplement['id']}", headers=confirmer)).json()["lines"]
    checks = {
        line["inquiry_id"]: (line["check"], line["checked_by"], line["checked_at"], line["check_note"])
        for line in lines
    }
    assert checks == {
        sent[0]["id"]: (None, None, None, None),
        sent[1]["id"]: ("mismatch", "cf001", checked_at, "同意書の日付が違う"),
        late["id"]: (None, None, None, None),
    }


async def test_views_downloads_and_prints_are_logged_and_files_are_served(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock, ctx: AppContext
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    zero = next(i for i in await generate(client, demo, "2026-11-27") if i["kind"] == "subject")
    confirmer = await as_user(client, demo, "cf001")
    csv = await client.get(f"/daily-lists/{zero['id']}", params={"format": "csv"}, headers=confirmer)
    assert csv.status_code == 200 and csv.content.startswith(b"\xef\xbb\xbf")
    assert "照会なし" in csv.content.decode("utf-8-sig")
    pdf = await client.get(f"/daily-lists/{zero['id']}", params={"format": "pdf"}, headers=confirmer)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    await client.get(f"/daily-lists/{zero['id']}", headers=confirmer)
    actions = [e.action for e in await ledger_events(ctx) if e.object_id == zero["id"]]
    assert actions[-3:] == ["daily_list.downloaded", "daily_list.printed", "daily_list.viewed"]


async def test_branches_see_only_their_own_lists(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    theirs = next(
        i for i in await generate(client, demo, "2026-11-27", branch="002") if i["kind"] == "subject"
    )
    confirmer = await as_user(client, demo, "cf001")
    assert (await client.get(f"/daily-lists/{theirs['id']}", headers=confirmer)).status_code == 404
    assert (
        await client.get("/daily-lists", params={"branch_code": "002"}, headers=confirmer)
    ).status_code == 403
    operator = await as_user(client, demo, "op001")
    refused = await client.post(
        "/daily-lists/generate", json={"business_date": "2026-11-27"}, headers=operator
    )
    assert refused.status_code == 403


async def test_two_generators_at_once_make_one_list_each_with_one_sequence(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    # The scheduler and an HQ batch job can start at the same moment on a branch's very first day,
    # when its sequence counter does not exist yet: neither may fail, and no number may be used twice.
    clock.set(datetime(2026, 11, 17, 1, 0, tzinfo=UTC))
    day = datetime(2026, 11, 16).date()
    first, second = await asyncio.gather(
        service.generate(ctx, day=day, actor=SYSTEM_ACTOR, branch_code="002"),
        service.generate(ctx, day=day, actor=SYSTEM_ACTOR, branch_code="002"),
    )
    assert sorted(g.daily.kind for g in first) == sorted(g.daily.kind for g in second) == ["count", "subject"]
    # Each kind's list exists once, with sequence 1, whichever worker made it.
    assert {g.daily.id for g in first} == {g.daily.id for g in second}
    assert {g.daily.sequence for g in first + second} == {1}
    assert sum(g.created for g in first + second) == 2


async def until_a_transaction_waits_for_a_lock(ctx: AppContext) -> None:
    """Until another transaction of this database waits for a lock (PostgreSQL). SQLite has no row locks to
    wait for: its writers queue for the whole database, so a writer started later runs after the first."""
    if ctx.db.engine.dialect.name != "postgresql":
        return
    async with ctx.db.engine.connect() as connection:
        for _ in range(500):
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                    " WHERE NOT l.granted AND a.datname = current_database()"
                )
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("no transaction came to wait for the lock")


async def test_a_check_under_way_when_a_supplement_is_made_is_carried_onto_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A confirmer checks line 1 while a late inquiry makes the list's supplement: the supplement waits for
    the check and carries it (was, on PostgreSQL: it read the lines first and the check was lost on it)."""
    clock.set(FRIDAY_MORNING)
    day = FRIDAY_MORNING.date()
    await send(client, demo, ctx, 1)
    generated = await service.generate(ctx, day=day, actor=SYSTEM_ACTOR, branch_code="001")
    original = next(g.daily for g in generated if g.daily.kind == "subject")
    clock.advance(hours=1)
    operator = await as_user(client, demo, "op001")
    late = draft_body(await person(ctx, index=1), approval=a1(demo))
    assert (await client.post("/inquiries", json=late, headers=operator)).status_code == 201
    confirmer = Principal(
        kind="user",
        id="cf001",
        name="cf001",
        session_id="s",
        session_expires_at=clock.now() + timedelta(hours=1),
        idle_expires_at=None,
        role_branches={"confirmer": frozenset({"001"})},
    )

    # The check runs as the service runs it, its transaction held open at the commit.
    at_commit, let_commit = asyncio.Event(), asyncio.Event()
    async with ctx.db.session() as checking:
        commit = checking.commit

        async def commit_when_let() -> None:
            at_commit.set()
            await let_commit.wait()
            await commit()

        checking.commit = commit_when_let  # type: ignore[method-assign]
        check = asyncio.create_task(
            service.check_line(
                checking,
                ctx,
                principal=confirmer,
                list_id=original.id,
                line_no=1,
                result="matched",
                note=None,
            )
        )
        await at_commit.wait()
        supplement = asyncio.create_task(
            service.generate(ctx, day=day, actor=SYSTEM_ACTOR, branch_code="001")
        )
        await until_a_transaction_waits_for_a_lock(ctx)
        let_commit.set()
        await check
    made = next(g.daily for g in await supplement if g.daily.kind == "subject")
    assert (made.version, made.supersedes) == (2, original.id)
    async with ctx.db.read_session() as session:
        lines = (
            await session.scalars(
                select(DailyListLine).where(DailyListLine.list_id == made.id).order_by(DailyListLine.line_no)
            )
        ).all()
    assert [(line.check, line.checked_by) for line in lines] == [("matched", "cf001"), (None, None)]


async def read(client: httpx.AsyncClient, headers: dict[str, str], list_id: str) -> dict[str, Any]:
    response = await client.get(f"/daily-lists/{list_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_cancellations_and_corrections_are_lines_of_their_own_and_late_ones_supplement_the_list(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """CC-1: a cancellation and a correction of an inquiry record each appear on the day's lists as their
    own line type; made after the list was generated, they produce a supplementary version."""
    clock.set(FRIDAY_MORNING)
    cancelled, corrected = await send(client, demo, ctx, 2)
    operator, confirmer = await as_user(client, demo, "op001"), await as_user(client, demo, "cf001")
    original = {i["kind"]: i for i in await generate(client, demo, "2026-11-13")}
    shown = await read(client, confirmer, original["subject"]["id"])
    assert [line["line_type"] for line in shown["lines"]] == ["inquiry", "inquiry"]

    clock.advance(hours=1)
    operator, confirmer = await as_user(client, demo, "op001"), await as_user(client, demo, "cf001")
    issued = await client.post(f"/inquiries/{cancelled['id']}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201, issued.text
    number = issued.json()["approval_number"]
    cancel = await client.post(
        f"/inquiries/{cancelled['id']}/cancel",
        json={"reason": "入力誤り", "approval": {"method": "approval_number", "approval_number": number}},
        headers=operator,
    )
    assert cancel.status_code == 200, cancel.text
    correction = await client.post(
        f"/inquiries/{corrected['id']}/correct",
        json={
            "reason": "目的入力誤り",
            "corrections": {
                "purpose": "guarantor",
                "consent_document": {"type": "ledger", "reference": "L-0001", "obtained_on": "2026-11-12"},
            },
            "approval": a1(demo),
        },
        headers=operator,
    )
    assert correction.status_code == 200, correction.text

    lists = {
        i["kind"]: await read(client, confirmer, i["id"]) for i in await generate(client, demo, "2026-11-13")
    }
    for kind in ("subject", "count"):
        supplement = lists[kind]
        assert supplement["version"] == 2 and supplement["supersedes"] == original[kind]["id"]
        assert supplement["supplement_reason"] == "late_cancellation"
        lines = {(line["line_type"], line["inquiry_id"]) for line in supplement["lines"]}
        assert lines == {
            ("inquiry", cancelled["id"]),
            ("inquiry", corrected["id"]),
            ("cancellation", cancelled["id"]),
            ("correction", corrected["id"]),
        }
        # Cancellations and corrections are lines to check, not inquiries to count.
        assert supplement["totals"]["inquiries"] == 2
    [line] = [line for line in lists["subject"]["lines"] if line["line_type"] == "correction"]
    assert line["purpose"] == "guarantor" and line["consent_document"]["reference"] == "L-0001"
    # The inquiry's own line stays as it was sent (and checked): the correction is its own line.
    [sent_line] = [
        line
        for line in lists["subject"]["lines"]
        if line["line_type"] == "inquiry" and line["inquiry_id"] == corrected["id"]
    ]
    assert sent_line["purpose"] == "new_credit"
    assert sent_line["consent_document"]["reference"] == "LA-2026-000123"
    # The correction's line is checked like any other, by someone other than its operator.
    own = await client.post(
        f"/daily-lists/{lists['subject']['id']}/lines/{line['line_no']}/check",
        json={"result": "matched"},
        headers=operator,
    )
    assert own.status_code == 403
    checked = await client.post(
        f"/daily-lists/{lists['subject']['id']}/lines/{line['line_no']}/check",
        json={"result": "matched"},
        headers=confirmer,
    )
    assert checked.status_code == 200, checked.text


async def test_a_correction_on_a_later_day_is_on_that_days_lists(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(FRIDAY_MORNING)
    [sent] = await send(client, demo, ctx, 1)
    friday = {i["kind"]: i["id"] for i in await generate(client, demo, "2026-11-13")}
    clock.set(FRIDAY_MORNING + timedelta(days=3))  # Monday
    correction = await client.post(
        f"/inquiries/{sent['id']}/correct",
        json={
            "reason": "書類番号誤り",
            "corrections": {
                "consent_document": {
                    "type": "loan_application",
                    "reference": "LA-2026-000777",
                    "obtained_on": "2026-11-12",
                }
            },
            "approval": a1(demo),
        },
        headers=await as_user(client, demo, "op001"),
    )
    assert correction.status_code == 200, correction.text
    monday = next(i for i in await generate(client, demo, "2026-11-16") if i["kind"] == "subject")
    monday = await read(client, await as_user(client, demo, "cf001"), monday["id"])
    assert monday["version"] == 1 and monday["no_inquiries"] is False
    assert [(line["line_type"], line["inquiry_id"]) for line in monday["lines"]] == [
        ("correction", sent["id"])
    ]
    assert monday["totals"]["inquiries"] == 0
    # Friday's lists, generated again (the schedule re-checks recent days), are unchanged: the inquiry's
    # line there is what was sent and checked.
    assert {i["kind"]: i["id"] for i in await generate(client, demo, "2026-11-13")} == friday


async def test_a_day_generated_in_batches_numbers_seals_and_records_every_list_and_reruns_write_nothing(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The whole-day generation writes several branches per transaction; two branches a transaction here,
    # so the day of five branches spans three transactions and the HQ-returned and supplement paths
    # meet the batch boundaries.
    monkeypatch.setattr(service, "BATCH_BRANCHES", 2)
    clock.set(FRIDAY_MORNING)
    async with ctx.db.session() as session:
        session.add_all(
            Branch(code=code, name=f"支店{code}", is_hq=False, status="active", created_at=clock.now())
            for code in ("003", "004")
        )
        await session.commit()
    await send(client, demo, ctx, 2)  # branch 001
    day = FRIDAY_MORNING.date()
    events_before = len(await ledger_events(ctx, action="daily_list.generated"))

    reported: list[str] = []
    first = await service.generate(
        ctx, day=day, actor=SYSTEM_ACTOR, on_branch=lambda code, lists: reported.append(code)
    )
    async with ctx.db.read_session() as session:
        active = set((await session.scalars(select(Branch.code).where(Branch.status == "active"))).all())
    made = {(g.daily.branch_code, g.daily.kind): g.daily for g in first}
    assert set(made) == {(code, kind) for code in active for kind in service.kinds_for(ctx, code)}
    assert all(g.created for g in first)
    assert reported == sorted(active)  # each branch reported once, in branch order, as are the results
    assert [g.daily.branch_code for g in first] == sorted(g.daily.branch_code for g in first)
    assert {(d.sequence, d.version) for d in made.values()} == {(1, 1)}
    assert made[("001", "subject")].inquiries_total == 2 and made[("003", "count")].no_inquiries
    async with ctx.db.read_session() as session:
        for daily in made.values():  # the sealed content is the content the hash names
            stored = await service.load_list(session, daily.id)
            assert service.content_digest(service.open_content(ctx, stored)) == daily.content_sha256
    generated = await ledger_events(ctx, action="daily_list.generated")
    assert sorted(e.object_id for e in generated[events_before:]) == sorted(d.id for d in made.values())
    assert (await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))).ok

    again = await service.generate(ctx, day=day, actor=SYSTEM_ACTOR)
    assert not any(g.created for g in again)
    assert {g.daily.id for g in again} == {d.id for d in made.values()}
    assert len(await ledger_events(ctx, action="daily_list.generated")) == len(generated)

    clock.advance(hours=2)
    await send(client, demo, ctx, 1)  # a late inquiry at branch 001 only
    supplemented = await service.generate(ctx, day=day, actor=SYSTEM_ACTOR)
    # 001 is written, the others passed over unchanged: still returned in branch order.
    assert [g.daily.branch_code for g in supplemented] == sorted(g.daily.branch_code for g in supplemented)
    changed = {(g.daily.branch_code, g.daily.kind): g.daily for g in supplemented if g.created}
    assert set(changed) == {("001", kind) for kind in service.kinds_for(ctx, "001")}
    for (code, kind), daily in changed.items():
        assert (daily.sequence, daily.version) == (1, 2)
        assert daily.supersedes == made[(code, kind)].id and daily.supplement_reason == "late_inquiry"
    assert (await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))).ok
    # Each branch's next list takes the next number, whichever transaction of the batch made the first.
    day_before = await service.generate(ctx, day=day - timedelta(days=1), actor=SYSTEM_ACTOR)
    assert {g.daily.sequence for g in day_before} == {2}

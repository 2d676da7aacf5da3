"""The reconciliation's checks that only show when something was altered: RC-2 list totals against their
lines, a matched center entry that differs from the gateway's record (RC-1), and the approval-number
register balance (method A2)."""

from __future__ import annotations

import httpx
from sqlalchemy import delete, select, update

from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import ApprovalNumber, Inquiry
from app.lists.models import DailyListLine
from tests.inquiry.support import as_user, draft_body, person
from tests.reconciliation.support import DAY, reconcile, sent_inquiry


def alerts(run: dict[str, object]) -> set[tuple[str, str]]:
    return {(a["severity"], a["code"]) for a in run["alerts"]}  # type: ignore[attr-defined]


async def test_a_list_whose_total_differs_from_its_lines_is_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await sent_inquiry(client, demo, await person(ctx, index=0))
    await sent_inquiry(client, demo, await person(ctx, index=1))
    generated = await client.post(
        "/daily-lists/generate",
        json={"business_date": DAY["from"], "branch_code": "001"},
        headers=await as_user(client, demo, "hqop"),
    )
    subject_list = next(i for i in generated.json()["items"] if i["kind"] == "subject")
    assert (await reconcile(client, demo))["clean"] is True
    # One line of the stored list goes missing; its total still says two.
    async with ctx.db.session() as session:
        await session.execute(
            delete(DailyListLine).where(
                DailyListLine.list_id == subject_list["id"], DailyListLine.line_no == 2
            )
        )
        await session.commit()

    run = await reconcile(client, demo)

    [day] = run["by_day"]
    assert day["lists_unbalanced"] == [subject_list["id"]] and day["balanced"] is True
    assert ("high", "LIST_TOTAL_MISMATCH") in alerts(run)


async def test_a_center_entry_that_differs_from_the_gateways_record_is_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await sent_inquiry(client, demo, await person(ctx, index=0))
    # The gateway's record is altered afterwards to name another terminal than the center holds.
    async with ctx.db.session() as session:
        await session.execute(
            update(Inquiry).where(Inquiry.id == inquiry["id"]).values(terminal_id="T-OTHER")
        )
        await session.commit()

    run = await reconcile(client, demo)

    assert [(f["inquiry_id"], f["reason"]) for f in run["mismatched"]] == [(inquiry["id"], "terminal")]
    assert ("warning", "CENTER_ENTRY_MISMATCH") in alerts(run)
    assert run["unmatched_center"] == [] and run["unmatched_gateway"] == []


async def test_an_approval_number_lost_from_the_register_is_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator, confirmer = await as_user(client, demo, "op001"), await as_user(client, demo, "cf001")
    draft = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)).json()
    for _ in range(2):
        issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
        assert issued.status_code == 201
    async with ctx.db.session() as session:
        number_id = await session.scalar(
            select(ApprovalNumber.id).where(ApprovalNumber.inquiry_id == draft["id"]).limit(1)
        )
        await session.execute(delete(ApprovalNumber).where(ApprovalNumber.id == number_id))
        await session.commit()

    run = await reconcile(client, demo)

    assert [(r["branch_code"], r["issued"], r["balanced"]) for r in run["approval_registers"]] == [
        ("001", 2, False)
    ]
    assert ("high", "APPROVAL_REGISTER_IMBALANCE") in alerts(run)


async def test_a_day_whose_every_approval_number_was_lost_from_the_register_is_still_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator, confirmer = await as_user(client, demo, "op001"), await as_user(client, demo, "cf001")
    draft = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)).json()
    issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201
    assert [(r["issued"], r["balanced"]) for r in (await reconcile(client, demo))["approval_registers"]] == [
        (1, True)
    ]
    # The register loses the day's only row: the ledger still says a number was issued that day.
    async with ctx.db.session() as session:
        await session.execute(delete(ApprovalNumber).where(ApprovalNumber.inquiry_id == draft["id"]))
        await session.commit()

    run = await reconcile(client, demo)

    assert [
        (r["branch_code"], r["business_date"], r["issued"], r["outstanding"], r["balanced"])
        for r in run["approval_registers"]
    ] == [("001", DAY["from"], 1, 0, False)]
    assert ("high", "APPROVAL_REGISTER_IMBALANCE") in alerts(run)

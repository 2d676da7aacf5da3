"""Rules of the daily lists a review found missing: refusals on count lists, bad dates, supplements'
deadlines, paging, the schedule, non-business days and service accounts (methods C and D, DL-1…DL-4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from tests.inquiry.support import as_user, draft_body, person
from tests.lists.test_daily_lists import FRIDAY_MORNING, a1, generate, send


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


_ = datetime, UTC

"""HQ-2: HQ's inquiries come back to the requesting branch on the list its return option names.

The bundled policy returns to 001 on its subject list (method C) and to 002 on its count list (D).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from app.audit.ledger import Actor
from app.authz import directory
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.lists import service
from tests.helpers import as_recorded, ledger_events
from tests.hq.support import TODAY, branch_request, execute, held
from tests.inquiry.support import a1, as_user, draft_body, password_of, person


async def _lists(client: httpx.AsyncClient, hq: dict[str, str], branch: str) -> dict[str, dict[str, Any]]:
    response = await client.post(
        "/daily-lists/generate", json={"business_date": TODAY, "branch_code": branch}, headers=hq
    )
    assert response.status_code == 200, response.text
    return {item["kind"]: item for item in response.json()["items"]}


async def test_the_requesting_branch_gets_hq_inquiries_on_the_list_of_its_return_option(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    op001, op002 = await as_user(client, demo, "op001"), await as_user(client, demo, "op002")
    hq = await as_user(client, demo, "hqop")
    for_001, for_002 = await person(ctx, index=0), await person(ctx, index=1)
    request_001 = await branch_request(client, op001, for_001)
    request_002 = await branch_request(client, op002, for_002)
    inquiry_001 = (await execute(client, hq, request_001["id"], for_001)).json()
    inquiry_002 = (await execute(client, hq, request_002["id"], for_002)).json()

    lists_001 = await _lists(client, hq, "001")
    assert lists_001["subject"]["totals"]["inquiries"] == 1
    assert lists_001["count"]["no_inquiries"] is True
    lists_002 = await _lists(client, hq, "002")
    assert lists_002["count"]["totals"]["inquiries"] == 1
    assert lists_002["subject"]["no_inquiries"] is True

    cf001 = await as_user(client, demo, "cf001")
    subject_list = (await client.get(f"/daily-lists/{lists_001['subject']['id']}", headers=cf001)).json()
    [line] = subject_list["lines"]
    assert line["inquiry_id"] == inquiry_001["id"] and line["operator_id"] == "hqop"
    assert line["subject"]["birth_date"] == for_001["birth_date"]
    # The branch's confirmer checks HQ's line against the branch's document and confirms the list (C).
    checked = await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check", json={"result": "matched"}, headers=cf001
    )
    assert checked.status_code == 200, checked.text
    confirmed = await client.post(f"/daily-lists/{subject_list['id']}/confirm", json={}, headers=cf001)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"

    cf002 = await as_user(client, demo, "cf002")
    count_list = (await client.get(f"/daily-lists/{lists_002['count']['id']}", headers=cf002)).json()
    assert [line["inquiry_id"] for line in count_list["lines"]] == [inquiry_002["id"]]
    # The other branch's HQ inquiry is not on 001's list, nor 001's on 002's.
    assert inquiry_002["id"] not in {line["inquiry_id"] for line in subject_list["lines"]}


async def test_hq_sign_off_is_not_for_someone_who_ran_the_days_inquiries(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """SD-1 at HQ: the confirmer signing the day off ran none of its HQ inquiries."""
    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=Actor(id="test"), user_id="hqcf", role="hq_operator", branch_code=None
        )
        await session.commit()
    hqcf = await as_user(client, demo, "hqcf")
    draft = await client.post("/inquiries", json=draft_body(await person(ctx)), headers=hqcf)
    assert draft.status_code == 201, draft.text
    clock.set(datetime(2026, 11, 25, 0, 0, tzinfo=UTC))  # the day is over: sign-off is due
    hqcf = await as_user(client, demo, "hqcf")
    refused = await client.post(f"/reconciliation/hq/{TODAY}/sign-off", headers=hqcf)
    assert refused.status_code == 403 and refused.json()["code"] == "SAME_PERSON"


async def test_a_request_hq_took_up_after_the_day_was_read_is_on_the_list_with_the_branchs_own_lines(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generation reads the day before it locks anything; a branch that had not asked HQ for anything
    then is decided under the lock, where HQ's inquiry for it is found: the list has both the branch's
    own inquiry and HQ's, as it would have had HQ's request been there from the start."""
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    own_subject, for_001 = await person(ctx, index=0), await person(ctx, index=1)
    own = await client.post(
        "/inquiries", json=draft_body(own_subject, approval=a1(demo, "cf001")), headers=op001
    )
    assert own.status_code == 201, own.text
    request = await branch_request(client, op001, for_001)
    from_hq = (await execute(client, hq, request["id"], for_001)).json()

    read_before_the_lock = service._hq_return_options
    calls = 0

    async def nothing_asked_yet(session: Any, *, branch_codes: list[str]) -> set[tuple[str, str]]:
        nonlocal calls
        calls += 1
        return set() if calls == 1 else await read_before_the_lock(session, branch_codes=branch_codes)

    monkeypatch.setattr(service, "_hq_return_options", nothing_asked_yet)
    lists_001 = await _lists(client, hq, "001")
    assert calls == 2  # before the lock (nothing yet), then under it
    cf001 = await as_user(client, demo, "cf001")
    subject_list = (await client.get(f"/daily-lists/{lists_001['subject']['id']}", headers=cf001)).json()
    assert [line["inquiry_id"] for line in subject_list["lines"]] == [own.json()["id"], from_hq["id"]]
    assert subject_list["totals"]["inquiries"] == 2


async def test_who_asked_for_an_hq_inquiry_does_not_check_its_line_at_the_branch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """SD-1: the line names HQ's operator, but the branch's operator who asked is its operator too."""
    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=Actor(id="test"), user_id="cf001", role="operator", branch_code="001"
        )
        await session.commit()
    asker, hq = await as_user(client, demo, "cf001"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    request = await branch_request(client, asker, subject)
    assert (await execute(client, hq, request["id"], subject)).status_code == 201
    subject_list = (await _lists(client, hq, "001"))["subject"]
    check = f"/daily-lists/{subject_list['id']}/lines/1/check"

    refused = await client.post(check, json={"result": "matched"}, headers=asker)
    assert (refused.status_code, refused.json()["code"]) == (403, "SAME_PERSON")
    unchecked = (await client.get(f"/daily-lists/{subject_list['id']}", headers=asker)).json()
    assert [line["check"] for line in unchecked["lines"]] == [None]
    other = await as_user(client, demo, "cf001b")
    checked = await client.post(check, json={"result": "matched"}, headers=other)
    assert checked.status_code == 200, checked.text


async def test_who_asked_hq_never_releases_or_approves_for_hqs_inquiry_even_holding_an_hq_role(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """SD-1: the branch operator who asked is the HQ inquiry's operator too, whatever its return option;
    also holding hq_confirmer (moved to HQ, say) lets them neither release HQ's answer to their own
    request, nor read it, nor approve its cancellation by number or by their credentials."""
    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=Actor(id="test"), user_id="op001", role="hq_confirmer", branch_code="000"
        )
        await session.commit()
    subject = await person(ctx)
    asker, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    request = await branch_request(client, asker, subject)
    executed = await execute(client, hq, request["id"], subject)
    assert executed.status_code == 201, executed.text
    inquiry = await held(client, hq, executed.json()["id"])
    path = f"/inquiries/{inquiry['id']}"

    released = await client.post(
        f"{path}/release",
        json={"password": password_of(demo, "op001"), "document_check": "match"},
        headers=asker,
    )
    assert (released.status_code, released.json()["code"]) == (403, "SAME_PERSON")
    number = await client.post(f"{path}/approval-numbers", json={}, headers=asker)
    assert (number.status_code, number.json()["code"]) == (403, "SAME_PERSON")
    by_credentials = await client.post(
        f"{path}/cancel", json={"reason": "入力誤り", "approval": a1(demo, "op001")}, headers=hq
    )
    assert (by_credentials.status_code, by_credentials.json()["code"]) == (403, "SAME_PERSON")
    assert (await client.get(path, headers=hq)).json()["status"] == "held"

    # HQ's own confirmer releases it; the one who asked, who gets the list back, does not read the answer.
    hqcf = await as_user(client, demo, "hqcf")
    by_hq = await client.post(
        f"{path}/release",
        json={"password": password_of(demo, "hqcf"), "document_check": "match"},
        headers=hqcf,
    )
    assert by_hq.status_code == 200, by_hq.text
    read = await client.get(f"{path}/response", headers=asker)
    assert read.status_code == 403
    # Each refusal is in the ledger.
    denied = [(e.actor_id, e.object_id) for e in await ledger_events(ctx, action="request.denied")]
    assert denied == [
        (who, as_recorded(f"/api/v1{path}/{call}", f"/inquiries/{{inquiry_id}}/{call}"))
        for who, call in (
            ("op001", "release"),
            ("op001", "approval-numbers"),
            ("hqop", "cancel"),
            ("op001", "response"),
        )
    ]


async def test_a_weekend_hq_inquiry_for_a_branch_makes_the_gap_check_ask_for_that_branchs_list(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """DL-1, HQ-2: on a Saturday HQ ran 001's request; 001's subject list of that day (its return option)
    is due, and until it exists the gap check says so — it looked only at 001's own inquiries."""
    clock.set(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))  # Saturday 10:00 JST
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    request = await branch_request(client, op001, subject)
    assert (await execute(client, hq, request["id"], subject)).status_code == 201
    clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))  # Monday

    async def missing_for_001() -> list[dict[str, str]]:
        async with ctx.db.read_session() as session:
            found = await service.gaps(
                session, ctx, date_from=date(2026, 11, 28), date_to=date(2026, 11, 29), branch_code="001"
            )
        return list(found["missing_lists"])

    assert await missing_for_001() == [
        {"branch_code": "001", "kind": "subject", "business_date": "2026-11-28"}
    ]
    hq = await as_user(client, demo, "hqop")
    made = await client.post(
        "/daily-lists/generate", json={"business_date": "2026-11-28", "branch_code": "001"}, headers=hq
    )
    assert [(i["kind"], i["totals"]["inquiries"]) for i in made.json()["items"]] == [("subject", 1)]
    assert await missing_for_001() == []

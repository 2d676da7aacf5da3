"""Branch check methods, mismatch escalation, NO_TRADE_INFO, cancellation (CC-1) and the trace (LG-5)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from tests.helpers import ledger_events
from tests.inquiry.support import (
    a1,
    as_user,
    center_record,
    center_record_when_nothing_waits,
    draft_body,
    password_of,
    person,
    released_inquiry,
)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    document = json.loads(
        resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    )
    document["check_methods"]["branches"] = {"002": ["C", "D"]}  # branch 002 runs without A and B
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


@pytest.fixture
def settings(settings: Any, policy_file: Path) -> Any:  # type: ignore[override]
    return settings.model_copy(update={"policy_file": policy_file})


async def test_without_method_a_the_inquiry_is_sent_at_once_and_without_b_released(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op002")
    created = await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)
    assert created.status_code == 201, created.text
    inquiry = created.json()
    assert inquiry["approval"] is None
    assert inquiry["status"] == "released"
    assert inquiry["response"]["state"] == "released"
    read = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
    assert read.status_code == 200
    reads = await ledger_events(ctx, action="inquiry.response_read")
    assert [(e.actor_id, e.object_id) for e in reads] == [("op002", inquiry["id"])]
    assert len(await center_record(ctx)) == 1


async def test_mismatch_flags_suspected_misuse_escalates_and_withholds_from_the_operator(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    inquiry = (
        await client.post(
            "/inquiries", json=draft_body(await person(ctx), approval=a1(demo)), headers=operator
        )
    ).json()
    releaser = await as_user(client, demo, "cf001b")
    released = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=releaser,
        json={
            "password": password_of(demo, "cf001b"),
            "document_check": "mismatch",
            "note": "申込書の生年月日と不一致",
        },
    )
    assert released.status_code == 200
    assert "suspected_misuse" in released.json()["flags"]
    assert "本部" in released.json()["next_steps"]
    state = (await client.get(f"/inquiries/{inquiry['id']}", headers=operator)).json()
    assert "suspected_misuse" in state["flags"]
    assert (await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)).status_code == 403
    async with ctx.db.read_session() as session:
        escalations = list((await session.scalars(select(Escalation))).all())
    assert [(e.kind, e.branch_code, e.object_id, e.recipients) for e in escalations] == [
        ("document_mismatch", "001", inquiry["id"], ["branch_manager", "hq_compliance"])
    ]


async def test_the_releasing_confirmers_note_is_kept_with_the_release_match_or_mismatch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A note written with a matching document check was accepted and dropped; now it is kept with the
    release (sealed) and read with the inquiry by those who may see whom it is about, not by auditors."""
    operator = await as_user(client, demo, "op001")
    releaser = await as_user(client, demo, "cf001b")
    notes = {"match": "運転免許証の原本で本人確認済み", "mismatch": "申込書の生年月日と不一致"}
    released = {}
    for index, (check, note) in enumerate(notes.items()):
        inquiry = (
            await client.post(
                "/inquiries",
                json=draft_body(await person(ctx, index=index), approval=a1(demo)),
                headers=operator,
            )
        ).json()
        done = await client.post(
            f"/inquiries/{inquiry['id']}/release",
            headers=releaser,
            json={"password": password_of(demo, "cf001b"), "document_check": check, "note": note},
        )
        assert done.status_code == 200, done.text
        released[check] = inquiry["id"]
    for check, inquiry_id in released.items():
        seen = (await client.get(f"/inquiries/{inquiry_id}", headers=releaser)).json()["response"]
        assert (seen["document_check"], seen["release_note"]) == (check, notes[check])
    auditor = await as_user(client, demo, "auditor")
    audited = (await client.get(f"/inquiries/{released['match']}", headers=auditor)).json()
    assert audited["subject"] is None and audited["response"]["release_note"] is None
    # Without a note there is none to show.
    inquiry = (
        await client.post(
            "/inquiries", json=draft_body(await person(ctx, index=2), approval=a1(demo)), headers=operator
        )
    ).json()
    await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=releaser,
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    assert (await client.get(f"/inquiries/{inquiry['id']}", headers=releaser)).json()["response"][
        "release_note"
    ] is None


async def test_no_trade_info_is_passed_through_and_counted_per_operator(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    stranger = await person(ctx, has_transactions=False)
    body = draft_body(
        stranger,
        purpose="credit_review",
        customer_status="existing",
        consent_document={"type": "ledger", "reference": "LEDGER-77", "obtained_on": "2026-11-01"},
        approval=a1(demo),
    )
    inquiry = (await client.post("/inquiries", json=body, headers=operator)).json()
    assert inquiry["status"] == "center_error"
    assert inquiry["center"]["result_code"] == "CENTER_NO_TRADE_INFO"
    refused = await ledger_events(ctx, action="center.refused")
    assert json.loads(refused[-1].details) == {
        "code": "CENTER_NO_TRADE_INFO",
        "kind": "inquire",
        "operator_id": "op001",
    }
    # No response will ever come: the refusal says so rather than sending anyone to ask for a release.
    unread = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
    assert (unread.status_code, unread.json()["code"]) == (423, "RESPONSE_HELD")
    assert "center_error" in unread.json()["detail"] and "releases" not in unread.json()["detail"]


async def test_cancellation_needs_a_second_person_and_reaches_the_center(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    inquiry = (
        await client.post(
            "/inquiries", json=draft_body(await person(ctx), approval=a1(demo)), headers=operator
        )
    ).json()
    assert inquiry["status"] == "held"
    no_approval = await client.post(
        f"/inquiries/{inquiry['id']}/cancel", headers=operator, json={"reason": "入力誤り"}
    )
    assert no_approval.status_code == 422
    wrong = await client.post(
        f"/inquiries/{inquiry['id']}/cancel",
        headers=operator,
        json={
            "reason": "入力誤り",
            "approval": {"method": "approval_number", "approval_number": "1234-5678"},
        },
    )
    assert wrong.json()["code"] == "APPROVAL_INVALID"

    confirmer = await as_user(client, demo, "cf001")
    number = (
        await client.post(f"/inquiries/{inquiry['id']}/approval-numbers", json={}, headers=confirmer)
    ).json()["approval_number"]
    cancelled = await client.post(
        f"/inquiries/{inquiry['id']}/cancel",
        headers=operator,
        json={"reason": "入力誤り", "approval": {"method": "approval_number", "approval_number": number}},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    for _ in range(40):
        kinds = [e["kind"] for e in await center_record(ctx)]
        if "cancellation" in kinds:
            break
        await __import__("asyncio").sleep(0.05)
    assert sorted(kinds) == ["cancellation", "inquiry"]
    again = await client.post(
        f"/inquiries/{inquiry['id']}/cancel",
        headers=operator,
        json={"reason": "入力誤り", "approval": {"method": "approval_number", "approval_number": number}},
    )
    assert again.json()["code"] == "INVALID_STATE"
    recorded = await center_record_when_nothing_waits(ctx)
    assert sorted(e["kind"] for e in recorded) == ["cancellation", "inquiry"]


async def test_a_released_response_is_no_longer_read_once_the_inquiry_is_cancelled(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry_id, operator, releaser = await released_inquiry(client, demo, ctx)
    url = f"/inquiries/{inquiry_id}/response"
    assert (await client.get(url, headers=operator)).status_code == 200
    cancelled = await client.post(
        f"/inquiries/{inquiry_id}/cancel",
        headers=operator,
        json={"reason": "別人を照会", "approval": a1(demo)},
    )
    assert cancelled.status_code == 200, cancelled.text
    reads_before = len(await ledger_events(ctx, action="inquiry.response_read"))
    for reader in (operator, releaser):
        refused = await client.get(url, headers=reader)
        assert refused.status_code == 403
        assert refused.json()["code"] == "FORBIDDEN"
        assert "cancelled" in refused.json()["detail"]
    assert len(await ledger_events(ctx, action="inquiry.response_read")) == reads_before


async def test_trace_shows_the_whole_life_in_order(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    inquiry = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)).json()
    confirmer = await as_user(client, demo, "cf001")
    number = (
        await client.post(f"/inquiries/{inquiry['id']}/approval-numbers", json={}, headers=confirmer)
    ).json()["approval_number"]
    await client.post(
        f"/inquiries/{inquiry['id']}/submit",
        headers=operator,
        json={"approval": {"method": "approval_number", "approval_number": number}},
    )
    releaser = await as_user(client, demo, "cf001b")
    await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=releaser,
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)

    manager = await as_user(client, demo, "bm001")
    trace = await client.get(f"/inquiries/{inquiry['id']}/trace", headers=manager)
    assert trace.status_code == 200
    actions = [e["action"] for e in trace.json()["events"]]
    assert actions[:8] == [
        "inquiry.created",
        "approval_number.issued",
        "approval_number.used",
        "inquiry.approved",
        "inquiry.queued",
        "center.inquiry_sent",
        "inquiry.response_received",
        "inquiry.released",
    ]
    assert actions.count("inquiry.response_read") == 2
    assert (await client.get(f"/inquiries/{inquiry['id']}/trace", headers=operator)).status_code == 403
    # Another branch's manager cannot tell this inquiry from one that does not exist.
    other_manager = await as_user(client, demo, "bm002")
    elsewhere = await client.get(f"/inquiries/{inquiry['id']}/trace", headers=other_manager)
    nowhere = await client.get("/inquiries/00000000-0000-4000-8000-000000000000/trace", headers=other_manager)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (nowhere.status_code, nowhere.json()["code"])
    assert elsewhere.status_code == 404
    text = trace.text
    subject = (await client.get(f"/inquiries/{inquiry['id']}", headers=operator)).json()["subject"]
    assert subject["name_kana"] not in text and subject["birth_date"] not in text


async def test_a_draft_past_its_lifetime_expires_instead_of_being_cancelled(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """api.md: a draft never approved within its lifetime ends ``expired``; a late cancellation does
    not turn it into ``cancelled`` (nor ask a confirmer to approve something already over)."""
    operator = await as_user(client, demo, "op001")
    draft = (await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)).json()
    clock.set(datetime.fromisoformat(draft["expires_at"]) + timedelta(hours=1))
    operator = await as_user(client, demo, "op001")  # the first session ran out with the clock

    late = await client.post(
        f"/inquiries/{draft['id']}/cancel",
        json={"reason": "入力誤り", "approval": a1(demo)},
        headers=operator,
    )

    assert late.status_code == 409, late.text
    assert late.json()["code"] == "INVALID_STATE"
    assert (await client.get(f"/inquiries/{draft['id']}", headers=operator)).json()["status"] == "expired"
    assert [e.object_id for e in await ledger_events(ctx, action="inquiry.expired")] == [draft["id"]]
    assert await ledger_events(ctx, action="inquiry.cancelled") == []
    assert await center_record_when_nothing_waits(ctx) == []

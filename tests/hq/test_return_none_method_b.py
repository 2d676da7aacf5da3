"""HQ-2, return option ``none`` covered by method B at the requesting branch: HQ's answer to the
branch's request is held until a confirmer of the requesting branch — not HQ's, not the operator who
asked — re-authenticates and checks it against the consent document (match, or mismatch and escalation),
exactly as method B at the branch's own inquiries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.context import AppContext
from app.demo import DemoCredentials
from app.escalation.models import Escalation
from app.inquiry.policy import load_policy
from tests.helpers import ledger_events
from tests.hq.support import branch_request, execute
from tests.hq.test_return_none import bundled_policy, write_policy
from tests.inquiry.support import as_user, password_of, person


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    document = bundled_policy()
    # Branch 002 gets no list back from HQ and has no method A: B is what covers HQ's answers there.
    document["check_methods"]["branches"] = {"002": ["B", "C", "D"]}
    document["hq_return_option"]["branches"] = {"002": "none"}
    return settings.model_copy(update={"policy_file": write_policy(tmp_path / "policy.json", document)})


async def answered_request(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> tuple[dict[str, Any], dict[str, Any]]:
    """op002 asks HQ (no approval needed without A); HQ runs it; HQ's answer is in."""
    subject = await person(ctx)
    requester = await as_user(client, demo, "op002")
    created = await branch_request(client, requester, subject)
    [request] = (await client.get("/hq-requests", headers=requester)).json()["items"]
    assert request["id"] == created["id"]
    assert request["return_option"] == "none" and request["approval"] is None
    executed = await execute(client, await as_user(client, demo, "hqop"), request["id"], subject)
    assert executed.status_code == 201, executed.text
    inquiry = executed.json()
    for _ in range(100):
        if inquiry["status"] != "queued":
            break
        inquiry = (
            await client.get(f"/inquiries/{inquiry['id']}", headers=await as_user(client, demo, "hqop"))
        ).json()
    return request, inquiry


def release_body(demo: DemoCredentials, user_id: str, check: str = "match", **extra: Any) -> dict[str, Any]:
    return {"password": password_of(demo, user_id), "document_check": check, **extra}


def test_a_branch_without_a_list_back_may_rely_on_method_b_alone(settings: Settings) -> None:
    assert settings.policy_file is not None
    policy = load_policy(settings.policy_file)
    assert policy.hq_return_option_for("002") == "none" and "A" not in policy.methods_for("002")


async def test_hqs_answer_is_held_for_a_confirmer_of_the_requesting_branch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    request, inquiry = await answered_request(client, demo, ctx)
    assert inquiry["status"] == "held" and inquiry["response"]["state"] == "held"
    release = f"/inquiries/{inquiry['id']}/release"

    # Nobody gets the content while it is held: not HQ's operator, not the operator who asked.
    hq_operator = await as_user(client, demo, "hqop")
    assert (await client.get(f"/inquiries/{inquiry['id']}/response", headers=hq_operator)).status_code == 423
    # HQ's confirmer may not release it: the check belongs to the requesting branch.
    by_hq = await client.post(
        release, json=release_body(demo, "hqcf"), headers=await as_user(client, demo, "hqcf")
    )
    assert by_hq.status_code == 403 and by_hq.json()["code"] == "NOT_A_CONFIRMER"
    # Nor another branch's confirmer.
    by_other_branch = await client.post(
        release, json=release_body(demo, "cf001"), headers=await as_user(client, demo, "cf001")
    )
    assert by_other_branch.status_code == 404  # not its branch: as if absent
    # The requesting operator is not a confirmer.
    by_requester = await client.post(
        release, json=release_body(demo, "op002"), headers=await as_user(client, demo, "op002")
    )
    assert by_requester.status_code == 403
    # The requesting branch's confirmer sees HQ's inquiry it is to release, and whom it is about (to
    # compare the answer with the branch's document) — a view recorded like any other.
    confirmer = await as_user(client, demo, "cf002")
    seen = await client.get(f"/inquiries/{inquiry['id']}", headers=confirmer)
    assert seen.status_code == 200 and seen.json()["status"] == "held"
    assert seen.json()["subject"]["name_kana"] == request["subject"]["name_kana"]
    views = await ledger_events(ctx, action="inquiry.subject_viewed")
    assert "cf002" in [e.actor_id for e in views if e.object_id == inquiry["id"]]
    assert (
        await client.get(f"/inquiries/{inquiry['id']}", headers=await as_user(client, demo, "cf001"))
    ).status_code == 404
    # A fresh password, not just the session.
    wrong = await client.post(
        release, json={"password": "not-it", "document_check": "match"}, headers=confirmer
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "REAUTH_FAILED"
    refused = await ledger_events(ctx, action="inquiry.release_refused")
    assert [e.actor_id for e in refused] == ["cf002"]

    released = await client.post(release, json=release_body(demo, "cf002"), headers=confirmer)
    assert released.status_code == 200, released.text
    assert released.json()["document_check"] == "match" and released.json()["record"]
    shown = (await client.get(f"/inquiries/{inquiry['id']}", headers=hq_operator)).json()
    assert shown["status"] == "released" and shown["response"]["released_by"] == "cf002"
    # The releasing confirmer reads it again, and every read is logged.
    again = await client.get(f"/inquiries/{inquiry['id']}/response", headers=confirmer)
    assert again.status_code == 200
    reads = await ledger_events(ctx, action="inquiry.response_read")
    assert [(e.actor_id, json.loads(e.details)["reader_role"]) for e in reads] == [
        ("cf002", "releasing_confirmer"),
        ("cf002", "releasing_confirmer"),
    ]
    assert request["branch_code"] == "002"


async def test_a_mismatch_at_the_requesting_branch_flags_and_escalates_there(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    _, inquiry = await answered_request(client, demo, ctx)
    confirmer = await as_user(client, demo, "cf002")
    released = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        json=release_body(demo, "cf002", "mismatch", note="申込書の氏名と相違"),
        headers=confirmer,
    )
    assert released.status_code == 200, released.text
    assert "suspected_misuse" in released.json()["flags"]
    async with ctx.db.read_session() as session:
        # This inquiry's escalations: the app's background jobs run during the test and may write others
        # (a second escalation was seen once in CI on PostgreSQL, and not reproduced).
        [escalation] = (
            await session.scalars(select(Escalation).where(Escalation.object_id == inquiry["id"]))
        ).all()
    assert (escalation.kind, escalation.branch_code, escalation.object_id) == (
        "document_mismatch",
        "002",
        inquiry["id"],
    )
    assert escalation.recipients == ["branch_manager", "hq_compliance"]
    # After a mismatch neither operator gets the content.
    for operator in ("op002", "hqop"):
        read = await client.get(
            f"/inquiries/{inquiry['id']}/response", headers=await as_user(client, demo, operator)
        )
        assert read.status_code == 403, operator

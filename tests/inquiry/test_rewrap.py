"""Key rotation without downtime (EN-2): after a KEK rotation, rewrap moves every data key to the new KEK."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.audit.ledger import Actor
from app.clock import ManualClock
from app.context import AppContext
from app.crypto.keyring import FileKeyProvider, Keyring
from app.crypto.rewrap import RewrapIncomplete, rewrap_all, rewrap_ready_at
from app.demo import DemoCredentials
from app.governance.models import TotpEnrolment
from app.governance.totp import open_secret
from app.inquiry.models import Inquiry, SealedResponse
from tests.governance.support import enrol_totp, privileged_headers, request_apply
from tests.helpers import ledger_events
from tests.inquiry.support import as_user, draft_body, password_of, person


@pytest.fixture
def keyring(clock: ManualClock, tmp_path: Path) -> Keyring:
    """A file-backed keyring, so the running gateway's keys can be rotated as `shokai keys rotate` does."""
    return Keyring.open(FileKeyProvider(tmp_path / "keys.json"), clock=clock, create=True)


async def test_rotate_then_rewrap_keeps_everything_readable(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await as_user(client, demo, "op001")
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }
    inquiry = (
        await client.post(
            "/inquiries", json=draft_body(await person(ctx), approval=approval), headers=operator
        )
    ).json()
    releaser = await as_user(client, demo, "cf001b")
    before = (
        await client.post(
            f"/inquiries/{inquiry['id']}/release",
            headers=releaser,
            json={"password": password_of(demo, "cf001b"), "document_check": "match"},
        )
    ).json()

    new_kek = ctx.keyring.rotate("kek", now=ctx.clock.now())

    # Rows sealed under the old KEK stay readable before the rewrap ...
    still = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
    assert still.status_code == 200 and still.json()["record"] == before["record"]

    clock.set(rewrap_ready_at(ctx))  # once every gateway seals under the new KEK
    changed = await rewrap_all(ctx, actor=Actor(id="cli:test"))
    assert changed == 2  # the subject's data key and the response's data key
    async with ctx.db.read_session() as session:
        assert {i.subject_kek_id for i in (await session.scalars(select(Inquiry))).all()} == {new_kek}
        assert {r.kek_id for r in (await session.scalars(select(SealedResponse))).all()} == {new_kek}

    # ... and after it, under the new one; a second run has nothing to do.
    after = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
    assert after.json()["record"] == before["record"]
    assert (await client.get(f"/inquiries/{inquiry['id']}", headers=operator)).json()["subject"] is not None
    assert await rewrap_all(ctx, actor=Actor(id="cli:test")) == 0
    assert len(await ledger_events(ctx, action="keys.rewrapped")) == 2


async def test_after_rewrap_the_retired_kek_can_be_destroyed_and_every_sealed_value_still_opens(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock, tmp_path: Path
) -> None:
    """Every kind of sealed value, not only inquiries: daily lists, TOTP secrets, reset-password halves."""
    operator = await as_user(client, demo, "op001")
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }
    inquiry = (
        await client.post(
            "/inquiries", json=draft_body(await person(ctx), approval=approval), headers=operator
        )
    ).json()
    hq = await as_user(client, demo, "hqop")
    generated = await client.post(
        "/daily-lists/generate", json={"business_date": inquiry["business_date"]}, headers=hq
    )
    assert generated.status_code == 200, generated.text
    confirmer = await as_user(client, demo, "cf001")
    [subject_list] = [
        item
        for item in generated.json()["items"]
        if item["branch_code"] == "001" and item["kind"] == "subject"
    ]
    list_before = (await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)).json()
    totp_secret = await enrol_totp(client, confirmer, clock)
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    reset = await request_apply(
        client,
        requester=admin,
        approver=approver,
        setter=admin,
        body={"user_id": "op002", "action": "reset_password", "reason": "パスワード失念"},
    )

    old_kek = ctx.keyring.current_key_id("kek")
    new_kek = ctx.keyring.rotate("kek", now=clock.now())
    clock.set(rewrap_ready_at(ctx))
    await rewrap_all(ctx, actor=Actor(id="cli:test"))

    # The operator destroys the retired KEK once the rewrap is done ...
    document = json.loads((tmp_path / "keys.json").read_text(encoding="utf-8"))
    del document["kek"]["keys"][old_kek]
    ctx.keyring = Keyring(document)
    assert ctx.keyring.key_ids("kek") == [new_kek]

    # ... and every sealed value opens under the new one alone.
    assert (await client.get(f"/inquiries/{inquiry['id']}", headers=operator)).json()["subject"] is not None
    listed = await client.get(f"/daily-lists/{subject_list['id']}", headers=confirmer)
    assert listed.status_code == 200, listed.text
    assert listed.json()["lines"] == list_before["lines"]
    async with ctx.db.read_session() as session:
        enrolment = await session.get(TotpEnrolment, "cf001")
        assert enrolment is not None and open_secret(ctx, enrolment) == totp_secret
    half = await client.post(f"/access-requests/{reset['id']}/password-half", headers=approver)
    assert half.status_code == 200, half.text


async def test_a_data_key_that_cannot_be_unwrapped_is_passed_over_and_named_and_the_rest_is_rewrapped(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """One damaged row stopped the whole rewrap with a traceback: its batch rolled back, the tables after
    it never reached, the retired KEK needed for ever. Now it is left as it is and named, and everything
    else moves to the new KEK."""
    operator = await as_user(client, demo, "op001")
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }
    made = [
        (
            await client.post(
                "/inquiries", json=draft_body(await person(ctx, index=n), approval=approval), headers=operator
            )
        ).json()
        for n in range(3)
    ]
    damaged = made[1]["id"]
    async with ctx.db.session() as session:
        response = await session.get(SealedResponse, damaged)
        assert response is not None and response.wrapped_key is not None
        response.wrapped_key = bytes(40)
        await session.commit()
    confirmer = await as_user(client, demo, "cf001")
    totp_secret = await enrol_totp(client, confirmer, clock)  # a table after inquiry_responses

    old_kek = ctx.keyring.current_key_id("kek")
    new_kek = ctx.keyring.rotate("kek", now=clock.now())
    clock.set(rewrap_ready_at(ctx))
    for _ in range(2):  # and a second run meets the same row and nothing else
        with pytest.raises(RewrapIncomplete) as incomplete:
            await rewrap_all(ctx, actor=Actor(id="cli:test"))
        assert incomplete.value.unreadable == [("inquiry_responses", damaged)]

    async with ctx.db.read_session() as session:
        responses = {r.inquiry_id: r.kek_id for r in (await session.scalars(select(SealedResponse))).all()}
        subjects = {i.subject_kek_id for i in (await session.scalars(select(Inquiry))).all()}
        enrolment = await session.scalar(select(TotpEnrolment).where(TotpEnrolment.user_id == "cf001"))
    assert responses == {made[0]["id"]: new_kek, damaged: old_kek, made[2]["id"]: new_kek}
    assert subjects == {new_kek}
    assert enrolment is not None and enrolment.secret_kek_id == new_kek
    assert open_secret(ctx, enrolment) == totp_secret
    failed = await ledger_events(ctx, action="keys.rewrap_failed")
    assert [(json.loads(e.details)["table"], json.loads(e.details)["row"], e.outcome) for e in failed] == [
        ("inquiry_responses", damaged, "alert"),
        ("inquiry_responses", damaged, "alert"),
    ]

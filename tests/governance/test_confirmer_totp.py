"""TOTP for confirmers as a branch policy option (AU-8): A1 approval at a branch that asks for it needs the
confirmer's current code as well as the password."""

from __future__ import annotations

import httpx

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance.totp import code_at
from app.inquiry.outbox import OutboxSender
from tests.governance.support import enrol_totp
from tests.helpers import auth_headers, ledger_events, user
from tests.inquiry.support import draft_body, person


async def test_a1_approval_needs_the_confirmers_code_where_the_branch_policy_says_so(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    ctx.policy = ctx.policy.model_copy(update={"confirmer_totp_branches": ["001"]})
    confirmer = await auth_headers(client, demo, "cf001")
    secret = await enrol_totp(client, confirmer, clock)
    operator = await auth_headers(client, demo, "op001")
    subject = await person(ctx)

    def with_approval(totp: str | None) -> dict[str, object]:
        approval: dict[str, object] = {
            "method": "confirmer_credentials",
            "confirmer_user_id": "cf001",
            "confirmer_password": user(demo, "cf001")["password"],
        }
        if totp is not None:
            approval["confirmer_totp"] = totp
        return draft_body(subject, approval=approval)

    refused = await client.post("/inquiries", json=with_approval(None), headers=operator)
    assert refused.status_code == 403 and refused.json()["code"] == "APPROVAL_INVALID"
    sent = await client.post("/inquiries", json=with_approval(code_at(secret, clock.now())), headers=operator)
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "queued"
    assert sent.json()["approval"]["confirmer_id"] == "cf001"
    refusals = await ledger_events(ctx, action="approval.refused")
    assert [e.outcome for e in refusals] == ["denied"] and "TOTP_REQUIRED" in refusals[0].details


def _wrong(code: str, by: int) -> str:
    return f"{(int(code) + by) % 1_000_000:06d}"


async def test_wrong_codes_at_a1_approval_lock_the_confirmer_as_at_login(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """Whoever holds a confirmer's password must not be able to guess the six digits without end: each
    wrong code counts toward the lockout (AU-5), and once locked even the right code approves nothing."""
    ctx.policy = ctx.policy.model_copy(update={"confirmer_totp_branches": ["001"]})
    secret = await enrol_totp(client, await auth_headers(client, demo, "cf001"), clock)
    operator = await auth_headers(client, demo, "op001")
    subject = await person(ctx)

    def with_code(totp: str) -> dict[str, object]:
        approval = {
            "method": "confirmer_credentials",
            "confirmer_user_id": "cf001",
            "confirmer_password": user(demo, "cf001")["password"],
            "confirmer_totp": totp,
        }
        return draft_body(subject, approval=approval)

    good = code_at(secret, clock.now())
    for attempt in range(ctx.settings.lockout_threshold):
        refused = await client.post("/inquiries", json=with_code(_wrong(good, attempt + 1)), headers=operator)
        assert refused.status_code == 403 and refused.json()["code"] == "APPROVAL_INVALID"
    still = await client.post("/inquiries", json=with_code(good), headers=operator)
    assert still.status_code == 403 and still.json()["code"] == "APPROVAL_INVALID"
    assert [e.details for e in await ledger_events(ctx, action="auth.account_locked")], (
        "the lock is on record"
    )
    login = await client.post(
        "/auth/login", json={"user_id": "cf001", "password": user(demo, "cf001")["password"]}
    )
    assert login.json()["code"] == "ACCOUNT_LOCKED"


async def test_wrong_codes_at_release_lock_the_confirmer_as_at_login(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    ctx.policy = ctx.policy.model_copy(update={"confirmer_totp_branches": ["001"]})
    approver = await auth_headers(client, demo, "cf001")
    approver_secret = await enrol_totp(client, approver, clock)
    releaser = await auth_headers(client, demo, "cf001b")
    secret = await enrol_totp(client, releaser, clock)
    operator = await auth_headers(client, demo, "op001")
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": user(demo, "cf001")["password"],
        "confirmer_totp": code_at(approver_secret, clock.now()),
    }
    sent = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=approval), headers=operator
    )
    assert sent.status_code == 201, sent.text
    inquiry_id = sent.json()["id"]
    await OutboxSender(ctx).deliver_due()  # this suite runs no background sender
    assert (await client.get(f"/inquiries/{inquiry_id}", headers=operator)).json()["status"] == "held"

    def release(totp: str) -> dict[str, object]:
        return {"password": user(demo, "cf001b")["password"], "totp": totp, "document_check": "match"}

    good = code_at(secret, clock.now())
    for attempt in range(ctx.settings.lockout_threshold):
        refused = await client.post(
            f"/inquiries/{inquiry_id}/release", json=release(_wrong(good, attempt + 1)), headers=releaser
        )
        assert refused.status_code == 401 and refused.json()["code"] == "REAUTH_FAILED", refused.text
    still = await client.post(f"/inquiries/{inquiry_id}/release", json=release(good), headers=releaser)
    # The lock ends the confirmer's sessions too, so even the right code is not looked at.
    assert still.status_code == 401 and still.json()["code"] == "SESSION_EXPIRED", still.text
    assert (await client.get(f"/inquiries/{inquiry_id}", headers=operator)).json()["status"] == "held"
    login = await client.post(
        "/auth/login", json={"user_id": "cf001b", "password": user(demo, "cf001b")["password"]}
    )
    assert login.json()["code"] == "ACCOUNT_LOCKED"

"""TOTP for confirmers as a branch policy option (AU-8): A1 approval at a branch that asks for it needs the
confirmer's current code as well as the password."""

from __future__ import annotations

import httpx

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance.totp import code_at
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

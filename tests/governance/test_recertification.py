"""Recertification (AC-4): branch managers attest each right; rights not attested by the deadline are
revoked automatically, and the register shows it."""

from __future__ import annotations

from datetime import timedelta

import httpx

from app.clock import ManualClock, rfc3339
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance import sweep
from app.governance.recertification import LAPSE_RULE
from tests.governance.support import privileged_headers
from tests.helpers import auth_headers, ledger_events, login


async def test_unattested_right_is_revoked_at_the_deadline_and_registered(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    deadline = clock.now() + timedelta(days=14)
    campaign = await client.post(
        "/recertification-campaigns",
        json={"reason": "on_demand", "deadline_at": rfc3339(deadline)},
        headers=admin,
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]

    manager = await auth_headers(client, demo, "bm001")
    mine = (await client.get(f"/recertification-campaigns/{campaign_id}/items", headers=manager)).json()[
        "items"
    ]
    # The branch manager sees exactly the staff rights at their branch (their own goes to an approver).
    assert {(i["user_id"], i["role"]) for i in mine} == {
        ("op001", "operator"),
        ("cf001", "confirmer"),
        ("cf001b", "confirmer"),
    }
    by_user = {i["user_id"]: i for i in mine}
    for user_id in ("cf001", "cf001b"):
        attested = await client.post(
            f"/recertification-campaigns/{campaign_id}/items/{by_user[user_id]['id']}",
            json={"decision": "attest"},
            headers=manager,
        )
        assert attested.status_code == 200 and attested.json()["decision"] == "attested"
    other = await auth_headers(client, demo, "bm002")
    foreign = await client.post(
        f"/recertification-campaigns/{campaign_id}/items/{by_user['op001']['id']}",
        json={"decision": "attest"},
        headers=other,
    )
    assert foreign.status_code == 403

    # An access approver attests the HQ and bank-wide rights (never their own).
    approver = await privileged_headers(client, demo, clock, "accappr")
    theirs = (
        await client.get(
            f"/recertification-campaigns/{campaign_id}/items", params={"pending": True}, headers=approver
        )
    ).json()["items"]
    assert {i["attester_role"] for i in theirs} == {"access_approver"}
    for item in theirs:
        decided = await client.post(
            f"/recertification-campaigns/{campaign_id}/items/{item['id']}",
            json={"decision": "attest"},
            headers=approver,
        )
        if item["user_id"] == "accappr":
            assert decided.status_code == 403 and decided.json()["code"] == "SOD_VIOLATION"
        else:
            assert decided.status_code == 200, decided.text

    # op001's right is never attested. Before the deadline nothing happens; after it, it is gone.
    clock.advance(days=13)
    assert (await sweep.run_once(ctx)).rights_revoked_at_deadline == 0
    assert (await login(client, demo, "op001")).json()["user"]["roles"] == ["operator"]
    clock.advance(days=1, seconds=1)
    result = await sweep.run_once(ctx)
    # op001's right, accappr's own (nobody else attested it), and branch 002's three staff rights
    # (bm002 never attested them).
    assert result.rights_revoked_at_deadline == 1 + 1 + 3

    auditor = await auth_headers(client, demo, "auditor")
    listed = await client.get("/access-register", params={"user_id": "op001"}, headers=auditor)
    assert listed.status_code == 200, listed.text
    register = listed.json()["items"]
    revoked = [e for e in register if e["change"] == "revoke"]
    assert [(e["role"], e["branch_code"], e["source"], e["source_id"]) for e in revoked] == [
        ("operator", "001", "recertification", campaign_id)
    ]
    assert (revoked[0]["requested_by"], revoked[0]["approved_by"], revoked[0]["set_by"]) == (
        "accadmin",
        LAPSE_RULE,
        "system",
    )
    assert (await login(client, demo, "op001")).json()["user"]["roles"] == []
    # Attested rights stay.
    assert (await login(client, demo, "cf001")).json()["user"]["roles"] == ["confirmer"]
    late = await client.post(
        f"/recertification-campaigns/{campaign_id}/items/{by_user['op001']['id']}",
        json={"decision": "attest"},
        headers=await auth_headers(client, demo, "bm001"),
    )
    assert late.status_code == 409 and late.json()["code"] == "INVALID_STATE"


async def test_a_periodic_campaign_starts_by_itself_after_six_months(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    assert (await sweep.run_once(ctx)).campaign_started is False
    clock.advance(days=ctx.settings.recertification_interval_days)
    assert (await sweep.run_once(ctx)).campaign_started is True
    assert (await sweep.run_once(ctx)).campaign_started is False


async def test_a_campaigns_items_come_in_pages_and_each_attester_pages_through_their_own(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    """A campaign holds every right of the bank: its items are paged like every list (api.md), and a
    branch manager's pages hold only their branch's items, none short or empty before the end."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    campaign = await client.post("/recertification-campaigns", json={"reason": "on_demand"}, headers=admin)
    assert campaign.status_code == 201, campaign.text
    path = f"/recertification-campaigns/{campaign.json()['id']}/items"

    async def every_page(headers: dict[str, str], limit: int) -> list[list[dict[str, object]]]:
        pages, cursor = [], None
        while True:
            params: dict[str, object] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            answer = await client.get(path, params=params, headers=headers)
            assert answer.status_code == 200, answer.text
            pages.append(answer.json()["items"])
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                return pages

    approver = await privileged_headers(client, demo, clock, "accappr")
    everything = (await client.get(path, headers=approver)).json()["items"]
    assert len(everything) >= 3
    assert {item["role"] for item in everything} >= {"branch_manager"}
    paged = await every_page(approver, limit=2)
    assert [item for page in paged for item in page] == everything
    assert all(len(page) == 2 for page in paged[:-1]) and 1 <= len(paged[-1]) <= 2

    manager = await auth_headers(client, demo, "bm001")
    own = (await client.get(path, headers=manager)).json()["items"]
    assert own and {item["branch_code"] for item in own} == {"001"}
    paged = await every_page(manager, limit=1)
    assert [item for page in paged for item in page] == own
    assert all(len(page) == 1 for page in paged)

    refused = await client.get(path, params={"cursor": "１"}, headers=approver)
    assert refused.status_code == 422 and refused.json()["code"] == "VALIDATION_ERROR"


async def test_the_administrator_running_a_campaign_and_the_auditor_read_every_item_and_the_read_is_recorded(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The access admin follows a campaign through and the auditor checks it: both read every item, of
    every branch, page by page; neither may decide one; staff who attest nothing read nothing."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    campaign = await client.post(
        "/recertification-campaigns",
        json={"reason": "on_demand", "deadline_at": rfc3339(clock.now() + timedelta(days=14))},
        headers=admin,
    )
    campaign_id = campaign.json()["id"]
    url = f"/recertification-campaigns/{campaign_id}/items"
    manager = await auth_headers(client, demo, "bm001")
    branch_001 = (await client.get(url, headers=manager)).json()["items"]

    auditor = await auth_headers(client, demo, "auditor")
    for reader in (admin, auditor):
        seen: list[dict[str, object]] = []
        cursor = None
        while True:
            page = await client.get(
                url, params={"limit": 5, **({"cursor": cursor} if cursor else {})}, headers=reader
            )
            assert page.status_code == 200, page.text
            seen += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len({item["id"] for item in seen}) > len(branch_001)
        assert {item["branch_code"] for item in seen} >= {"001", "002"}
        assert {item["id"] for item in branch_001} < {item["id"] for item in seen}
        assert {item["attester_role"] for item in seen} == {"branch_manager", "access_approver"}
    decided = await client.post(f"{url}/{branch_001[0]['id']}", json={"decision": "attest"}, headers=auditor)
    assert decided.status_code == 403
    operator = await auth_headers(client, demo, "op001")
    assert (await client.get(url, headers=operator)).status_code == 403

    reads = await ledger_events(ctx, action="recertification.items_read")
    assert {event.actor_id for event in reads} == {"bm001", "accadmin", "auditor"}
    assert all(event.object_id == campaign_id for event in reads)

"""Access requests (AC-2, SD-1): request → approve → apply by named, different people; every way to
break the separation of duties is refused with 403 SOD_VIOLATION, and nothing unapproved is applied."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select

from app.audit.ledger import Actor
from app.authz import directory
from app.authz.models import UserRole
from app.authz.roles import INCOMPATIBLE_ROLES, ROLES
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance import sweep
from app.governance.models import AccessRegisterEntry
from tests.governance.support import add_person, privileged_headers, request_apply
from tests.helpers import auth_headers, home_terminal, ledger_events, login, terminal_headers


async def _active_roles(ctx: AppContext, user_id: str) -> set[tuple[str, str | None]]:
    async with ctx.db.read_session() as session:
        rows = await session.execute(
            select(UserRole.role, UserRole.branch_code).where(
                UserRole.user_id == user_id, UserRole.revoked_at.is_(None)
            )
        )
        return {(role, branch) for role, branch in rows}


async def test_new_user_gets_roles_and_first_password_only_through_two_people(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    manager = await auth_headers(client, demo, "bm001")

    created = await client.post("/users", json={"id": "op001new", "name": "新人 太郎"}, headers=admin)
    assert created.status_code == 201, created.text
    assert await _active_roles(ctx, "op001new") == set()

    grant = await request_apply(
        client,
        requester=manager,
        approver=approver,
        setter=admin,
        body={
            "user_id": "op001new",
            "action": "grant",
            "role": "operator",
            "branch_code": "001",
            "reason": "新規配属",
        },
    )
    assert (grant["requested_by"], grant["approved_by"], grant["applied_by"]) == (
        "bm001",
        "accappr",
        "accadmin",
    )
    assert await _active_roles(ctx, "op001new") == {("operator", "001")}
    # A branch manager asks for rights at their own branch only: a bank-wide role is at none of theirs,
    # even for a fellow manager of the branch whose roles it would not clash with.
    await add_person(ctx, demo, "bm001b", (("branch_manager", "001"),))
    asked = await client.post(
        "/access-requests",
        json={"user_id": "bm001b", "action": "grant", "role": "access_approver", "reason": "x"},
        headers=manager,
    )
    assert (asked.status_code, asked.json()["code"]) == (403, "FORBIDDEN")
    pending = (await client.get("/access-requests", params={"status": "pending"}, headers=admin)).json()
    assert [r for r in pending["items"] if r["user_id"] == "bm001b"] == []

    reset = await request_apply(
        client,
        requester=admin,
        approver=approver,
        setter=admin,
        body={"user_id": "op001new", "action": "reset_password", "reason": "初期パスワード"},
    )
    setter_half = reset["initial_password_half"]
    approver_half = (
        await client.post(f"/access-requests/{reset['id']}/password-half", headers=approver)
    ).json()["initial_password_half"]
    # Neither administrator saw the whole password; the approver's half is handed over only once.
    assert setter_half and approver_half and setter_half != approver_half
    again = await client.post(f"/access-requests/{reset['id']}/password-half", headers=approver)
    assert again.status_code == 409

    term = home_terminal(demo, "op001")
    assert term is not None
    login = await client.post(
        "/auth/login",
        json={"user_id": "op001new", "password": setter_half + approver_half},
        headers=terminal_headers(term),
    )
    assert login.status_code == 200, login.text
    assert login.json()["must_change_password"] is True
    assert login.json()["user"]["roles"] == ["operator"]


async def test_every_separation_of_duty_rule_is_enforced(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    # A second access admin and an approver who is also a branch manager, to reach each rule.
    await add_person(ctx, demo, "accadmin2", (("access_admin", None),))
    await add_person(ctx, demo, "apprbm", (("access_approver", None), ("branch_manager", "001")))
    admin = await privileged_headers(client, demo, clock, "accadmin")
    admin2 = await privileged_headers(client, demo, clock, "accadmin2")
    approver = await privileged_headers(client, demo, clock, "accappr")
    approver_manager = await privileged_headers(client, demo, clock, "apprbm")
    manager = await auth_headers(client, demo, "bm001")

    async def sod(response: httpx.Response) -> None:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "SOD_VIOLATION"

    # Nobody requests rights for themselves.
    await sod(
        await client.post(
            "/access-requests",
            json={
                "user_id": "bm001",
                "action": "grant",
                "role": "confirmer",
                "branch_code": "001",
                "reason": "x",
            },
            headers=manager,
        )
    )
    # The approver is not the requester.
    own = await client.post(
        "/access-requests",
        json={
            "user_id": "op001",
            "action": "grant",
            "role": "branch_manager",
            "branch_code": "001",
            "reason": "x",
        },
        headers=approver_manager,
    )
    assert own.status_code == 201
    await sod(await client.post(f"/access-requests/{own.json()['id']}/approve", headers=approver_manager))
    # The approver is not the user concerned.
    for_approver = await client.post(
        "/access-requests",
        json={"user_id": "accappr", "action": "grant", "role": "auditor", "reason": "x"},
        headers=admin,
    )
    await sod(await client.post(f"/access-requests/{for_approver.json()['id']}/approve", headers=approver))
    # The setter is not the user concerned.
    for_admin = await client.post(
        "/access-requests",
        json={"user_id": "accadmin", "action": "grant", "role": "batch_operator", "reason": "x"},
        headers=admin2,
    )
    assert (
        await client.post(f"/access-requests/{for_admin.json()['id']}/approve", headers=approver)
    ).status_code == 200
    await sod(await client.post(f"/access-requests/{for_admin.json()['id']}/apply", headers=admin))
    # Approver and setter roles never meet in one person...
    await sod(
        await client.post(
            "/access-requests",
            json={"user_id": "accadmin2", "action": "grant", "role": "access_approver", "reason": "x"},
            headers=admin,
        )
    )
    # ...and where legacy data gives someone both, the setter still may not be the approver.
    async with ctx.db.session() as session:
        await directory.grant_role(
            session,
            ctx=ctx,
            actor=Actor(id="legacy"),
            user_id="apprbm",
            role="access_admin",
            branch_code=None,
        )
        await session.commit()
    legacy = await client.post(
        "/access-requests",
        json={
            "user_id": "op002",
            "action": "grant",
            "role": "branch_manager",
            "branch_code": "002",
            "reason": "x",
        },
        headers=admin,
    )
    assert (
        await client.post(f"/access-requests/{legacy.json()['id']}/approve", headers=approver_manager)
    ).status_code == 200
    await sod(await client.post(f"/access-requests/{legacy.json()['id']}/apply", headers=approver_manager))

    # None of the refused changes happened, and the register holds no entry for them.
    assert ("branch_manager", "001") not in await _active_roles(ctx, "op001")
    assert ("batch_operator", None) not in await _active_roles(ctx, "accadmin")
    assert ("branch_manager", "002") not in await _active_roles(ctx, "op002")
    async with ctx.db.read_session() as session:
        sources = set((await session.scalars(select(AccessRegisterEntry.source))).all())
    assert sources == {"bootstrap"}


async def test_a_request_is_never_applied_without_approval(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    body = {
        "user_id": "op001",
        "action": "grant",
        "role": "confirmer",
        "branch_code": "002",
        "reason": "応援",
    }

    pending = (await client.post("/access-requests", json=body, headers=admin)).json()
    refused = await client.post(f"/access-requests/{pending['id']}/apply", headers=admin)
    assert refused.status_code == 409 and refused.json()["code"] == "INVALID_STATE"

    rejected = (await client.post("/access-requests", json=body, headers=admin)).json()
    assert (
        await client.post(f"/access-requests/{rejected['id']}/reject", headers=approver)
    ).status_code == 200
    refused = await client.post(f"/access-requests/{rejected['id']}/apply", headers=admin)
    assert refused.status_code == 409

    assert ("confirmer", "002") not in await _active_roles(ctx, "op001")


async def test_a_request_not_approved_in_time_lapses(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    body = {
        "user_id": "op001",
        "action": "grant",
        "role": "confirmer",
        "branch_code": "002",
        "reason": "応援",
    }
    stale = (await client.post("/access-requests", json=body, headers=admin)).json()
    clock.advance(days=ctx.settings.access_request_lapse_days, seconds=1)

    approver = await privileged_headers(client, demo, clock, "accappr")
    lapsed = await client.post(f"/access-requests/{stale['id']}/approve", headers=approver)
    assert lapsed.status_code == 409 and lapsed.json()["code"] == "ACCESS_REQUEST_EXPIRED"
    listed = (await client.get("/access-requests", params={"user_id": "op001"}, headers=approver)).json()
    assert [r["status"] for r in listed["items"]] == ["expired"]
    assert ("confirmer", "002") not in await _active_roles(ctx, "op001")


async def test_administrators_act_only_inside_a_privileged_session(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    approver = await auth_headers(client, demo, "accappr")
    admin = await auth_headers(client, demo, "accadmin")
    refused = await client.post(
        "/access-requests",
        json={
            "user_id": "op001",
            "action": "revoke",
            "role": "operator",
            "branch_code": "001",
            "reason": "x",
        },
        headers=admin,
    )
    assert refused.status_code == 403 and refused.json()["code"] == "PRIVILEGED_SESSION_REQUIRED"
    assert (await client.get("/reviews", headers=approver)).json()["code"] == "PRIVILEGED_SESSION_REQUIRED"


async def test_a_locked_account_is_unlocked_only_by_two_people_and_the_register_shows_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    # Someone who (on legacy data) holds both the approver and the setter role, to try doing both.
    await add_person(ctx, demo, "dualadm", (("access_approver", None),))
    async with ctx.db.session() as session:
        await directory.grant_role(
            session,
            ctx=ctx,
            actor=Actor(id="legacy"),
            user_id="dualadm",
            role="access_admin",
            branch_code=None,
        )
        await session.commit()
    for i in range(ctx.settings.lockout_threshold):
        await login(client, demo, "op002", password=f"wrong-password-{i}")
    assert (await login(client, demo, "op002")).json()["code"] == "ACCOUNT_LOCKED"

    admin = await privileged_headers(client, demo, clock, "accadmin")
    dual = await privileged_headers(client, demo, clock, "dualadm")
    body = {"user_id": "op002", "action": "unlock", "reason": "本人確認済み"}

    solo = (await client.post("/access-requests", json=body, headers=admin)).json()
    approved = await client.post(f"/access-requests/{solo['id']}/approve", headers=dual)
    assert approved.status_code == 200, approved.text
    same = await client.post(f"/access-requests/{solo['id']}/apply", headers=dual)
    assert same.status_code == 403 and same.json()["code"] == "SOD_VIOLATION"
    # Approving is not unlocking: the account stays locked until a different setter applies it.
    assert (await login(client, demo, "op002")).json()["code"] == "ACCOUNT_LOCKED"

    applied = await client.post(f"/access-requests/{solo['id']}/apply", headers=admin)
    assert applied.status_code == 200, applied.text
    assert (await login(client, demo, "op002")).status_code == 200

    register = (await client.get("/access-register", params={"user_id": "op002"}, headers=admin)).json()
    unlocks = [e for e in register["items"] if e["change"] == "unlock"]
    assert [(e["requested_by"], e["approved_by"], e["set_by"], e["access_request_id"]) for e in unlocks] == [
        ("accadmin", "dualadm", "accadmin", solo["id"])
    ]
    # Nothing to unlock now: a further request is refused rather than recorded as an unlock.
    again = await client.post("/access-requests", json=body, headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"


async def test_an_access_admin_cannot_ask_to_unlock_themselves(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    response = await client.post(
        "/access-requests", json={"user_id": "accadmin", "action": "unlock", "reason": "x"}, headers=admin
    )
    assert response.status_code == 403 and response.json()["code"] == "SOD_VIOLATION"


def _branch_for(role: str) -> str | None:
    spec = ROLES[role]
    return "001" if spec.branch_scoped and not spec.hq else None


async def test_every_incompatible_pair_of_roles_is_refused_through_an_access_request(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    pairs = sorted(tuple(sorted(pair)) for pair in INCOMPATIBLE_ROLES)
    # The SD-1 matrix as named in requirements.md, so a pair dropped from roles.py is noticed too.
    assert {
        ("access_admin", "access_approver"),
        ("auditor", "operator"),
        ("auditor", "confirmer"),
        ("batch_developer", "batch_operator"),
        ("access_admin", "operator"),
        ("confirmer", "security_officer"),
        ("access_approver", "hq_confirmer"),
    } <= {tuple(sorted(pair)) for pair in pairs}
    refused = []
    for number, (held, wanted) in enumerate(pairs):
        # Each direction: whoever holds one role of the pair cannot be given the other.
        for holder_role, new_role in ((held, wanted), (wanted, held)):
            user_id = f"sod{number:02d}{'ab' if holder_role == held else 'ba'}"
            await add_person(ctx, demo, user_id, ((holder_role, _branch_for(holder_role)),))
            body = {"user_id": user_id, "action": "grant", "role": new_role, "reason": "SD-1"}
            if _branch_for(new_role):
                body["branch_code"] = _branch_for(new_role)
            response = await client.post("/access-requests", json=body, headers=admin)
            refused.append((holder_role, new_role, response.status_code, response.json().get("code")))
    assert [r for r in refused if r[2:] != (403, "SOD_VIOLATION")] == []
    assert len(refused) == 2 * len(pairs)


async def test_a_clash_created_after_the_request_is_refused_when_it_is_applied(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    # Two requests filed while the user holds neither role; once one is applied the other clashes.
    await add_person(ctx, demo, "newcomer", ())
    ids = []
    for body in (
        {"user_id": "newcomer", "action": "grant", "role": "auditor", "reason": "監査部配属"},
        {"user_id": "newcomer", "action": "grant", "role": "batch_operator", "reason": "x"},
        {"user_id": "newcomer", "action": "grant", "role": "batch_developer", "reason": "x"},
    ):
        created = await client.post("/access-requests", json=body, headers=admin)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        approved = await client.post(f"/access-requests/{ids[-1]}/approve", headers=approver)
        assert approved.status_code == 200
    assert (await client.post(f"/access-requests/{ids[1]}/apply", headers=admin)).status_code == 200
    clash = await client.post(f"/access-requests/{ids[2]}/apply", headers=admin)
    assert clash.status_code == 403 and clash.json()["code"] == "SOD_VIOLATION"
    assert await _active_roles(ctx, "newcomer") == {("batch_operator", None)}


async def test_a_second_request_for_a_right_already_granted_is_refused_when_applied_even_at_once(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """Requests filed while the user held nothing may all be approved; only one grant results, whether
    they are applied one after the other or at the same moment. A twin grant would need two revokes."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    await add_person(ctx, demo, "newcomer", ())
    body = {
        "user_id": "newcomer",
        "action": "grant",
        "role": "confirmer",
        "branch_code": "002",
        "reason": "配属",
    }
    ids = []
    for _ in range(4):
        created = await client.post("/access-requests", json=body, headers=admin)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        assert (await client.post(f"/access-requests/{ids[-1]}/approve", headers=approver)).status_code == 200
    assert (await client.post(f"/access-requests/{ids[0]}/apply", headers=admin)).status_code == 200
    again = await client.post(f"/access-requests/{ids[1]}/apply", headers=admin)
    assert again.status_code == 409 and again.json()["code"] == "CONFLICT", again.text
    assert await _active_roles(ctx, "newcomer") == {("confirmer", "002")}

    # Revoked, the right may be granted again, once, by the two requests still approved applied together.
    revoke = {**body, "action": "revoke", "reason": "異動"}
    await request_apply(client, requester=admin, approver=approver, setter=admin, body=revoke)
    together = await asyncio.gather(
        *(client.post(f"/access-requests/{request_id}/apply", headers=admin) for request_id in ids[2:])
    )
    assert sorted(r.status_code for r in together) == [200, 409], [r.text for r in together]
    assert await _active_roles(ctx, "newcomer") == {("confirmer", "002")}
    async with ctx.db.read_session() as session:
        changes = (
            await session.scalars(
                select(AccessRegisterEntry.change)
                .where(AccessRegisterEntry.user_id == "newcomer")
                .order_by(AccessRegisterEntry.seq)
            )
        ).all()
    assert changes == ["grant", "revoke", "grant"]


async def test_a_request_approved_but_not_applied_in_time_is_lapsed_by_the_sweep(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    body = {
        "user_id": "op001",
        "action": "grant",
        "role": "confirmer",
        "branch_code": "002",
        "reason": "応援",
    }
    request = (await client.post("/access-requests", json=body, headers=admin)).json()
    assert (
        await client.post(f"/access-requests/{request['id']}/approve", headers=approver)
    ).status_code == 200

    clock.advance(days=ctx.settings.access_request_lapse_days, seconds=1)
    assert (await sweep.run_once(ctx)).requests_lapsed == 1
    assert (await sweep.run_once(ctx)).requests_lapsed == 0
    expired = await ledger_events(ctx, action="access.request_expired")
    assert [(e.object_id, e.actor_id) for e in expired] == [(request["id"], "system")]

    # The first sessions idled out over the days; a second access admin logs in to try applying it.
    await add_person(ctx, demo, "accadmin2", (("access_admin", None),))
    admin = await privileged_headers(client, demo, clock, "accadmin2")
    late = await client.post(f"/access-requests/{request['id']}/apply", headers=admin)
    assert late.status_code == 409
    listed = (await client.get("/access-requests", params={"user_id": "op001"}, headers=admin)).json()
    assert [r["status"] for r in listed["items"]] == ["expired"]
    assert ("confirmer", "002") not in await _active_roles(ctx, "op001")


async def test_a_rights_dates_must_make_sense_when_asked_and_still_hold_when_applied(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AC-3 (found by an API review): a grant could be backdated to 0001-01-01, expire before it began,
    or be applied after its expiry date and be held until the next sweep."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    base = {
        "user_id": "op001",
        "action": "grant",
        "role": "confirmer",
        "branch_code": "002",
        "reason": "応援",
    }
    for dates in (
        {"effective_from": "0001-01-01"},
        {"effective_from": "9999-12-31"},
        {"effective_from": "2026-11-23"},  # yesterday
        {"effective_from": "2026-11-26", "expires_at": "2026-11-25T12:00:00+09:00"},
    ):
        refused = await client.post("/access-requests", json={**base, **dates}, headers=admin)
        assert (refused.status_code, refused.json()["code"]) == (422, "VALIDATION_ERROR"), dates
    soon = (clock.now() + timedelta(minutes=5)).isoformat()
    request = (await client.post("/access-requests", json={**base, "expires_at": soon}, headers=admin)).json()
    assert (
        await client.post(f"/access-requests/{request['id']}/approve", headers=approver)
    ).status_code == 200
    clock.advance(minutes=6)
    late = await client.post(f"/access-requests/{request['id']}/apply", headers=admin)
    assert (late.status_code, late.json()["code"]) == (409, "INVALID_STATE")
    assert ("confirmer", "002") not in await _active_roles(ctx, "op001")


async def test_a_user_id_that_differs_from_another_only_in_capitals_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AU-5: the lockout counts a typed id whatever its capitals, so "OP001" beside op001 would let one
    person's wrong passwords lock the other out. Such an id is refused; a really new one is not."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    for taken in ("OP001", "oP001"):
        refused = await client.post("/users", json={"id": taken, "name": "別人 太郎"}, headers=admin)
        assert (refused.status_code, refused.json()["code"]) == (409, "CONFLICT"), taken
    created = await client.post("/users", json={"id": "OP001X", "name": "新人 太郎"}, headers=admin)
    assert created.status_code == 201, created.text
    created_ids = [e.object_id for e in await ledger_events(ctx, action="directory.user_created")]
    assert "OP001" not in created_ids and "oP001" not in created_ids and "OP001X" in created_ids


async def test_a_new_user_must_change_the_initial_password_before_anything_else(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    assert (
        await client.post("/users", json={"id": "op001new", "name": "新人 太郎"}, headers=admin)
    ).status_code == 201
    grant = {
        "user_id": "op001new",
        "action": "grant",
        "role": "operator",
        "branch_code": "001",
        "reason": "配属",
    }
    await request_apply(client, requester=admin, approver=approver, setter=admin, body=grant)
    reset = await request_apply(
        client,
        requester=admin,
        approver=approver,
        setter=admin,
        body={"user_id": "op001new", "action": "reset_password", "reason": "初期パスワード"},
    )
    other_half = (
        await client.post(f"/access-requests/{reset['id']}/password-half", headers=approver)
    ).json()["initial_password_half"]
    initial = reset["initial_password_half"] + other_half
    term = home_terminal(demo, "op001")
    assert term is not None
    logged_in = await client.post(
        "/auth/login", json={"user_id": "op001new", "password": initial}, headers=terminal_headers(term)
    )
    assert logged_in.status_code == 200 and logged_in.json()["must_change_password"] is True
    headers = {"Authorization": f"Bearer {logged_in.json()['access_token']}", "X-Terminal-Id": term["id"]}

    for path in ("/inquiries", "/daily-lists", "/hq-requests"):
        held = await client.get(path, headers=headers)
        assert held.status_code == 403 and held.json()["code"] == "PASSWORD_CHANGE_REQUIRED", path
    assert (await client.get("/me", headers=headers)).json()["must_change_password"] is True
    changed = await client.post(
        "/auth/password",
        json={"current_password": initial, "new_password": "Qv8-Rt3w-Zp6x-Hn4k"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/inquiries", headers=headers)).status_code == 200


async def test_a_retried_access_request_with_its_key_is_the_first_one_not_a_twin(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    body = {
        "user_id": "cf002",
        "action": "grant",
        "role": "branch_manager",
        "branch_code": "002",
        "reason": "代理",
    }
    keyed = {**admin, "Idempotency-Key": "access-20261124-0001"}
    answers = await asyncio.gather(
        *(client.post("/access-requests", json=body, headers=keyed) for _ in range(5))
    )
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    again = await client.post("/access-requests", json=body, headers=keyed)
    assert again.json()["id"] == answers[0].json()["id"]
    other = await client.post("/access-requests", json={**body, "reason": "別件"}, headers=keyed)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    listed = (await client.get("/access-requests", params={"user_id": "cf002"}, headers=admin)).json()[
        "items"
    ]
    assert [r["id"] for r in listed] == [answers[0].json()["id"]]
    assert len(await ledger_events(ctx, action="access.requested")) == 1

"""Login from a terminal (AU-2, AU-3, AU-5): previous login, terminals, lockout that reveals nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from tests.governance.support import privileged_headers, request_apply
from tests.helpers import auth_headers, ledger_events, login, terminal, terminal_headers, user


async def test_first_login_has_no_previous_login_and_second_shows_the_first(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    first = await login(client, demo, "op001")
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "Bearer"
    assert body["previous_login"] is None
    assert body["user"] == {
        "id": "op001",
        "name": "佐藤 花子",
        "roles": ["operator"],
        "branch_codes": ["001"],
    }
    first_at = clock.now()

    clock.advance(hours=3)
    second = (await login(client, demo, "op001")).json()
    assert second["previous_login"]["terminal_id"] == terminal(demo, "001")["id"]
    assert second["previous_login"]["address"] == "192.0.2.10"
    assert second["previous_login"]["at"].startswith(first_at.strftime("%Y-%m-%dT%H:%M:%S"))


async def test_failed_attempts_since_previous_login_are_shown(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    await login(client, demo, "op001")
    for _ in range(2):
        assert (await login(client, demo, "op001", password="wrong-password-1")).status_code == 401
    body = (await login(client, demo, "op001")).json()
    assert body["failed_attempts_since_previous_login"] == 2
    assert (await login(client, demo, "op001")).json()["failed_attempts_since_previous_login"] == 0


async def test_unknown_terminal_or_wrong_key_is_refused_and_logged(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    u = user(demo, "op001")
    wrong_key = {"X-Terminal-Id": terminal(demo, "001")["id"], "X-Terminal-Key": "not-the-key"}
    unknown = {"X-Terminal-Id": "T999-99", "X-Terminal-Key": "whatever"}
    for headers in (wrong_key, unknown):
        response = await client.post(
            "/auth/login", json={"user_id": "op001", "password": u["password"]}, headers=headers
        )
        assert response.status_code == 403
        assert response.json()["code"] == "TERMINAL_NOT_REGISTERED"
        assert response.headers["content-type"].startswith("application/problem+json")
    denied = await ledger_events(ctx, action="auth.login_denied")
    assert [e.object_id for e in denied] == [terminal(demo, "001")["id"], "T999-99"]


async def test_operator_must_use_a_terminal_of_their_own_branch(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    u = user(demo, "op001")
    other_branch = terminal_headers(terminal(demo, "002"))
    response = await client.post(
        "/auth/login", json={"user_id": "op001", "password": u["password"]}, headers=other_branch
    )
    assert response.status_code == 403
    assert response.json()["code"] == "TERMINAL_NOT_ALLOWED"

    no_terminal = await client.post("/auth/login", json={"user_id": "op001", "password": u["password"]})
    assert no_terminal.status_code == 403
    assert no_terminal.json()["code"] == "TERMINAL_NOT_REGISTERED"


async def test_terminal_of_another_branch_is_not_revealed_before_the_password(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    response = await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": "wrong-password-1"},
        headers=terminal_headers(terminal(demo, "002")),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "INVALID_CREDENTIALS"


async def test_auditor_logs_in_without_a_terminal(client: httpx.AsyncClient, demo: DemoCredentials) -> None:
    response = await login(client, demo, "auditor")
    assert response.status_code == 200, response.text
    assert response.json()["user"]["roles"] == ["auditor"]


async def test_five_failures_lock_and_the_correct_password_is_then_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    codes = [
        (await login(client, demo, "op001", password=f"wrong-password-{i}")).json()["code"] for i in range(5)
    ]
    assert codes == ["INVALID_CREDENTIALS"] * 5
    locked = await login(client, demo, "op001")
    assert locked.status_code == 403
    assert locked.json()["code"] == "ACCOUNT_LOCKED"
    assert len(await ledger_events(ctx, action="auth.account_locked")) == 1


async def test_wrong_passwords_sent_at_once_are_all_counted_and_lock_the_account(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Guesses sent in parallel must not get past the threshold: on PostgreSQL they run side by side,
    and the first failures of a user id collided on the counter's INSERT (500s, uncounted) or counted
    on a stale copy of it. Each is refused as a guess, and the right password is refused afterwards."""
    headers = terminal_headers(terminal(demo, "001"))
    for user_id in ("op001", "no-such-user"):
        sent = await asyncio.gather(
            *(
                client.post(
                    "/auth/login",
                    json={"user_id": user_id, "password": f"wrong-password-{i}"},
                    headers=headers,
                )
                for i in range(7)
            )
        )
        codes = sorted(r.json()["code"] for r in sent)
        assert [r.status_code for r in sent if r.status_code not in (401, 403)] == [], codes
        # Five counted failures lock it; an attempt that came after the fifth meets the lock.
        assert codes.count("INVALID_CREDENTIALS") == 5 and set(codes) == {
            "INVALID_CREDENTIALS",
            "ACCOUNT_LOCKED",
        }
    assert (await login(client, demo, "op001")).json()["code"] == "ACCOUNT_LOCKED"
    assert len(await ledger_events(ctx, action="auth.account_locked")) == 2
    failed = await ledger_events(ctx, action="auth.login_failed")
    assert sorted(json.loads(e.details)["consecutive_failures"] for e in failed) == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
    ]


async def test_unknown_user_id_behaves_exactly_like_a_known_one(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    headers = terminal_headers(terminal(demo, "001"))

    async def attempts(user_id: str) -> list[tuple[int, str, str]]:
        seen = []
        for i in range(6):
            response = await client.post(
                "/auth/login", json={"user_id": user_id, "password": f"wrong-password-{i}"}, headers=headers
            )
            body = response.json()
            seen.append((response.status_code, body["code"], body["detail"]))
        return seen

    known = await attempts("op001")
    unknown = await attempts("no-such-user")
    assert known == unknown
    assert known[-1][:2] == (403, "ACCOUNT_LOCKED")


async def test_guesses_under_the_id_in_other_capitals_are_the_persons_failures(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """AU-3, AU-5: the lockout counts "OP001" as op001; so does what op001 is shown at the next login,
    and the lock ends op001's live sessions as it does when the id is typed exactly."""
    headers = terminal_headers(terminal(demo, "001"))

    async def guess(i: int) -> httpx.Response:
        return await client.post(
            "/auth/login", json={"user_id": " OP001", "password": f"wrong-password-{i}"}, headers=headers
        )

    for i in range(2):
        assert (await guess(i)).json()["code"] == "INVALID_CREDENTIALS"
    logged_in = await login(client, demo, "op001")
    assert logged_in.status_code == 200
    assert logged_in.json()["failed_attempts_since_previous_login"] == 2
    live = {"Authorization": f"Bearer {logged_in.json()['access_token']}", **headers}
    assert (await client.get("/me", headers=live)).status_code == 200
    for i in range(ctx.settings.lockout_threshold):
        await guess(i)
    ended = await client.get("/me", headers=live)
    assert ended.status_code == 401 and ended.json()["code"] == "SESSION_EXPIRED"
    locked = await ledger_events(ctx, action="auth.account_locked")
    assert [e.actor_id for e in locked] == ["op001"]
    assert (await login(client, demo, "op001")).json()["code"] == "ACCOUNT_LOCKED"


async def test_access_admin_unlocks_and_the_unlock_is_in_the_ledger(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    for i in range(5):
        await login(client, demo, "op001", password=f"wrong-password-{i}")
    assert (await login(client, demo, "op001")).json()["code"] == "ACCOUNT_LOCKED"

    # An unlock takes two people (AU-5, AC-2): requested, approved, then applied by the access admin.
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    applied = await request_apply(
        client,
        requester=await auth_headers(client, demo, "bm001"),
        approver=approver,
        setter=admin,
        body={"user_id": "op001", "action": "unlock", "reason": "本人確認済み"},
    )
    assert applied["status"] == "applied"
    assert (await login(client, demo, "op001")).status_code == 200

    unlocks = await ledger_events(ctx, action="auth.account_unlocked")
    assert len(unlocks) == 1
    assert unlocks[0].actor_id == "accadmin"
    assert '"user_id":"op001"' in unlocks[0].details
    assert applied["id"] in unlocks[0].details


async def test_there_is_no_one_person_unlock(client: httpx.AsyncClient, demo: DemoCredentials) -> None:
    admin = await auth_headers(client, demo, "accadmin")
    assert (await client.post("/users/op001/unlock", headers=admin)).status_code == 404
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.endswith("/unlock")]


async def test_unlock_needs_the_access_admin_role_and_the_refusal_is_logged(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    confirmer = await auth_headers(client, demo, "cf001")
    response = await client.post(
        "/access-requests", json={"user_id": "op001", "action": "unlock", "reason": "x"}, headers=confirmer
    )
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    denied = await ledger_events(ctx, action="request.denied")
    assert denied[-1].actor_id == "cf001"
    assert '"code":"FORBIDDEN"' in denied[-1].details


async def test_suspended_user_cannot_log_in(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    from app.authz.models import User

    async with ctx.db.session() as session:
        account = await session.get(User, "op001")
        assert account is not None
        account.status = "suspended"
        await session.commit()
    response = await login(client, demo, "op001")
    assert response.status_code == 403
    assert response.json()["code"] == "SUSPENDED"


async def test_logout_ends_the_session_at_once(client: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = await auth_headers(client, demo, "op001")
    assert (await client.get("/me", headers=headers)).status_code == 200
    assert (await client.post("/auth/logout", headers=headers)).status_code == 204
    after = await client.get("/me", headers=headers)
    assert after.status_code == 401
    assert after.json()["code"] == "SESSION_EXPIRED"


async def test_idle_and_absolute_timeouts_end_the_session(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock, ctx: AppContext
) -> None:
    headers = await auth_headers(client, demo, "op001")
    clock.advance(minutes=9)
    assert (await client.get("/me", headers=headers)).status_code == 200
    clock.advance(minutes=9)  # 9 minutes idle again: still inside the 10-minute window
    assert (await client.get("/me", headers=headers)).status_code == 200
    clock.advance(minutes=10, seconds=1)
    idle = await client.get("/me", headers=headers)
    assert idle.status_code == 401
    assert idle.json()["code"] == "SESSION_EXPIRED"
    ended = await ledger_events(ctx, action="auth.session_ended")
    assert '"reason":"idle_timeout"' in ended[-1].details

    headers = await auth_headers(client, demo, "op001")
    opened = clock.now()
    for _ in range(48):  # active every 9 min 59 s for 7 h 59 min
        clock.advance(minutes=9, seconds=59)
        assert (await client.get("/me", headers=headers)).status_code == 200
    clock.set(opened + timedelta(hours=8, seconds=1))
    final = await client.get("/me", headers=headers)
    # The session's absolute limit (8 h) ends it whatever the activity, and the ledger says why.
    assert final.status_code == 401 and final.json()["code"] == "SESSION_EXPIRED"
    ended = await ledger_events(ctx, action="auth.session_ended")
    assert '"reason":"absolute_timeout"' in ended[-1].details

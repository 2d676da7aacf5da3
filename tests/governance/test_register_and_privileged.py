"""The access-rights register and its export (AC-3); second factor and privileged sessions (AC-5);
terminals and branches at the end of their life."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.authz.policy import may
from app.authz.principal import Principal
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance import register, sweep
from app.governance.totp import code_at
from tests.governance.support import (
    add_person,
    enrol_totp,
    hr_feed_headers,
    lift_switch,
    privileged_headers,
    request_apply,
)
from tests.helpers import auth_headers, home_terminal, ledger_events, login, terminal_headers, user


async def test_register_export_lists_every_change_with_its_three_people(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    approver = await privileged_headers(client, demo, clock, "accappr")
    manager = await auth_headers(client, demo, "bm002")
    await request_apply(
        client,
        requester=manager,
        approver=approver,
        setter=admin,
        body={
            "user_id": "cf002",
            "action": "grant",
            "role": "branch_manager",
            "branch_code": "002",
            "reason": "＋代理（全角）",
            "expires_at": "2026-12-31T00:00:00Z",
        },
    )
    await request_apply(
        client,
        requester=admin,
        approver=approver,
        setter=admin,
        body={
            "user_id": "op002",
            "action": "revoke",
            "role": "operator",
            "branch_code": "002",
            "reason": "=HYPERLINK()",
        },
    )
    await client.post(
        "/hr-events",
        json={"user_id": "cf001b", "kind": "leave", "effective_on": "2026-11-24"},
        headers=await hr_feed_headers(client, demo),
    )

    auditor = await auth_headers(client, demo, "auditor")
    exported = await client.get("/access-register", params={"format": "csv"}, headers=auditor)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    pages = (await client.get("/access-register", params={"limit": 1000}, headers=auditor)).json()["items"]
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in pages]
    # A batch job takes what was added since the last row it took; the export is never cut short.
    since = await client.get(
        "/access-register", params={"format": "csv", "cursor": rows[-3]["seq"], "limit": 1}, headers=auditor
    )
    added = list(csv.DictReader(io.StringIO(since.text.lstrip("\ufeff"))))
    assert [r["seq"] for r in added] == [r["seq"] for r in rows[-2:]]
    # Every grant of the seed, the two applied requests and the HR suspension — each with all three people.
    assert {r["source"] for r in rows} == {"bootstrap", "access_request", "hr_event"}
    for row in rows:
        assert row["requested_by"] and row["approved_by"] and row["set_by"], row
        assert (
            row["requested_at"]
            and row["approved_at"]
            and row["set_at"]
            and row["reason"]
            and row["effective_from"]
        )
    applied = [r for r in rows if r["source"] == "access_request"]
    assert [
        (r["change"], r["user_id"], r["requested_by"], r["approved_by"], r["set_by"]) for r in applied
    ] == [
        ("grant", "cf002", "bm002", "accappr", "accadmin"),
        ("revoke", "op002", "accadmin", "accappr", "accadmin"),
    ]
    assert applied[0]["expires_at"] == "2026-12-31T00:00:00.000000Z"
    # A reason that looks like a formula is neutralised for Excel, full-width signs too.
    assert (applied[0]["reason"], applied[1]["reason"]) == ("'＋代理（全角）", "'=HYPERLINK()")
    # Who read or took whose rights is in the ledger, each export with its file's SHA-256.
    exports = await ledger_events(ctx, action="access_register.exported")
    assert [(e.actor_id, json.loads(e.details)["count"]) for e in exports] == [
        ("auditor", len(rows)),
        ("auditor", 2),
    ]
    assert json.loads(exports[0].details)["sha256"] == hashlib.sha256(exported.content).hexdigest()
    reads = await ledger_events(ctx, action="access_register.read")
    assert [(e.actor_id, json.loads(e.details)["count"]) for e in reads] == [("auditor", len(pages))]
    # The register is not for branch staff.
    assert (await client.get("/access-register", headers=manager)).status_code == 403

    # The expiry date is enforced: the sweep ends the right on that day and registers it.
    clock.set(datetime(2026, 12, 31, 0, 0, 1, tzinfo=UTC))
    assert (await sweep.run_once(ctx)).rights_expired == 1
    async with ctx.db.read_session() as session:
        last = (await register.entries(session, user_id="cf002"))[-1]
    assert (last.change, last.role, last.source, last.requested_by) == (
        "revoke",
        "branch_manager",
        "expiry",
        "bm002",
    )


async def test_second_factor_is_required_at_login_once_enrolled(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock, ctx: AppContext
) -> None:
    headers = await auth_headers(client, demo, "cf001")
    secret = await enrol_totp(client, headers, clock)
    term = home_terminal(demo, "cf001")
    assert term is not None

    async def attempt(totp: str | None) -> httpx.Response:
        body = {"user_id": "cf001", "password": user(demo, "cf001")["password"]}
        if totp is not None:
            body["totp"] = totp
        return await client.post("/auth/login", json=body, headers=terminal_headers(term))

    missing = await attempt(None)
    assert missing.status_code == 401 and missing.json()["code"] == "TOTP_REQUIRED"
    # Asking without the code is no guess: more times than the lockout threshold locks nothing.
    for _ in range(ctx.settings.lockout_threshold):
        assert (await attempt(None)).json()["code"] == "TOTP_REQUIRED"
    wrong = await attempt("000000" if code_at(secret, clock.now()) != "000000" else "111111")
    assert wrong.status_code == 401
    code = code_at(secret, clock.now())
    logged_in = await attempt(code)
    assert logged_in.status_code == 200
    # The wrong code was a failed attempt and is shown as one at this login; the missing ones are not,
    # but each is in the ledger as a refused login.
    assert logged_in.json()["failed_attempts_since_previous_login"] == 1
    denied = [e for e in await ledger_events(ctx, action="auth.login_denied") if e.object_id == "cf001"]
    assert len(denied) == 1 + ctx.settings.lockout_threshold
    assert all("TOTP_REQUIRED" in e.details for e in denied)
    # The same code is good once.
    assert (await attempt(code)).status_code == 401


async def test_privileged_session_is_alerted_and_reviewed_by_someone_else(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    plain = await auth_headers(client, demo, "accadmin")
    no_factor = await client.post(
        "/privileged-sessions", json={"reason": "x", "totp": "123456"}, headers=plain
    )
    assert no_factor.status_code == 401 and no_factor.json()["code"] == "TOTP_REQUIRED"
    await privileged_headers(client, demo, clock, "accadmin", reason="四半期の権限棚卸", headers=plain)
    alerts = await ledger_events(ctx, action="privileged.session_opened")
    assert [(e.actor_id, e.outcome) for e in alerts] == [("accadmin", "alert")]

    security = await privileged_headers(client, demo, clock, "secoff")
    pending = (await client.get("/privileged-sessions", params={"unreviewed": True}, headers=security)).json()
    admin_session = next(p for p in pending["items"] if p["user_id"] == "accadmin")
    assert admin_session["reason"] == "四半期の権限棚卸"
    own = next(p for p in pending["items"] if p["user_id"] == "secoff")
    self_review = await client.post(
        f"/privileged-sessions/{own['id']}/review", json={"note": "ok"}, headers=security
    )
    assert self_review.status_code == 403 and self_review.json()["code"] == "SOD_VIOLATION"
    assert admin_session["ended_at"] is None and admin_session["end_reason"] is None
    auditor = await auth_headers(client, demo, "auditor")
    review = f"/privileged-sessions/{admin_session['id']}/review"
    # Reviewed afterwards: while the administrator may still act, a review would vouch for the unseen.
    early = await client.post(review, json={"note": "操作ログ確認"}, headers=auditor)
    assert early.status_code == 409 and early.json()["code"] == "INVALID_STATE"
    # Nor is its review task closed some other way, by someone the review would not accept.
    approver = await privileged_headers(client, demo, clock, "accappr")

    async def task_of_the_session() -> dict[str, Any]:
        tasks = (await client.get("/reviews", headers=approver)).json()["items"]
        return next(t for t in tasks if t["kind"] == "privileged_session" and t["user_id"] == "accadmin")

    task = await task_of_the_session()
    closed = await client.post(f"/reviews/{task['id']}/close", json={"outcome": "確認済み"}, headers=approver)
    assert (closed.status_code, closed.json()["code"]) == (409, "INVALID_STATE")
    assert admin_session["id"] in closed.json()["detail"]
    assert (await task_of_the_session())["status"] == "open"
    assert (await client.post("/auth/logout", headers=plain)).status_code == 204
    reviewed = await client.post(review, json={"note": "操作ログ確認"}, headers=auditor)
    assert reviewed.status_code == 200, reviewed.text
    body = reviewed.json()
    assert (body["reviewed_by"], body["review_note"]) == ("auditor", "操作ログ確認")
    assert body["end_reason"] == "logout"
    assert body["ended_at"] is not None
    # The review closed its task.
    task = await task_of_the_session()
    assert (task["status"], task["closed_by"]) == ("closed", "auditor")
    again = await client.post(review, json={"note": "二度目"}, headers=auditor)
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"


async def test_wrong_codes_for_a_privileged_session_lock_the_account(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AU-5, AC-5: a login held by someone else must not let them try the six digits without end. Each
    wrong code is a failed attempt; at the threshold the account locks and the login ends."""
    admin = await auth_headers(client, demo, "accadmin")
    secret = await enrol_totp(client, admin, clock)
    right = code_at(secret, clock.now())
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(ctx.settings.lockout_threshold):
        refused = await client.post(
            "/privileged-sessions", json={"reason": "棚卸", "totp": wrong}, headers=admin
        )
        assert (refused.status_code, refused.json()["code"]) == (401, "TOTP_REQUIRED")
    failed = [e for e in await ledger_events(ctx, action="auth.login_failed") if e.actor_id == "accadmin"]
    assert len(failed) == ctx.settings.lockout_threshold
    assert len(await ledger_events(ctx, action="auth.account_locked")) == 1
    # The login is over, and the right code on it opens nothing; nor does the right password.
    ended = await client.post("/privileged-sessions", json={"reason": "棚卸", "totp": right}, headers=admin)
    assert ended.status_code == 401 and ended.json()["code"] != "TOTP_REQUIRED"
    assert (await login(client, demo, "accadmin")).json()["code"] == "ACCOUNT_LOCKED"
    assert await ledger_events(ctx, action="privileged.session_opened") == []


async def test_a_privileged_session_ends_with_its_login(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock, ctx: AppContext
) -> None:
    """Closed, logged out or timed out: the reviewer sees when the administrator could act no more."""
    closing = await privileged_headers(client, demo, clock, "accadmin", reason="閉じる")
    assert (await client.delete("/privileged-sessions/current", headers=closing)).status_code == 204
    assert (await client.delete("/privileged-sessions/current", headers=closing)).status_code == 404
    idle = await privileged_headers(client, demo, clock, "secoff", reason="放置")
    last_used = clock.now()
    clock.advance(minutes=ctx.settings.session_idle_minutes + 30)
    auditor = await auth_headers(client, demo, "auditor")
    listed = (await client.get("/privileged-sessions", headers=auditor)).json()["items"]
    ends = {item["reason"]: (item["end_reason"], item["ended_at"] is not None) for item in listed}
    assert ends == {"閉じる": ("closed", True), "放置": ("idle_timeout", True)}
    idle_session = next(item for item in listed if item["reason"] == "放置")
    # It ended when the idle limit ran out, not when someone next looked.
    ended_at = datetime.fromisoformat(idle_session["ended_at"])
    assert last_used < ended_at <= last_used + timedelta(minutes=ctx.settings.session_idle_minutes)
    # The timed-out login cannot act, and its privileged session can now be reviewed.
    assert (await client.get("/privileged-sessions", headers=idle)).json()["code"] == "SESSION_EXPIRED"
    reviewed = await client.post(
        f"/privileged-sessions/{idle_session['id']}/review", json={"note": "確認済み"}, headers=auditor
    )
    assert reviewed.status_code == 200, reviewed.text


def test_administrators_and_auditors_never_read_response_content() -> None:
    def holder(*roles: str) -> Principal:
        return Principal(
            kind="user",
            id="x",
            name="x",
            session_id="s",
            session_expires_at=None,  # type: ignore[arg-type]
            idle_expires_at=None,
            role_branches={
                role: frozenset({"001"}) if role == "confirmer" else frozenset() for role in roles
            },
        )

    assert may(holder("confirmer"), "inquiry.read_response", branch_code="001")
    for admin in ("access_admin", "access_approver", "security_officer", "auditor"):
        assert not may(holder("confirmer", admin), "inquiry.read_response", branch_code="001")
        assert not may(holder("confirmer", admin), "inquiry.release", branch_code="001")


async def test_closing_a_branch_leaves_no_access_tied_to_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await auth_headers(client, demo, "op002")
    admin = await privileged_headers(client, demo, clock, "accadmin")
    auditor = await auth_headers(client, demo, "auditor")
    assert (await client.get("/governance/lifecycle-check", headers=auditor)).json()["total"] == 0

    closed = await client.post("/branches/002/deactivate", json={"reason": "統廃合"}, headers=admin)
    assert closed.status_code == 204, closed.text
    assert (await client.get("/me", headers=operator)).status_code == 401
    refused = await login(client, demo, "op002")
    assert refused.status_code == 403
    check = (await client.get("/governance/lifecycle-check", headers=auditor)).json()
    assert check["total"] == 0
    register = (await client.get("/access-register", params={"branch_code": "002"}, headers=auditor)).json()[
        "items"
    ]
    assert {(e["user_id"], e["change"]) for e in register if e["source"] == "branch_closure"} == {
        ("op002", "revoke"),
        ("cf002", "revoke"),
        ("cf002b", "revoke"),
        ("bm002", "revoke"),
    }


async def test_decommissioned_terminal_ends_its_sessions(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    operator = await auth_headers(client, demo, "op001")
    admin = await privileged_headers(client, demo, clock, "accadmin")
    retired = await client.post(f"/terminals/{operator['X-Terminal-Id']}/deactivate", headers=admin)
    assert retired.status_code == 200 and retired.json()["status"] == "decommissioned"
    assert (await client.get("/me", headers=operator)).status_code == 401
    auditor = await auth_headers(client, demo, "auditor")
    assert (await client.get("/governance/lifecycle-check", headers=auditor)).json()["total"] == 0


async def test_the_register_refuses_update_and_delete_in_the_database(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, backend: str
) -> None:
    async with ctx.db.read_session() as session:
        before = [(e.seq, e.reason) for e in await register.entries(session)]
    assert before
    statements = [
        "UPDATE access_register SET reason = 'rewritten' WHERE seq = 1",
        "DELETE FROM access_register WHERE seq = 1",
        "DELETE FROM access_register",
    ]
    if backend == "postgresql":
        # Row triggers do not see TRUNCATE; a statement trigger refuses it.
        statements.append("TRUNCATE access_register")
    for statement in statements:
        async with ctx.db.session() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
            await session.rollback()
    async with ctx.db.read_session() as session:
        after = [(e.seq, e.reason) for e in await register.entries(session)]
    assert after == before, backend


async def test_user_creation_and_a_switch_on_a_user_are_in_the_register(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    await add_person(ctx, demo, "secoff2", (("security_officer", None),))
    admin = await privileged_headers(client, demo, clock, "accadmin")
    officer = await privileged_headers(client, demo, clock, "secoff")
    second = await privileged_headers(client, demo, clock, "secoff2")
    created = await client.post("/users", json={"id": "op001new", "name": "新人 太郎"}, headers=admin)
    assert created.status_code == 201, created.text
    thrown = await client.post(
        "/emergency/suspensions",
        json={"scope": "user", "target": "cf002", "reason": "緊急停止"},
        headers=officer,
    )
    assert thrown.status_code == 201
    await lift_switch(client, thrown.json()["id"], asking=officer, lifting=second, reason="誤報")

    auditor = await auth_headers(client, demo, "auditor")
    entries = (await client.get("/access-register", params={"limit": 1000}, headers=auditor)).json()["items"]
    created_rows = [e for e in entries if e["user_id"] == "op001new"]
    assert [(e["change"], e["source"], e["requested_by"], e["set_by"]) for e in created_rows] == [
        ("create", "user_creation", "accadmin", "accadmin")
    ]
    switch_rows = [e for e in entries if e["source"] == "emergency"]
    assert [
        (
            e["change"],
            e["user_id"],
            e["source_id"],
            e["requested_by"],
            e["approved_by"],
            e["set_by"],
            e["reason"],
        )
        for e in switch_rows
    ] == [
        (
            "suspend",
            "cf002",
            thrown.json()["id"],
            "secoff",
            "rule:IR-1 emergency switch",
            "secoff",
            "緊急停止",
        ),
        # Lifted by two: the officer who asked, and the second who lifted it.
        ("lift", "cf002", thrown.json()["id"], "secoff", "secoff2", "secoff2", "誤報"),
    ]
    assert all(e["approved_by"].startswith("rule:") for e in created_rows)


async def test_a_reason_of_spaces_alone_is_no_reason(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AC-5: a privileged session is opened with a reason; a review says what was looked at."""
    admin = await auth_headers(client, demo, "accadmin")
    secret = await enrol_totp(client, admin, clock)
    blank = await client.post(
        "/privileged-sessions",
        json={"reason": "\u3000 ", "totp": code_at(secret, clock.now())},
        headers=admin,
    )
    assert (blank.status_code, blank.json()["code"]) == (422, "VALIDATION_ERROR")
    assert await ledger_events(ctx, action="privileged.session_opened") == []
    opened = await client.post(
        "/privileged-sessions", json={"reason": " 棚卸 ", "totp": code_at(secret, clock.now())}, headers=admin
    )
    assert opened.status_code == 201 and opened.json()["reason"] == "棚卸"
    assert (await client.post("/auth/logout", headers=admin)).status_code == 204
    auditor = await auth_headers(client, demo, "auditor")
    review = f"/privileged-sessions/{opened.json()['id']}/review"
    unsaid = await client.post(review, json={"note": "  "}, headers=auditor)
    assert (unsaid.status_code, unsaid.json()["code"]) == (422, "VALIDATION_ERROR")

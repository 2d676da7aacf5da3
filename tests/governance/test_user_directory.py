"""User records after creation: corrections (never roles) and deactivation, each by an access admin in a
privileged session, recorded; deactivation revokes every right in the register and ends sessions at once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.authz.models import User, UserRole
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.governance.lifecycle import DEACTIVATION_RULE
from tests.governance.support import privileged_headers
from tests.helpers import auth_headers, ledger_events, login


async def test_an_access_admin_corrects_a_user_record_but_not_roles_or_their_own(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    plain = await auth_headers(client, demo, "accadmin")
    refused = await client.patch("/users/op001", json={"name": "佐藤 華子"}, headers=plain)
    assert refused.status_code == 403 and refused.json()["code"] == "PRIVILEGED_SESSION_REQUIRED"

    admin = await privileged_headers(client, demo, clock, "accadmin", headers=plain)
    changed = await client.patch(
        "/users/op001", json={"name": "佐藤 華子", "phone": "03-5550-0999"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "佐藤 華子"
    async with ctx.db.read_session() as session:
        stored = await session.get(User, "op001")
    assert stored is not None and stored.phone == "03-5550-0999" and stored.name_kana == "サトウ ハナコ"

    # Roles and status are not fields of this call; nobody corrects their own record.
    for body in ({"roles": ["auditor"]}, {"status": "active"}, {}):
        bad = await client.patch("/users/op001", json=body, headers=admin)
        assert bad.status_code == 422, body
    own = await client.patch("/users/accadmin", json={"name": "x"}, headers=admin)
    assert own.status_code == 403 and own.json()["code"] == "SOD_VIOLATION"
    assert (await client.patch("/users/nobody", json={"name": "x"}, headers=admin)).status_code == 404
    manager = await auth_headers(client, demo, "bm001")
    assert (await client.patch("/users/op001", json={"name": "x"}, headers=manager)).status_code == 403

    events = await ledger_events(ctx, action="directory.user_updated")
    assert [(e.actor_id, e.object_id) for e in events] == [("accadmin", "op001")]
    # The ledger names the fields, never the personal data put in them.
    assert events[0].details == '{"fields":["name","phone"]}'


async def test_deactivating_a_user_ends_the_live_session_and_revokes_every_right(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await auth_headers(client, demo, "op001")
    admin = await privileged_headers(client, demo, clock, "accadmin")

    done = await client.post("/users/op001/deactivate", json={"reason": "退職（人事未連携）"}, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "deactivated"
    # At once: the next request of the live session is refused, and so is a new login.
    after = await client.get("/me", headers=operator)
    assert after.status_code == 401 and after.json()["code"] == "SESSION_EXPIRED"
    relogin = await login(client, demo, "op001")
    assert relogin.status_code == 403 and relogin.json()["code"] == "SUSPENDED"
    async with ctx.db.read_session() as session:
        held = (
            await session.scalars(
                select(UserRole).where(UserRole.user_id == "op001", UserRole.revoked_at.is_(None))
            )
        ).all()
    assert held == []

    register = (await client.get("/access-register", params={"user_id": "op001"}, headers=admin)).json()
    rows = [e for e in register["items"] if e["source"] == "deactivation"]
    assert [(e["change"], e["role"]) for e in rows] == [("revoke", "operator"), ("deactivate", None)]
    assert {(e["requested_by"], e["approved_by"], e["set_by"]) for e in rows} == {
        ("accadmin", DEACTIVATION_RULE, "accadmin")
    }

    twice = await client.post("/users/op001/deactivate", json={"reason": "x"}, headers=admin)
    assert twice.status_code == 409
    own = await client.post("/users/accadmin/deactivate", json={"reason": "x"}, headers=admin)
    assert own.status_code == 403 and own.json()["code"] == "SOD_VIOLATION"
    # A deactivated user gets nothing back through an access request.
    regrant = await client.post(
        "/access-requests",
        json={"user_id": "op001", "action": "grant", "role": "operator", "branch_code": "001", "reason": "x"},
        headers=admin,
    )
    assert regrant.status_code == 409
    reactivate = await client.post(
        "/access-requests", json={"user_id": "op001", "action": "reactivate", "reason": "x"}, headers=admin
    )
    assert reactivate.status_code == 409


async def test_a_staff_birth_date_after_today_or_before_1900_is_refused_and_nothing_changes(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The self-inquiry check (PL-5) compares a subject with the operator's birth date: a staff record
    born in 9999 would never match, so the year is refused as mistyped, as for a subject."""
    admin = await privileged_headers(client, demo, clock, "accadmin")
    async with ctx.db.read_session() as session:
        kept = (await session.get(User, "op001")).birth_date  # type: ignore[union-attr]
    for typed in (
        "9999-12-31",
        "1899-12-31",
        (clock.now().date().replace(year=clock.now().year + 1)).isoformat(),
    ):
        created = await client.post(
            "/users", json={"id": "op950", "name": "試験 未来", "birth_date": typed}, headers=admin
        )
        assert created.status_code == 422 and created.json()["code"] == "VALIDATION_ERROR", created.text
        corrected = await client.patch("/users/op001", json={"birth_date": typed}, headers=admin)
        assert corrected.status_code == 422 and corrected.json()["code"] == "VALIDATION_ERROR", corrected.text
    async with ctx.db.read_session() as session:
        assert await session.get(User, "op950") is None
        assert (await session.get(User, "op001")).birth_date == kept  # type: ignore[union-attr]
    assert (
        await client.patch("/users/op001", json={"birth_date": "1980-02-29"}, headers=admin)
    ).status_code == 200

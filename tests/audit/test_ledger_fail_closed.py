"""Fail closed (LG-1): when the ledger cannot be written, the action it would record does not happen.

The failure is injected as a database trigger that refuses every insert into ``audit_events``; dropping
the trigger "repairs" the ledger, which must then still be one gapless, verifiable chain.
"""

from __future__ import annotations

import httpx
import pytest

from app.audit.ledger import SYSTEM_ACTOR, record
from app.audit.service import checkpoint_rule, verify_ledger
from app.authz.models import LoginThrottle, Terminal, User
from app.authz.service import login_key
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.errors import LedgerUnavailable
from tests.audit.ledger_support import all_events, chain_head, seqs
from tests.governance.support import privileged_headers
from tests.helpers import login

BREAK = {
    "sqlite": [
        "CREATE TRIGGER boom BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'injected'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected ledger failure'; END $$",
        "CREATE TRIGGER boom BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION boom()",
    ],
}
REPAIR = {
    "sqlite": ["DROP TRIGGER boom"],
    "postgresql": ["DROP TRIGGER boom ON audit_events", "DROP FUNCTION boom()"],
}


async def _run(ctx: AppContext, statements: list[str]) -> None:
    async with ctx.db.engine.begin() as conn:
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def _assert_chain_intact(ctx: AppContext) -> None:
    report = await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))
    assert report.ok, report.as_dict()
    events = await all_events(ctx)
    assert seqs(events) == list(range(1, len(events) + 1))
    assert report.checked == (await chain_head(ctx)).seq == len(events)


async def test_a_terminal_is_not_registered_when_its_event_cannot_be_written(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, backend: str, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    head_before = (await chain_head(ctx)).seq
    await _run(ctx, BREAK[backend])

    response = await client.post(
        "/terminals", json={"id": "T001-09", "branch_code": "001", "description": "new"}, headers=admin
    )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "LEDGER_UNAVAILABLE"
    assert "key" not in response.json()
    async with ctx.db.read_session() as session:
        assert await session.get(Terminal, "T001-09") is None

    await _run(ctx, REPAIR[backend])
    async with ctx.db.read_session() as session:
        assert await session.get(Terminal, "T001-09") is None
    assert (await chain_head(ctx)).seq == head_before
    assert not [e for e in await all_events(ctx) if e.object_id == "T001-09"]
    await _assert_chain_intact(ctx)

    # Once the ledger works again the same request succeeds, and is recorded.
    again = await client.post(
        "/terminals", json={"id": "T001-09", "branch_code": "001", "description": "new"}, headers=admin
    )
    assert again.status_code == 201, again.text
    registered = [e for e in await all_events(ctx) if e.object_id == "T001-09"]
    assert [(e.action, e.actor_id) for e in registered] == [("directory.terminal_registered", "accadmin")]
    await _assert_chain_intact(ctx)


async def test_failed_logins_while_the_ledger_is_down_neither_count_nor_reveal_the_password(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, backend: str
) -> None:
    await _run(ctx, BREAK[backend])
    wrong = [await login(client, demo, "op001", password=f"wrong-password-{i}") for i in range(6)]
    right = await login(client, demo, "op001")
    # A guesser cannot tell a right password from a wrong one: both are refused the same way.
    assert [r.status_code for r in [*wrong, right]] == [503] * 7
    assert {r.json()["code"] for r in [*wrong, right]} == {"LEDGER_UNAVAILABLE"}
    async with ctx.db.read_session() as session:
        assert await session.get(LoginThrottle, login_key(ctx, "op001")) is None
        account = await session.get(User, "op001")
        assert account is not None
        assert account.failed_since_last_login == 0
        assert account.last_login_at is None
    await _run(ctx, REPAIR[backend])

    # None of the six unrecorded failures counted: the account is not locked, and none is reported.
    ok = await login(client, demo, "op001")
    assert ok.status_code == 200, ok.text
    assert ok.json()["failed_attempts_since_previous_login"] == 0
    assert ok.json()["previous_login"] is None
    logins = [e.action for e in await all_events(ctx) if e.actor_id == "op001"]
    assert logins == ["auth.login"]
    await _assert_chain_intact(ctx)

    # The counter works again now that failures can be recorded.
    for i in range(5):
        assert (await login(client, demo, "op001", password=f"wrong-password-{i}")).status_code == 401
    assert (await login(client, demo, "op001")).json()["code"] == "ACCOUNT_LOCKED"
    await _assert_chain_intact(ctx)


async def test_events_queued_in_a_failed_transaction_are_not_written_by_the_next_one(
    ctx: AppContext, demo: DemoCredentials, backend: str
) -> None:
    head_before = (await chain_head(ctx)).seq
    await _run(ctx, BREAK[backend])
    async with ctx.db.session() as session:
        record(session, actor=SYSTEM_ACTOR, action="test.lost", object_type="system")
        with pytest.raises(LedgerUnavailable):
            await session.commit()
        await session.rollback()
        await _run(ctx, REPAIR[backend])
        record(session, actor=SYSTEM_ACTOR, action="test.kept", object_type="system")
        await session.commit()
    actions = [e.action for e in await all_events(ctx)][head_before:]
    assert actions == ["test.kept"]
    await _assert_chain_intact(ctx)

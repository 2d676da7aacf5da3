"""A password being checked holds no write transaction (docs/architecture.md, "Passwords are checked
before the write transaction, not inside it").

Argon2id at the production cost takes tens of milliseconds. On SQLite one write transaction at a time
runs in the whole gateway, so a login, an A1 approval or a release that checked its password inside its
write transaction stopped every other branch's writes for that long. Here one check is held open
(``HeldPasswordCheck``) and another terminal's write must still go through meanwhile; and a password
changed during the check is judged against the new hash, not the one checked.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select, update

from app.authz.models import User
from app.authz.passwords import PasswordHashing
from app.context import AppContext
from app.demo import DemoCredentials
from tests.helpers import login
from tests.inquiry.support import a1, as_user, center_record, draft_body, password_of, person

# Long enough for a loaded CI machine; the SQLite writer queue's own timeout is 30 s.
WAIT_S = 10.0


class HeldPasswordCheck:
    """Checking ``password`` waits in its worker thread until ``finish()``; other passwords pass through."""

    def __init__(self, verify: Callable[[str | None, str], bool], password: str) -> None:
        self._verify = verify
        self._password = password
        self.entered = threading.Event()
        self._go = threading.Event()

    def __call__(self, stored_hash: str | None, password: str) -> bool:
        if password == self._password and not self._go.is_set():
            self.entered.set()
            self._go.wait(WAIT_S * 3)
        return self._verify(stored_hash, password)

    async def started(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, WAIT_S), "the password check never started"

    def finish(self) -> None:
        self._go.set()


def hold_checks_of(ctx: AppContext, monkeypatch: pytest.MonkeyPatch, password: str) -> HeldPasswordCheck:
    held = HeldPasswordCheck(ctx.passwords.verify, password)
    monkeypatch.setattr(ctx.passwords, "verify", held)
    return held


async def another_terminals_draft(
    client: httpx.AsyncClient, ctx: AppContext, headers: dict[str, str], index: int
) -> httpx.Response:
    """A write by someone else: a new draft, which appends to the audit chain like every write."""
    subject = await person(ctx, index=index)
    drafting = client.post("/inquiries", json=draft_body(subject), headers=headers)
    return await asyncio.wait_for(drafting, WAIT_S)


async def test_writes_go_on_while_a_login_checks_its_password(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = await as_user(client, demo, "op002")
    held = hold_checks_of(ctx, monkeypatch, password_of(demo, "cf001"))
    logging_in = asyncio.create_task(login(client, demo, "cf001"))
    await held.started()

    draft = await another_terminals_draft(client, ctx, operator, 0)

    assert draft.status_code == 201, draft.text
    assert not logging_in.done()
    held.finish()
    assert (await logging_in).status_code == 200


async def test_writes_go_on_while_a_login_upgrades_an_old_hash(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the cost parameters change, each user's first login stores a new hash: a second Argon2id
    run, which must not hold the write lock either. The new hash is at today's parameters and works."""
    password = password_of(demo, "cf001")
    older = PasswordHashing(memory_kib=2048, time_cost=1, parallelism=1).hash(password)
    assert ctx.passwords.needs_rehash(older)
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == "cf001").values(password_hash=older))
        await session.commit()
    operator = await as_user(client, demo, "op002")
    held = HeldPasswordCheck(lambda _unused, typed: ctx.passwords._hasher.hash(typed), password)
    monkeypatch.setattr(ctx.passwords, "hash", lambda typed: held(None, typed))
    logging_in = asyncio.create_task(login(client, demo, "cf001"))
    await held.started()

    draft = await another_terminals_draft(client, ctx, operator, 7)

    assert draft.status_code == 201, draft.text
    assert not logging_in.done()
    held.finish()
    assert (await logging_in).status_code == 200
    async with ctx.db.read_session() as session:
        stored = await session.scalar(select(User.password_hash).where(User.id == "cf001"))
    assert stored is not None and stored != older
    assert not ctx.passwords.needs_rehash(stored)
    assert ctx.passwords.verify(stored, password)
    assert (await login(client, demo, "cf001")).status_code == 200


async def test_writes_go_on_while_an_a1_confirmer_is_checked(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = await as_user(client, demo, "op001")
    other_operator = await as_user(client, demo, "op002")
    held = hold_checks_of(ctx, monkeypatch, password_of(demo, "cf001"))
    body = draft_body(await person(ctx, index=1), approval=a1(demo, "cf001"))
    submitting = asyncio.create_task(client.post("/inquiries", json=body, headers=operator))
    await held.started()

    draft = await another_terminals_draft(client, ctx, other_operator, 2)

    assert draft.status_code == 201, draft.text
    assert not submitting.done()
    held.finish()
    sent = await submitting
    assert sent.status_code == 201, sent.text
    assert sent.json()["status"] == "held"
    assert sent.json()["approval"]["confirmer_id"] == "cf001"


async def test_writes_go_on_while_a_releaser_reauthenticates(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = await as_user(client, demo, "op001")
    other_operator = await as_user(client, demo, "op002")
    releaser = await as_user(client, demo, "cf001b")
    body = draft_body(await person(ctx, index=3), approval=a1(demo, "cf001"))
    sent = (await client.post("/inquiries", json=body, headers=operator)).json()
    assert sent["status"] == "held"
    held = hold_checks_of(ctx, monkeypatch, password_of(demo, "cf001b"))
    releasing = asyncio.create_task(
        client.post(
            f"/inquiries/{sent['id']}/release",
            json={"password": password_of(demo, "cf001b"), "document_check": "match"},
            headers=releaser,
        )
    )
    await held.started()

    draft = await another_terminals_draft(client, ctx, other_operator, 4)

    assert draft.status_code == 201, draft.text
    assert not releasing.done()
    held.finish()
    released = await releasing
    assert released.status_code == 200, released.text
    assert released.json()["record"]["result"] == "found"
    assert (await client.get(f"/inquiries/{sent['id']}", headers=operator)).json()["status"] == "released"


async def test_a_password_changed_during_the_check_is_judged_by_the_new_one(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check ran on the hash read before the transaction; if the hash changed meanwhile, the old
    password must not approve, and the refusal counts toward the confirmer's lockout like any other."""
    operator = await as_user(client, demo, "op001")
    held = hold_checks_of(ctx, monkeypatch, password_of(demo, "cf001"))
    body = draft_body(await person(ctx, index=5), approval=a1(demo, "cf001"))
    submitting = asyncio.create_task(client.post("/inquiries", json=body, headers=operator))
    await held.started()
    new_hash = await ctx.passwords.hash_async("a-New-passphrase-2026")
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == "cf001").values(password_hash=new_hash))
        await session.commit()
    held.finish()

    refused = await submitting

    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "APPROVAL_INVALID"
    assert await center_record(ctx) == []
    relogin = await login(client, demo, "cf001", password="a-New-passphrase-2026")
    assert relogin.status_code == 200, relogin.text


async def test_writes_go_on_while_a_password_change_is_checked(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change runs Argon2id up to history depth + 2 times: the current password, the history, the new
    hash. None of them may hold up another terminal's writes."""
    changer = await as_user(client, demo, "cf001")
    other_operator = await as_user(client, demo, "op002")
    held = hold_checks_of(ctx, monkeypatch, password_of(demo, "cf001"))
    change = {"current_password": password_of(demo, "cf001"), "new_password": "Kawase-Hikari-2026-x"}
    changing = asyncio.create_task(client.post("/auth/password", json=change, headers=changer))
    await held.started()

    draft = await another_terminals_draft(client, ctx, other_operator, 6)

    assert draft.status_code == 201, draft.text
    assert not changing.done()
    held.finish()
    changed = await changing
    assert changed.status_code == 204, changed.text
    assert (await login(client, demo, "cf001", password="Kawase-Hikari-2026-x")).status_code == 200


async def test_a_password_reset_during_a_change_is_judged_by_the_new_hash(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    changer = await as_user(client, demo, "cf001")
    held = hold_checks_of(ctx, monkeypatch, password_of(demo, "cf001"))
    change = {"current_password": password_of(demo, "cf001"), "new_password": "Kawase-Hikari-2026-x"}
    changing = asyncio.create_task(client.post("/auth/password", json=change, headers=changer))
    await held.started()
    reset_hash = await ctx.passwords.hash_async("Reset-by-admin-2026-q")
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == "cf001").values(password_hash=reset_hash))
        await session.commit()
    held.finish()

    refused = await changing

    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "INVALID_CREDENTIALS"
    assert (await login(client, demo, "cf001", password="Reset-by-admin-2026-q")).status_code == 200

"""KEK rotation without downtime (EN-2), with the CLI in another process as operators run it.

The gateway and `shokai keys rotate` / `shokai keys rewrap` each hold their own keyring read from the
same key file, on the same database. The gateway is never restarted: it must open what the rewrap
moved to the new KEK, and seal under the new KEK once it has seen the rotated file; the rewrap must
not start before every gateway can have seen it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit.ledger import Actor
from app.center.interface import DetachedCenterLink
from app.center.simulator.population import Population
from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import FileKeyProvider, Keyring
from app.crypto.rewrap import RewrapTooEarly, rewrap_all, wrapped_key_columns
from app.demo import DemoCredentials
from app.inquiry.models import Inquiry, SealedResponse
from app.main import build_context
from tests.inquiry.support import as_user, draft_body, password_of, person


@pytest.fixture
async def ctx(
    settings: Settings, clock: ManualClock, center_population: Population
) -> AsyncIterator[AppContext]:
    """The gateway as production builds it: its keyring opened from the key file in the settings."""
    Keyring.open(FileKeyProvider(settings.resolved_key_file()), clock=clock, create=True)
    context = build_context(settings, clock=clock, population=center_population)
    yield context
    await context.db.dispose()


def _approval(demo: DemoCredentials) -> dict[str, str]:
    return {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }


async def _released_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> tuple[dict[str, Any], dict[str, str]]:
    operator = await as_user(client, demo, "op001")
    inquiry = (
        await client.post(
            "/inquiries", json=draft_body(await person(ctx), approval=_approval(demo)), headers=operator
        )
    ).json()
    released = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=await as_user(client, demo, "cf001b"),
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    assert released.status_code == 200, released.text
    return {"id": inquiry["id"], "record": released.json()["record"]}, operator


async def _sealed_under(ctx: AppContext) -> Counter[str]:
    """How many sealed values each KEK wraps, over every table that holds one (inquiries and responses,
    and the daily lists the gateway's own schedule may seal while the test runs)."""
    found: Counter[str] = Counter()
    async with ctx.db.read_session() as session:
        for columns in wrapped_key_columns():
            in_use = select(columns.kek_id).where(columns.kek_id.is_not(None))
            found.update((await session.scalars(in_use)).all())
    return found


async def _gateway_still_serves(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, released: dict[str, Any]
) -> None:
    operator = await as_user(client, demo, "op001")
    response = await client.get(f"/inquiries/{released['id']}/response", headers=operator)
    assert response.status_code == 200, response.text
    assert response.json()["record"] == released["record"]
    shown = await client.get(f"/inquiries/{released['id']}", headers=operator)
    assert shown.status_code == 200 and shown.json()["subject"] is not None


async def test_rotate_and_rewrap_from_another_process_while_the_gateway_serves(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, settings: Settings, clock: ManualClock
) -> None:
    released, operator = await _released_inquiry(client, demo, ctx)
    old_kek = ctx.keyring.current_key_id("kek")

    cli = build_context(settings, clock=clock, center=DetachedCenterLink())
    try:
        new_kek = cli.keyring.rotate("kek", now=clock.now())
        # Too early: a gateway may not have looked at the key file yet and would keep sealing under the
        # retired KEK after the rewrap had passed. Nothing is moved.
        with pytest.raises(RewrapTooEarly):
            await rewrap_all(cli, actor=Actor(id="cli:test"))
        before = await _sealed_under(ctx)
        assert set(before) == {old_kek} and before[old_kek] >= 2
        await _gateway_still_serves(client, demo, ctx, released)

        clock.advance(seconds=2 * settings.key_file_check_seconds)
        moved = await rewrap_all(cli, actor=Actor(id="cli:test"))
        after = await _sealed_under(ctx)
        # Nothing is left under the retired KEK, and the count reported is what was moved: at least what
        # was there before (the schedule may have sealed a day's lists meanwhile), at most all there is.
        assert set(after) == {new_kek}
        assert before[old_kek] <= moved <= after[new_kek]
    finally:
        await cli.db.dispose()

    # The gateway, not restarted, opens what was moved and seals new inquiries under the new KEK.
    await _gateway_still_serves(client, demo, ctx, released)
    later = await client.post(
        "/inquiries", json=draft_body(await person(ctx, index=1), approval=_approval(demo)), headers=operator
    )
    assert later.status_code in (200, 201, 202), later.text
    async with ctx.db.read_session() as session:
        stored = await session.get(Inquiry, later.json()["id"])
        assert stored is not None and stored.subject_kek_id == new_kek


def _shokai(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SHOKAI_DATABASE_URL": settings.resolved_database_url(),
        "SHOKAI_KEY_FILE_CHECK_SECONDS": "0.2",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--data-dir", str(settings.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_shokai_cli_rotates_and_rewraps_under_a_running_gateway(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, settings: Settings, clock: ManualClock
) -> None:
    released, operator = await _released_inquiry(client, demo, ctx)

    rotated = _shokai("keys", "rotate", "--family", "kek", settings=settings)
    assert rotated.returncode == 0, rotated.stderr
    rewrapped = _shokai("keys", "rewrap", "--wait", settings=settings)
    assert rewrapped.returncode == 0, rewrapped.stderr
    new_kek = FileKeyProvider(settings.resolved_key_file()).load()["kek"]["current"]  # type: ignore[index]
    assert set(await _sealed_under(ctx)) == {new_kek}

    await _gateway_still_serves(client, demo, ctx, released)
    clock.advance(seconds=settings.key_file_check_seconds)
    later = await client.post(
        "/inquiries", json=draft_body(await person(ctx, index=1), approval=_approval(demo)), headers=operator
    )
    async with ctx.db.read_session() as session:
        stored = await session.get(Inquiry, later.json()["id"])
        assert stored is not None and stored.subject_kek_id == new_kek


async def test_the_cli_rewrap_names_a_row_it_cannot_unwrap_and_exits_1_without_a_traceback(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, settings: Settings
) -> None:
    released, _operator = await _released_inquiry(client, demo, ctx)
    async with ctx.db.session() as session:
        response = await session.get(SealedResponse, released["id"])
        assert response is not None
        response.wrapped_key = bytes(40)
        await session.commit()

    assert _shokai("keys", "rotate", "--family", "kek", settings=settings).returncode == 0
    rewrapped = _shokai("keys", "rewrap", "--wait", settings=settings)
    assert rewrapped.returncode == 1, rewrapped.stderr
    assert f"inquiry_responses {released['id']}" in rewrapped.stderr
    assert "keep that KEK" in rewrapped.stderr and "Traceback" not in rewrapped.stderr
    new_kek = FileKeyProvider(settings.resolved_key_file()).load()["kek"]["current"]  # type: ignore[index]
    async with ctx.db.read_session() as session:
        stored = await session.get(Inquiry, released["id"])
        assert stored is not None and stored.subject_kek_id == new_kek  # the rest of it moved

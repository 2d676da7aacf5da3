"""EN-1/EN-2 for HQ requests: the requested subject is sealed like an inquiry's, indexed with the same
blind index as the inquiry that executes it, and re-wrapped on key rotation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.audit.ledger import Actor
from app.clock import ManualClock
from app.context import AppContext
from app.crypto.keyring import FileKeyProvider, Keyring
from app.crypto.rewrap import rewrap_all, rewrap_ready_at
from app.demo import DemoCredentials
from app.hq.models import HqRequest
from app.inquiry.models import Inquiry
from app.inquiry.subject import normalise_kana
from tests.hq.support import branch_request, execute
from tests.inquiry.support import as_user, person


@pytest.fixture
def keyring(clock: ManualClock, tmp_path: Path) -> Keyring:
    return Keyring.open(FileKeyProvider(tmp_path / "keys.json"), clock=clock, create=True)


async def test_a_requested_subject_is_sealed_shares_the_index_and_survives_rotation(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    op001, hq = await as_user(client, demo, "op001"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    request = await branch_request(client, op001, subject)
    inquiry = (await execute(client, hq, request["id"], subject)).json()

    async with ctx.db.read_session() as session:
        stored = await session.get(HqRequest, request["id"])
        executed = await session.get(Inquiry, inquiry["id"])
        assert stored is not None and executed is not None
        assert normalise_kana(subject["name_kana"]).encode() not in stored.subject_sealed
        assert subject["birth_date"].encode() not in stored.subject_sealed
        # One person, one blind index and one pseudonym across the request and its inquiry (AC-6).
        assert (stored.subject_index, stored.subject_pseudonym) == (
            executed.subject_index,
            executed.subject_pseudonym,
        )

    new_kek = ctx.keyring.rotate("kek", now=clock.now())
    clock.set(rewrap_ready_at(ctx))  # once every gateway seals under the new KEK
    await rewrap_all(ctx, actor=Actor(id="cli:test"))
    async with ctx.db.read_session() as session:
        rewrapped = await session.get(HqRequest, request["id"])
        assert rewrapped is not None and rewrapped.subject_kek_id == new_kek
    [listed] = (await client.get("/hq-requests", headers=hq)).json()["items"]
    assert listed["subject"]["birth_date"] == subject["birth_date"]

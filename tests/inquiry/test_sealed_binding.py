"""EN-1: each sealed value opens only for its own inquiry, and one that does not open is reported.

The associated data of the AES-GCM sealing names the inquiry, so a response or a subject copied from one
inquiry's row onto another's (by someone with write access to the database) fails its check instead of
showing the first inquiry's person under the second's number. The reader gets a stable problem, nothing
of either value, and the ledger records the failure for the security officer.
"""

from __future__ import annotations

import httpx
import pytest

from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import Inquiry, SealedResponse
from tests.helpers import ledger_events
from tests.inquiry.support import released_inquiry


def _unreadable(response: httpx.Response) -> None:
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "SEALED_VALUE_UNREADABLE"


async def test_a_response_copied_onto_another_inquiry_does_not_open(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    first, _, _ = await released_inquiry(client, demo, ctx)
    second, operator, _ = await released_inquiry(client, demo, ctx)
    async with ctx.db.session() as session:
        source = await session.get(SealedResponse, first)
        target = await session.get(SealedResponse, second)
        assert source is not None and target is not None
        target.ciphertext, target.nonce = source.ciphertext, source.nonce
        target.wrapped_key, target.kek_id = source.wrapped_key, source.kek_id
        await session.commit()

    read = await client.get(f"/inquiries/{second}/response", headers=operator)

    _unreadable(read)
    assert "record" not in read.json()
    # The log names the route, not the path as sent (what was typed into a path stays out of logs).
    logged = [r.getMessage() for r in caplog.records if "sealed value unreadable" in r.getMessage()]
    assert logged == ["sealed value unreadable on GET /inquiries/{inquiry_id}/response"]
    [event] = await ledger_events(ctx, action="system.sealed_value_unreadable")
    assert (event.actor_id, event.object_id) == ("op001", f"/api/v1/inquiries/{second}/response")
    # The untouched inquiry still reads.
    assert (await client.get(f"/inquiries/{first}/response", headers=operator)).status_code == 200


async def test_a_subject_copied_onto_another_inquiry_does_not_open(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    first, _, _ = await released_inquiry(client, demo, ctx)
    second, operator, _ = await released_inquiry(client, demo, ctx)
    first_subject = (await client.get(f"/inquiries/{first}", headers=operator)).json()["subject"]
    async with ctx.db.session() as session:
        source = await session.get(Inquiry, first)
        target = await session.get(Inquiry, second)
        assert source is not None and target is not None
        target.subject_sealed, target.subject_nonce = source.subject_sealed, source.subject_nonce
        target.subject_wrapped_key, target.subject_kek_id = source.subject_wrapped_key, source.subject_kek_id
        await session.commit()

    read = await client.get(f"/inquiries/{second}", headers=operator)

    _unreadable(read)
    assert first_subject["name_kana"] not in read.text
    assert len(await ledger_events(ctx, action="system.sealed_value_unreadable")) == 1

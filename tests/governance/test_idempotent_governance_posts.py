"""Idempotency-Key on the governance and directory POSTs that create something (api.md, ER-2).

An administrator's client that times out sends the request again. Without the key a retry opened a
second incident, a second recertification campaign or a second timeline note. Registering a user or a
branch, or throwing a switch that was already on, answered 409 to a request that had in fact gone through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from tests.governance.support import privileged_headers
from tests.helpers import ledger_events


@dataclass(frozen=True)
class Creation:
    """One creating POST: who sends it, the body of the n-th distinct request, and the ledger event that
    shows how many objects were made."""

    path: str
    user_id: str
    body: Callable[[int], dict[str, Any]]
    changed: Callable[[dict[str, Any]], dict[str, Any]]
    recorded_as: str
    status: int = 201


CREATIONS = {
    "user": Creation(
        path="/users",
        user_id="accadmin",
        body=lambda n: {"id": f"idem{n:03d}", "name": f"試験 利用者{n}"},
        changed=lambda body: {**body, "name": "試験 別人"},
        recorded_as="directory.user_created",
    ),
    "branch": Creation(
        path="/branches",
        user_id="accadmin",
        body=lambda n: {"code": f"{700 + n}", "name": f"試験支店{n}"},
        changed=lambda body: {**body, "name": "別の支店"},
        recorded_as="directory.branch_created",
    ),
    "recertification campaign": Creation(
        path="/recertification-campaigns",
        user_id="accadmin",
        body=lambda n: {"reason": "on_demand", "note": f"臨時の棚卸し {n}"},
        changed=lambda body: {**body, "note": "別の棚卸し"},
        recorded_as="recertification.started",
    ),
    "emergency switch": Creation(
        path="/emergency/suspensions",
        user_id="secoff",
        body=lambda n: {
            "scope": "user",
            "target": ("op002", "bm002")[n],
            "reason": f"不正アクセスの疑い {n}",
        },
        changed=lambda body: {**body, "reason": "別の理由"},
        recorded_as="emergency.suspended",
    ),
    "incident": Creation(
        path="/incidents",
        user_id="secoff",
        body=lambda n: {"title": f"目的外照会の疑い {n}", "severity": "medium", "branch_code": "001"},
        changed=lambda body: {**body, "severity": "high"},
        recorded_as="incident.opened",
    ),
}


@pytest.mark.parametrize("name", list(CREATIONS))
async def test_a_retried_creation_with_its_key_makes_one_object(
    name: str, client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    creation = CREATIONS[name]
    headers = await privileged_headers(client, demo, clock, creation.user_id)
    before = len(await ledger_events(ctx, action=creation.recorded_as))

    keyed = {**headers, "Idempotency-Key": f"{name}-retry-0001"}
    first = await client.post(creation.path, json=creation.body(0), headers=keyed)
    assert first.status_code == creation.status, first.text
    again = await client.post(creation.path, json=creation.body(0), headers=keyed)
    assert again.status_code == creation.status, again.text
    assert again.json() == first.json()
    other = await client.post(creation.path, json=creation.changed(creation.body(0)), headers=keyed)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_KEY_REUSED", other.text

    # A retry sent while the first attempt is still running gets the same object too.
    together = {**headers, "Idempotency-Key": f"{name}-retry-0002"}
    answers = await asyncio.gather(
        *(client.post(creation.path, json=creation.body(1), headers=together) for _ in range(6))
    )
    assert {a.status_code for a in answers} == {creation.status}, [a.text for a in answers]
    assert len({made_id(a) for a in answers}) == 1

    made = await ledger_events(ctx, action=creation.recorded_as)
    assert len(made) - before == 2  # one per key, however often each was sent


def made_id(answer: httpx.Response) -> str:
    body = answer.json()
    return str(body.get("id") or body["code"])


async def test_a_retried_timeline_note_is_added_once(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    officer = await privileged_headers(client, demo, clock, "secoff")
    opened = [
        (
            await client.post("/incidents", json={"title": f"調査 {n}", "severity": "low"}, headers=officer)
        ).json()
        for n in range(2)
    ]
    note = {"text": "支店長に聴取済み", "checklist_item": None}
    keyed = {**officer, "Idempotency-Key": "incident-note-0001"}
    path = f"/incidents/{opened[0]['id']}/entries"
    answers = await asyncio.gather(*(client.post(path, json=note, headers=keyed) for _ in range(4)))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]

    shown = (await client.get(f"/incidents/{opened[0]['id']}", headers=officer)).json()
    notes = [entry for entry in shown["timeline"] if entry["kind"] == "note"]
    assert [entry["text"] for entry in notes] == ["支店長に聴取済み"]
    assert len(await ledger_events(ctx, action="incident.updated")) == 1

    # The same key on another incident is another request, refused rather than answered with the first.
    elsewhere = await client.post(f"/incidents/{opened[1]['id']}/entries", json=note, headers=keyed)
    assert elsewhere.status_code == 409 and elsewhere.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    # Without a key every note is its own, as before.
    for _ in range(2):
        assert (await client.post(path, json=note, headers=officer)).status_code == 200
    shown = (await client.get(f"/incidents/{opened[0]['id']}", headers=officer)).json()
    assert len([entry for entry in shown["timeline"] if entry["kind"] == "note"]) == 3


TERMINAL = Creation(
    path="/terminals",
    user_id="accadmin",
    body=lambda n: {"id": f"T-IDEM-{n:02d}", "branch_code": "001", "description": "窓口端末"},
    changed=lambda body: {**body, "description": "別の端末"},
    recorded_as="directory.terminal_registered",
)


@pytest.mark.parametrize("name", ["user", "branch", "terminal"])
async def test_twins_sent_at_once_without_a_key_make_one_and_get_409(
    name: str, client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """Two administrators register the same user id, branch code or terminal id at the same moment. On
    PostgreSQL the second insert waited for the first and failed on the primary key: that was a 500."""
    creation = TERMINAL if name == "terminal" else CREATIONS[name]
    headers = await privileged_headers(client, demo, clock, creation.user_id)
    before = len(await ledger_events(ctx, action=creation.recorded_as))
    answers = await asyncio.gather(
        *(client.post(creation.path, json=creation.body(5), headers=headers) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"CONFLICT"}
    assert len(await ledger_events(ctx, action=creation.recorded_as)) - before == 1

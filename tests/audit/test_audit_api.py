"""The audit endpoints as an auditor uses them (LG-2): the NDJSON event stream and its filters, signed
checkpoints that check out with the published keys, reading that is itself recorded, and a ledger that
carries no password, key, name, birth date or phone number.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from app.audit.service import checkpoint_page
from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.demo import DEMO_USERS, DemoCredentials
from tests.audit.ledger_support import all_events
from tests.governance.support import privileged_headers
from tests.helpers import (
    MY_NUMBER,
    MY_NUMBER_GROUPED,
    auth_headers,
    ledger_text,
    login,
    my_number_forbidden,
    terminal,
    terminal_headers,
)

EVENT_FIELDS = {
    "seq",
    "at",
    "actor_id",
    "actor_roles",
    "terminal_id",
    "address",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "details",
    "prev_hash",
    "hash",
}
# Hashed with the others, so an offline verifier needs it too.
EXTRA_FIELDS = {"request_id"}
LOGINS = ("op001", "cf001", "bm001", "op002", "hqop", "hqcf", "op001")
GENESIS = "0" * 64


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"checkpoint_every_events": 3})


@pytest.fixture
async def auditor(client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock) -> dict[str, str]:
    """Logins a minute apart after the demo seed, one failed; then the auditor's headers."""
    for user_id in LOGINS:
        clock.advance(minutes=1)
        assert (await login(client, demo, user_id)).status_code == 200
    clock.advance(minutes=1)
    assert (await login(client, demo, "op001", password="wrong-password-1")).status_code == 401
    clock.advance(minutes=1)
    return await auth_headers(client, demo, "auditor")


async def read_events(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get("/audit/events", headers=headers, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/x-ndjson"
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


def _canonical(event: dict[str, Any]) -> bytes:
    hashed = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
    return json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


async def test_the_stream_is_the_whole_chain_and_checks_out_offline(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext
) -> None:
    events = await read_events(client, auditor)
    assert len(events) >= 45
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    prev = GENESIS
    for event in events:
        assert set(event) == EVENT_FIELDS | EXTRA_FIELDS, event["seq"]
        assert isinstance(event["actor_roles"], list)
        assert isinstance(event["details"], dict)
        # An auditor can recompute every hash with nothing but SHA-256 and a JSON library.
        assert event["prev_hash"] == prev, event["seq"]
        assert hashlib.sha256(bytes.fromhex(prev) + _canonical(event)).hexdigest() == event["hash"]
        prev = event["hash"]

    # Reading is recorded before anything is returned: the read is the last line of its own stream.
    assert (events[-1]["action"], events[-1]["actor_id"]) == ("audit.events_read", "auditor")
    assert events[-1]["actor_roles"] == ["auditor"]
    assert events[-1]["details"]["after_seq"] == 0
    stored = await all_events(ctx)
    assert [e.hash for e in stored] == [e["hash"] for e in events]


async def test_filters_select_what_was_asked_and_each_read_is_recorded_with_them(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext
) -> None:
    everything = await read_events(client, auditor)

    after = await read_events(client, auditor, after_seq=40)
    # Up to the read of `everything`, and the record of this read itself.
    assert [e["seq"] for e in after] == list(range(41, everything[-1]["seq"] + 2))

    logins = await read_events(client, auditor, action="auth.login")
    assert [e["seq"] for e in logins] == [e["seq"] for e in everything if e["action"] == "auth.login"]
    assert len(logins) == len(LOGINS) + 1  # and the auditor's own

    mine = await read_events(client, auditor, actor_id="op001")
    assert [e["seq"] for e in mine] == [e["seq"] for e in everything if e["actor_id"] == "op001"]
    assert {e["action"] for e in mine} == {"auth.login", "auth.login_failed"}
    assert all(e["actor_id"] == "op001" for e in mine)

    login_times = sorted({_parse(e["at"]) for e in logins})
    since, until = login_times[2], login_times[5]
    window = await read_events(
        client, auditor, since=since.isoformat(), until=until.isoformat(), action="auth.login"
    )
    assert [_parse(e["at"]) for e in window] == login_times[2:5]

    limited = await read_events(client, auditor, after_seq=10, limit=3)
    assert [e["seq"] for e in limited] == [11, 12, 13]

    naive = await client.get("/audit/events", headers=auditor, params={"since": "2026-11-24T01:00:00"})
    assert naive.status_code == 422

    reads = [e for e in await all_events(ctx) if e.action == "audit.events_read"]
    assert len(reads) == 6
    assert all(e.actor_id == "auditor" for e in reads)
    recorded = [json.loads(e.details) for e in reads]
    assert recorded[1]["after_seq"] == 40
    assert recorded[2]["action"] == "auth.login"
    assert recorded[3]["actor_id"] == "op001"
    assert recorded[4]["since"] == since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert recorded[5]["limit"] == 3


async def test_a_filter_holding_an_individual_number_is_refused_and_never_recorded(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext
) -> None:
    """Each read is recorded with its filters, in a ledger that can never give a value back up (PL-4)."""
    for name, typed in (("object_id", MY_NUMBER), ("actor_id", MY_NUMBER_GROUPED), ("action", MY_NUMBER)):
        refused = my_number_forbidden(
            await client.get("/audit/events", params={name: typed}, headers=auditor)
        )
        assert [error["loc"] for error in refused["errors"]] == [["query", name]]
    events = await all_events(ctx)
    assert not [e for e in events if e.action == "audit.events_read"]
    refusals = [json.loads(e.details) for e in events if e.action == "request.refused"]
    assert [r["code"] for r in refusals] == ["MY_NUMBER_FORBIDDEN"] * 3
    ledger = await ledger_text(ctx)
    assert MY_NUMBER not in ledger and MY_NUMBER_GROUPED not in ledger
    # A filter that only looks like one is still read.
    assert (
        await client.get("/audit/events", params={"object_id": "INQ-0001-20261124"}, headers=auditor)
    ).status_code == 200


async def test_filters_no_column_or_clock_can_hold_are_refused_and_nothing_is_read(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext
) -> None:
    """Each was a 500 (or a 200 stream cut off part-way): a sequence number past what the ledger's
    column holds, a time whose offset puts it outside the calendar, a time with no zone at all."""
    refused: list[tuple[str, dict[str, str]]] = [
        ("/audit/events", {"after_seq": str(2**63)}),
        ("/audit/events", {"after_seq": str(2**64)}),
        ("/audit/events", {"limit": str(2**64)}),
        ("/audit/checkpoints", {"cursor": "9" * 19}),
        ("/audit/events", {"since": "0001-01-01T00:00:00+14:00"}),
        ("/audit/events", {"until": "9999-12-31T23:59:59-23:59"}),
        ("/audit/events", {"since": "2026-11-24T09:00:00"}),
        ("/audit/subject-access", {"subject_pseudonym": "a" * 64, "since": "9999-12-31T23:59:59-01:00"}),
        # A birth date that is not YYYY-MM-DD ran the query for another person (1970-01-01 for "0").
        *(
            ("/audit/subject-access", {"name_kana": "ヤマダ　タロウ", "birth_date": typed})
            for typed in ("0", "86400", "1980-01-01T00:00:00")
        ),
        ("/audit/access-holders", {"branch_code": "001", "at": "0001-01-01T00:00:00+23:59"}),
        ("/audit/access-holders", {"branch_code": "001", "at": "9999-12-31T23:59:59-23:59"}),
        ("/audit/access-holders", {"branch_code": "001", "at": "2026-11-24T09:00:00"}),
    ]
    for path, params in refused:
        response = await client.get(path, params=params, headers=auditor)
        assert response.status_code == 422, (path, params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "VALIDATION_ERROR"
    assert not [e for e in await all_events(ctx) if e.action == "audit.events_read"]
    # The edges of what is accepted still read.
    for params in (
        {"after_seq": str(2**63 - 1)},
        {"since": "2000-01-01T00:00:00Z", "until": "2099-12-31T23:59:59+00:00"},
    ):
        read = await client.get("/audit/events", params=params, headers=auditor)
        assert read.status_code == 200, (params, read.text)
    holders = await client.get(
        "/audit/access-holders",
        params={"branch_code": "001", "at": "2026-11-24T09:00:00+09:00"},
        headers=auditor,
    )
    assert holders.status_code == 200, holders.text


async def test_only_auditors_may_read_the_ledger_and_refusals_are_recorded(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, auditor: dict[str, str]
) -> None:
    operator = await auth_headers(client, demo, "op001")
    admin = await auth_headers(client, demo, "accadmin")
    for headers, who in ((operator, "op001"), (admin, "accadmin")):
        for path in ("/audit/events", "/audit/verify", "/audit/checkpoints"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 403, (who, path)
            assert response.json()["code"] == "FORBIDDEN"
    anonymous = await client.get("/audit/events")
    assert anonymous.status_code == 401

    events = await all_events(ctx)
    denied = [e for e in events if e.action == "request.denied"]
    assert [e.actor_id for e in denied] == ["op001"] * 3 + ["accadmin"] * 3 + [None]
    assert not [e for e in events if e.action.startswith("audit.") and e.actor_id != "auditor"]


async def test_no_password_key_secret_name_birth_date_or_phone_ever_reaches_the_ledger(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    auditor: dict[str, str],
    clock: ManualClock,
) -> None:
    secrets: list[str] = []
    secrets += [u["password"] for u in demo.users]
    secrets += [t["key"] for t in demo.terminals]
    secrets += [s["client_secret"] for s in demo.service_accounts]
    op001_password = next(u["password"] for u in demo.users if u["id"] == "op001")

    # A password typed into the user-id field, a wrong password, a wrong and a right client secret.
    typo = await client.post(
        "/auth/login",
        json={"user_id": op001_password, "password": "wrong-password-42"},
        headers=terminal_headers(terminal(demo, "001")),
    )
    assert typo.status_code == 401
    secrets.append("wrong-password-42")
    batch = demo.service_accounts[0]
    bad_secret = await client.post(
        "/auth/token", json={"client_id": batch["client_id"], "client_secret": "not-the-secret-123"}
    )
    assert bad_secret.status_code == 401
    secrets.append("not-the-secret-123")
    token = await client.post(
        "/auth/token", json={"client_id": batch["client_id"], "client_secret": batch["client_secret"]}
    )
    assert token.status_code == 200, token.text
    secrets.append(token.json()["access_token"])
    # A new password and a newly registered terminal's key.
    operator = await auth_headers(client, demo, "op002")
    secrets.append(operator["Authorization"].removeprefix("Bearer "))
    new_password = "Qv8-Rt3w-Zp6x-Hn4k"
    changed = await client.post(
        "/auth/password",
        json={
            "current_password": next(u["password"] for u in demo.users if u["id"] == "op002"),
            "new_password": new_password,
        },
        headers=operator,
    )
    assert changed.status_code == 204, changed.text
    secrets.append(new_password)
    admin = await privileged_headers(client, demo, clock, "accadmin")
    registered = await client.post("/terminals", json={"id": "T001-07", "branch_code": "001"}, headers=admin)
    assert registered.status_code == 201, registered.text
    secrets.append(registered.json()["key"])

    personal: list[str] = []
    for person in DEMO_USERS:
        personal += [person.name, person.name.replace(" ", ""), person.name_kana, person.phone]
        personal += [person.phone.replace("-", ""), person.birth_date.isoformat()]
        personal += [person.birth_date.strftime("%Y%m%d"), person.birth_date.strftime("%Y/%m/%d")]

    response = await client.get("/audit/events", headers=auditor)
    assert response.status_code == 200
    ledger = response.text
    assert ledger.count("\n") >= 50
    # The activity above is in the ledger, by its actions and pseudonyms.
    for action in ("auth.login_failed", "auth.password_changed", "directory.terminal_registered"):
        assert f'"action":"{action}"' in ledger, action
    assert [value for value in secrets if value in ledger] == []
    assert [value for value in personal if value in ledger] == []


async def test_checkpoints_verify_with_the_published_keys_and_match_the_stream(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext
) -> None:
    events = {e["seq"]: e for e in await read_events(client, auditor)}
    response = await client.get("/audit/checkpoints", headers=auditor)
    assert response.status_code == 200, response.text
    page = response.json()
    checkpoints = page["items"]
    assert len(checkpoints) >= 4
    keys = {kid: load_pem_public_key(pem.encode()) for kid, pem in page["public_keys"].items()}
    assert ctx.keyring.current_key_id("checkpoint_signing") in keys
    for checkpoint in checkpoints:
        key = keys[checkpoint["key_id"]]
        assert isinstance(key, Ed25519PublicKey)
        message = f"{checkpoint['seq']}|{checkpoint['hash']}|{checkpoint['at']}".encode()
        key.verify(base64.b64decode(checkpoint["signature"]), message)
        assert events[checkpoint["seq"]]["hash"] == checkpoint["hash"]
        with pytest.raises(InvalidSignature):
            key.verify(base64.b64decode(checkpoint["signature"]), message.replace(b"|", b"|1", 1))
    assert [c["seq"] for c in checkpoints] == sorted(c["seq"] for c in checkpoints)
    assert checkpoints[-1]["seq"] > max(events) - 3

    first = (await client.get("/audit/checkpoints", headers=auditor, params={"limit": 1})).json()
    assert [c["seq"] for c in first["items"]] == [checkpoints[0]["seq"]]
    second = (
        await client.get(
            "/audit/checkpoints", headers=auditor, params={"limit": 1, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [c["seq"] for c in second["items"]] == [checkpoints[1]["seq"]]

    reads = [e for e in await all_events(ctx) if e.action == "audit.checkpoints_read"]
    assert [(e.actor_id, json.loads(e.details)["count"]) for e in reads] == [
        ("auditor", len(checkpoints)),
        ("auditor", 1),
        ("auditor", 1),
    ]


async def test_the_last_page_of_checkpoints_gives_no_cursor_to_an_empty_page(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Paged through the service: every API read records an event, which may make another checkpoint
    while the test reads."""
    auditor = await auth_headers(client, demo, "auditor")
    for _ in range(6):  # events, and so checkpoints (one every 3 events here)
        assert (await client.get("/audit/checkpoints", headers=auditor)).status_code == 200
    async with ctx.db.read_session() as session:
        every, _ = await checkpoint_page(session, after_seq=0, limit=1000)
        assert len(every) >= 2
        whole, next_cursor = await checkpoint_page(session, after_seq=0, limit=len(every))
        assert [c.seq for c in whole] == [c.seq for c in every] and next_cursor is None
        short, next_cursor = await checkpoint_page(session, after_seq=0, limit=len(every) - 1)
        assert next_cursor == str(every[-2].seq) and [c.seq for c in short] == [c.seq for c in every[:-1]]
        rest, next_cursor = await checkpoint_page(session, after_seq=int(next_cursor), limit=len(every))
        assert [c.seq for c in rest] == [every[-1].seq] and next_cursor is None

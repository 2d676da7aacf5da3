"""Tampering behind the application's back is found, and the first bad seq is named (LG-2).

Each test builds a ledger of a few dozen events (the demo directory, a round of logins, one failed
login), then alters the database directly as someone with its owner's rights would, and asks
``GET /audit/verify`` as the auditor. The direct ``verify_ledger`` must agree with the endpoint, and the
endpoint records the failed verification itself.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from app.audit.export import export_events, seq_range
from app.audit.ledger import GENESIS_HASH, ChainVerifier, CheckpointRule, checkpoint_message
from app.audit.models import AuditCheckpoint
from app.audit.offline import load_public_keys, verify_export
from app.audit.service import checkpoint_rule, public_keys_document, verify_ledger
from app.cli import cli
from app.clock import ManualClock, from_rfc3339, rfc3339
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring, open_keyring
from app.demo import DemoCredentials
from tests.audit.ledger_support import (
    CONTENT_COLUMNS,
    Attacker,
    all_checkpoints,
    all_events,
    chain_head,
    chained_hash,
    event_dict,
    sql_literal,
)
from tests.helpers import auth_headers, login

CHECKPOINT_EVERY = 4
LOGINS = (
    "op001",
    "cf001",
    "cf001b",
    "bm001",
    "op002",
    "cf002",
    "hqop",
    "hqcf",
    "accadmin",
    "accappr",
    "secoff",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Frequent checkpoints, so that several of them sit inside the few dozen events of a test.
    return settings.model_copy(update={"checkpoint_every_events": CHECKPOINT_EVERY})


@pytest.fixture
def keyring(clock: ManualClock, tmp_path: Path) -> Keyring:
    # A key file, as in production: checkpoint keys are rotated in some of these tests.
    return open_keyring(key_file=tmp_path / "keys.json", env_keys=None, clock=clock, create=True)


@pytest.fixture
def attacker(backend: str, database_url: str, request: pytest.FixtureRequest) -> Attacker:
    return Attacker.for_test(backend, database_url, request)


@pytest.fixture
async def auditor(client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock) -> dict[str, str]:
    """A ledger of a few dozen events, and the auditor's headers (logged in before any tampering)."""
    for user_id in LOGINS:
        clock.advance(minutes=1)
        assert (await login(client, demo, user_id)).status_code == 200
    assert (await login(client, demo, "op002", password="wrong-password-7")).status_code == 401
    clock.advance(minutes=1)
    return await auth_headers(client, demo, "auditor")


async def verify_reports(
    client: httpx.AsyncClient, headers: dict[str, str], ctx: AppContext
) -> dict[str, Any]:
    """The auditor's verification; the direct walk agrees and the failed check is itself recorded."""
    direct = await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))
    response = await client.get("/audit/verify", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert (body["ok"], body["first_bad_seq"], body["reason"]) == (
        direct.ok,
        direct.first_bad_seq,
        direct.reason,
    )
    recorded = (await all_events(ctx))[-1]
    assert (recorded.action, recorded.actor_id) == ("audit.verified", "auditor")
    assert recorded.outcome == ("success" if body["ok"] else "failure")
    assert json.loads(recorded.details)["first_bad_seq"] == body["first_bad_seq"]
    return body


async def middle_seq(ctx: AppContext) -> int:
    """An event inside the demo directory's transaction, before the first checkpoint."""
    first_checkpoint = (await all_checkpoints(ctx))[0].seq
    assert first_checkpoint > 20
    return first_checkpoint // 2


def _overwrite(seq: int, source: dict[str, Any]) -> str:
    assignments = ", ".join(f"{c} = {sql_literal(source[c])}" for c in CONTENT_COLUMNS)
    return f"UPDATE audit_events SET {assignments} WHERE seq = {seq}"


async def test_each_alteration_in_place_is_named_and_undoing_it_makes_the_ledger_verify_again(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    head = await chain_head(ctx)
    checkpoints = await all_checkpoints(ctx)
    assert head.seq >= 50
    assert len(checkpoints) >= 3
    untouched = await verify_reports(client, auditor, ctx)
    assert untouched["ok"] is True
    assert untouched["checked"] == head.seq
    assert untouched["head"] == {"seq": head.seq, "hash": head.hash}
    assert untouched["first_bad_seq"] is None
    assert untouched["checkpoints_checked"] == len(checkpoints)
    assert untouched["latest_checkpoint"]["seq"] == checkpoints[-1].seq

    k = await middle_seq(ctx)
    events = {e.seq: event_dict(e) for e in await all_events(ctx)}
    original = events[k]
    restore_k = _overwrite(k, original)
    j = k + 7
    edits = (
        ("actor_id", "mallory", "altered_event"),
        ("details", "{}", "altered_event"),
        ("at", "2026-01-01T00:00:00.000000Z", "altered_event"),
        ("outcome", "denied", "altered_event"),
        ("object_id", "T001-99", "altered_event"),
        ("hash", "f" * 64, "altered_event"),
        ("prev_hash", "e" * 64, "broken_link"),
    )
    assert all(original[column] != value for column, value, _ in edits)
    # (what the attacker does, how it is undone, the seq and reason verify must name)
    cases: list[tuple[str, list[str], list[str], int, str]] = [
        (
            f"edit {column}",
            [f"UPDATE audit_events SET {column} = {sql_literal(value)} WHERE seq = {k}"],
            [restore_k],
            k,
            reason,
        )
        for column, value, reason in edits
    ]
    cases.append(
        (
            "swap two events",
            [_overwrite(k, events[j]), _overwrite(j, original)],
            [restore_k, _overwrite(j, events[j])],
            k,
            "broken_link",
        )
    )
    for position, seq in (("first", 1), ("middle", k)):
        cases.append(
            (
                f"delete the {position} event",
                [f"DELETE FROM audit_events WHERE seq = {seq}"],
                [attacker.insert_event_statement(seq, events[seq])],
                seq,
                "missing_event",
            )
        )

    for name, tamper, undo, first_bad, reason in cases:
        attacker.execute(*tamper)
        body = await verify_reports(client, auditor, ctx)
        assert (body["ok"], body["first_bad_seq"], body["reason"]) == (False, first_bad, reason), name
        assert body["checked"] == first_bad - 1, name
        attacker.execute(*undo)
        assert (await verify_reports(client, auditor, ctx))["ok"] is True, f"after undoing: {name}"

    last = (await all_events(ctx))[-1].seq
    attacker.execute(f"DELETE FROM audit_events WHERE seq = {last}")
    body = await verify_reports(client, auditor, ctx)
    assert (body["ok"], body["first_bad_seq"], body["reason"]) == (False, last, "missing_event")


def _shift_up_from(k: int) -> list[str]:
    """Renumber events >= k to seq + 1 (via negative numbers, so the primary key never collides)."""
    return [
        f"UPDATE audit_events SET seq = -seq - 1 WHERE seq >= {k}",
        "UPDATE audit_events SET seq = -seq WHERE seq < 0",
    ]


def _forged_login(template: dict[str, Any]) -> dict[str, Any]:
    return {
        **template,
        "actor_id": "op001",
        "actor_roles": '["operator"]',
        "action": "auth.login",
        "object_type": "session",
        "object_id": "s-forged",
        "outcome": "success",
        "details": '{"failed_attempts_since_previous_login":0}',
    }


async def test_a_forged_event_inserted_in_the_middle_is_found(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    k = await middle_seq(ctx)
    events = {e.seq: event_dict(e) for e in await all_events(ctx)}
    head = await chain_head(ctx)
    # A careful forger links the new event to its predecessor and computes its hash; the chain then holds
    # up to the forgery, and the event that was pushed behind it no longer links.
    forged = _forged_login(events[k])
    forged["prev_hash"] = events[k - 1]["hash"]
    forged["hash"] = chained_hash(forged["prev_hash"], forged, seq=k)
    attacker.execute(
        *_shift_up_from(k),
        attacker.insert_event_statement(k, forged),
        f"UPDATE audit_chain_head SET seq = {head.seq + 1} WHERE id = 1",
    )

    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert (body["first_bad_seq"], body["reason"]) == (k + 1, "broken_link")
    assert body["checked"] == k

    # A forger who does not chain the event is named at the forgery itself.
    attacker.set_event(k, hash="0" * 64)
    body = await verify_reports(client, auditor, ctx)
    assert (body["first_bad_seq"], body["reason"]) == (k, "altered_event")


async def test_a_forged_event_appended_beyond_the_head_is_found_and_blocks_further_writes(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    head = await chain_head(ctx)
    events = {e.seq: event_dict(e) for e in await all_events(ctx)}
    forged = _forged_login(events[head.seq])
    forged["prev_hash"] = head.hash
    forged["hash"] = chained_hash(head.hash, forged, seq=head.seq + 1)
    attacker.execute(attacker.insert_event_statement(head.seq + 1, forged))

    report = await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))
    assert not report.ok
    assert (report.first_bad_seq, report.reason) == (head.seq + 1, "event_beyond_head")
    # The next event would need the forged seq: the ledger refuses, so the read cannot go unrecorded.
    response = await client.get("/audit/verify", headers=auditor)
    assert response.status_code == 503
    assert response.json()["code"] == "LEDGER_UNAVAILABLE"
    assert (await chain_head(ctx)).seq == head.seq


def _rewritten_from(events: list[dict[str, Any]], first: int) -> tuple[list[str], str]:
    """An attacker without the signing key edits event ``first`` and recomputes every hash to the head."""
    statements = []
    prev = events[first - 2]["hash"] if first > 1 else GENESIS_HASH
    for row in events[first - 1 :]:
        if row["seq"] == first:
            row["actor_id"] = "mallory"
        row["prev_hash"] = prev
        row["hash"] = chained_hash(prev, row, seq=row["seq"])
        prev = row["hash"]
        statements.append(
            f"UPDATE audit_events SET actor_id = {sql_literal(row['actor_id'])}, "
            f"prev_hash = '{row['prev_hash']}', hash = '{row['hash']}' WHERE seq = {row['seq']}"
        )
    return statements, prev


async def test_an_edit_with_the_chain_recomputed_is_caught_by_the_next_signed_checkpoint(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    k = await middle_seq(ctx)
    next_checkpoint = min(c.seq for c in await all_checkpoints(ctx) if c.seq >= k)
    # The attacker has no signing key, but recomputes every hash from the edited event to the head.
    statements, head_hash = _rewritten_from([event_dict(e) for e in await all_events(ctx)], k)
    attacker.execute(*statements, f"UPDATE audit_chain_head SET hash = '{head_hash}' WHERE id = 1")

    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert (body["first_bad_seq"], body["reason"]) == (next_checkpoint, "checkpoint_mismatch")


async def test_an_edit_whose_later_checkpoints_were_deleted_is_found_by_the_checkpoint_rule(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    """Found by a ledger review: with every checkpoint after the edit deleted and the head row set back
    to the one before it, the rewritten chain verified. But the gateway signs at least every
    CHECKPOINT_EVERY events, so that many unsigned events at the end are not a chain it wrote."""
    checkpoints = await all_checkpoints(ctx)
    keep = checkpoints[1]
    assert (await chain_head(ctx)).seq - keep.seq >= CHECKPOINT_EVERY
    statements, head_hash = _rewritten_from([event_dict(e) for e in await all_events(ctx)], keep.seq + 1)
    attacker.execute(
        *statements,
        f"DELETE FROM audit_checkpoints WHERE seq > {keep.seq}",
        f"UPDATE audit_chain_head SET hash = '{head_hash}', last_checkpoint_seq = {keep.seq}, "
        f"last_checkpoint_at = '{keep.at}' WHERE id = 1",
    )

    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert (body["first_bad_seq"], body["reason"]) == (keep.seq + CHECKPOINT_EVERY, "checkpoint_missing")


async def test_a_chain_rewritten_from_the_start_with_every_checkpoint_deleted_is_found(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    """The gateway signs its very first event's append: events without any checkpoint were not left so
    by it."""
    statements, head_hash = _rewritten_from([event_dict(e) for e in await all_events(ctx)], 1)
    attacker.execute(
        *statements,
        "DELETE FROM audit_checkpoints",
        f"UPDATE audit_chain_head SET hash = '{head_hash}', last_checkpoint_seq = 0, "
        "last_checkpoint_at = NULL WHERE id = 1",
    )

    direct = await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))
    assert (direct.ok, direct.first_bad_seq, direct.reason) == (False, 1, "checkpoint_missing")


async def test_events_recorded_long_after_the_last_checkpoint_but_unsigned_are_found(
    client: httpx.AsyncClient,
    auditor: dict[str, str],
    demo: DemoCredentials,
    ctx: AppContext,
    attacker: Attacker,
    clock: ManualClock,
) -> None:
    """An append made checkpoint_every_seconds after the last checkpoint signs: an event of a later time
    left unsigned means the checkpoint that covered it was removed (the event count alone may not show
    it, so it is judged here as if checkpoints were rare)."""
    clock.advance(seconds=ctx.settings.checkpoint_every_seconds + 120)
    assert (await login(client, demo, "op001")).status_code == 200
    checkpoints = await all_checkpoints(ctx)
    last, before = checkpoints[-1], checkpoints[-2]
    due = from_rfc3339(before.at) + timedelta(seconds=ctx.settings.checkpoint_every_seconds)
    late = min(e.seq for e in await all_events(ctx) if e.seq > before.seq and from_rfc3339(e.at) > due)
    attacker.execute(
        f"DELETE FROM audit_checkpoints WHERE seq = {last.seq}",
        f"UPDATE audit_chain_head SET last_checkpoint_seq = {before.seq}, "
        f"last_checkpoint_at = '{before.at}' WHERE id = 1",
    )
    rare = CheckpointRule(every_events=10_000, every_seconds=ctx.settings.checkpoint_every_seconds)
    direct = await verify_ledger(ctx.db, ctx.keyring, rare)
    assert (direct.ok, direct.first_bad_seq, direct.reason) == (False, late, "checkpoint_missing")
    # Under a period no event of it exceeds, the same ledger passes: the time half of the rule found it.
    assert (await verify_ledger(ctx.db, ctx.keyring, CheckpointRule(10_000, 10**6))).ok


async def test_a_truncated_tail_with_the_head_moved_back_is_caught_by_the_checkpoint_beyond_it(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    checkpoints = await all_checkpoints(ctx)
    new_last = checkpoints[-1].seq - 1
    assert new_last > checkpoints[-2].seq
    kept = {e.seq: e for e in await all_events(ctx)}[new_last]
    attacker.execute(
        f"DELETE FROM audit_events WHERE seq > {new_last}",
        f"UPDATE audit_chain_head SET seq = {new_last}, hash = '{kept.hash}' WHERE id = 1",
    )

    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert (body["first_bad_seq"], body["reason"]) == (new_last + 1, "missing_event")


async def test_a_truncation_that_also_drops_checkpoints_is_caught_by_checkpoints_exported_earlier(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    exported = (await client.get("/audit/checkpoints", headers=auditor)).json()["items"]
    assert len(exported) >= 3
    new_last = exported[-1]["seq"] - 1
    kept = {e.seq: e for e in await all_events(ctx)}[new_last]
    attacker.execute(
        f"DELETE FROM audit_events WHERE seq > {new_last}",
        f"DELETE FROM audit_checkpoints WHERE seq > {new_last}",
        f"UPDATE audit_chain_head SET seq = {new_last}, hash = '{kept.hash}', "
        f"last_checkpoint_seq = {exported[-2]['seq']}, last_checkpoint_at = '{exported[-2]['at']}' "
        "WHERE id = 1",
    )

    # Offline, with the events streamed out and the checkpoints kept outside the database since.
    stream = await client.get("/audit/events", headers=auditor)
    lines = [json.loads(line) for line in stream.text.splitlines()]
    rows = [
        (
            e["seq"],
            e["at"],
            e["actor_id"],
            json.dumps(e["actor_roles"], separators=(",", ":")),
            e["terminal_id"],
            e["address"],
            e["action"],
            e["object_type"],
            e["object_id"],
            e["outcome"],
            json.dumps(e["details"], separators=(",", ":"), sort_keys=True, ensure_ascii=False),
            e["request_id"],
            e["prev_hash"],
            e["hash"],
        )
        for e in lines
    ]
    verifier = ChainVerifier(checkpoints={c["seq"]: c["hash"] for c in exported})
    verifier.feed(rows)
    verifier.finish(head_seq=rows[-1][0], head_hash=rows[-1][13])
    # The events written since (this very read among them) took the truncated seqs again, but not the
    # hash the exported checkpoint signed there.
    assert (verifier.first_bad_seq, verifier.reason) == (new_last + 1, "checkpoint_mismatch")
    assert verifier.checked == new_last


async def test_a_checkpoint_with_a_forged_signature_or_another_hash_is_named(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    target = (await all_checkpoints(ctx))[1]
    head = await chain_head(ctx)
    forged = Ed25519PrivateKey.generate().sign(checkpoint_message(target.seq, target.hash, target.at))
    signature = base64.b64encode(forged).decode()
    attacker.execute(f"UPDATE audit_checkpoints SET signature = '{signature}' WHERE seq = {target.seq}")
    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert (body["first_bad_seq"], body["reason"]) == (target.seq, "checkpoint_signature_invalid")
    assert body["checked"] == head.seq  # every event itself is intact

    attacker.execute(
        f"UPDATE audit_checkpoints SET signature = '{target.signature}', hash = '{'a' * 64}' "
        f"WHERE seq = {target.seq}"
    )
    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert body["first_bad_seq"] == target.seq


async def test_the_latest_checkpoint_deleted_is_named(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    """The ledger's head names the last checkpoint it signed: removing that checkpoint (with no event
    touched, so no chain fault shows) is found without any checkpoint kept outside."""
    latest = (await all_checkpoints(ctx))[-1]
    assert (await chain_head(ctx)).last_checkpoint_seq == latest.seq
    attacker.execute(f"DELETE FROM audit_checkpoints WHERE seq = {latest.seq}")
    body = await verify_reports(client, auditor, ctx)
    assert body["ok"] is False
    assert (body["first_bad_seq"], body["reason"]) == (latest.seq, "checkpoint_missing")


def _resign(
    attacker: Attacker, checkpoint: AuditCheckpoint, *, key: Ed25519PrivateKey, key_id: str, at: datetime
) -> None:
    """Sign a stored checkpoint again with a key in hand, at a time of the attacker's choosing; the head
    is made to agree, as a careful attacker would."""
    at_text = rfc3339(at)
    signature = base64.b64encode(
        key.sign(checkpoint_message(checkpoint.seq, checkpoint.hash, at_text))
    ).decode()
    attacker.execute(
        f"UPDATE audit_checkpoints SET at = '{at_text}', key_id = '{key_id}', signature = '{signature}' "
        f"WHERE seq = {checkpoint.seq}",
        f"UPDATE audit_chain_head SET last_checkpoint_at = '{at_text}' "
        f"WHERE id = 1 AND last_checkpoint_seq = {checkpoint.seq}",
    )


async def test_a_retired_checkpoint_key_signs_nothing_after_its_retirement(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    auditor: dict[str, str],
    ctx: AppContext,
    attacker: Attacker,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    """LG-2, EN-2: a checkpoint key is rotated when it may have leaked. Whoever holds the retired key
    must not be able to sign checkpoints over a history written since, dated after the retirement or
    backdated before it; what it signed while in use still verifies."""
    old = ctx.keyring.checkpoint_signing_key()
    retired_at = clock.advance(minutes=1)
    new_id = ctx.keyring.rotate("checkpoint_signing", now=retired_at)
    clock.advance(minutes=2)
    for user_id in LOGINS[:8]:
        clock.advance(minutes=1)
        assert (await login(client, demo, user_id)).status_code == 200
    auditor = await auth_headers(client, demo, "auditor")  # the first login has been idle too long
    checkpoints = await all_checkpoints(ctx)
    assert {c.key_id for c in checkpoints} == {old.key_id, new_id}
    assert len([c for c in checkpoints if c.key_id == new_id]) >= 2
    assert (await verify_reports(client, auditor, ctx))["ok"] is True

    target = [c for c in await all_checkpoints(ctx) if c.key_id == new_id][-1]
    _resign(attacker, target, key=old.private_key, key_id=old.key_id, at=clock.now())
    body = await verify_reports(client, auditor, ctx)
    assert (body["ok"], body["first_bad_seq"], body["reason"]) == (
        False,
        target.seq,
        "checkpoint_key_retired",
    )
    # Offline too, with the keys as `shokai keys public` gives them (found by a ledger review: they
    # carried no retirement, and the auditor's own check passed the re-signed checkpoint).
    keys_file = tmp_path / "keys-public.json"
    keys_file.write_text(json.dumps(public_keys_document(ctx.keyring)), encoding="utf-8")
    keys = load_public_keys(keys_file)
    assert keys.signs_until.keys() == {old.key_id}
    report = verify_export(
        iter(io.BytesIO(await exported(ctx, "ndjson")).readlines()),
        fmt="ndjson",
        checkpoints=[_checkpoint_item(c) for c in await all_checkpoints(ctx)],
        public_keys=keys.keys,
        signs_until=keys.signs_until,
    )
    assert (report.ok, report.first_bad_seq, report.reason) == (False, target.seq, "checkpoint_key_retired")

    # Dated before the retirement, it would come after checkpoints the new key signed since.
    _resign(attacker, target, key=old.private_key, key_id=old.key_id, at=retired_at - timedelta(seconds=1))
    body = await verify_reports(client, auditor, ctx)
    assert (body["ok"], body["first_bad_seq"], body["reason"]) == (
        False,
        target.seq,
        "checkpoint_out_of_order",
    )

    attacker.execute(
        f"UPDATE audit_checkpoints SET at = '{target.at}', key_id = '{target.key_id}', "
        f"signature = '{target.signature}' WHERE seq = {target.seq}",
        f"UPDATE audit_chain_head SET last_checkpoint_at = '{target.at}' "
        f"WHERE id = 1 AND last_checkpoint_seq = {target.seq}",
    )
    assert (await verify_reports(client, auditor, ctx))["ok"] is True


async def exported(ctx: AppContext, fmt: str) -> bytes:
    """The whole ledger as the export writes it (CLI `shokai audit export`)."""
    found = await seq_range(ctx.db, since=None, until=None)
    assert found is not None
    out = io.BytesIO()
    await export_events(ctx.db, out, first_seq=found[0], last_seq=found[1], fmt=fmt)
    return out.getvalue()


def _checkpoint_item(c: AuditCheckpoint) -> dict[str, Any]:
    """A checkpoint as `GET /audit/checkpoints` gives it (what an auditor keeps outside)."""
    return {"seq": c.seq, "hash": c.hash, "at": c.at, "key_id": c.key_id, "signature": c.signature}


def offline(data: bytes, fmt: str, ctx: AppContext, checkpoints: list[AuditCheckpoint]) -> dict[str, Any]:
    return verify_export(
        iter(io.BytesIO(data).readlines()),
        fmt=fmt,
        checkpoints=[_checkpoint_item(c) for c in checkpoints],
        public_keys=ctx.keyring.checkpoint_public_keys(),
    ).as_dict()


async def test_a_tail_cut_off_with_its_checkpoints_shows_against_checkpoints_saved_before(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker, tmp_path: Path
) -> None:
    """Found by a ledger review: cut back to a checkpoint, with the later checkpoints and the head moved
    too, the export verified offline even against the checkpoints the auditor had saved, which prove
    the ledger went on: those are now named (and `--require-complete` fails on them)."""
    saved = await all_checkpoints(ctx)
    cut = saved[-3]
    kept = {e.seq: e for e in await all_events(ctx)}[cut.seq]
    attacker.execute(
        f"DELETE FROM audit_events WHERE seq > {cut.seq}",
        f"DELETE FROM audit_checkpoints WHERE seq > {cut.seq}",
        f"UPDATE audit_chain_head SET seq = {cut.seq}, hash = '{kept.hash}', "
        f"last_checkpoint_seq = {cut.seq}, last_checkpoint_at = '{cut.at}' WHERE id = 1",
    )
    data = await exported(ctx, "ndjson")
    report = offline(data, "ndjson", ctx, saved)
    assert (report["ok"], report["last_seq"]) == (True, cut.seq)
    assert report["checkpoints_beyond"] == [c.seq for c in saved[-2:]]

    # The auditor's command says so, and fails with --require-complete.
    export_file, checkpoints_file, keys_file = tmp_path / "e.ndjson", tmp_path / "c.json", tmp_path / "k.json"
    export_file.write_bytes(data)
    checkpoints_file.write_text(json.dumps({"items": [_checkpoint_item(c) for c in saved]}), encoding="utf-8")
    keys_file.write_text(json.dumps(public_keys_document(ctx.keyring)), encoding="utf-8")
    args = ["audit", "verify", "--export", str(export_file), "--checkpoint", str(checkpoints_file)]
    args += ["--public-key", str(keys_file)]
    runner = CliRunner()
    warned = runner.invoke(cli, args)
    assert warned.exit_code == 0 and "its tail is missing" in warned.stderr
    strict = runner.invoke(cli, [*args, "--require-complete"])
    assert strict.exit_code == 1 and "its tail is missing" in strict.stderr


async def test_details_rewritten_to_the_same_meaning_in_other_bytes_fail_offline_as_online(
    client: httpx.AsyncClient, auditor: dict[str, str], ctx: AppContext, attacker: Attacker
) -> None:
    """Found by a ledger review: a DBA stored an event's details with a forged key given first and the
    true one repeated after it. The online verify named it; the offline verifier parsed the export line
    (the last of the twin keys wins), sorted it back into the original and passed it."""
    target = next(e for e in await all_events(ctx) if len(json.loads(e.details)) >= 2)
    parsed = json.loads(target.details)
    first = sorted(parsed)[0]
    forged = "{" + json.dumps(first) + ':"FORGED",' + json.dumps(parsed, ensure_ascii=False)[1:]
    attacker.set_event(target.seq, details=forged)

    online = await verify_ledger(ctx.db, ctx.keyring, checkpoint_rule(ctx.settings))
    assert (online.first_bad_seq, online.reason) == (target.seq, "altered_event")
    report = offline(await exported(ctx, "ndjson"), "ndjson", ctx, await all_checkpoints(ctx))
    assert (report["ok"], report["first_bad_seq"], report["reason"]) == (False, target.seq, "altered_event")


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_a_value_written_like_the_csv_null_marker_verifies_offline_and_null_stays_null(
    client: httpx.AsyncClient, demo: DemoCredentials, auditor: dict[str, str], ctx: AppContext, fmt: str
) -> None:
    """Found by a ledger review: anyone could send a terminal header of \\N; the CSV export read it back
    as NULL and the intact ledger failed its offline check from there on."""
    refused = await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": "wrong-password-1"},
        headers={"X-Terminal-Id": "\\N", "X-Terminal-Key": "x"},
    )
    assert refused.status_code in (401, 403)
    assert any(e.terminal_id == "\\N" for e in await all_events(ctx))
    await auth_headers(client, demo, "op002")  # more events after it, and a checkpoint over them
    report = offline(await exported(ctx, fmt), fmt, ctx, await all_checkpoints(ctx))
    assert (report["ok"], report["reason"]) == (True, None)

"""RT-1: a response past its use period is destroyed by a purge one security officer requests and a second
approves; RT-2: a database restored from before the purge gets the destruction back from the journal."""

from __future__ import annotations

import asyncio
import fcntl
import json
import threading
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select

from app.clock import ManualClock, rfc3339
from app.config import Settings
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import Inquiry, SealedResponse
from app.inquiry.policy import PolicyError, load_policy
from app.main import create_app
from app.retention import journal
from app.retention.models import DeletionRecord, PurgeRequest
from app.retention.service import reapply_journal
from tests.governance.support import add_person, privileged_headers
from tests.helpers import auth_headers, ledger_events
from tests.inquiry.support import password_of, released_inquiry, submit_with_a1


def _entry(
    *,
    id: str,
    range_to: str = "2026-11-01T00:00:00+00:00",
    count: int = 1,
    at: str = "2026-11-02T00:00:00+00:00",
    purge_id: str | None = None,
) -> journal.JournalEntry:
    """A deletion record as the journal holds it, by secoff with secoff2's approval."""
    return journal.JournalEntry(
        id=id,
        data_set="inquiry_responses",
        range_from=None,
        range_to=range_to,
        count=count,
        method="crypto_shred",
        operator="secoff",
        approver="secoff2",
        at=at,
        purge_id=purge_id,
    )


async def _officers(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> tuple[dict[str, str], dict[str, str]]:
    await add_person(ctx, demo, "secoff2", (("security_officer", None),))
    return (
        await privileged_headers(client, demo, clock, "secoff", reason="保存期間経過分の消去"),
        await privileged_headers(client, demo, clock, "secoff2", reason="消去の承認"),
    )


async def _responses(ctx: AppContext) -> dict[str, SealedResponse]:
    async with ctx.db.read_session() as session:
        return {r.inquiry_id: r for r in (await session.scalars(select(SealedResponse))).all()}


async def _old_and_recent(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> tuple[str, str, str]:
    """A released and a held response past the use period, and one received a day ago."""
    released, _, _ = await released_inquiry(client, demo, ctx)
    _, held = await submit_with_a1(client, demo, ctx)
    assert held.json()["status"] == "held", held.text
    clock.advance(days=ctx.policy.response_use_days)
    _, recent = await submit_with_a1(client, demo, ctx)
    assert recent.json()["status"] == "held", recent.text
    clock.advance(days=1)
    return released, str(held.json()["id"]), str(recent.json()["id"])


async def test_two_officers_destroy_the_responses_past_their_use_period_and_everyone_sees_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    released, held, recent = await _old_and_recent(client, demo, ctx, clock)
    first, second = await _officers(client, demo, ctx, clock)

    requested = await client.post("/retention/purges", json={"reason": "定例消去 11月分"}, headers=first)
    assert requested.status_code == 201, requested.text
    purge = requested.json()
    assert purge["status"] == "pending" and purge["expected_count"] == 2
    # Nothing is destroyed until a second officer approves, and the requester cannot be that officer.
    assert all(r.wrapped_key is not None for r in (await _responses(ctx)).values())
    own = await client.post(f"/retention/purges/{purge['id']}/approve", headers=first)
    assert own.status_code == 403 and own.json()["code"] == "SOD_VIOLATION", own.text
    twice = await client.post("/retention/purges", json={"reason": "二重申請"}, headers=second)
    assert twice.status_code == 409 and twice.json()["code"] == "INVALID_STATE"

    approved = await client.post(f"/retention/purges/{purge['id']}/approve", headers=second)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "executed" and approved.json()["approved_by"] == "secoff2"
    again = await client.post(f"/retention/purges/{purge['id']}/approve", headers=second)
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"

    stored = await _responses(ctx)
    for gone in (released, held):
        assert stored[gone].wrapped_key is None and stored[gone].ciphertext == b""
    assert stored[recent].wrapped_key is not None  # still within its use period

    # Every reader, the releasing confirmer included, is told the response is destroyed.
    for user_id, inquiry_id in (("cf001b", released), ("op001", released), ("cf001b", held)):
        reader = await auth_headers(client, demo, user_id)
        shown = await client.get(f"/inquiries/{inquiry_id}", headers=reader)
        assert shown.json()["response"]["state"] == "destroyed", shown.text
        read = await client.get(f"/inquiries/{inquiry_id}/response", headers=reader)
        assert read.status_code == 410 and read.json()["code"] == "RESPONSE_DESTROYED"
    releaser = await auth_headers(client, demo, "cf001b")
    release = await client.post(
        f"/inquiries/{held}/release",
        headers=releaser,
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    assert release.status_code == 410 and release.json()["code"] == "RESPONSE_DESTROYED", release.text

    # The deletion record names the data set, range, count, method, operator and approver (RT-1).
    auditor = await auth_headers(client, demo, "auditor")
    records = (await client.get("/retention/deletions", headers=auditor)).json()["items"]
    assert len(records) == 1
    record = records[0]
    assert (record["data_set"], record["count"], record["method"]) == ("inquiry_responses", 2, "crypto_shred")
    assert (record["operator"], record["approver"]) == ("secoff", "secoff2")
    assert record["range_from"] < record["range_to"] == purge["cutoff"]
    assert approved.json()["deletion_id"] == record["id"]
    # ... and the inquiry's trace shows its response's destruction (LG-5).
    officer_trace = await client.get(
        f"/inquiries/{released}/trace", headers=await auth_headers(client, demo, "bm001")
    )
    assert officer_trace.status_code == 200, officer_trace.text
    purged = [e for e in officer_trace.json()["events"] if e["action"] == "retention.purged"]
    assert [(e["via"], e["object_id"], e["actor_id"]) for e in purged] == [
        ("retention_deletion", record["id"], "secoff2")
    ]
    recent_trace = await client.get(
        f"/inquiries/{recent}/trace", headers=await auth_headers(client, demo, "bm001")
    )
    assert "retention.purged" not in [e["action"] for e in recent_trace.json()["events"]]
    # The journal outside the database holds the same record (RT-2).
    (entry,) = journal.entries(ctx.settings)
    assert (entry.id, entry.count, entry.operator, entry.approver) == (record["id"], 2, "secoff", "secoff2")


async def test_a_purge_with_nothing_past_its_use_period_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    await released_inquiry(client, demo, ctx)
    first, _ = await _officers(client, demo, ctx, clock)
    refused = await client.post("/retention/purges", json={"reason": "早すぎる消去"}, headers=first)
    assert refused.status_code == 409 and refused.json()["code"] == "INVALID_STATE", refused.text
    operator = await auth_headers(client, demo, "op001")
    assert (await client.post("/retention/purges", json={"reason": "x"}, headers=operator)).status_code == 403
    assert (await _responses(ctx)) and all(
        r.wrapped_key is not None for r in (await _responses(ctx)).values()
    )


async def test_a_restore_from_before_the_purge_is_destroyed_again_when_the_gateway_starts(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A backup made before the purge still holds the data keys. Restoring it puts them back; the gateway
    starting on it destroys them again from the journal and puts the deletion record back."""
    released, held, recent = await _old_and_recent(client, demo, ctx, clock)
    backup = {inquiry_id: (r.wrapped_key, r.ciphertext) for inquiry_id, r in (await _responses(ctx)).items()}
    first, second = await _officers(client, demo, ctx, clock)
    purge = (await client.post("/retention/purges", json={"reason": "定例消去"}, headers=first)).json()
    assert (await client.post(f"/retention/purges/{purge['id']}/approve", headers=second)).status_code == 200

    await _restore(ctx, backup, released=released)

    app = create_app(context=ctx, background_tasks=False)
    async with app.router.lifespan_context(app):
        stored = await _responses(ctx)
        assert stored[released].wrapped_key is None and stored[held].wrapped_key is None
        assert stored[recent].wrapped_key is not None
        async with ctx.db.read_session() as session:
            restored = (await session.scalars(select(DeletionRecord))).all()
            states = {i.id: i.response_state for i in (await session.scalars(select(Inquiry))).all()}
        assert [(r.operator, r.approver, r.count) for r in restored] == [("secoff", "secoff2", 2)]
        assert states[released] == states[held] == "destroyed"
        (reapplied,) = await ledger_events(ctx, action="retention.reapplied")
        assert json.loads(reapplied.details) == {"destroyed_again": 2, "record_restored": True}

    # On a database that is not behind the journal, a second start changes and records nothing.
    assert await reapply_journal(ctx) == 0
    assert len(await ledger_events(ctx, action="retention.reapplied")) == 1

    # Two workers of one gateway starting at once on a restored database: one puts the record back.
    await _restore(ctx, backup, released=released)
    assert sum(await asyncio.gather(reapply_journal(ctx), reapply_journal(ctx))) == 2
    async with ctx.db.read_session() as session:
        assert len((await session.scalars(select(DeletionRecord))).all()) == 1
    assert all(r.wrapped_key is None for i, r in (await _responses(ctx)).items() if i != recent)


async def _restore(ctx: AppContext, backup: dict[str, tuple[bytes | None, bytes]], *, released: str) -> None:
    """What restoring a backup made before the purge does: the rows as they were, no deletion record."""
    async with ctx.db.session() as session:
        for inquiry_id, (wrapped_key, ciphertext) in backup.items():
            response = await session.get(SealedResponse, inquiry_id)
            inquiry = await session.get(Inquiry, inquiry_id)
            assert response is not None and inquiry is not None
            response.wrapped_key, response.ciphertext = wrapped_key, ciphertext
            inquiry.response_state = "released" if inquiry_id == released else "held"
        await session.execute(delete(DeletionRecord))
        await session.execute(delete(PurgeRequest))
        await session.commit()
    assert all(r.wrapped_key is not None for r in (await _responses(ctx)).values())


async def test_a_journal_line_that_is_no_deletion_record_stops_the_reapplication(
    ctx: AppContext, demo: DemoCredentials
) -> None:
    """A damaged journal cannot say what the restore must destroy: the start fails rather than serve data
    that was destroyed."""
    path = journal.journal_path(ctx.settings)
    path.write_text('{"id": "x"}\n', encoding="ascii")
    with pytest.raises(journal.JournalUnreadable) as raised:
        await reapply_journal(ctx)
    assert raised.value.line_no == 1
    app = create_app(context=ctx, background_tasks=False)
    with pytest.raises(journal.JournalUnreadable):
        async with app.router.lifespan_context(app):
            pass


def test_the_use_period_is_policy_within_bounds(tmp_path: Path) -> None:
    """The use period is part of the versioned inquiry policy; one outside 1-3650 days refuses to start."""
    assert load_policy().response_use_days == 30
    bundled = json.loads(
        resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    )
    for days in (0, 3651):
        path = tmp_path / f"policy-{days}.json"
        path.write_text(json.dumps({**bundled, "response_use_days": days}), encoding="utf-8")
        with pytest.raises(PolicyError):
            load_policy(path)
    path = tmp_path / "policy-90.json"
    path.write_text(json.dumps({**bundled, "response_use_days": 90}), encoding="utf-8")
    assert load_policy(path).response_use_days == 90


async def test_a_lengthened_use_period_stops_an_approval_and_a_destroyed_response_asks_no_password(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A purge requested under 30 days and approved after the policy went to 90 would destroy responses
    still in use: the approval is refused and nothing is destroyed."""
    _, held, _ = await _old_and_recent(client, demo, ctx, clock)
    first, second = await _officers(client, demo, ctx, clock)
    purge = (await client.post("/retention/purges", json={"reason": "定例消去"}, headers=first)).json()
    kept = ctx.policy
    ctx.policy = kept.model_copy(update={"response_use_days": 90})
    try:
        refused = await client.post(f"/retention/purges/{purge['id']}/approve", headers=second)
    finally:
        ctx.policy = kept
    assert refused.status_code == 409 and refused.json()["code"] == "INVALID_STATE", refused.text
    assert all(r.wrapped_key is not None for r in (await _responses(ctx)).values())
    assert journal.entries(ctx.settings) == []

    # Approved under the policy it was requested under; then a release of the destroyed response is told
    # so before any password is judged (a mistyped one would count towards the confirmer's lockout).
    assert (await client.post(f"/retention/purges/{purge['id']}/approve", headers=second)).status_code == 200
    releaser = await auth_headers(client, demo, "cf001b")
    failures_before = len(await ledger_events(ctx, action="auth.login_failed"))
    release = await client.post(
        f"/inquiries/{held}/release",
        headers=releaser,
        json={"password": "not-the-password-1", "document_check": "match"},
    )
    assert release.status_code == 410 and release.json()["code"] == "RESPONSE_DESTROYED", release.text
    assert len(await ledger_events(ctx, action="auth.login_failed")) == failures_before


async def test_two_officers_requesting_at_once_make_one_purge(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    await _old_and_recent(client, demo, ctx, clock)
    first, second = await _officers(client, demo, ctx, clock)
    answers = await asyncio.gather(
        *(
            client.post("/retention/purges", json={"reason": "定例消去"}, headers=officer)
            for officer in (first, second, first, second)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    async with ctx.db.read_session() as session:
        assert len((await session.scalars(select(PurgeRequest))).all()) == 1


async def test_an_approval_whose_commit_failed_is_carried_out_from_the_journal_and_a_later_one_is_not_doubled(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The approval journals before it commits. When the commit then fails, the purge is still pending:
    the next re-application carries it out (with what it destroys then as its count). Another journaled
    attempt at a purge carried out under another record is no second deletion."""
    released, held, recent = await _old_and_recent(client, demo, ctx, clock)
    first, _ = await _officers(client, demo, ctx, clock)
    purge = (await client.post("/retention/purges", json={"reason": "定例消去"}, headers=first)).json()
    cutoff = purge["cutoff"].replace("Z", "+00:00")
    failed = _entry(
        id="0b8f6f0e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        range_to=cutoff,
        count=2,
        at=rfc3339(clock.now()).replace("Z", "+00:00"),
        purge_id=purge["id"],
    )
    journal.append(ctx.settings, failed)  # as approve_purge does just before the commit that then failed

    assert await reapply_journal(ctx) == 2
    stored = await _responses(ctx)
    assert stored[released].wrapped_key is None and stored[held].wrapped_key is None
    assert stored[recent].wrapped_key is not None
    auditor = await auth_headers(client, demo, "auditor")
    (carried_out,) = (await client.get("/retention/purges", headers=auditor)).json()["items"]
    assert (carried_out["status"], carried_out["deletion_id"]) == ("executed", failed.id)
    (deletion,) = (await client.get("/retention/deletions", headers=auditor)).json()["items"]
    assert (deletion["id"], deletion["count"], deletion["approver"]) == (failed.id, 2, "secoff2")

    # Another journaled attempt at the same purge, carried out since under the other record: no second
    # deletion, nothing recorded.
    journal.append(ctx.settings, replace(failed, id="5d2e7a90-3b4c-4d5e-9f60-718293a4b5c6"))
    events_before = len(await ledger_events(ctx, action="retention.reapplied"))
    assert await reapply_journal(ctx) == 0
    deletions = (await client.get("/retention/deletions", headers=auditor)).json()["items"]
    assert [d["id"] for d in deletions] == [failed.id]
    assert len(await ledger_events(ctx, action="retention.reapplied")) == events_before


def test_the_journal_passes_over_a_torn_last_line_and_refuses_a_directory(
    settings: Settings, tmp_path: Path
) -> None:
    """A crash during an append leaves an unterminated last line: its purge never committed (the append
    comes first), so it is passed over, and the next append does not run into it."""
    entry = _entry(id="a", range_to="2026-11-01T00:00:00+00:00", count=1, at="2026-11-02T00:00:00+00:00")
    journal.append(settings, entry)
    path = journal.journal_path(settings)
    path.write_bytes(path.read_bytes() + b'{"id": "b", "data_se')
    assert [e.id for e in journal.entries(settings)] == ["a"]
    journal.append(settings, replace(entry, id="c"))
    assert [e.id for e in journal.entries(settings)] == ["a", "c"]

    elsewhere = settings.model_copy(update={"deletion_journal_path": tmp_path})
    with pytest.raises(journal.JournalUnreadable, match="is a directory"):
        journal.entries(elsewhere)
    # SHOKAI_DELETION_JOURNAL_PATH= (empty) is the default next to the data, not the working directory.
    assert Settings(deletion_journal_path="", data_dir=tmp_path).deletion_journal_path is None


def test_an_append_waits_for_one_being_written_by_another_gateway_instead_of_cutting_it(
    settings: Settings,
) -> None:
    """Gateways sharing one journal file (docs/operations.md): a line another one is still writing looks
    like a torn tail, and cutting it would lose that purge's record from the journal."""
    journal.append(settings, _entry(id="a"))
    path = journal.journal_path(settings)
    other = _entry(id="other-gateway")
    line = (json.dumps(asdict(other), ensure_ascii=True, sort_keys=True) + "\n").encode()
    with path.open("ab") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        writer.write(line[:20])
        writer.flush()
        appending = threading.Thread(target=journal.append, args=(settings, _entry(id="b")))
        appending.start()
        appending.join(timeout=0.5)
        assert appending.is_alive()  # waiting for the other gateway's append
        writer.write(line[20:])
        writer.flush()
        fcntl.flock(writer.fileno(), fcntl.LOCK_UN)
    appending.join(timeout=10)
    assert [e.id for e in journal.entries(settings)] == ["a", "other-gateway", "b"]


async def test_a_server_database_with_the_journal_in_the_data_directory_is_warned_about(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    """With PostgreSQL several hosts serve one database: a journal in one host's data directory is
    not seen by the others' gateways, and is backed up with the directory."""
    with caplog.at_level("WARNING", logger="shokai.retention"):
        await reapply_journal(ctx)
    warned = [r for r in caplog.records if "SHOKAI_DELETION_JOURNAL_PATH" in r.getMessage()]
    assert bool(warned) == ctx.settings.database_url.startswith("postgresql")
    caplog.clear()
    ctx.settings = ctx.settings.model_copy(
        update={"deletion_journal_path": ctx.settings.data_dir / "j.jsonl"}
    )
    with caplog.at_level("WARNING", logger="shokai.retention"):
        await reapply_journal(ctx)
    assert not [r for r in caplog.records if "SHOKAI_DELETION_JOURNAL_PATH" in r.getMessage()]


async def test_a_restore_from_before_the_request_brings_back_one_deletion_per_purge_and_nothing_unapproved(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """The journal holds a failed approval and the one that committed, for one purge. A restore from
    before the request brings back one deletion, the committed one; and an entry the database already
    holds destroys nothing, not even a response stored since with a center time before its cutoff."""
    released, held, recent = await _old_and_recent(client, demo, ctx, clock)
    backup = {i: (r.wrapped_key, r.ciphertext) for i, r in (await _responses(ctx)).items()}
    first, second = await _officers(client, demo, ctx, clock)
    purge = (await client.post("/retention/purges", json={"reason": "定例消去"}, headers=first)).json()
    failed = _entry(
        id="7e3a1c2b-0000-4000-8000-000000000001",
        range_to=purge["cutoff"].replace("Z", "+00:00"),
        count=2,
        at=rfc3339(clock.now()).replace("Z", "+00:00"),
        purge_id=purge["id"],
    )
    journal.append(ctx.settings, failed)  # an approval whose commit failed, then approved again:
    approved = await client.post(f"/retention/purges/{purge['id']}/approve", headers=second)
    assert approved.status_code == 200, approved.text
    committed = approved.json()["deletion_id"]

    # A response stored since with a center time before the cutoff: no deletion covers it.
    async with ctx.db.session() as session:
        late = await session.get(SealedResponse, recent)
        assert late is not None
        late.received_at = datetime.fromisoformat(failed.range_to) - timedelta(hours=1)
        await session.commit()
    assert await reapply_journal(ctx) == 0
    assert (await _responses(ctx))[recent].wrapped_key is not None

    await _restore(ctx, {i: v for i, v in backup.items() if i != recent}, released=released)
    assert await reapply_journal(ctx) == 3  # the two of the purge, and the late one its cutoff covers
    async with ctx.db.read_session() as session:
        records = (await session.scalars(select(DeletionRecord))).all()
    assert [(r.id, r.count) for r in records] == [(committed, 2)]
    stored = await _responses(ctx)
    assert {stored[i].deletion_id for i in (released, held)} == {committed}


def test_a_journal_line_with_a_time_it_cannot_read_is_refused_and_the_file_is_the_owners(
    settings: Settings,
) -> None:
    entry = _entry(id="a", range_to="2026-11-01T00:00:00+00:00", count=1, at="2026-11-02T00:00:00+00:00")
    journal.append(settings, entry)
    path = journal.journal_path(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    for bad in (
        replace(entry, at="yesterday"),
        replace(entry, at="2026-11-02T00:00:00"),
        replace(entry, count=-1),
    ):
        path.write_text(json.dumps(bad.__dict__) + "\n", encoding="ascii")
        with pytest.raises(journal.JournalUnreadable):
            journal.entries(settings)


async def test_a_retried_request_and_approval_with_their_keys_make_one_purge_and_one_deletion(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """ER-2: an officer whose answer was lost sends the same call again with its Idempotency-Key and gets
    the purge it made, not 409; nothing is requested, destroyed, journaled or recorded twice."""
    _, _, recent = await _old_and_recent(client, demo, ctx, clock)
    first, second = await _officers(client, demo, ctx, clock)
    body = {"reason": "定例消去 11月分"}
    requests = [
        await client.post("/retention/purges", json=body, headers=first | {"Idempotency-Key": "req-1"})
        for _ in range(2)
    ]
    assert [r.status_code for r in requests] == [201, 201], [r.text for r in requests]
    purge_id = requests[0].json()["id"]
    assert requests[1].json()["id"] == purge_id
    other_reason = await client.post(
        "/retention/purges", json={"reason": "別の理由"}, headers=first | {"Idempotency-Key": "req-1"}
    )
    assert other_reason.status_code == 409 and other_reason.json()["code"] == "IDEMPOTENCY_KEY_REUSED"

    keyed = second | {"Idempotency-Key": "approve-1"}
    # The retry sent while the first attempt runs, and the one sent after it answered.
    racing = await asyncio.gather(
        *(client.post(f"/retention/purges/{purge_id}/approve", headers=keyed) for _ in range(2))
    )
    late = await client.post(f"/retention/purges/{purge_id}/approve", headers=keyed)
    answers = [*racing, late]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert len({a.json()["deletion_id"] for a in answers}) == 1
    assert all(a.json()["status"] == "executed" for a in answers)
    unkeyed = await client.post(f"/retention/purges/{purge_id}/approve", headers=second)
    assert unkeyed.status_code == 409 and unkeyed.json()["code"] == "INVALID_STATE"

    async with ctx.db.read_session() as session:
        assert len((await session.scalars(select(PurgeRequest))).all()) == 1
        assert len((await session.scalars(select(DeletionRecord))).all()) == 1
    assert len(journal.entries(ctx.settings)) == 1
    assert len(await ledger_events(ctx, action="retention.purged")) == 1
    assert len(await ledger_events(ctx, action="retention.purge_requested")) == 1

    # The approval key names that purge: used for another one it is another request, refused as such.
    reused = await client.post("/retention/purges/another-purge/approve", headers=keyed)
    assert reused.status_code == 409 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED", reused.text
    assert (await _responses(ctx))[recent].wrapped_key is not None

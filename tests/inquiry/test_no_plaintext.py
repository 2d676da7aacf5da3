"""A copied database reveals no names (EN-1): subjects and responses are sealed, the ledger holds pseudonyms.

Several inquiries about distinctive synthetic people are entered, sent, and some released and read
(so sealed responses with loans and addresses are stored; one draft's subject is changed before it
is sent, so an overwritten subject is covered too). Then the database is read as an attacker who
copied it would: on SQLite the raw bytes of the database file and its -wal/-shm files, on
PostgreSQL a plain ``pg_dump`` of the test database. No subject's kana or kanji name, birth date,
phone, postal code or address, and no string from a response (lender names, amounts, dates, as read
through the API) may appear — not as UTF-8, UTF-16, Shift_JIS/EUC-JP, JSON ``\\uXXXX`` escapes or hex
(how PostgreSQL dumps bytea). A known plaintext staff name is found by the same scan, so the scan
itself is proven to work.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.audit.models import AuditEvent
from app.center.simulator.population import Population
from app.clock import ManualClock
from app.context import AppContext
from app.crypto.keyring import Keyring, KeyringError
from app.crypto.sealed_text import open_text
from app.demo import DEMO_USERS, DemoCredentials
from app.inquiry.models import Inquiry, InquiryCorrection, OutboxMessage
from app.inquiry.sealing import subject_lookup_key
from app.inquiry.subject import normalise_kana, normalise_text
from app.migrate import downgrade, upgrade
from tests.governance.support import privileged_headers
from tests.inquiry.support import (
    as_user,
    center_record_when_nothing_waits,
    draft_body,
    password_of,
    synthetic_people,
)
from tests.support.pgserver import PostgresServer

ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "cp932", "euc_jp")
RELEASED = 4  # of the subjects, the first RELEASED are released and read; the rest stay held


def _spellings(value: str) -> set[str]:
    """A name or address as typed, as normalised by the gateway, and with its spaces dropped."""
    forms = {value, normalise_kana(value), normalise_text(value) or value}
    return forms | {f.replace(" ", "").replace("\u3000", "") for f in forms}


def _subject_needles(person: dict[str, Any]) -> set[str]:
    needles = _spellings(person["name_kana"]) | _spellings(person["name_kanji"])
    needles |= _spellings(person["address"])
    birth = str(person["birth_date"])
    needles |= {birth, birth.replace("-", ""), birth.replace("-", "/")}
    needles |= {person["phone"], person["phone"].replace("-", ""), person["postal_code"]}
    return needles


def _json_fragments(key: str, value: Any) -> set[str]:
    return {
        json.dumps({key: value}, ensure_ascii=False)[1:-1],
        json.dumps({key: value}, ensure_ascii=False, separators=(",", ":"))[1:-1],
    }


def _response_needles(record: dict[str, Any]) -> set[str]:
    """Distinctive strings of a released response: who lent what, how much, since when."""
    body = record["record"]
    needles: set[str] = set()
    for loan in body["loans"]:
        needles.add(loan["lender"])
        for key in ("amount", "balance", "monthly_payment", "started_on"):
            needles |= _json_fragments(key, loan[key])
        needles.add(loan["started_on"])
    for card in body["cards"]:
        needles.add(card["issuer"])
        needles |= _json_fragments("credit_limit", card["credit_limit"])
        needles.add(card["contracted_on"])
    address = body["latest_address"]
    needles |= _spellings(address["address"]) | {address["registered_on"]}
    return needles


def _patterns(needle: str) -> set[bytes]:
    """Every byte form in which ``needle`` could sit in a database file or a dump."""
    patterns: set[bytes] = set()
    for encoding in ENCODINGS:
        try:
            raw = needle.encode(encoding)
        except UnicodeEncodeError:
            continue
        patterns |= {raw, raw.hex().encode(), raw.hex().upper().encode()}
    escaped = json.dumps(needle)[1:-1]
    patterns |= {escaped.encode(), escaped.upper().replace("\\U", "\\u").encode()}
    return patterns


def _leaks(haystack: bytes, needles: Iterable[str]) -> list[str]:
    return sorted({needle for needle in needles for pattern in _patterns(needle) if pattern in haystack})


def _sqlite_bytes(database_url: str) -> bytes:
    path = Path(str(make_url(database_url).database))
    parts = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def _pg_dump(server: PostgresServer, database_url: str) -> bytes:
    """A plain-format dump, made the way the harness runs its client tools (psql) against the server."""
    database = str(make_url(database_url).database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(
        [
            str(Path(server.bindir) / "pg_dump"),
            "--no-password",
            "-h",
            server.host,
            "-p",
            str(server.port),
            "-U",
            server.superuser,
            "-d",
            database,
        ],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"COPY public.inquiry_responses" in result.stdout
    return result.stdout


async def _copied_database(backend: str, database_url: str, request: pytest.FixtureRequest) -> bytes:
    if backend == "sqlite":
        return _sqlite_bytes(database_url)
    return _pg_dump(request.getfixturevalue("pg_server"), database_url)


async def _distinctive_people(ctx: AppContext, population: Population, count: int) -> list[dict[str, Any]]:
    """People with loans (so responses carry lenders and amounts), none sharing a surname or staff data."""
    staff = {normalise_kana(u.name_kana).replace(" ", "") for u in DEMO_USERS}
    staff_births = {u.birth_date.isoformat() for u in DEMO_USERS}
    chosen: list[dict[str, Any]] = []
    surnames: set[str] = set()
    for person in await synthetic_people(ctx, limit=200):
        surname = normalise_kana(person["name_kana"]).split(" ")[0]
        if (
            population[person["index"]].loans
            and normalise_kana(person["name_kana"]).replace(" ", "") not in staff
            and person["birth_date"] not in staff_births
            and surname not in surnames
        ):
            chosen.append(person)
            surnames.add(surname)
        if len(chosen) == count:
            return chosen
    raise AssertionError("the simulator's population has too few distinct people")


def _full_body(person: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = draft_body(person, **overrides)
    body["subject"] |= {"phone": person["phone"], "postal_code": person["postal_code"]}
    return body


async def test_a_copied_database_reveals_no_subject_and_no_response(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    backend: str,
    database_url: str,
    request: pytest.FixtureRequest,
    center_population: Population,
) -> None:
    people = await _distinctive_people(ctx, center_population, 7)
    before = await _copied_database(backend, database_url, request)
    sent, replaced = people[:6], people[6]
    operator = await as_user(client, demo, "op001")
    releaser = await as_user(client, demo, "cf001b")
    a1 = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }

    inquiries: list[tuple[str, dict[str, Any]]] = []
    response_needles: set[str] = set()
    for index, person in enumerate(sent):
        if index == len(sent) - 1:
            # A draft about someone else, then changed to this person before it is sent.
            draft = await client.post("/inquiries", json=_full_body(replaced), headers=operator)
            assert draft.status_code == 201, draft.text
            changed = await client.patch(
                f"/inquiries/{draft.json()['id']}",
                json={"subject": _full_body(person)["subject"]},
                headers=operator,
            )
            assert changed.status_code == 200, changed.text
            submitted = await client.post(
                f"/inquiries/{draft.json()['id']}/submit", json={"approval": a1}, headers=operator
            )
            assert submitted.status_code == 200, submitted.text
            created = submitted
        else:
            created = await client.post("/inquiries", json=_full_body(person, approval=a1), headers=operator)
            assert created.status_code == 201, created.text
        inquiry = created.json()
        assert inquiry["status"] == "held", inquiry
        inquiries.append((inquiry["id"], person))
        if index < RELEASED:
            released = await client.post(
                f"/inquiries/{inquiry['id']}/release",
                json={"password": password_of(demo, "cf001b"), "document_check": "match"},
                headers=releaser,
            )
            assert released.status_code == 200, released.text
            read = await client.get(f"/inquiries/{inquiry['id']}/response", headers=operator)
            assert read.status_code == 200, read.text
            record = read.json()["record"]
            assert record["result"] == "found" and record["record"]["loans"], record
            response_needles |= _response_needles(record)

    subject_needles = set().union(*(_subject_needles(p) for p in people))
    copied = await _copied_database(backend, database_url, request)

    # The scan finds plaintext where plaintext is allowed: staff names in the directory.
    assert _leaks(copied, ["佐藤 花子", "サトウ ハナコ"]) == ["サトウ ハナコ", "佐藤 花子"]
    # A response string already in the database before any inquiry (a date that happens to be a
    # staff birthday, say) proves nothing either way: only distinctive strings are looked for.
    assert _leaks(before, subject_needles) == []
    response_needles -= set(_leaks(before, response_needles))
    assert len(response_needles) >= 20
    assert _leaks(copied, subject_needles) == []
    assert _leaks(copied, response_needles) == []

    # The ledger names each subject only by its keyed pseudonym.
    async with ctx.db.read_session() as session:
        events = list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())
        rows = {i.id: i for i in (await session.scalars(select(Inquiry))).all()}
    ledger_text = "\n".join(
        f"{e.actor_id}|{e.actor_roles}|{e.action}|{e.object_id}|{e.details}" for e in events
    ).encode()
    assert _leaks(ledger_text, subject_needles | response_needles) == []

    def pseudonym(person: dict[str, Any]) -> str:
        key = subject_lookup_key(normalise_kana(person["name_kana"]), person["birth_date"])
        return ctx.keyring.pseudonym(key, domain="subject")

    for index, (inquiry_id, person) in enumerate(inquiries):
        assert rows[inquiry_id].subject_pseudonym == pseudonym(person)
        mentioned = [
            json.loads(e.details).get("subject_pseudonym") for e in events if e.object_id == inquiry_id
        ]
        mentioned = [m for m in mentioned if m is not None]
        # created, (draft_changed,) and a pseudonym on every read of the response
        expected = [pseudonym(person)] * (1 + (index < RELEASED) * 2)
        if index == len(inquiries) - 1:
            expected = [pseudonym(replaced), pseudonym(person)]
        assert mentioned == expected
    assert len({pseudonym(p) for p in people}) == len(people)


@dataclass
class StaffNotes:
    """What staff wrote about three subjects, and where."""

    people: list[dict[str, Any]]
    written: dict[str, str]
    inquiries: dict[str, str]
    escalation_id: str = ""
    list_id: str = ""
    run_id: str = ""
    incident_id: str = ""

    def names(self) -> set[str]:
        return set().union(*(_spellings(p["name_kanji"]) | _spellings(p["name_kana"]) for p in self.people))

    def phrases(self) -> set[str]:
        """The words after each note's name: distinctive, and no part of any subject's data."""
        return {words.split("）", 1)[1] for words in self.written.values()}


async def _write_staff_notes(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    population: Population,
) -> StaffNotes:
    """A mismatch remark and what was done about it, a cancellation and a correction reason, a list
    line's check note and an auditor's words on a report, each naming its subject."""
    mismatched, cancelled, corrected = await _distinctive_people(ctx, population, 3)
    operator = await as_user(client, demo, "op001")
    a1 = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": password_of(demo, "cf001"),
    }
    held = {}
    for key, person in (("mismatched", mismatched), ("cancelled", cancelled), ("corrected", corrected)):
        created = await client.post("/inquiries", json=_full_body(person, approval=a1), headers=operator)
        assert created.json()["status"] == "held", created.text
        held[key] = created.json()["id"]

    def about(person: dict[str, Any], words: str) -> str:
        return f"{person['name_kanji']}様（{person['name_kana']}）{words}"

    notes = StaffNotes(
        [mismatched, cancelled, corrected],
        {
            "remark": about(mismatched, "の同意書の署名が申込書と異なる"),
            "handled": about(mismatched, "に電話で本人確認、回答は利用しない"),
            "cancel": about(cancelled, "から申込撤回の連絡あり"),
            "correct": about(corrected, "の照会目的を入力誤りのため訂正"),
            "check": about(mismatched, "の申込書原本と照合"),
            "audit": about(cancelled, "の照会は支店長に確認済み"),
            "incident": about(mismatched, "の情報の目的外照会の疑い"),
            "timeline": about(mismatched, "へ電話で経緯を説明"),
            "cause": about(mismatched, "の申込書を別の担当者が流用"),
            "prevention": about(mismatched, "の件を受け同意書の原本確認を二重化"),
        },
        held,
    )
    written = notes.written
    releaser = await as_user(client, demo, "cf001b")
    released = await client.post(
        f"/inquiries/{held['mismatched']}/release",
        json={
            "password": password_of(demo, "cf001b"),
            "document_check": "mismatch",
            "note": written["remark"],
        },
        headers=releaser,
    )
    assert released.status_code == 200, released.text
    cancel = await client.post(
        f"/inquiries/{held['cancelled']}/cancel",
        json={"reason": written["cancel"], "approval": a1},
        headers=operator,
    )
    assert cancel.status_code == 200, cancel.text
    ledger = {"type": "ledger", "reference": "LG-2026-000999", "obtained_on": "2026-11-20"}
    correct = await client.post(
        f"/inquiries/{held['corrected']}/correct",
        json={
            "reason": written["correct"],
            "corrections": {"purpose": "guarantor", "consent_document": ledger},
            "approval": a1,
        },
        headers=operator,
    )
    assert correct.status_code == 200, correct.text
    manager = await as_user(client, demo, "bm001")
    [escalation] = (await client.get("/escalations", headers=manager)).json()["items"]
    assert escalation["note"] == written["remark"]
    notes.escalation_id = escalation["id"]
    handled = await client.post(
        f"/escalations/{escalation['id']}/acknowledge", json={"note": written["handled"]}, headers=manager
    )
    assert handled.json()["acknowledgement_note"] == written["handled"], handled.text

    clock.advance(days=1)
    hq = await as_user(client, demo, "hqop")
    generated = await client.post(
        "/daily-lists/generate", json={"business_date": "2026-11-24", "branch_code": "001"}, headers=hq
    )
    [subject_list] = [item for item in generated.json()["items"] if item["kind"] == "subject"]
    checker = await as_user(client, demo, "cf001b")
    checked = await client.post(
        f"/daily-lists/{subject_list['id']}/lines/1/check",
        json={"result": "matched", "note": written["check"]},
        headers=checker,
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["check_note"] == written["check"]
    auditor = await as_user(client, demo, "auditor")
    run = (
        await client.get(
            "/audit/anomalies", params={"from": "2026-11-24", "to": "2026-11-24"}, headers=auditor
        )
    ).json()["run"]
    acked = await client.post(
        f"/audit/reports/{run['id']}/acknowledge", json={"note": written["audit"]}, headers=auditor
    )
    assert acked.json()["acknowledgement_note"] == written["audit"], acked.text
    notes.list_id, notes.run_id = subject_list["id"], run["id"]

    officer = await privileged_headers(client, demo, clock, "secoff")
    opened = await client.post(
        "/incidents",
        json={"title": written["incident"], "severity": "high", "branch_code": "001"},
        headers=officer,
    )
    assert opened.status_code == 201, opened.text
    notes.incident_id = opened.json()["id"]
    entry = await client.post(
        f"/incidents/{notes.incident_id}/entries", json={"text": written["timeline"]}, headers=officer
    )
    assert entry.status_code == 200, entry.text
    closed = await client.post(
        f"/incidents/{notes.incident_id}/close",
        json={"cause": written["cause"], "recurrence_prevention": written["prevention"]},
        headers=officer,
    )
    assert closed.status_code == 200, closed.text
    return notes


async def _each_note_reads_back_whole(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, notes: StaffNotes
) -> None:
    """Everyone entitled reads each note as it was written: through the API, or (the reasons, which
    only the ledger of the inquiry's life refers to) from the rows."""
    written = notes.written
    checker = await as_user(client, demo, "cf001b")
    detail = (await client.get(f"/daily-lists/{notes.list_id}", headers=checker)).json()
    assert detail["lines"][0]["check_note"] == written["check"]
    manager = await as_user(client, demo, "bm001")
    [closed] = (await client.get("/escalations", params={"state": "all"}, headers=manager)).json()["items"]
    assert (closed["note"], closed["acknowledgement_note"]) == (written["remark"], written["handled"])
    auditor = await as_user(client, demo, "auditor")
    stored = (await client.get(f"/audit/reports/{notes.run_id}", headers=auditor)).json()["run"]
    assert stored["acknowledgement_note"] == written["audit"]
    incident = (await client.get(f"/incidents/{notes.incident_id}", headers=auditor)).json()
    assert (incident["title"], incident["cause"], incident["recurrence_prevention"]) == (
        written["incident"],
        written["cause"],
        written["prevention"],
    )
    assert [e["text"] for e in incident["timeline"]] == [written["incident"], written["timeline"], "closed"]
    async with ctx.db.read_session() as session:
        cancelled = await session.get(Inquiry, notes.inquiries["cancelled"])
        correction = await session.scalar(
            select(InquiryCorrection).where(InquiryCorrection.inquiry_id == notes.inquiries["corrected"])
        )
    assert cancelled is not None and correction is not None
    assert open_text(ctx.keyring, cancelled, "cancel_reason") == written["cancel"]
    assert open_text(ctx.keyring, correction, "reason") == written["correct"]


async def test_staff_notes_naming_a_subject_are_sealed_in_a_copied_database_and_read_back_whole(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    backend: str,
    database_url: str,
    request: pytest.FixtureRequest,
    center_population: Population,
) -> None:
    """Staff write about the person in front of them: a cancellation or correction reason, a list line's
    check note, the circumstances of a document mismatch, what was done about its escalation, an auditor's
    words on a report. None of it may be readable in a copied database, while everyone entitled reads it
    back as written and the center still gets the cancellation and the correction."""
    notes = await _write_staff_notes(client, demo, ctx, clock, center_population)

    # The cancellation and the correction reached the center from their sealed outbox rows.
    kinds = sorted(entry["kind"] for entry in await center_record_when_nothing_waits(ctx))
    assert kinds == ["cancellation", "correction", "inquiry", "inquiry", "inquiry"]

    copied = await _copied_database(backend, database_url, request)
    assert _leaks(copied, notes.names() | notes.phrases()) == []
    await _each_note_reads_back_whole(client, demo, ctx, notes)


async def _plain_columns(database_url: str) -> dict[str, list[str]]:
    """The staff text in the columns that held it before migration 0017, read as plain SQL."""
    queries = {
        "cancel": "SELECT cancel_reason FROM inquiries WHERE cancel_reason IS NOT NULL",
        "correct": "SELECT reason FROM inquiry_corrections",
        "outbox": "SELECT payload FROM center_outbox WHERE payload IS NOT NULL ORDER BY kind",
        "check": "SELECT note FROM daily_list_lines WHERE note IS NOT NULL",
        "escalation": "SELECT note, acknowledgement_note FROM escalations",
        "audit": "SELECT acknowledgement_note FROM audit_report_runs WHERE acknowledgement_note IS NOT NULL",
        "incident": "SELECT title, cause, recurrence_prevention FROM incidents",
        "timeline": "SELECT text FROM incident_entries ORDER BY id",
    }
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                name: [" | ".join(map(str, row)) for row in (await connection.execute(text(query))).all()]
                for name, query in queries.items()
            }
    finally:
        await engine.dispose()


async def test_migration_0017_seals_notes_already_written_and_its_downgrade_opens_them_again(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    backend: str,
    database_url: str,
    request: pytest.FixtureRequest,
    center_population: Population,
) -> None:
    """An instance that kept staff notes in plain columns (before 0017) has them sealed by the upgrade,
    with the instance's keys, and still reads every one; going back opens them into those columns."""
    notes = await _write_staff_notes(client, demo, ctx, clock, center_population)
    written = notes.written
    await center_record_when_nothing_waits(ctx)  # the cancellation and the correction are sent
    await ctx.db.dispose()  # no pooled connection holds the tables the migrations alter

    await asyncio.to_thread(downgrade, database_url, "0016", keyring=ctx.keyring)
    plain = await _plain_columns(database_url)
    assert plain == {
        "cancel": [written["cancel"]],
        "correct": [written["correct"]],
        "outbox": [
            json.dumps({"reason": written["cancel"]}),
            json.dumps({"reason": written["correct"], "purpose": "guarantor"}),
        ],
        "check": [written["check"]],
        "escalation": [f"{written['remark']} | {written['handled']}"],
        "audit": [written["audit"]],
        "incident": [f"{written['incident']} | {written['cause']} | {written['prevention']}"],
        "timeline": [written["incident"], written["timeline"], "closed"],
    }
    assert _leaks(await _copied_database(backend, database_url, request), notes.phrases())

    # Without the keys the upgrade stops before it changes anything, so the retry with them goes through.
    def no_keys() -> Keyring:
        raise KeyringError("no key material found")

    with pytest.raises(RuntimeError, match="needs the instance's keys"):
        await asyncio.to_thread(upgrade, database_url, keyring=no_keys)
    assert await _plain_columns(database_url) == plain
    await asyncio.to_thread(upgrade, database_url, keyring=ctx.keyring)
    assert (
        _leaks(await _copied_database(backend, database_url, request), notes.names() | notes.phrases()) == []
    )
    await _each_note_reads_back_whole(client, demo, ctx, notes)
    async with ctx.db.read_session() as session:
        payloads = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.kind))).all()
    assert [
        json.loads(open_text(ctx.keyring, m, "payload", key=m.idempotency_key) or "null") for m in payloads
    ] == [
        {"reason": written["cancel"]},
        {"reason": written["correct"], "purpose": "guarantor"},
        None,
        None,
        None,
    ]

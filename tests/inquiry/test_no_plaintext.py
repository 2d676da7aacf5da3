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

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.audit.models import AuditEvent
from app.center.simulator.population import Population
from app.context import AppContext
from app.demo import DEMO_USERS, DemoCredentials
from app.inquiry.models import Inquiry
from app.inquiry.sealing import subject_lookup_key
from app.inquiry.subject import normalise_kana, normalise_text
from tests.inquiry.support import as_user, draft_body, password_of, synthetic_people
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

"""PL-4 outside an inquiry's own body: an Individual Number typed into governance free text — an
emergency switch's reason, a user's name or phone — is refused with MY_NUMBER_FORBIDDEN before anything
is written, the attempt is recorded by who made it (its code, never the text), and no trace of the
number reaches the ledger, which could never give it back up."""

from __future__ import annotations

import json
from datetime import date

import httpx

from app.audit.forensics import subject_pseudonym
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from tests.governance.support import privileged_headers
from tests.helpers import (
    MY_NUMBER,
    MY_NUMBER_GROUPED,
    auth_headers,
    ledger_events,
    ledger_text,
    my_number_forbidden,
)


async def test_an_emergency_switch_with_a_number_in_its_reason_is_not_thrown_and_the_attempt_is_recorded(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    officer = await privileged_headers(client, demo, clock, "secoff")
    refused = my_number_forbidden(
        await client.post(
            "/emergency/suspensions",
            json={"scope": "user", "target": "cf002", "reason": f"顧客の個人番号 {MY_NUMBER_GROUPED} を使用"},
            headers=officer,
        )
    )
    assert [error["loc"] for error in refused["errors"]] == [["body", "reason"]]
    # Not thrown: the confirmer still logs in.
    assert (await auth_headers(client, demo, "cf002"))["Authorization"]
    attempts = await ledger_events(ctx, action="request.refused")
    assert [(e.actor_id, e.outcome, json.loads(e.details)["code"]) for e in attempts] == [
        ("secoff", "denied", "MY_NUMBER_FORBIDDEN")
    ]
    text = await ledger_text(ctx)
    assert MY_NUMBER not in text and MY_NUMBER_GROUPED not in text

    # The number is named even when the body has another fault too; twelve digits that are not an
    # Individual Number (wrong check digit) are ordinary text.
    both = await client.post(
        "/emergency/suspensions", json={"scope": "planet", "reason": MY_NUMBER}, headers=officer
    )
    assert {tuple(error["loc"]) for error in my_number_forbidden(both)["errors"]} == {
        ("body", "scope"),
        ("body", "reason"),
    }
    wrong_digit = MY_NUMBER[:11] + str((int(MY_NUMBER[11]) + 1) % 10)
    thrown = await client.post(
        "/emergency/suspensions",
        json={"scope": "user", "target": "cf002", "reason": f"照会 {wrong_digit} の件"},
        headers=officer,
    )
    assert thrown.status_code == 201, thrown.text


async def test_a_user_cannot_be_created_with_a_number_in_a_name_or_phone(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    admin = await privileged_headers(client, demo, clock, "accadmin")
    for field, value in (("name", f"試験 太郎 {MY_NUMBER}"), ("phone", MY_NUMBER_GROUPED), ("id", MY_NUMBER)):
        body = {"id": "newuser01", "name": "試験 太郎", field: value}
        my_number_forbidden(await client.post("/users", json=body, headers=admin))
    # A terminal's ID is recorded with every request from it, so it may not be one either.
    terminal = {"id": MY_NUMBER_GROUPED, "branch_code": "001"}
    my_number_forbidden(await client.post("/terminals", json=terminal, headers=admin))
    assert MY_NUMBER not in await ledger_text(ctx)
    # Nothing of the refused attempts was kept: the same ID is still free.
    created = await client.post(
        "/users", json={"id": "newuser01", "name": "試験 太郎", "phone": "03-1234-5678"}, headers=admin
    )
    assert created.status_code == 201, created.text


async def test_a_person_is_named_to_an_incident_or_the_access_query_only_by_pseudonym(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """An incident's affected subjects are kept in its register and a subject-access query's pseudonym in
    the ledger (AC-6): a name or an Individual Number typed there instead is refused and kept nowhere."""
    officer = await privileged_headers(client, demo, clock, "secoff")
    pseudonym = subject_pseudonym(ctx, name_kana="シケン ハナコ", birth_date=date(1985, 6, 7))
    incident = {"title": "目的外照会の疑い", "severity": "high", "affected_subjects": [pseudonym]}
    my_number_forbidden(
        await client.post("/incidents", json={**incident, "affected_subjects": [MY_NUMBER]}, headers=officer)
    )
    named = await client.post(
        "/incidents", json={**incident, "affected_subjects": ["シケン ハナコ"]}, headers=officer
    )
    assert named.status_code == 422 and named.json()["code"] == "VALIDATION_ERROR"
    assert "シケン" not in named.text
    opened = await client.post("/incidents", json=incident, headers=officer)
    assert opened.status_code == 201, opened.text
    assert opened.json()["affected_subjects"] == [pseudonym]
    assert len((await client.get("/incidents", headers=officer)).json()["items"]) == 1

    auditor = await auth_headers(client, demo, "auditor")
    # A number is told it may not be typed at all (PL-4); a name, that it is no pseudonym.
    for typed, code in ((MY_NUMBER, "MY_NUMBER_FORBIDDEN"), ("シケン ハナコ", "VALIDATION_ERROR")):
        query = await client.get(
            "/audit/subject-access", params={"subject_pseudonym": typed}, headers=auditor
        )
        assert query.status_code == 422 and query.json()["code"] == code
    answered = await client.get(
        "/audit/subject-access", params={"subject_pseudonym": pseudonym}, headers=auditor
    )
    assert answered.status_code == 200, answered.text
    text = await ledger_text(ctx)
    assert MY_NUMBER not in text and "シケン" not in text and pseudonym in text


async def test_a_pseudonym_whose_hex_digits_read_as_a_number_is_a_pseudonym_in_any_body(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A pseudonym is 32 hex digits; in about one in a thousand of them twelve in a row are decimal and
    carry a valid check digit. The officer naming that person to an incident, who got another field
    wrong, must hear what is wrong, not be told an Individual Number was typed."""
    officer = await privileged_headers(client, demo, clock, "secoff")
    key_id = subject_pseudonym(ctx, name_kana="シケン ハナコ", birth_date=date(1985, 6, 7)).split(":")[0]
    pseudonym = f"{key_id}:abcdef{MY_NUMBER}abcdefabcdefab"
    incident = {"title": "目的外照会の疑い", "severity": "high", "affected_subjects": [pseudonym]}

    wrong = await client.post("/incidents", json={**incident, "severity": "urgent"}, headers=officer)
    assert wrong.status_code == 422 and wrong.json()["code"] == "VALIDATION_ERROR", wrong.text
    assert [error["loc"] for error in wrong.json()["errors"]] == [["body", "severity"]]
    opened = await client.post("/incidents", json=incident, headers=officer)
    assert opened.status_code == 201, opened.text
    assert opened.json()["affected_subjects"] == [pseudonym]
    # The same digits anywhere a person types are still the number.
    my_number_forbidden(
        await client.post(
            "/incidents", json={**incident, "severity": "urgent", "title": pseudonym}, headers=officer
        )
    )

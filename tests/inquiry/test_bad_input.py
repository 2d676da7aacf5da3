"""Bad input at the inquiry endpoints (ER-1): 422 with a stable code, nothing written, no record stuck."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, or_, select

from app.audit.models import AuditEvent
from app.context import AppContext
from app.crypto.sealed_text import open_text
from app.demo import DemoCredentials
from app.inquiry import outbox
from app.inquiry.models import IdempotencyRecord, Inquiry, OutboxMessage
from app.inquiry.sealing import open_subject, seal_subject
from tests.helpers import ledger_events
from tests.inquiry.support import as_user, center_record, draft_body, password_of, person


def _a1(demo: DemoCredentials, confirmer: str = "cf001") -> dict[str, str]:
    return {
        "method": "confirmer_credentials",
        "confirmer_user_id": confirmer,
        "confirmer_password": password_of(demo, confirmer),
    }


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "VALIDATION_ERROR"


async def _written(ctx: AppContext) -> dict[str, int]:
    """Rows an inquiry request could leave behind, and what the center recorded."""
    counts: dict[str, int] = {}
    async with ctx.db.read_session() as session:
        for model in (Inquiry, OutboxMessage, IdempotencyRecord):
            counts[model.__name__] = int(await session.scalar(select(func.count()).select_from(model)) or 0)
        # The ledger's inquiry events; the background jobs write their own meanwhile.
        inquiry_events = or_(AuditEvent.action.like("inquiry.%"), AuditEvent.action.like("center.%"))
        counts["events"] = int(
            await session.scalar(select(func.count()).select_from(AuditEvent).where(inquiry_events)) or 0
        )
    counts["center"] = len(await center_record(ctx))
    return counts


# -- NUL and lone surrogates: text no column can hold -------------------------------------------------


async def test_a_nul_anywhere_in_a_request_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001b")
    held = await client.post(
        "/inquiries", json=draft_body(await person(ctx, index=1), approval=_a1(demo)), headers=operator
    )
    assert held.json()["status"] == "held"
    held_id = held.json()["id"]
    before = await _written(ctx)

    subject = await person(ctx)
    with_reference = draft_body(subject)
    with_reference["consent_document"]["reference"] = "LA-\x00-1"
    _refused(await client.post("/inquiries", json=with_reference, headers=operator))
    confirmer_id = dict(_a1(demo), confirmer_user_id="cf\x00")
    _refused(
        await client.post("/inquiries", json=draft_body(subject, approval=confirmer_id), headers=operator)
    )
    lone_surrogate = draft_body(subject)
    lone_surrogate["subject"]["address"] = "東京都\ud800"
    # Only as an escape: a lone surrogate has no UTF-8 form.
    as_json = {**operator, "Content-Type": "application/json"}
    _refused(await client.post("/inquiries", content=json.dumps(lone_surrogate), headers=as_json))
    keyed = {**operator, "Idempotency-Key": "terminal-T001-\x00"}
    _refused(await client.post("/inquiries", json=draft_body(subject), headers=keyed))
    _refused(
        await client.post(
            f"/inquiries/{held_id}/cancel", json={"reason": "a\x00b", "approval": _a1(demo)}, headers=operator
        )
    )
    release = {"password": password_of(demo, "cf001b"), "document_check": "mismatch", "note": "n\x00"}
    _refused(await client.post(f"/inquiries/{held_id}/release", json=release, headers=confirmer))
    _refused(await client.post("/inquiries/%00/submit", json={"approval": _a1(demo)}, headers=operator))
    _refused(await client.get("/inquiries/%00", headers=operator))
    _refused(await client.get("/inquiries?status=%00", headers=operator))
    _refused(await client.get("/inquiries", params={"operator_id": "op\x00"}, headers=operator))

    assert await _written(ctx) == before
    still = await client.get(f"/inquiries/{held_id}", headers=operator)
    assert still.json()["status"] == "held"


async def test_text_that_only_looks_like_a_nul_is_accepted(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A backslash typed before "u0000" is text, not a NUL: the guard decodes before it refuses."""
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    body["consent_document"]["reference"] = "LA\\u0000-100%00"
    created = await client.post("/inquiries", json=body, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["consent_document"]["reference"] == "LA\\u0000-100%00"


# -- list cursors -------------------------------------------------------------------------------------


async def test_a_malformed_list_cursor_is_refused_and_a_real_one_pages_on(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    for index in range(3):
        created = await client.post(
            "/inquiries", json=draft_body(await person(ctx, index=index)), headers=operator
        )
        assert created.status_code == 201, created.text
    for cursor in (
        "garbage",
        "2026-01-01",
        "2026-11-24T01:00:00|x",
        "|",
        "2026-11-24T01:00:00+00:00",
        "0001-01-01T00:00:00+01:00|x",  # before year 1 in UTC
        "9999-12-31T23:59:59-01:00|x",  # after year 9999 in UTC
    ):
        _refused(await client.get("/inquiries", params={"cursor": cursor}, headers=operator))
    first = (await client.get("/inquiries", params={"limit": 2}, headers=operator)).json()
    rest = await client.get(
        "/inquiries", params={"limit": 2, "cursor": first["next_cursor"]}, headers=operator
    )
    assert rest.status_code == 200, rest.text
    seen = [item["id"] for item in first["items"] + rest.json()["items"]]
    assert len(seen) == len(set(seen)) == 3


async def test_a_status_filter_outside_the_state_machine_is_refused_not_answered_empty(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    created = await client.post("/inquiries", json=draft_body(await person(ctx)), headers=operator)
    assert created.status_code == 201, created.text
    _refused(await client.get("/inquiries", params={"status": "awaiting"}, headers=operator))
    waiting = await client.get("/inquiries", params={"status": "awaiting_approval"}, headers=operator)
    assert [item["id"] for item in waiting.json()["items"]] == [created.json()["id"]]
    held = await client.get("/inquiries", params={"status": "held"}, headers=operator)
    assert held.status_code == 200 and held.json()["items"] == []


async def test_a_list_cursor_survives_a_url_built_by_hand_and_old_cursors_still_page_on(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    for index in range(3):
        created = await client.post(
            "/inquiries", json=draft_body(await person(ctx, index=index)), headers=operator
        )
        assert created.status_code == 201, created.text
    everything = (await client.get("/inquiries", headers=operator)).json()["items"]
    first = (await client.get("/inquiries", params={"limit": 1}, headers=operator)).json()
    cursor = first["next_cursor"]
    # A terminal that pastes the cursor into the query string without encoding it.
    assert "+" not in cursor and " " not in cursor and "&" not in cursor and "#" not in cursor
    pasted = await client.get(f"/inquiries?limit=1&cursor={cursor}", headers=operator)
    assert pasted.status_code == 200, pasted.text
    assert [item["id"] for item in pasted.json()["items"]] == [everything[1]["id"]]
    # A cursor as written before (offset "+00:00"), encoded properly and pasted raw ("+" read as space).
    at, _, last_id = cursor.partition("|")
    old_style = at.removesuffix("Z") + "+00:00|" + last_id
    for response in (
        await client.get("/inquiries", params={"limit": 1, "cursor": old_style}, headers=operator),
        await client.get(f"/inquiries?limit=1&cursor={old_style}", headers=operator),
    ):
        assert response.status_code == 200, response.text
        assert [item["id"] for item in response.json()["items"]] == [everything[1]["id"]]


# -- text that NFKC lengthens past the center's limits --------------------------------------------------


def _fields(response: httpx.Response) -> list[list[str]]:
    return [error["loc"] for error in response.json()["errors"]]


async def test_a_subject_that_normalisation_lengthens_past_the_centers_limits_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """'㌀' is one character as typed and 'アパート' once normalised (NFKC), '㍿' is '株式会社': within
    the limits as typed, past the center's after. Refused at entry, so no inquiry waits for ever."""
    operator = await as_user(client, demo, "op001")
    subject = await person(ctx)
    draft = await client.post("/inquiries", json=draft_body(subject), headers=operator)
    before = await _written(ctx)

    long_kana = draft_body(subject, approval=_a1(demo))
    long_kana["subject"]["name_kana"] = "㌀" * 30
    refused = await client.post("/inquiries", json=long_kana, headers=operator)
    _refused(refused)
    assert _fields(refused) == [["body", "subject", "name_kana"]]
    assert "㌀" not in refused.text
    long_address = draft_body(subject, approval=_a1(demo))
    long_address["subject"]["address"] = "東京都千代田区丸の内1-1 " + "㍿" * 60
    _refused(await client.post("/inquiries", json=long_address, headers=operator))
    changed = await client.patch(
        f"/inquiries/{draft.json()['id']}", json={"subject": long_address["subject"]}, headers=operator
    )
    _refused(changed)
    assert _fields(changed) == [["body", "subject", "address"]]

    assert await _written(ctx) == before
    kept = await client.get(f"/inquiries/{draft.json()['id']}", headers=operator)
    assert kept.json()["subject"]["address"] == subject["address"]


async def test_a_half_width_kana_name_is_judged_by_its_length_once_folded(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A terminal keying half-width kana sends 'ｶﾞ' as two characters for the one 'ガ' the center gets:
    a name of 100 letters once folded is taken however it was typed, and one of 101 is refused."""
    operator = await as_user(client, demo, "op001")
    subject = await person(ctx)
    fits = draft_body(subject)
    fits["subject"]["name_kana"] = "ｶﾞ" * 100  # 200 characters as typed, 100 once normalised
    taken = await client.post("/inquiries", json=fits, headers=operator)
    assert taken.status_code == 201, taken.text
    assert taken.json()["subject"]["name_kana"] == "ガ" * 100
    before = await _written(ctx)
    too_long = draft_body(subject)
    too_long["subject"]["name_kana"] = "ｶﾞ" * 100 + "ｱ"
    refused = await client.post("/inquiries", json=too_long, headers=operator)
    _refused(refused)
    assert _fields(refused) == [["body", "subject", "name_kana"]]
    assert await _written(ctx) == before


async def _settled(client: httpx.AsyncClient, headers: dict[str, str], inquiry_id: str) -> dict[str, Any]:
    for _ in range(100):
        shown = (await client.get(f"/inquiries/{inquiry_id}", headers=headers)).json()
        if shown["status"] != "queued":
            return dict(shown)
        await asyncio.sleep(0.05)
    raise AssertionError("the inquiry is still queued")


async def test_an_inquiry_stuck_before_the_entry_check_ends_in_center_error_and_can_be_cancelled(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A queued inquiry whose stored subject the center's contract cannot carry — accepted before the
    entry check, its deliveries failing since — is settled at its next attempt: center_error with a
    stable code, audited, never retried again, and then cancellable."""
    operator = await as_user(client, demo, "op001")
    subject = await person(ctx)
    draft = (await client.post("/inquiries", json=draft_body(subject), headers=operator)).json()
    async with ctx.db.session() as session:
        inquiry = await session.get(Inquiry, draft["id"])
        assert inquiry is not None
        stored = open_subject(ctx, inquiry)
        seal_subject(ctx, inquiry, dict(stored, address="株式会社" * 60))  # as the old entry stored it
        inquiry.status = "queued"
        message = outbox.enqueue(session, ctx=ctx, inquiry=inquiry, kind="inquire")
        message.attempts, message.last_error = 7, "ValidationError"
        await session.commit()
    ctx.outbox_kick()

    settled = await _settled(client, operator, draft["id"])
    assert settled["status"] == "center_error"
    assert settled["center"] == {"inquiry_id": None, "sent_at": None, "result_code": "GATEWAY_NOT_SENDABLE"}
    assert await center_record(ctx) == []
    [event] = await ledger_events(ctx, action="center.not_sendable")
    assert event.object_id == draft["id"] and event.outcome == "failure"
    assert json.loads(event.details) == {
        "code": "GATEWAY_NOT_SENDABLE",
        "fields": ["subject.address"],
        "kind": "inquire",
        "operator_id": "op001",
    }
    async with ctx.db.read_session() as session:
        row = await session.scalar(select(OutboxMessage).where(OutboxMessage.inquiry_id == draft["id"]))
        assert row is not None and row.delivered_at is not None
    assert await outbox.due_messages(ctx) == []

    cancelled = await client.post(
        f"/inquiries/{draft['id']}/cancel",
        json={"reason": "送れない", "approval": _a1(demo)},
        headers=operator,
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


async def test_a_cancel_reason_longer_than_the_center_holds_still_reaches_the_center(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """The gateway takes 400 characters of reason, the center 200: the center gets the first 200 and
    the inquiry keeps the whole reason, instead of a cancellation retried for ever."""
    operator = await as_user(client, demo, "op001")
    held = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=_a1(demo)), headers=operator
    )
    reason = "取引不成立のため照会を取り消す。" * 20  # 320 characters
    cancelled = await client.post(
        f"/inquiries/{held.json()['id']}/cancel",
        json={"reason": reason, "approval": _a1(demo)},
        headers=operator,
    )
    assert cancelled.status_code == 200, cancelled.text
    for _ in range(100):
        kinds = [entry["kind"] for entry in await center_record(ctx)]
        if "cancellation" in kinds:
            break
        await asyncio.sleep(0.05)
    assert sorted(kinds) == ["cancellation", "inquiry"]
    async with ctx.db.read_session() as session:
        inquiry = await session.get(Inquiry, held.json()["id"])
        assert inquiry is not None and open_text(ctx.keyring, inquiry, "cancel_reason") == reason


async def test_a_cancel_or_correction_reason_of_spaces_alone_is_no_reason(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """CC-1 needs a reason: half- or full-width spaces are refused, and so are invisible characters (a
    zero-width space, a joiner, alone or among spaces), and nothing goes to the center."""
    operator = await as_user(client, demo, "op001")
    held = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=_a1(demo)), headers=operator
    )
    inquiry_id = held.json()["id"]
    for blank in (" ", "\u3000\u3000", " \t ", "\u200b", " \u200d\ufeff "):
        cancel = await client.post(
            f"/inquiries/{inquiry_id}/cancel", json={"reason": blank, "approval": _a1(demo)}, headers=operator
        )
        assert (cancel.status_code, cancel.json()["code"]) == (422, "VALIDATION_ERROR"), blank
        correct = await client.post(
            f"/inquiries/{inquiry_id}/correct",
            json={"reason": blank, "corrections": {"purpose": "credit_review"}, "approval": _a1(demo)},
            headers=operator,
        )
        assert (correct.status_code, correct.json()["code"]) == (422, "VALIDATION_ERROR"), blank
        assert [error["loc"][-1] for error in correct.json()["errors"]] == ["reason"]
    assert [entry["kind"] for entry in await center_record(ctx)] == ["inquiry"]
    # Words with spaces around them are the words.
    cancelled = await client.post(
        f"/inquiries/{inquiry_id}/cancel",
        json={"reason": "　申込撤回 ", "approval": _a1(demo)},
        headers=operator,
    )
    assert cancelled.status_code == 200, cancelled.text
    async with ctx.db.read_session() as session:
        inquiry = await session.get(Inquiry, inquiry_id)
        assert inquiry is not None and open_text(ctx.keyring, inquiry, "cancel_reason") == "申込撤回"


# -- dates ---------------------------------------------------------------------------------------------

# The ManualClock stands at 2026-11-24 10:00 JST: today's business date.


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject.birth_date", "2999-01-01"),
        ("subject.birth_date", "2026-11-25"),  # tomorrow
        ("subject.birth_date", "1899-12-31"),
        ("subject.birth_date", 0),  # a number Pydantic alone reads as seconds since 1970
        ("subject.birth_date", "1990-01-01T00:00:00"),
        ("subject.birth_date", "19900101"),
        ("consent_document.obtained_on", "2099-01-01"),
        ("consent_document.obtained_on", "2026-11-25"),
        ("consent_document.obtained_on", 1_700_000_000),
    ],
)
async def test_an_impossible_or_ill_written_date_is_refused_and_nothing_is_sent(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, field: str, value: object
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx), approval=_a1(demo))
    part, name = field.split(".")
    body[part][name] = value
    before = await _written(ctx)
    _refused(await client.post("/inquiries", json=body, headers=operator))
    assert await _written(ctx) == before


async def test_dates_up_to_today_are_taken_and_the_same_rules_hold_for_drafts_and_hq_requests(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    body["consent_document"]["obtained_on"] = "2026-11-24"
    draft = await client.post("/inquiries", json=body, headers=operator)
    assert draft.status_code == 201, draft.text
    future_consent = dict(body["consent_document"], obtained_on="2026-11-25")
    _refused(
        await client.patch(
            f"/inquiries/{draft.json()['id']}", json={"consent_document": future_consent}, headers=operator
        )
    )
    unborn = dict(body["subject"], birth_date="2027-01-01")
    _refused(
        await client.patch(f"/inquiries/{draft.json()['id']}", json={"subject": unborn}, headers=operator)
    )
    _refused(await client.post("/hq-requests", json=dict(body, subject=unborn), headers=operator))
    _refused(
        await client.post("/hq-requests", json=dict(body, consent_document=future_consent), headers=operator)
    )
    _refused(await client.get("/inquiries", params={"business_date": "1700000000"}, headers=operator))
    kept = await client.get(f"/inquiries/{draft.json()['id']}", headers=operator)
    assert kept.json()["consent_document"]["obtained_on"] == "2026-11-24"
    assert kept.json()["subject"]["birth_date"] == body["subject"]["birth_date"]


async def test_consent_dated_before_the_subject_was_born_is_refused_everywhere_it_is_entered(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A consent date before the birth date is a mistyped year, not consent: entry, HQ request, draft
    change (of either date) and correction alike; the birth date itself is still a day of consent."""
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    born = date.fromisoformat(body["subject"]["birth_date"])
    before_birth = dict(body["consent_document"], obtained_on=(born - timedelta(days=1)).isoformat())
    before = await _written(ctx)
    _refused(
        await client.post("/inquiries", json=dict(body, consent_document=before_birth), headers=operator)
    )
    _refused(
        await client.post("/hq-requests", json=dict(body, consent_document=before_birth), headers=operator)
    )
    assert await _written(ctx) == before

    on_birth = dict(body["consent_document"], obtained_on=born.isoformat())
    draft = await client.post("/inquiries", json=dict(body, consent_document=on_birth), headers=operator)
    assert draft.status_code == 201, draft.text
    later_born = dict(body["subject"], birth_date=(born + timedelta(days=1)).isoformat())
    _refused(
        await client.patch(f"/inquiries/{draft.json()['id']}", json={"subject": later_born}, headers=operator)
    )
    _refused(
        await client.patch(
            f"/inquiries/{draft.json()['id']}", json={"consent_document": before_birth}, headers=operator
        )
    )
    kept = (await client.get(f"/inquiries/{draft.json()['id']}", headers=operator)).json()
    assert kept["subject"]["birth_date"] == born.isoformat()
    assert kept["consent_document"]["obtained_on"] == born.isoformat()

    held = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=_a1(demo)), headers=operator
    )
    assert held.json()["status"] == "held", held.text
    held_born = date.fromisoformat(held.json()["subject"]["birth_date"])
    correction = {
        "reason": "書類の日付誤り",
        "corrections": {
            "consent_document": dict(
                held.json()["consent_document"], obtained_on=(held_born - timedelta(days=1)).isoformat()
            )
        },
        "approval": _a1(demo),
    }
    _refused(await client.post(f"/inquiries/{held.json()['id']}/correct", json=correction, headers=operator))
    assert (
        "corrected"
        not in (await client.get(f"/inquiries/{held.json()['id']}", headers=operator)).json()["flags"]
    )


# -- text that would print otherwise than it reads --------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject.name_kanji", "小山\x1b[31m敏子"),  # a terminal escape sequence
        ("subject.address", "東京都千代田区\x07一番町"),
        ("subject.address", "東京都\u202e区田代千"),  # right-to-left override: reads otherwise on a list
        ("subject.name_kana", "コヤマ\u200bトシコ"),  # zero-width space
        ("consent_document.reference", "LA-\u2066001"),
        ("consent_document.reference", "   "),  # a reference that says nothing
        ("subject.name_kana", "　"),
    ],
)
async def test_control_invisible_or_blank_text_is_refused_and_nothing_is_sent(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, field: str, value: str
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx), approval=_a1(demo))
    part, name = field.split(".")
    body[part][name] = value
    before = await _written(ctx)
    refused = await client.post("/inquiries", json=body, headers=operator)
    _refused(refused)
    assert value not in refused.text
    assert await _written(ctx) == before


async def test_ordinary_japanese_text_with_ideographic_spaces_and_marks_is_taken(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    body["subject"]["name_kanji"] = "髙橋　𠮷男"  # a variant kanji and one outside the BMP
    body["subject"]["address"] = "東京都千代田区一番町１－２－３　〒１０２－００８２"
    body["consent_document"]["reference"] = "申込書 No.〇〇一"
    created = await client.post("/inquiries", json=body, headers=operator)
    assert created.status_code == 201, created.text

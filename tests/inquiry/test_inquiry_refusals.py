"""Every refusal of api.md's inquiry table, provoked; nothing reaches the center in any refused case."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit.ledger import Actor
from app.authz import directory
from app.authz.models import User
from app.authz.service import lock_throttle
from app.clock import TOKYO, ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import IdempotencyRecord, Inquiry, SealedResponse
from app.inquiry.subject import contains_my_number, is_my_number, my_number_check_digit
from tests.helpers import as_recorded, ledger_events, terminal, terminal_headers
from tests.inquiry.support import (
    a1,
    as_user,
    center_record,
    center_record_when_nothing_waits,
    draft_body,
    password_of,
    person,
    released_inquiry,
    submit_with_a1,
)


def my_number() -> str:
    first = "98765432101"
    return first + str(my_number_check_digit(first))


async def _draft(
    client: httpx.AsyncClient, ctx: AppContext, headers: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/inquiries", json=draft_body(await person(ctx), **overrides), headers=headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _code(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return response.status_code, response.json()["code"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"purpose": "marketing"}, (422, "PURPOSE_UNKNOWN")),
        (
            {"consent_document": {"type": "ledger", "reference": "L-1", "obtained_on": "2026-11-20"}},
            (422, "DOCUMENT_NOT_ALLOWED_FOR_PURPOSE"),
        ),
        (
            {
                "purpose": "credit_review",
                "customer_status": "new",
                "consent_document": {"type": "ledger", "reference": "L-1", "obtained_on": "2026-11-20"},
            },
            (422, "CUSTOMER_STATUS_NOT_ALLOWED"),
        ),
        (
            {
                "purpose": "relocation_check",
                "customer_status": "new",
                "consent_document": {"type": "ledger", "reference": "L-1", "obtained_on": "2026-11-20"},
            },
            (422, "CUSTOMER_STATUS_NOT_ALLOWED"),
        ),
        ({"customer_status": "walk-in"}, (422, "VALIDATION_ERROR")),
        ({"consent_document": None}, (422, "VALIDATION_ERROR")),
    ],
)
async def test_purpose_table_refusals(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    overrides: dict[str, Any],
    expected: tuple[int, str],
) -> None:
    operator = await as_user(client, demo, "op001")
    # With A1 approval an accepted inquiry would go to the center at once: the record shows it did not.
    body = draft_body(await person(ctx), approval=_a1(demo), **overrides)
    response = await client.post("/inquiries", json=body, headers=operator)
    assert _code(response) == expected
    assert await center_record_when_nothing_waits(ctx) == []


@pytest.mark.parametrize("where", ["address", "reference", "extra_digits_in_name", "typed_with_an_ime"])
async def test_my_number_anywhere_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, where: str
) -> None:
    operator = await as_user(client, demo, "op001")
    subject = await person(ctx)
    body = draft_body(subject, approval=_a1(demo))  # accepted, it would be sent at once
    number = my_number()
    spaced = f"{number[:4]} {number[4:8]} {number[8:]}"
    if where == "address":
        body["subject"]["address"] = f"{subject['address']} 個人番号{spaced}"
    elif where == "reference":
        body["consent_document"]["reference"] = number
    elif where == "extra_digits_in_name":
        body["subject"]["name_kanji"] = f"{subject['name_kanji']}{number}"
    else:
        # Full-width digits grouped by the long-vowel mark, as a Japanese IME in kana mode types "-".
        full_width = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        body["subject"]["address"] = (
            f"{subject['address']}（番号 {full_width[:4]}ー{full_width[4:8]}ー{full_width[8:]}）"
        )
    response = await client.post("/inquiries", json=body, headers=operator)
    assert _code(response) == (422, "MY_NUMBER_FORBIDDEN")
    assert number not in response.text
    assert await center_record_when_nothing_waits(ctx) == []


async def test_a_number_in_a_body_that_is_not_valid_is_named_as_one_and_the_attempt_recorded(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """The schema refuses a faulty body before the inquiry service scans it; a number in it (in a field
    the schema does not know, as a field's name, next to a wrong birth date, in an HQ request) is still
    what the caller is told about, and the attempt is in the ledger without it."""
    operator = await as_user(client, demo, "op001")
    number = my_number()
    subject = await person(ctx)
    unknown_field = {**draft_body(subject, approval=_a1(demo)), "memo": f"個人番号 {number}"}
    as_a_key = {**draft_body(subject), number: "x"}
    with_a_bad_date = draft_body({**subject, "birth_date": "1961-02-30", "address": number})
    for body in (unknown_field, as_a_key, with_a_bad_date):
        refused = await client.post("/inquiries", json=body, headers=operator)
        assert _code(refused) == (422, "MY_NUMBER_FORBIDDEN"), refused.text
        assert number not in refused.text
    hq_request = {**draft_body(subject), "customer_status": "walk-in", "memo": number}
    refused = await client.post("/hq-requests", json=hq_request, headers=operator)
    assert _code(refused) == (422, "MY_NUMBER_FORBIDDEN")
    attempts = await ledger_events(ctx, action="request.refused")
    assert [(e.actor_id, json.loads(e.details)["code"]) for e in attempts] == [
        ("op001", "MY_NUMBER_FORBIDDEN")
    ] * 4
    assert not any(contains_my_number(e.details) for e in await ledger_events(ctx))
    async with ctx.db.read_session() as session:
        assert (await session.scalars(select(Inquiry))).all() == []
    assert await center_record_when_nothing_waits(ctx) == []
    # A secret is not read for it: a faulty password change whose new password happens to read as a
    # number is the ordinary fault it is.
    faulty = await client.post("/auth/password", json={"new_password": number}, headers=operator)
    assert _code(faulty) == (422, "VALIDATION_ERROR")


async def test_a_telephone_number_in_international_form_is_not_taken_for_an_individual_number(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """+81 90-1234-5673 has twelve digits with a valid check digit; it is the customer's mobile number,
    as a bank's staff write it in international form. The same digits written any other way are refused."""
    operator = await as_user(client, demo, "op001")
    digits = "81901234567" + str(my_number_check_digit("81901234567"))
    assert is_my_number(digits)
    body = draft_body(await person(ctx))
    for phone in (f"+81 90-1234-{digits[-4:]}", f"＋81-{digits[2:]}"):
        body["subject"]["phone"] = phone
        created = await client.post("/inquiries", json=body, headers=operator)
        assert created.status_code == 201, created.text
    # Without the country code's form the same digits are an Individual Number: a "+" alone hides nothing.
    grouped = f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"
    for typed in (f"81 90-1234-{digits[-4:]}", f"+{digits}", f"番号＋{grouped}"):
        body["subject"]["phone"] = typed
        refused = await client.post("/inquiries", json=body, headers=operator)
        assert _code(refused) == (422, "MY_NUMBER_FORBIDDEN"), typed
    # A number typed after a telephone number is still found.
    body["subject"]["phone"] = f"+81 90-1234-5678 {my_number()}"
    assert _code(await client.post("/inquiries", json=body, headers=operator)) == (422, "MY_NUMBER_FORBIDDEN")


async def test_a_twelve_digit_number_without_a_valid_check_digit_is_accepted(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    first = "98765432101"
    wrong = first + str((my_number_check_digit(first) + 1) % 10)
    body = draft_body(await person(ctx))
    body["consent_document"]["reference"] = wrong
    assert (await client.post("/inquiries", json=body, headers=operator)).status_code == 201


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("{a} {b} {c}", True),
        ("{a}-{b}-{c}", True),
        ("{a}－{b}－{c}", True),  # full-width hyphen
        ("{a}‐{b}‐{c}", True),  # U+2010 hyphen
        ("{a}−{b}−{c}", True),  # minus sign
        ("{a}—{b}—{c}", True),  # em dash
        ("{a}ー{b}ー{c}", True),  # long-vowel mark (IME kana mode)
        ("{a}ｰ{b}ｰ{c}", True),  # half-width long-vowel mark
        ("{a}　{b}　{c}", True),  # ideographic space
        ("{a}  {b}  {c}", True),  # two spaces (the stored text collapses them to one)
        ("{a}\t{b}\n{c}", True),  # a tab, a line break
        ("{a} - {b} - {c}", True),
        ("{a}_{b}~{c}", True),
        ("{a}〜{b}・{c}", True),  # wave dash, middle dot
        ("{a}\u200b{b}\u200b{c}", True),  # zero-width spaces between the groups
        ("{a}\u200d{b}{c}", True),  # a zero-width joiner inside the number
        ("tel 03 1234 5678 {a} {b} {c}", True),  # the number is the last three of six groups
        ("0120-{a}-{b}-{c}", True),
        ("{a}.{b}.{c}", False),  # a dot does not group a number
        ("{a}/{b}/{c}", False),
        ("{a}{b}{c}9", False),  # thirteen digits: another kind of number
    ],
)
def test_the_number_is_found_however_its_groups_are_separated(text: str, refused: bool) -> None:
    number = my_number()
    assert contains_my_number({"note": text.format(a=number[:4], b=number[4:8], c=number[8:])}) is refused


def test_the_number_is_found_in_the_digits_of_another_script() -> None:
    # Arabic-Indic and Devanagari digits read as 0-9 to a person; NFKC alone leaves them as they are.
    number = my_number()
    for zero in ("\u0660", "\u0966"):
        written = "".join(chr(ord(zero) + int(digit)) for digit in number)
        assert contains_my_number({"address": f"番号 {written}"})


_KANJI = "〇一二三四五六七八九"


def test_the_number_is_found_written_in_kanji_digits() -> None:
    # Read out over the telephone and written down, or written vertically on a form, a number is often
    # kanji digit by digit; with or without groups, and mixed with Arabic digits, it is the same number.
    number = my_number()
    kanji = "".join(_KANJI[int(digit)] for digit in number)
    assert contains_my_number({"note": f"お客様番号 {kanji}"})
    assert contains_my_number({"note": f"{kanji[:4]}ー{kanji[4:8]}ー{kanji[8:]}"})
    assert contains_my_number({"note": kanji[:6] + number[6:]})
    leading_zero = "01234567890" + str(my_number_check_digit("01234567890"))
    assert contains_my_number({"note": "零" + "".join(_KANJI[int(digit)] for digit in leading_zero[1:])})


async def test_an_inquiry_with_the_number_in_kanji_digits_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx))
    body["consent_document"]["reference"] = "".join(_KANJI[int(digit)] for digit in my_number())
    refused = await client.post("/inquiries", json=body, headers=operator)
    assert _code(refused) == (422, "MY_NUMBER_FORBIDDEN")
    async with ctx.db.read_session() as session:
        assert (await session.scalars(select(Inquiry))).all() == []


def test_kanji_amounts_and_addresses_are_not_read_as_a_number() -> None:
    # Positional numerals are not digits: 千二百三十四万… is an amount, 三丁目一番二号 an address.
    number = my_number()
    positional = "".join(_KANJI[int(digit)] + "十" for digit in number)
    assert not contains_my_number({"note": positional})
    assert not contains_my_number({"address": "東京都千代田区一番町三丁目一番二号 四〇一号室"})
    wrong = number[:11] + str((int(number[11]) + 1) % 10)
    assert not contains_my_number({"note": "".join(_KANJI[int(digit)] for digit in wrong)})


def test_no_other_twelve_digits_of_a_long_grouped_number_are_taken_for_one() -> None:
    # The windows the lookahead now tries must still need a valid check digit: none of these is one.
    assert not any(is_my_number(window) for window in ("031234567898", "123456789876", "567898765432"))
    assert not contains_my_number({"phone": "03 1234 5678 9876 5432"})


async def test_kana_is_normalised_and_non_kana_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    subject = await person(ctx)
    body = draft_body(subject)
    body["subject"]["name_kana"] = "ﾔﾏﾀﾞ　たろう"
    created = await client.post("/inquiries", json=body, headers=operator)
    assert created.status_code == 201
    assert created.json()["subject"]["name_kana"] == "ヤマダ タロウ"
    body["subject"]["name_kana"] = "Yamada Taro"
    assert _code(await client.post("/inquiries", json=body, headers=operator)) == (422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("カ゛トウ　ハ゜ク", "ガトウ パク"),  # spacing voiced and semi-voiced marks, as older IMEs type them
        ("か゛とう はなこ", "ガトウ ハナコ"),
        ("ｶﾞﾄｳ ﾊﾅｺ", "ガトウ ハナコ"),
    ],
)
async def test_a_voiced_mark_typed_after_its_kana_is_the_same_name(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, typed: str, stored: str
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body({"name_kana": typed, "birth_date": "1961-02-03"})
    created = await client.post("/inquiries", json=body, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["subject"]["name_kana"] == stored
    # A mark after a kana that has no voiced form is not a name.
    body["subject"]["name_kana"] = "ア゛イ"
    assert _code(await client.post("/inquiries", json=body, headers=operator)) == (422, "VALIDATION_ERROR")


async def test_a_name_written_with_kana_iteration_marks_is_one_person_however_it_is_typed(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    # みすゞ / ミスヾ: iteration marks are part of real kana names; the gateway refused them as not kana.
    operator = await as_user(client, demo, "op001")
    body = draft_body({"name_kana": "みすゞ　はるこ", "birth_date": "1961-02-03"})
    created = await client.post("/inquiries", json=body, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["subject"]["name_kana"] == "ミスヾ ハルコ"
    # The auditor finds that inquiry by the katakana form, typed without the space.
    auditor = await as_user(client, demo, "auditor")
    found = await client.post(
        "/audit/subject-access",
        json={"name_kana": "ミスヾハルコ", "birth_date": "1961-02-03"},
        headers=auditor,
    )
    assert found.status_code == 200, found.text
    assert [i["id"] for i in found.json()["inquiries"]] == [created.json()["id"]]


@pytest.mark.parametrize("typed", ["さとう　はなこ", "ｻﾄｳ･ﾊﾅｺ", "サトウ・ハナコ", "サトウハナコ"])
async def test_self_inquiry_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, typed: str
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body({"name_kana": typed, "birth_date": "1990-04-12"}, approval=_a1(demo))
    assert _code(await client.post("/inquiries", json=body, headers=operator)) == (403, "SELF_INQUIRY")
    assert await center_record_when_nothing_waits(ctx) == []


async def test_a_draft_cannot_be_changed_into_one_about_the_operator(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """PL-5 holds for a change too: a draft about someone else, changed to the operator's own name and
    birth date, is refused and recorded, and the draft stays as it was."""
    operator = await as_user(client, demo, "op001")
    someone = await person(ctx)
    draft = await _draft(client, ctx, operator)
    refusals_before = len(await ledger_events(ctx, action="inquiry.refused"))

    changed = await client.patch(
        f"/inquiries/{draft['id']}",
        json={
            "subject": {"name_kana": "サトウ ハナコ", "birth_date": "1990-04-12"},
            "consent_document": {
                "type": "loan_application",
                "reference": "LA-9",
                "obtained_on": "2026-11-21",
            },
        },
        headers=operator,
    )

    assert _code(changed) == (403, "SELF_INQUIRY")
    refusals = await ledger_events(ctx, action="inquiry.refused")
    assert [json.loads(e.details)["code"] for e in refusals[refusals_before:]] == ["SELF_INQUIRY"]
    kept = (await client.get(f"/inquiries/{draft['id']}", headers=operator)).json()
    assert (kept["subject"]["birth_date"], kept["consent_document"]["reference"]) == (
        someone["birth_date"],
        draft["consent_document"]["reference"],
    )
    assert kept["flags"] == []


async def test_with_the_flag_policy_a_self_inquiry_goes_on_flagged_also_after_a_change(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    ctx.policy = ctx.policy.model_copy(update={"self_inquiry": "flag"})
    operator = await as_user(client, demo, "op001")
    own = {"name_kana": "さとう　はなこ", "birth_date": "1990-04-12"}
    flagged = await client.post("/inquiries", json=draft_body(own), headers=operator)
    assert flagged.status_code == 201, flagged.text
    assert flagged.json()["flags"] == ["self_inquiry"]

    # Changed to someone else, the flag goes; changed back, it returns.
    url = f"/inquiries/{flagged.json()['id']}"
    someone = await person(ctx)
    other = {"name_kana": someone["name_kana"], "birth_date": someone["birth_date"]}
    assert (await client.patch(url, json={"subject": other}, headers=operator)).json()["flags"] == []
    assert (await client.patch(url, json={"subject": own}, headers=operator)).json()["flags"] == [
        "self_inquiry"
    ]


async def test_only_operators_enter_inquiries(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    confirmer = await as_user(client, demo, "cf001")
    assert _code(await client.post("/inquiries", json=draft_body(await person(ctx)), headers=confirmer)) == (
        403,
        "FORBIDDEN",
    )
    auditor = await as_user(client, demo, "auditor")
    assert _code(await client.post("/inquiries", json=draft_body(await person(ctx)), headers=auditor)) == (
        403,
        "FORBIDDEN",
    )


async def _dual_role_user(ctx: AppContext) -> str:
    """A person holding both operator and confirmer at branch 001 (allowed; SoD applies per inquiry)."""
    actor = Actor(id="test-admin")
    async with ctx.db.session() as session:
        await directory.create_user(
            session,
            ctx=ctx,
            actor=actor,
            user_id="dual001",
            name="二役 太郎",
            password="Dual-Role-Passw0rd",
            must_change_password=False,
        )
        await session.flush()
        for role in ("operator", "confirmer"):
            await directory.grant_role(
                session, ctx=ctx, actor=actor, user_id="dual001", role=role, branch_code="001"
            )
        await session.commit()
    return "dual001"


async def _headers_for(
    client: httpx.AsyncClient, demo: DemoCredentials, user_id: str, password: str
) -> dict[str, str]:
    term = terminal(demo, "001")
    response = await client.post(
        "/auth/login", json={"user_id": user_id, "password": password}, headers=terminal_headers(term)
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}", "X-Terminal-Id": term["id"]}


async def test_same_person_cannot_operate_and_confirm(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    dual = await _dual_role_user(ctx)
    headers = await _headers_for(client, demo, dual, "Dual-Role-Passw0rd")
    own = await _draft(client, ctx, headers)
    response = await client.post(f"/inquiries/{own['id']}/approval-numbers", json={}, headers=headers)
    assert _code(response) == (403, "SAME_PERSON")
    a1 = await client.post(
        "/inquiries",
        headers=headers,
        json=draft_body(
            await person(ctx, index=2),
            approval={
                "method": "confirmer_credentials",
                "confirmer_user_id": dual,
                "confirmer_password": "Dual-Role-Passw0rd",
            },
        ),
    )
    assert _code(a1) == (403, "SAME_PERSON")
    own_credentials = {
        "method": "confirmer_credentials",
        "confirmer_user_id": dual,
        "confirmer_password": "Dual-Role-Passw0rd",
    }
    submitted = await client.post(
        f"/inquiries/{own['id']}/submit", json={"approval": own_credentials}, headers=headers
    )
    assert _code(submitted) == (403, "SAME_PERSON")
    assert await center_record_when_nothing_waits(ctx) == []

    # Sent with another confirmer's approval, then cancelled on the operator's own say-so: refused.
    sent = await client.post(f"/inquiries/{own['id']}/submit", json={"approval": _a1(demo)}, headers=headers)
    assert sent.status_code == 200, sent.text
    cancelled = await client.post(
        f"/inquiries/{own['id']}/cancel",
        json={"reason": "入力誤り", "approval": own_credentials},
        headers=headers,
    )
    assert _code(cancelled) == (403, "SAME_PERSON")
    assert [entry["kind"] for entry in await center_record_when_nothing_waits(ctx)] == ["inquiry"]


async def test_confirmer_of_another_branch_or_a_suspended_one_cannot_approve(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    other_branch = await client.post(
        "/inquiries",
        headers=operator,
        json=draft_body(
            await person(ctx),
            approval={
                "method": "confirmer_credentials",
                "confirmer_user_id": "cf002",
                "confirmer_password": password_of(demo, "cf002"),
            },
        ),
    )
    assert _code(other_branch) == (403, "NOT_A_CONFIRMER")

    async with ctx.db.session() as session:
        account = await session.get(User, "cf001")
        assert account is not None
        account.status = "suspended"
        await session.commit()
    suspended = await client.post(
        "/inquiries",
        headers=operator,
        json=draft_body(
            await person(ctx),
            approval={
                "method": "confirmer_credentials",
                "confirmer_user_id": "cf001",
                "confirmer_password": password_of(demo, "cf001"),
            },
        ),
    )
    assert _code(suspended) == (403, "SUSPENDED")
    draft = await _draft(client, ctx, operator)
    confirmer_elsewhere = await as_user(client, demo, "cf002")
    issued = await client.post(
        f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer_elsewhere
    )
    assert issued.status_code == 404  # another branch's draft does not exist for them
    assert await center_record_when_nothing_waits(ctx) == []


async def test_wrong_confirmer_password_is_refused_and_counts_toward_lockout(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    for _ in range(5):
        response = await client.post(
            "/inquiries",
            headers=operator,
            json=draft_body(
                await person(ctx),
                approval={
                    "method": "confirmer_credentials",
                    "confirmer_user_id": "cf001",
                    "confirmer_password": "wrong-guess-1",
                },
            ),
        )
        assert _code(response) == (403, "APPROVAL_INVALID")
    locked = await client.post(
        "/auth/login",
        json={"user_id": "cf001", "password": password_of(demo, "cf001")},
        headers=terminal_headers(terminal(demo, "001")),
    )
    assert locked.json()["code"] == "ACCOUNT_LOCKED"
    assert await center_record_when_nothing_waits(ctx) == []


async def test_the_right_confirmer_password_waits_for_a_lockout_being_counted_and_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AU-5 at A1: the fifth wrong password is being counted (its transaction has locked the confirmer
    but not yet committed) when the right one arrives. The right one must wait and then find the lock;
    on PostgreSQL it used to read the lock state as it was before and approve, so a hundred guesses sent
    at once were each judged on their password."""
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx), approval=a1(demo))
    async with ctx.db.session() as earlier:  # four wrong passwords, counted and committed
        (await lock_throttle(earlier, ctx, "cf001")).consecutive_failures = ctx.settings.lockout_threshold - 1
        await earlier.commit()
    async with ctx.db.session() as counting:  # the fifth, still being counted
        throttle = await lock_throttle(counting, ctx, "cf001")
        throttle.consecutive_failures += 1
        throttle.locked_at = clock.now()
        await counting.flush()
        right = asyncio.create_task(client.post("/inquiries", json=body, headers=operator))
        await asyncio.sleep(1.0)
        assert not right.done(), f"judged before the lockout being counted was settled: {right.result().text}"
        await counting.commit()
    assert _code(await right) == (403, "APPROVAL_INVALID")
    assert await center_record_when_nothing_waits(ctx) == []


async def test_the_right_confirmer_password_waits_for_a_first_ever_lockout_counter_being_created(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """AU-5 at A1 when no failure was ever counted for the confirmer: the counter is being created (not yet
    committed) by failures that reach the lock when the right password arrives. The right one must wait
    for it, as it waits for a counter that exists; on PostgreSQL its shared lock used to find no row, lock
    nothing, and approve while the lock was being taken, so a granted approval followed the lockout."""
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx), approval=a1(demo))
    async with ctx.db.session() as counting:
        throttle = await lock_throttle(counting, ctx, "cf001")
        assert throttle.consecutive_failures == 0, "the confirmer already had a counter: nothing tested"
        throttle.consecutive_failures = ctx.settings.lockout_threshold
        throttle.locked_at = clock.now()
        await counting.flush()
        right = asyncio.create_task(client.post("/inquiries", json=body, headers=operator))
        await asyncio.sleep(1.0)
        assert not right.done(), f"judged before the counter being created was settled: {right.result().text}"
        await counting.commit()
    assert _code(await right) == (403, "APPROVAL_INVALID")
    assert await ledger_events(ctx, action="approval.confirmer_credentials") == []
    assert await center_record_when_nothing_waits(ctx) == []


async def test_right_and_wrong_confirmer_passwords_sent_at_once_approve_nothing_after_the_lock(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Six wrong and four right A1 approvals by one confirmer, all at once: no attempt fails with a 500
    (a deadlock between them would), the lock is taken once, and in the ledger every approval that was
    granted comes before it: none was judged on a lock state that had already changed."""
    operator = await as_user(client, demo, "op001")
    subject = await person(ctx)

    passwords = ["wrong-guess"] * 6 + [password_of(demo, "cf001")] * 4
    bodies = [draft_body(subject, approval=a1(demo, password=p)) for p in passwords]
    sent = await asyncio.gather(*(client.post("/inquiries", json=b, headers=operator) for b in bodies))

    assert all(r.status_code in (201, 403) for r in sent), [r.text for r in sent]
    assert [_code(r) for r in sent[:6]] == [(403, "APPROVAL_INVALID")] * 6
    assert all(r.status_code == 201 or _code(r) == (403, "APPROVAL_INVALID") for r in sent[6:])
    [locked] = await ledger_events(ctx, action="auth.account_locked")
    granted = await ledger_events(ctx, action="approval.confirmer_credentials")
    assert len(granted) == sum(r.status_code == 201 for r in sent)
    assert all(event.seq < locked.seq for event in granted)


async def test_a_waiting_draft_is_sent_only_if_the_policy_in_force_still_allows_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """A draft entered under one purpose table and submitted after a restart with a stricter one (here
    new_credit no longer for new customers) is refused like a new draft would be, and never sent."""
    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    confirmer = await as_user(client, demo, "cf001")
    issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201, issued.text
    rule = ctx.policy.purposes["new_credit"]
    stricter = rule.model_copy(update={"documents": {k: v for k, v in rule.documents.items() if k != "new"}})
    ctx.policy = ctx.policy.model_copy(update={"purposes": {**ctx.policy.purposes, "new_credit": stricter}})

    sent = await client.post(
        f"/inquiries/{draft['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": issued.json()["approval_number"]}},
        headers=operator,
    )

    assert _code(sent) == (422, "CUSTOMER_STATUS_NOT_ALLOWED")
    assert (await client.get(f"/inquiries/{draft['id']}", headers=operator)).json()[
        "status"
    ] == "awaiting_approval"
    assert await center_record_when_nothing_waits(ctx) == []


async def test_an_individual_number_in_a_submit_or_an_idempotency_key_is_refused_and_not_kept(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    number = my_number()
    # Typed into the confirmer's ID field: a refused approval would keep the typed ID in the ledger.
    typed = {"method": "confirmer_credentials", "confirmer_user_id": number, "confirmer_password": "x"}
    submitted = await client.post(
        f"/inquiries/{draft['id']}/submit", json={"approval": typed}, headers=operator
    )
    assert _code(submitted) == (422, "MY_NUMBER_FORBIDDEN")
    # As the Idempotency-Key, which is stored as sent.
    keyed = {**operator, "Idempotency-Key": f"{number[:4]}-{number[4:8]}-{number[8:]}"}
    created = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=_a1(demo)), headers=keyed
    )
    assert _code(created) == (422, "MY_NUMBER_FORBIDDEN")
    # A UUID key whose hex groups happen to read as a valid number is still a UUID, and taken.
    unlucky = "e6cdae66-5323-4579-82f8-efcd07902010"
    assert contains_my_number(unlucky)
    body = draft_body(await person(ctx))
    taken = await client.post("/inquiries", json=body, headers={**operator, "Idempotency-Key": unlucky})
    assert taken.status_code == 201, taken.text
    async with ctx.db.read_session() as session:
        kept = [e.details for e in await ledger_events(ctx)] + [
            str(r.key) for r in (await session.scalars(select(IdempotencyRecord))).all()
        ]
    assert not any(contains_my_number(text) for text in kept if text != unlucky)
    assert await center_record_when_nothing_waits(ctx) == []


async def test_an_individual_number_in_a_path_or_terminal_header_stays_out_of_the_ledger(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Refused requests are recorded (LG-1) with the path and the terminal ID as sent; the ledger can
    never drop an event, so a number typed there is withheld, and the refusals are still recorded."""
    number = my_number()
    denied = await client.get(f"/inquiries/{number}", headers={"X-Terminal-Id": number})
    assert denied.status_code == 401
    login = await client.post(
        "/auth/login",
        json={"user_id": "op001", "password": password_of(demo, "op001")},
        headers={"X-Terminal-Id": number, "X-Terminal-Key": "k"},
    )
    assert _code(login) == (403, "TERMINAL_NOT_REGISTERED")
    events = await ledger_events(ctx)
    recorded = [(e.action, e.object_id, e.terminal_id) for e in events]
    assert ("request.denied", "/inquiries/{inquiry_id}", None) in recorded
    assert ("auth.login_denied", None, None) in recorded
    # The number itself, not any valid-looking number: request ids and hashes elsewhere in the ledger read
    # as one about once in a thousand (which made this test fail now and then on a clean run).
    assert not any(number in f"{e.object_id} {e.terminal_id} {e.details}" for e in events)


async def test_approval_number_rules(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")

    async def issue(inquiry_id: str) -> str:
        response = await client.post(f"/inquiries/{inquiry_id}/approval-numbers", json={}, headers=confirmer)
        assert response.status_code == 201, response.text
        return str(response.json()["approval_number"])

    async def submit(inquiry_id: str, number: str) -> httpx.Response:
        return await client.post(
            f"/inquiries/{inquiry_id}/submit",
            headers=operator,
            json={"approval": {"method": "approval_number", "approval_number": number}},
        )

    first, second = await _draft(client, ctx, operator), await _draft(client, ctx, operator)
    number_for_first = await issue(first["id"])
    assert _code(await submit(second["id"], number_for_first)) == (
        403,
        "APPROVAL_INVALID",
    )  # not for this draft

    # A change of the draft voids its number.
    changed = await client.patch(
        f"/inquiries/{first['id']}",
        headers=operator,
        json={
            "consent_document": {"type": "loan_application", "reference": "LA-9", "obtained_on": "2026-11-21"}
        },
    )
    assert changed.status_code == 200, changed.text
    assert _code(await submit(first["id"], number_for_first)) == (403, "APPROVAL_INVALID")

    # Expiry after 30 minutes.
    expiring = await issue(first["id"])
    clock.advance(minutes=31)
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    assert _code(await submit(first["id"], expiring)) == (403, "APPROVAL_INVALID")

    # Five wrong entries void the live number.
    live = await issue(first["id"])
    for _ in range(5):
        assert _code(await submit(first["id"], "0000-0000")) == (403, "APPROVAL_INVALID")
    assert _code(await submit(first["id"], live)) == (403, "APPROVAL_INVALID")

    # Single use: the second submit finds the inquiry already sent.
    good = await issue(first["id"])
    assert (await submit(first["id"], good)).status_code == 200
    assert _code(await submit(first["id"], good)) == (409, "INVALID_STATE")
    assert len(await center_record(ctx)) == 1

    register = await client.get(
        "/approval-numbers/register",
        headers=confirmer,
        params={"branch_code": "001", "business_date": "2026-11-24"},
    )
    assert register.status_code == 200
    balance = register.json()
    assert balance == {
        "branch_code": "001",
        "business_date": "2026-11-24",
        "issued": 4,
        "used": 1,
        "voided": 2,
        "expired": 1,
        "outstanding": 0,
        "balanced": True,
    }


async def test_numbers_are_never_stored_in_plain_text(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    from sqlalchemy import text

    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")
    draft = await _draft(client, ctx, operator)
    number = (
        await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    ).json()["approval_number"]
    async with ctx.db.read_session() as session:
        rows = (await session.execute(text("SELECT * FROM approval_numbers"))).all()
    dump = repr(rows)
    assert number not in dump and number.replace("-", "") not in dump


async def test_wrong_release_passwords_sent_at_once_lock_the_confirmer(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Parallel re-authentications on different inquiries each count: on PostgreSQL they counted on a
    stale copy of the confirmer's lockout counter, and 1 + 4 wrong passwords left it at 2, unlocked."""
    held = []
    for _ in range(6):
        _, created = await submit_with_a1(client, demo, ctx)
        assert created.json()["status"] == "held", created.text
        held.append(created.json()["id"])
    confirmer = await as_user(client, demo, "cf001b")
    wrong = {"password": "not-my-password", "document_check": "match"}
    first = await client.post(f"/inquiries/{held[0]}/release", headers=confirmer, json=wrong)
    assert _code(first) == (401, "REAUTH_FAILED")

    sent = await asyncio.gather(
        *(client.post(f"/inquiries/{i}/release", headers=confirmer, json=wrong) for i in held[1:5])
    )

    assert [_code(r) for r in sent] == [(401, "REAUTH_FAILED")] * 4
    assert len(await ledger_events(ctx, action="auth.account_locked")) == 1
    # Locked: the right password no longer releases, and the response stays held.
    right = {"password": password_of(demo, "cf001b"), "document_check": "match"}
    assert (
        await client.post(f"/inquiries/{held[5]}/release", headers=confirmer, json=right)
    ).status_code == 401
    operator = await as_user(client, demo, "op001")
    assert _code(await client.get(f"/inquiries/{held[5]}/response", headers=operator)) == (
        423,
        "RESPONSE_HELD",
    )


async def test_release_refusals(client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(
        await person(ctx),
        approval={
            "method": "confirmer_credentials",
            "confirmer_user_id": "cf001",
            "confirmer_password": password_of(demo, "cf001"),
        },
    )
    inquiry = (await client.post("/inquiries", json=body, headers=operator)).json()
    assert inquiry["status"] == "held"

    confirmer = await as_user(client, demo, "cf001b")
    wrong = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=confirmer,
        json={"password": "not-my-password", "document_check": "match"},
    )
    assert _code(wrong) == (401, "REAUTH_FAILED")
    operator_tries = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=operator,
        json={"password": password_of(demo, "op001"), "document_check": "match"},
    )
    assert _code(operator_tries) == (403, "FORBIDDEN")
    auditor = await as_user(client, demo, "auditor")
    assert _code(await client.get(f"/inquiries/{inquiry['id']}/response", headers=auditor)) == (
        403,
        "FORBIDDEN",
    )
    ok = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=confirmer,
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    assert ok.status_code == 200
    again = await client.post(
        f"/inquiries/{inquiry['id']}/release",
        headers=confirmer,
        json={"password": password_of(demo, "cf001b"), "document_check": "match"},
    )
    assert _code(again) == (409, "INVALID_STATE")


async def test_idempotency_key_replays_and_refuses_another_body(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    body = draft_body(
        await person(ctx),
        approval={
            "method": "confirmer_credentials",
            "confirmer_user_id": "cf001",
            "confirmer_password": password_of(demo, "cf001"),
        },
    )
    headers = {**operator, "Idempotency-Key": "terminal-T001-01-req-0001"}
    first = await client.post("/inquiries", json=body, headers=headers)
    again = await client.post("/inquiries", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = dict(body, purpose="gazette_check")
    assert _code(await client.post("/inquiries", json=other, headers=headers)) == (
        409,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert len(await center_record(ctx)) == 1


async def test_unknown_inquiry_and_other_branch_are_not_found(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    other = await as_user(client, demo, "op002")
    assert _code(await client.get(f"/inquiries/{draft['id']}", headers=other)) == (404, "NOT_FOUND")
    assert _code(await client.get("/inquiries/00000000-0000-0000-0000-000000000000", headers=operator)) == (
        404,
        "NOT_FOUND",
    )
    # The same answer to both, but the look into another branch is on the record as denied (LG-1); a
    # mistyped id is not.
    denied = [e for e in await ledger_events(ctx, action="request.denied") if e.actor_id == "op002"]
    assert [(e.object_id, json.loads(e.details)["code"]) for e in denied] == [
        (as_recorded(f"/api/v1/inquiries/{draft['id']}", "/inquiries/{inquiry_id}"), "NOT_FOUND")
    ]
    assert not [e for e in await ledger_events(ctx, action="request.denied") if e.actor_id == "op001"]
    listed = await client.get("/inquiries", headers=other)
    assert listed.json()["items"] == []
    auditor = await as_user(client, demo, "auditor")
    seen = (await client.get(f"/inquiries/{draft['id']}", headers=auditor)).json()
    assert seen["subject"] is None


async def test_draft_expires_after_the_next_business_day(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    clock.advance(days=2, hours=1)
    confirmer = await as_user(client, demo, "cf001")
    response = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    assert _code(response) == (409, "INVALID_STATE")
    operator = await as_user(client, demo, "op001")
    assert (await client.get(f"/inquiries/{draft['id']}", headers=operator)).json()["status"] == "expired"


async def test_a_draft_nobody_touches_after_its_deadline_is_expired_by_the_sweep(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A draft left alone past its deadline read 「承認待ち」 for good — in its view, the status filter and
    the dashboard — while the approval register counted its number expired. The sweep expires it, closes
    its number and says so in the ledger; a draft still within its time is left as it is."""
    from app.governance import sweep
    from app.inquiry.models import ApprovalNumber

    operator = await as_user(client, demo, "op001")
    stale = await _draft(client, ctx, operator)
    confirmer = await as_user(client, demo, "cf001")
    issued = await client.post(f"/inquiries/{stale['id']}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201, issued.text
    clock.advance(days=2, hours=1)
    operator = await as_user(client, demo, "op001")
    fresh = await _draft(client, ctx, operator)

    assert (await sweep.run_once(ctx)).drafts_expired == 1
    assert (await sweep.run_once(ctx)).drafts_expired == 0
    operator = await as_user(client, demo, "op001")
    assert (await client.get(f"/inquiries/{stale['id']}", headers=operator)).json()["status"] == "expired"
    waiting = await client.get("/inquiries", params={"status": "awaiting_approval"}, headers=operator)
    assert [item["id"] for item in waiting.json()["items"]] == [fresh["id"]]
    async with ctx.db.read_session() as session:
        number = await session.scalar(select(ApprovalNumber).where(ApprovalNumber.inquiry_id == stale["id"]))
    assert number is not None and number.state == "expired" and number.closed_at is not None
    expired = await ledger_events(ctx, action="inquiry.expired")
    assert [(e.object_id, e.actor_id) for e in expired] == [(stale["id"], "system")]


def _a1(demo: DemoCredentials, confirmer_id: str = "cf001") -> dict[str, Any]:
    return {
        "method": "confirmer_credentials",
        "confirmer_user_id": confirmer_id,
        "confirmer_password": password_of(demo, confirmer_id),
    }


@pytest.mark.parametrize(
    "step", ["draft_change", "cancel", "release_note", "correction_reason", "corrected_reference"]
)
async def test_my_number_is_refused_in_every_later_step_too(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, step: str
) -> None:
    """PL-4 holds for everything the gateway keeps or sends, not only the draft: the cancellation reason
    (sent to the center), a mismatch note, a correction's reason and corrected fields."""
    operator = await as_user(client, demo, "op001")
    body = draft_body(await person(ctx), approval=_a1(demo))
    held = (await client.post("/inquiries", json=body, headers=operator)).json()
    assert held["status"] == "held"
    url = f"/inquiries/{held['id']}"
    number = my_number()
    refusals_before = len(await ledger_events(ctx, action="inquiry.refused"))
    if step == "draft_change":
        draft = await _draft(client, ctx, operator)
        subject = {**draft["subject"], "address": f"東京都千代田区一番町1 {number}"}
        refused = await client.patch(f"/inquiries/{draft['id']}", json={"subject": subject}, headers=operator)
        assert _code(refused) == (422, "MY_NUMBER_FORBIDDEN")
        assert (await client.get(f"/inquiries/{draft['id']}", headers=operator)).json()["subject"] == draft[
            "subject"
        ]
    elif step == "cancel":
        refused = await client.post(
            f"{url}/cancel", json={"reason": f"誤入力 {number}", "approval": _a1(demo)}, headers=operator
        )
    elif step == "release_note":
        releaser = await as_user(client, demo, "cf001b")
        release = {"password": password_of(demo, "cf001b"), "document_check": "mismatch", "note": number}
        refused = await client.post(f"{url}/release", json=release, headers=releaser)
    else:
        document = {"type": "ledger", "reference": "LA-2026-000123", "obtained_on": "2026-11-20"}
        reason = "目的入力誤り"
        if step == "correction_reason":
            reason = f"{reason} {number}"
        else:
            document["reference"] = number
        correction = {"reason": reason, "corrections": {"consent_document": document}, "approval": _a1(demo)}
        refused = await client.post(f"{url}/correct", json=correction, headers=operator)

    assert _code(refused) == (422, "MY_NUMBER_FORBIDDEN")
    assert number not in refused.text
    refusals = await ledger_events(ctx, action="inquiry.refused")
    assert [json.loads(e.details)["code"] for e in refusals[refusals_before:]] == ["MY_NUMBER_FORBIDDEN"]
    state = (await client.get(url, headers=operator)).json()
    assert (state["status"], state["response"]["state"]) == ("held", "held")
    assert [entry["kind"] for entry in await center_record_when_nothing_waits(ctx)] == ["inquiry"]


async def test_a_password_that_reads_as_an_individual_number_still_approves(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Secrets are compared with their hash and never kept, so they are not part of the PL-4 scan: a
    confirmer whose password holds twelve digits with a valid check digit can still approve."""
    password = f"Kakunin-{my_number()}"
    async with ctx.db.session() as session:
        user = await session.get(User, "cf001")
        assert user is not None
        user.password_hash = ctx.passwords.hash(password)
        await session.commit()
    operator = await as_user(client, demo, "op001")
    approval = {**_a1(demo), "confirmer_password": password}

    sent = await client.post(
        "/inquiries", json=draft_body(await person(ctx), approval=approval), headers=operator
    )

    assert sent.status_code == 201, sent.text
    assert sent.json()["approval"]["confirmer_id"] == "cf001"


async def test_every_number_ends_in_one_state_even_if_nobody_enters_it(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """A2: issued = used + voided + expired + outstanding, and nothing stays outstanding for ever — a spare
    number dies when its draft is sent (by another number or by A1), an unused one when its 30 minutes end."""
    operator = await as_user(client, demo, "op001")
    confirmer = await as_user(client, demo, "cf001")

    async def issue(inquiry_id: str) -> str:
        issued = await client.post(f"/inquiries/{inquiry_id}/approval-numbers", json={}, headers=confirmer)
        assert issued.status_code == 201, issued.text
        return str(issued.json()["approval_number"])

    by_number, by_a1, untouched = [await _draft(client, ctx, operator) for _ in range(3)]
    number = await issue(by_number["id"])
    await issue(by_number["id"])  # a spare, e.g. issued again after a phone call broke off
    await issue(by_a1["id"])
    await issue(untouched["id"])
    sent = await client.post(
        f"/inquiries/{by_number['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": number}},
        headers=operator,
    )
    assert sent.status_code == 200, sent.text
    sent = await client.post(
        f"/inquiries/{by_a1['id']}/submit", json={"approval": _a1(demo, "cf001b")}, headers=operator
    )
    assert sent.status_code == 200, sent.text

    async def register() -> dict[str, Any]:
        reader = await as_user(client, demo, "cf001")
        params = {"branch_code": "001", "business_date": "2026-11-24"}
        response = await client.get("/approval-numbers/register", headers=reader, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    during = await register()
    clock.advance(minutes=31)
    after = await register()

    assert (during["issued"], during["used"], during["voided"], during["outstanding"]) == (4, 1, 2, 1)
    assert during["balanced"] is True
    assert (after["used"], after["voided"], after["expired"], after["outstanding"]) == (1, 2, 1, 0)
    assert after["balanced"] is True


async def test_a_number_issued_as_the_day_turns_balances_the_register_of_its_own_day(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The register counts issued numbers from the ledger's events by their day and the other states
    from the register's rows by their business date: one number must land on the same day in both,
    even when the clock passes Tokyo midnight while it is being issued."""
    from datetime import UTC, date, datetime, timedelta

    from app.inquiry import approvals
    from app.inquiry.service import load_inquiry

    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    last_instant_of_the_24th = datetime(2026, 11, 24, 14, 59, 59, 999999, tzinfo=UTC)  # 23:59:59.999999 JST
    reads: list[datetime] = []

    def ticking() -> datetime:  # every read of the clock a microsecond after the one before
        reads.append(last_instant_of_the_24th + timedelta(microseconds=len(reads)))
        return reads[-1]

    async with ctx.db.session() as session:
        inquiry = await load_inquiry(session, draft["id"], for_update=True)
        # From the issue's first look at the clock to its commit only: the app's shutdown waits by the
        # clock too, and under a clock that barely moves it waited out its 30-second limit.
        with monkeypatch.context() as patched:
            patched.setattr(clock, "now", ticking)
            await approvals.issue_number(
                session,
                ctx=ctx,
                inquiry=inquiry,
                confirmer=Actor(id="cf001", roles=("confirmer",)),
                purpose="submit",
                bound_hash=inquiry.draft_hash,
            )
            await session.commit()
    assert reads[0].astimezone(TOKYO).date() == date(2026, 11, 24)
    assert reads[-1].astimezone(TOKYO).date() == date(2026, 11, 25)  # the day turned during the issue

    issued_on = {}
    async with ctx.db.read_session() as session:
        for day in (date(2026, 11, 24), date(2026, 11, 25)):
            balance = await approvals.register_balance(
                session, branch_code="001", business_date=day, now=reads[-1]
            )
            accounted = balance["used"] + balance["voided"] + balance["expired"] + balance["outstanding"]
            assert balance["issued"] == accounted, (day, balance)
            issued_on[day] = balance["issued"]
    assert issued_on == {date(2026, 11, 24): 1, date(2026, 11, 25): 0}


@pytest.mark.parametrize("closed_by", ["sent_by_a1", "draft_changed", "cancelled"])
async def test_a_past_days_register_does_not_change_when_an_expired_number_is_closed_later(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock, closed_by: str
) -> None:
    """A number that ran out at 23:50 is counted expired on its day's register from then on. The draft
    sent by A1, changed or cancelled the next morning closes it as expired, as counted — not as voided,
    which rewrote a past day's figures after they were read and reconciled."""
    from datetime import UTC, datetime

    clock.set(datetime(2026, 11, 24, 14, 20, tzinfo=UTC))  # 23:20 JST
    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    confirmer = await as_user(client, demo, "cf001")
    issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    assert issued.status_code == 201, issued.text

    async def register() -> dict[str, Any]:
        reader = await as_user(client, demo, "cf001")
        params = {"branch_code": "001", "business_date": "2026-11-24"}
        response = await client.get("/approval-numbers/register", headers=reader, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    clock.set(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))  # 09:30 JST the next morning
    read_that_morning = await register()
    assert (read_that_morning["issued"], read_that_morning["expired"], read_that_morning["voided"]) == (
        1,
        1,
        0,
    )
    operator = await as_user(client, demo, "op001")
    if closed_by == "sent_by_a1":
        done = await client.post(
            f"/inquiries/{draft['id']}/submit", json={"approval": _a1(demo, "cf001b")}, headers=operator
        )
    elif closed_by == "draft_changed":
        done = await client.patch(
            f"/inquiries/{draft['id']}",
            json={
                "consent_document": {
                    "type": "loan_application",
                    "reference": "LA-2026-000999",
                    "obtained_on": "2026-11-10",
                }
            },
            headers=operator,
        )
    else:
        done = await client.post(
            f"/inquiries/{draft['id']}/cancel",
            json={"reason": "入力誤り", "approval": _a1(demo, "cf001b")},
            headers=operator,
        )
    assert done.status_code == 200, done.text
    assert await register() == read_that_morning
    expired = await ledger_events(ctx, action="approval_number.expired")
    assert [e.object_id for e in expired] == [draft["id"]]
    assert await ledger_events(ctx, action="approval_number.voided") == []


async def test_an_approval_number_typed_in_full_width_digits_is_the_same_number(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Read out by the confirmer and typed with the Japanese input still in full-width mode; a wrong
    entry would count towards the five that void the number."""
    operator = await as_user(client, demo, "op001")
    draft = await _draft(client, ctx, operator)
    confirmer = await as_user(client, demo, "cf001")
    issued = await client.post(f"/inquiries/{draft['id']}/approval-numbers", json={}, headers=confirmer)
    number = issued.json()["approval_number"]
    full_width = number.translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))
    # Digits of another script are not the number.
    other_script = number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    refused = await client.post(
        f"/inquiries/{draft['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": other_script}},
        headers=operator,
    )
    assert _code(refused) == (403, "APPROVAL_INVALID")
    sent = await client.post(
        f"/inquiries/{draft['id']}/submit",
        json={"approval": {"method": "approval_number", "approval_number": full_width}},
        headers=operator,
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["approval"]["confirmer_id"] == "cf001"


@pytest.mark.parametrize("destroyed_by", ["the_use_period_ending", "a_restore_reapplying_the_deletion"])
async def test_a_destroyed_response_is_gone_for_everyone(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, destroyed_by: str
) -> None:
    """410 RESPONSE_DESTROYED once the response's data key is deleted (RT-1 crypto-shred). The test
    leaves the stored response as the purge would — the wrapped key deleted, and the state ``destroyed``;
    or only the key gone, as when a row lost its key while its inquiry's state did not follow. The purge
    itself: tests/retention/test_purge.py."""
    inquiry_id, operator, releaser = await released_inquiry(client, demo, ctx)
    async with ctx.db.session() as session:
        response = await session.get(SealedResponse, inquiry_id)
        inquiry = await session.get(Inquiry, inquiry_id)
        assert response is not None and inquiry is not None
        response.wrapped_key = None
        if destroyed_by == "the_use_period_ending":
            inquiry.response_state = "destroyed"
        await session.commit()
    reads_before = len(await ledger_events(ctx, action="inquiry.response_read"))
    for reader in (operator, releaser):
        gone = await client.get(f"/inquiries/{inquiry_id}/response", headers=reader)
        assert _code(gone) == (410, "RESPONSE_DESTROYED")
    assert len(await ledger_events(ctx, action="inquiry.response_read")) == reads_before

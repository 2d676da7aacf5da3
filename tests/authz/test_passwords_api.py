"""POST /auth/password (AU-4, AU-7, AU-9): re-authentication, every policy rule by name, the last-10
history, other sessions ended, and a ledger that records changes without ever holding a password."""

from __future__ import annotations

import json

import httpx
import pytest

from app.authz.passwords import PasswordHashing
from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.demo import DemoCredentials
from tests.helpers import auth_headers, ledger_events, login, terminal, terminal_headers, user

# Ten good passwords for op001, each far from every other (no near copies among them).
GOOD = (
    "Kur0-Neko!Umi#Sora",
    "Hoshi-Zora_2K!ame",
    "Zx9#mQ!vR2&kLp",
    "Aoi-Sora7!Nami^Kaze",
    "Midori#Mori8-Tsuki",
    "Yuki_Hana9!Kawa",
    "Tora*Kumo5-Hikari",
    "Kiri+Mizu6@Yoru",
    "Fuyu~Ishi4#Kage",
    "Natsu=Hi3!Tsubame",
)


async def change(
    client: httpx.AsyncClient, headers: dict[str, str], current: str, new: str
) -> httpx.Response:
    return await client.post(
        "/auth/password", json={"current_password": current, "new_password": new}, headers=headers
    )


def assert_policy_refusal(response: httpx.Response, violations: list[str], password: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "PASSWORD_POLICY"
    assert body["violations"] == violations
    assert password not in response.text


async def test_wrong_current_password_is_refused_and_counts_toward_lockout(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    headers = await auth_headers(client, demo, "op001")
    for attempt in range(1, 5):
        response = await change(client, headers, f"wrong-password-{attempt}", GOOD[0])
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "INVALID_CREDENTIALS"
        # Still logged in after each miss, until the threshold.
        assert (await client.get("/me", headers=headers)).status_code == 200
    failed = await ledger_events(ctx, action="auth.login_failed")
    assert [json.loads(e.details)["consecutive_failures"] for e in failed] == [1, 2, 3, 4]
    assert {e.actor_id for e in failed} == {"op001"}

    fifth = await change(client, headers, "wrong-password-5", GOOD[0])
    assert fifth.status_code == 401
    assert len(await ledger_events(ctx, action="auth.account_locked")) == 1
    # The lock ends the session that guessed, and the right password no longer logs in.
    ended = await client.get("/me", headers=headers)
    assert ended.status_code == 401
    assert ended.json()["code"] == "SESSION_EXPIRED"
    locked = await login(client, demo, "op001")
    assert locked.status_code == 403
    assert locked.json()["code"] == "ACCOUNT_LOCKED"


async def test_misses_while_changing_are_shown_at_the_next_login(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    headers = await auth_headers(client, demo, "op001")
    for attempt in range(2):
        assert (await change(client, headers, f"wrong-password-{attempt}", GOOD[0])).status_code == 401
    again = await login(client, demo, "op001")
    assert again.status_code == 200
    assert again.json()["failed_attempts_since_previous_login"] == 2


# op001 is 佐藤 花子 (サトウ ハナコ), born 1990-04-12, phone 03-5550-0101.
VIOLATIONS = [
    ("too_short", "Kx9#mQ!v"),
    ("single_character_class", "kuronekoumisorayama"),
    ("common_password", "Password1234!"),
    ("contains_user_id", "Kur0-Neko!op001#Umi"),
    ("contains_name", "Kur0-Neko!佐藤#Umi"),
    ("contains_name", "Kur0-Neko!ハナコ#Umi"),
    ("contains_name", "Kur0-Neko!さとう#Umi"),
    ("contains_birth_date", "Kur0-Neko!19900412"),
    ("contains_birth_date", "Kur0-Neko!Umi#1990-04-12"),
    ("contains_phone", "Kur0-Neko!03-5550-0101"),
    ("contains_phone", "Kur0-Neko!5500101#"),
]


async def test_each_policy_violation_is_named(
    client: httpx.AsyncClient, demo: DemoCredentials, subtests: pytest.Subtests
) -> None:
    headers = await auth_headers(client, demo, "op001")
    for violation, password in VIOLATIONS:
        with subtests.test(violation=violation, password=password):
            response = await change(client, headers, user(demo, "op001")["password"], password)
            assert_policy_refusal(response, [violation], password)
    # Nothing changed: the old password still logs in, the refused ones do not (a few, below the lockout).
    for _violation, password in VIOLATIONS[:3]:
        assert (await login(client, demo, "op001", password=password)).status_code == 401
    assert (await login(client, demo, "op001")).status_code == 200


async def test_near_copy_of_the_current_password_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    current = user(demo, "op001")["password"]
    headers = await auth_headers(client, demo, "op001")
    for near in (current + "!x", current[:-1] + ("A" if current[-1] != "A" else "B"), current.upper()):
        assert_policy_refusal(await change(client, headers, current, near), ["near_copy_of_current"], near)


async def test_every_broken_rule_is_named_at_once(client: httpx.AsyncClient, demo: DemoCredentials) -> None:
    headers = await auth_headers(client, demo, "op001")
    response = await change(client, headers, user(demo, "op001")["password"], "さとう0412")
    assert_policy_refusal(response, ["too_short", "contains_name", "contains_birth_date"], "さとう0412")


async def test_none_of_the_last_ten_passwords_can_be_reused(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    original = user(demo, "op001")["password"]
    headers = await auth_headers(client, demo, "op001")
    current = original
    for new in GOOD:
        clock.advance(seconds=30)
        response = await change(client, headers, current, new)
        assert response.status_code == 204, response.text
        current = new

    for old in GOOD[:-1]:
        response = await change(client, headers, current, old)
        assert_policy_refusal(response, ["reused_recent_password"], old)
    # The current one is both a copy of itself and reused.
    response = await change(client, headers, current, current)
    assert_policy_refusal(response, ["near_copy_of_current", "reused_recent_password"], current)

    # The 11th back is out of the window and is accepted again.
    assert (await change(client, headers, current, original)).status_code == 204
    assert (await login(client, demo, "op001", password=original)).status_code == 200
    # ...which pushes the oldest of the ten out as well, while the rest stay barred.
    assert (await change(client, headers, original, GOOD[1])).status_code == 422
    assert (await change(client, headers, original, GOOD[0])).status_code == 204


async def test_change_ends_the_users_other_sessions_but_not_this_one(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    old = user(demo, "op001")["password"]
    this = await auth_headers(client, demo, "op001")
    second_terminal = terminal(demo, "001", 1)
    other_login = await client.post(
        "/auth/login", json={"user_id": "op001", "password": old}, headers=terminal_headers(second_terminal)
    )
    other = {
        "Authorization": f"Bearer {other_login.json()['access_token']}",
        "X-Terminal-Id": second_terminal["id"],
    }
    colleague = await auth_headers(client, demo, "cf001")

    assert (await change(client, this, old, GOOD[0])).status_code == 204

    assert (await client.get("/me", headers=this)).status_code == 200
    ended = await client.get("/me", headers=other)
    assert ended.status_code == 401
    assert ended.json()["code"] == "SESSION_EXPIRED"
    assert (await client.get("/me", headers=colleague)).status_code == 200

    assert (await login(client, demo, "op001", password=old)).json()["code"] == "INVALID_CREDENTIALS"
    assert (await login(client, demo, "op001", password=GOOD[0])).status_code == 200


async def test_ledger_records_changes_and_refusals_without_the_password(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    old = user(demo, "op001")["password"]
    headers = await auth_headers(client, demo, "op001")
    refused_candidate = "Kur0-Neko!佐藤#Umi"
    wrong_current = "wrong-password-Zq8"
    assert (await change(client, headers, old, refused_candidate)).status_code == 422
    assert (await change(client, headers, wrong_current, GOOD[0])).status_code == 401
    assert (await change(client, headers, old, GOOD[0])).status_code == 204

    refusals = await ledger_events(ctx, action="auth.password_change_refused")
    assert len(refusals) == 1
    assert refusals[0].actor_id == "op001"
    assert refusals[0].object_id == "op001"
    assert refusals[0].outcome == "denied"
    assert json.loads(refusals[0].details) == {"violations": ["contains_name"]}
    changes = await ledger_events(ctx, action="auth.password_changed")
    assert len(changes) == 1
    assert changes[0].actor_id == "op001"
    assert changes[0].object_id == "op001"
    assert changes[0].terminal_id == terminal(demo, "001")["id"]

    secrets = (old, refused_candidate, wrong_current, GOOD[0])
    for event in await ledger_events(ctx):
        text = " ".join(
            str(value)
            for value in (event.actor_id, event.terminal_id, event.object_id, event.details, event.request_id)
        )
        for secret in secrets:
            assert secret not in text, event.action


def test_production_argon2_parameters_are_argon2id_m19456_t2_p1(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SHOKAI_ARGON2_MEMORY_KIB", "SHOKAI_ARGON2_TIME_COST", "SHOKAI_ARGON2_PARALLELISM"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    hashing = PasswordHashing(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )
    stored = hashing.hash(GOOD[0])
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert GOOD[0] not in stored
    assert hashing.verify(stored, GOOD[0])
    assert not hashing.verify(stored, GOOD[1])
    assert not hashing.needs_rehash(stored)
    # A hash made with weaker parameters (the test suite's) is upgraded at the next login.
    weak = PasswordHashing(memory_kib=1024, time_cost=1, parallelism=1).hash(GOOD[0])
    assert hashing.needs_rehash(weak)

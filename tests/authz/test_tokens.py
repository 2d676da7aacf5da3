"""AU-6/AU-9 access tokens: forged, altered, expired, replayed or misplaced tokens are all refused.

Every refusal is a 401 problem+json that the ledger records (LG-1). Key rotation (EN-2) logs nobody out,
and a retired key stops verifying once its grace period is over. A user who must change the password
can only change it, log out or ask who they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import update

from app.authz.models import User, UserRole
from app.clock import ManualClock
from app.context import AppContext
from app.crypto.keyring import Keyring, open_keyring
from app.demo import DemoCredentials
from tests.helpers import auth_headers, ledger_events, login, terminal, user


@pytest.fixture
def keyring(clock: ManualClock, tmp_path: Path) -> Keyring:
    """A file-backed keyring (as in production) so these tests can rotate the signing key."""
    return open_keyring(key_file=tmp_path / "keys" / "keys.json", env_keys=None, clock=clock, create=True)


# -- token surgery --------------------------------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def sign(claims: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def sign_by_hand(header: dict[str, Any], claims: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """EdDSA over a header PyJWT would refuse to write."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def bearer(token: str, terminal_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if terminal_id is not None:
        headers["X-Terminal-Id"] = terminal_id
    return headers


async def login_token(client: httpx.AsyncClient, demo: DemoCredentials, user_id: str) -> str:
    response = await login(client, demo, user_id)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def denial_count(ctx: AppContext) -> int:
    return len(await ledger_events(ctx, action="request.denied"))


async def assert_refused(
    client: httpx.AsyncClient, ctx: AppContext, headers: dict[str, str], code: str
) -> httpx.Response:
    """GET /me is refused with 401 ``code`` as problem+json, and exactly one denial is in the ledger."""
    before = await denial_count(ctx)
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == 401
    denied = await ledger_events(ctx, action="request.denied")
    assert len(denied) == before + 1
    assert denied[-1].object_id == "/api/v1/me"
    assert denied[-1].outcome == "denied"
    assert json.loads(denied[-1].details)["code"] == code
    return response


# -- no token, malformed or forged tokens ----------------------------------------------------------------


async def test_request_without_a_bearer_token_is_refused_and_logged(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    term = terminal(demo, "001")["id"]
    for headers in (
        {},
        {"X-Terminal-Id": term},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {b64url(b'op001:' + user(demo, 'op001')['password'].encode())}"},
    ):
        await assert_refused(client, ctx, headers, "NOT_AUTHENTICATED")


def _forge_payload_flipped_to_another_user(token: str, keyring: Keyring) -> str:
    header, _payload, signature = token.split(".")
    claims = claims_of(token)
    claims["sub"] = "cf001"
    return f"{header}.{b64url_json(claims)}.{signature}"


def _forge_payload_with_longer_expiry(token: str, keyring: Keyring) -> str:
    header, _payload, signature = token.split(".")
    claims = claims_of(token)
    claims["exp"] += 30 * 24 * 3600
    return f"{header}.{b64url_json(claims)}.{signature}"


def _forge_with_a_foreign_key_and_the_right_kid(token: str, keyring: Keyring) -> str:
    return sign(claims_of(token), Ed25519PrivateKey.generate(), kid_of(token))


def _forge_with_the_ledger_checkpoint_key(token: str, keyring: Keyring) -> str:
    # Another of the gateway's own keys: must not be accepted for tokens just because the server holds it.
    checkpoint = keyring.checkpoint_signing_key()
    return sign(claims_of(token), checkpoint.private_key, checkpoint.key_id)


def _forge_alg_none(token: str, keyring: Keyring) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": kid_of(token)}
    return f"{b64url_json(header)}.{b64url_json(claims_of(token))}."


def _forge_alg_none_keeping_the_signature(token: str, keyring: Keyring) -> str:
    _header, payload, signature = token.split(".")
    return f"{b64url_json({'alg': 'none', 'kid': kid_of(token)})}.{payload}.{signature}"


def _hs256_with_secret(token: str, secret: bytes) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": kid_of(token)}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims_of(token))}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _forge_hs256_with_public_key_pem(token: str, keyring: Keyring) -> str:
    public = keyring.token_signing_key().public_key
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _hs256_with_secret(token, pem)


def _forge_hs256_with_raw_public_key(token: str, keyring: Keyring) -> str:
    public = keyring.token_signing_key().public_key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _hs256_with_secret(token, raw)


def _forge_unknown_kid(token: str, keyring: Keyring) -> str:
    return sign(claims_of(token), keyring.token_signing_key().private_key, "ts-99")


def _forge_without_kid(token: str, keyring: Keyring) -> str:
    return jwt.encode(claims_of(token), keyring.token_signing_key().private_key, algorithm="EdDSA")


def _forge_non_string_kid(token: str, keyring: Keyring) -> str:
    header = {"alg": "EdDSA", "typ": "JWT", "kid": 1}
    return sign_by_hand(header, claims_of(token), keyring.token_signing_key().private_key)


def _forge_for_another_issuer(token: str, keyring: Keyring) -> str:
    key = keyring.token_signing_key()
    return sign({**claims_of(token), "iss": "someone-else"}, key.private_key, key.key_id)


def _forge_expired_with_the_real_key(token: str, keyring: Keyring) -> str:
    key = keyring.token_signing_key()
    claims = claims_of(token)
    claims["exp"] = claims["iat"] - 1
    return sign(claims, key.private_key, key.key_id)


def _forge_issued_in_the_future_with_the_real_key(token: str, keyring: Keyring) -> str:
    key = keyring.token_signing_key()
    claims = claims_of(token)
    claims["iat"] += 3600
    return sign(claims, key.private_key, key.key_id)


def _forge_without_a_session_with_the_real_key(token: str, keyring: Keyring) -> str:
    key = keyring.token_signing_key()
    claims = claims_of(token)
    del claims["sid"]
    return sign(claims, key.private_key, key.key_id)


def _not_a_jwt(token: str, keyring: Keyring) -> str:
    return "not-a-jwt"


def _truncated_signature(token: str, keyring: Keyring) -> str:
    return token[:-6]


FORGERIES: dict[str, Callable[[str, Keyring], str]] = {
    "payload_sub_flipped_to_another_user": _forge_payload_flipped_to_another_user,
    "payload_exp_extended": _forge_payload_with_longer_expiry,
    "foreign_ed25519_key_right_kid": _forge_with_a_foreign_key_and_the_right_kid,
    "signed_with_checkpoint_key": _forge_with_the_ledger_checkpoint_key,
    "alg_none": _forge_alg_none,
    "alg_none_keeping_signature": _forge_alg_none_keeping_the_signature,
    "hs256_public_key_pem_as_secret": _forge_hs256_with_public_key_pem,
    "hs256_raw_public_key_as_secret": _forge_hs256_with_raw_public_key,
    "unknown_kid": _forge_unknown_kid,
    "no_kid": _forge_without_kid,
    "non_string_kid": _forge_non_string_kid,
    "wrong_issuer": _forge_for_another_issuer,
    "real_key_exp_in_the_past": _forge_expired_with_the_real_key,
    "real_key_iat_in_the_future": _forge_issued_in_the_future_with_the_real_key,
    "real_key_no_session_claim": _forge_without_a_session_with_the_real_key,
    "not_a_jwt": _not_a_jwt,
    "truncated_signature": _truncated_signature,
}


async def test_forged_or_altered_token_is_refused_as_invalid(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, subtests: pytest.Subtests
) -> None:
    token = await login_token(client, demo, "op001")
    term = terminal(demo, "001")["id"]
    for name, forge in FORGERIES.items():
        with subtests.test(forgery=name):
            forged = forge(token, ctx.keyring)
            assert forged != token
            await assert_refused(client, ctx, bearer(forged, term), "INVALID_TOKEN")
            # The genuine token is untouched by the attempt.
            me = await client.get("/me", headers=bearer(token, term))
            assert me.status_code == 200
            assert me.json()["id"] == "op001"


async def test_token_re_signed_unchanged_with_the_real_key_is_accepted(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Control for the forgeries above: the hand-crafting is sound, so their refusals mean something."""
    token = await login_token(client, demo, "op001")
    key = ctx.keyring.token_signing_key()
    header = {"alg": "EdDSA", "typ": "JWT", "kid": key.key_id}
    for resigned in (
        sign(claims_of(token), key.private_key, key.key_id),
        sign_by_hand(header, claims_of(token), key.private_key),
    ):
        me = await client.get("/me", headers=bearer(resigned, terminal(demo, "001")["id"]))
        assert me.status_code == 200
        assert me.json()["id"] == "op001"


async def test_validly_signed_token_naming_another_user_does_not_open_their_session(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Even with the signing key, a token is worth nothing without the server-side session it names."""
    token = await login_token(client, demo, "op001")
    key = ctx.keyring.token_signing_key()
    claims = claims_of(token)
    other = sign({**claims, "sub": "cf001"}, key.private_key, key.key_id)
    await assert_refused(client, ctx, bearer(other, terminal(demo, "001")["id"]), "SESSION_EXPIRED")
    invented = sign({**claims, "sid": "no-such-session"}, key.private_key, key.key_id)
    await assert_refused(client, ctx, bearer(invented, terminal(demo, "001")["id"]), "SESSION_EXPIRED")
    service = sign({**claims, "typ": "service"}, key.private_key, key.key_id)
    await assert_refused(client, ctx, bearer(service, terminal(demo, "001")["id"]), "SESSION_EXPIRED")


# -- expiry, logout, terminal binding -------------------------------------------------------------------


async def test_token_expires_with_the_sessions_absolute_limit(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    opened = clock.now()
    response = await login(client, demo, "op001")
    assert response.json()["expires_in"] == 8 * 3600
    token = response.json()["access_token"]
    term = terminal(demo, "001")["id"]
    claims = claims_of(token)
    # The token outlives the session by two minutes so the server-side session ends it and says why.
    assert claims["exp"] - claims["iat"] == 8 * 3600 + 120
    me = await client.get("/me", headers=bearer(token, term))
    assert datetime.fromisoformat(me.json()["session_expires_at"]) == opened + timedelta(hours=8)

    clock.set(opened + timedelta(hours=8))
    ended = await client.get("/me", headers=bearer(token, term))
    assert ended.status_code == 401 and ended.json()["code"] == "SESSION_EXPIRED"
    endings = await ledger_events(ctx, action="auth.session_ended")
    assert endings[-1].details == '{"reason":"absolute_timeout"}'
    await assert_refused(client, ctx, bearer(token, term), "SESSION_EXPIRED")
    clock.advance(days=30)
    await assert_refused(client, ctx, bearer(token, term), "INVALID_TOKEN")


async def test_token_of_a_logged_out_session_is_refused(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    token = await login_token(client, demo, "op001")
    headers = bearer(token, terminal(demo, "001")["id"])
    assert (await client.post("/auth/logout", headers=headers)).status_code == 204
    assert len(await ledger_events(ctx, action="auth.logout")) == 1
    await assert_refused(client, ctx, headers, "SESSION_EXPIRED")
    # Logging out again with the dead token is refused too; it does not resurrect anything.
    assert (await client.post("/auth/logout", headers=headers)).status_code == 401
    await assert_refused(client, ctx, headers, "SESSION_EXPIRED")


async def test_idle_session_end_is_recorded_as_auth_session_ended(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    headers = await auth_headers(client, demo, "op001")
    clock.advance(minutes=10)
    response = await client.get("/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "SESSION_EXPIRED"
    ended = await ledger_events(ctx, action="auth.session_ended")
    assert len(ended) == 1
    assert ended[0].actor_id == "op001"
    assert json.loads(ended[0].details) == {"reason": "idle_timeout"}
    # The session is dead for good; later attempts are denied requests, the end is recorded once.
    await assert_refused(client, ctx, headers, "SESSION_EXPIRED")
    assert len(await ledger_events(ctx, action="auth.session_ended")) == 1


async def test_token_is_bound_to_the_terminal_it_was_issued_on(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    token = await login_token(client, demo, "op001")
    own = terminal(demo, "001", 0)["id"]
    for other in (terminal(demo, "001", 1)["id"], terminal(demo, "002")["id"], own.lower(), ""):
        await assert_refused(client, ctx, bearer(token, other), "TERMINAL_MISMATCH")
    await assert_refused(client, ctx, bearer(token), "TERMINAL_MISMATCH")
    # The refusals did not end the session: from its own terminal the token still works.
    assert (await client.get("/me", headers=bearer(token, own))).status_code == 200


async def test_terminal_free_token_cannot_be_presented_from_a_terminal(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    token = await login_token(client, demo, "auditor")
    assert claims_of(token)["tid"] is None
    await assert_refused(client, ctx, bearer(token, terminal(demo, "001")["id"]), "TERMINAL_MISMATCH")
    assert (await client.get("/me", headers=bearer(token))).status_code == 200


# -- key rotation ---------------------------------------------------------------------------------------


async def test_rotation_logs_nobody_out_and_new_logins_use_the_new_key(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    opened = clock.now()
    old_token = await login_token(client, demo, "op001")
    term = terminal(demo, "001")["id"]
    old_kid = kid_of(old_token)
    assert old_kid == ctx.keyring.current_key_id("token_signing")

    clock.advance(minutes=1)
    new_kid = ctx.keyring.rotate("token_signing", now=clock.now())
    assert new_kid != old_kid

    assert (await client.get("/me", headers=bearer(old_token, term))).status_code == 200
    new_token = await login_token(client, demo, "cf001")
    assert kid_of(new_token) == new_kid
    assert (await client.get("/me", headers=bearer(new_token, term))).status_code == 200

    # The pre-rotation token keeps working, while in use, right up to its own 8-hour limit.
    status = 200
    while status == 200:
        clock.advance(minutes=9, seconds=59)
        status = (await client.get("/me", headers=bearer(old_token, term))).status_code
    assert timedelta(hours=8) <= clock.now() - opened < timedelta(hours=8, minutes=10)


async def test_retired_key_stops_verifying_after_the_grace_period(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    grace = timedelta(hours=ctx.settings.retired_signing_key_grace_hours)
    # The grace period covers every token the retired key signed (they live as long as a session).
    assert grace >= timedelta(hours=ctx.settings.session_absolute_hours)
    term = terminal(demo, "001")["id"]
    retired = ctx.keyring.token_signing_key()
    old_token = await login_token(client, demo, "op001")
    rotated_at = clock.advance(minutes=1)
    ctx.keyring.rotate("token_signing", now=rotated_at)
    current = ctx.keyring.token_signing_key()

    async def signed_by_each_key() -> tuple[str, str]:
        claims = claims_of(await login_token(client, demo, "op001"))
        return (
            sign(claims, retired.private_key, retired.key_id),
            sign(claims, current.private_key, current.key_id),
        )

    # Just inside the grace period the retired key still verifies (for a live session).
    clock.set(rotated_at + grace - timedelta(minutes=1))
    by_retired, by_current = await signed_by_each_key()
    assert (await client.get("/me", headers=bearer(by_retired, term))).status_code == 200
    assert (await client.get("/me", headers=bearer(by_current, term))).status_code == 200

    # Past it, nothing signed by the retired key is accepted, whatever its claims say.
    clock.set(rotated_at + grace + timedelta(seconds=1))
    by_retired, by_current = await signed_by_each_key()
    refused = await assert_refused(client, ctx, bearer(by_retired, term), "INVALID_TOKEN")
    assert "retired" in refused.json()["detail"]
    await assert_refused(client, ctx, bearer(old_token, term), "INVALID_TOKEN")
    assert (await client.get("/me", headers=bearer(by_current, term))).status_code == 200


# -- password change gating (AU-4) ----------------------------------------------------------------------


async def _set_must_change(ctx: AppContext, user_id: str) -> None:
    async with ctx.db.session() as session:
        await session.execute(update(User).where(User.id == user_id).values(must_change_password=True))
        await session.commit()


async def test_user_who_must_change_password_can_only_change_it_log_out_or_see_me(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await _set_must_change(ctx, "auditor")
    response = await login(client, demo, "auditor")
    assert response.status_code == 200
    assert response.json()["must_change_password"] is True
    headers = bearer(response.json()["access_token"])

    me = await client.get("/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["must_change_password"] is True

    before = await denial_count(ctx)
    refused = await client.get("/audit/verify", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    denied = await ledger_events(ctx, action="request.denied")
    assert len(denied) == before + 1
    assert denied[-1].actor_id == "auditor"
    assert json.loads(denied[-1].details)["code"] == "PASSWORD_CHANGE_REQUIRED"
    assert (await client.get("/audit/events", headers=headers)).json()["code"] == "PASSWORD_CHANGE_REQUIRED"

    changed = await client.post(
        "/auth/password",
        json={"current_password": user(demo, "auditor")["password"], "new_password": "Kur0-Neko!Umi#Sora"},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    # The same session goes on, now unrestricted.
    assert (await client.get("/me", headers=headers)).json()["must_change_password"] is False
    verify = await client.get("/audit/verify", headers=headers)
    assert verify.status_code == 200, verify.text
    assert verify.json()["ok"] is True


async def test_user_who_must_change_password_may_log_out(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    await _set_must_change(ctx, "accadmin")
    token = await login_token(client, demo, "accadmin")
    refused = await client.get("/branches", headers=bearer(token))
    assert refused.status_code == 403
    assert refused.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    terminal = {"id": "T001-09", "branch_code": "001"}
    held = await client.post("/terminals", json=terminal, headers=bearer(token))
    assert held.status_code == 403 and held.json()["code"] == "PASSWORD_CHANGE_REQUIRED"
    assert (await client.post("/auth/logout", headers=bearer(token))).status_code == 204
    await assert_refused(client, ctx, bearer(token), "SESSION_EXPIRED")


async def test_expired_password_forces_a_change(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    set_at = clock.now()  # the demo users' passwords were set when the fixture seeded them
    clock.advance(days=89)
    fresh = await login(client, demo, "accadmin")
    assert fresh.json()["must_change_password"] is False
    assert datetime.fromisoformat(fresh.json()["password_expires_at"]) == set_at + timedelta(days=90)
    assert (await client.get("/branches", headers=bearer(fresh.json()["access_token"]))).status_code == 200

    clock.set(set_at + timedelta(days=91))
    response = await login(client, demo, "accadmin")
    assert response.status_code == 200
    body = response.json()
    assert body["must_change_password"] is True
    assert datetime.fromisoformat(body["password_expires_at"]) == set_at + timedelta(days=90)
    headers = bearer(body["access_token"])
    assert (await client.get("/me", headers=headers)).json()["must_change_password"] is True
    refused = await client.get("/branches", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "PASSWORD_CHANGE_REQUIRED"

    new_password = "Kur0-Neko!Umi#Sora"
    changed = await client.post(
        "/auth/password",
        json={"current_password": user(demo, "accadmin")["password"], "new_password": new_password},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text
    assert (await client.get("/branches", headers=headers)).status_code == 200
    again = (await login(client, demo, "accadmin", password=new_password)).json()
    assert again["must_change_password"] is False
    assert datetime.fromisoformat(again["password_expires_at"]) == clock.now() + timedelta(days=90)


# The three calls api.md leaves to a user who must change the password; and the calls anyone may make.
CALLS_BEFORE_A_PASSWORD_CHANGE = {
    ("POST", "/auth/password"),
    ("POST", "/auth/logout"),
    ("GET", "/me"),
}
CALLS_WITHOUT_A_LOGIN = {
    ("POST", "/auth/login"),
    ("POST", "/auth/token"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}


async def test_every_other_call_waits_for_the_password_change(
    app: Any, client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Swept over the published API (its OpenAPI document), so a new endpoint cannot miss the gate."""
    await _set_must_change(ctx, "accadmin")
    headers = bearer(await login_token(client, demo, "accadmin"))
    calls = sorted(
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )
    gated = [c for c in calls if c not in CALLS_BEFORE_A_PASSWORD_CHANGE | CALLS_WITHOUT_A_LOGIN]
    assert ("DELETE", "/privileged-sessions/current") in gated and len(gated) > 60
    answered: dict[tuple[str, str], tuple[int, str | None]] = {}
    for method, path in gated:
        url = path.replace("{", "").replace("}", "")  # any value for a path parameter
        response = await client.request(method, url, headers={**headers, "Idempotency-Key": "k-1"}, json={})
        problem = response.headers.get("content-type", "").startswith("application/problem+json")
        answered[(method, path)] = (response.status_code, response.json().get("code") if problem else None)
    gate = (403, "PASSWORD_CHANGE_REQUIRED")
    assert {call: answer for call, answer in answered.items() if answer != gate} == {}


async def test_a_role_granted_during_a_login_that_its_terminal_would_not_fit_ends_the_login(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """AU-2: terminal-bound roles are used from a terminal of their branch. A login made without one
    (no such role then) cannot pick one up and release responses from an unregistered device."""
    from app.audit.ledger import Actor
    from app.authz import directory
    from tests.governance.support import add_person

    await add_person(ctx, demo, "newhire", ())
    headers = bearer(await login_token(client, demo, "newhire"))  # no terminal: none needed yet
    assert (await client.get("/me", headers=headers)).status_code == 200

    async def grant(user_id: str, role: str, branch_code: str) -> None:
        async with ctx.db.session() as session:
            await directory.grant_role(
                session, ctx=ctx, actor=Actor(id="test"), user_id=user_id, role=role, branch_code=branch_code
            )
            await session.commit()

    await grant("newhire", "confirmer", "001")
    ended_now = await client.get("/me", headers=headers)
    assert (ended_now.status_code, ended_now.json()["code"]) == (401, "SESSION_EXPIRED")
    [ended] = [e for e in await ledger_events(ctx, action="auth.session_ended") if e.actor_id == "newhire"]
    assert json.loads(ended.details) == {"reason": "terminal_required"}
    # Logging in again asks for the terminal, as for anyone holding the role.
    again = await login(client, demo, "newhire")
    assert (again.status_code, again.json()["code"]) == (403, "TERMINAL_NOT_REGISTERED")

    # The same on a terminal of another branch: op002, moved to 001, does not go on at 002's terminal.
    at_002 = await auth_headers(client, demo, "op002")
    async with ctx.db.session() as session:
        await session.execute(
            update(UserRole).where(UserRole.user_id == "op002").values(revoked_at=ctx.clock.now())
        )
        await session.commit()
    await grant("op002", "operator", "001")
    moved = await client.get("/me", headers=at_002)
    assert (moved.status_code, moved.json()["code"]) == (401, "SESSION_EXPIRED")
    assert "terminal_required" in moved.json()["detail"]

"""Access tokens: Ed25519-signed JWTs carrying ``kid``, bound to a server-side session and a terminal (AU-9).

Only EdDSA is accepted, so ``alg: none`` and HS256-with-the-public-key forgeries fail before any
key is used; unknown or expired key ids fail too. A valid signature is not enough: the caller then
checks the session row (app/authz/service.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from app.crypto.keyring import Keyring
from app.errors import InvalidToken

ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    kind: str
    session_id: str
    terminal_id: str | None
    scopes: tuple[str, ...]
    expires_at: datetime


def issue_token(
    keyring: Keyring,
    *,
    issuer: str,
    subject: str,
    kind: str,
    session_id: str,
    terminal_id: str | None,
    scopes: tuple[str, ...] = (),
    issued_at: datetime,
    expires_at: datetime,
) -> str:
    key = keyring.token_signing_key()
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "typ": kind,
        "sid": session_id,
        "tid": terminal_id,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if scopes:
        claims["scp"] = list(scopes)
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.key_id})


def decode_token(
    keyring: Keyring, token: str, *, issuer: str, now: datetime, retired_key_grace: timedelta
) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("The access token is malformed") from exc
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str):
        raise InvalidToken("The access token is not signed with an accepted key")
    public_key = keyring.token_verification_key(kid, now=now, grace=retired_key_grace)
    if public_key is None:
        raise InvalidToken("The access token's key is unknown or retired")
    try:
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "require": ["exp", "iat", "sub", "sid", "iss"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken("The access token is not valid") from exc
    # Time claims are judged against the application clock, not the host's, so tests and replicas agree.
    expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo)
    if expires_at <= now:
        raise InvalidToken("The access token has expired")
    if datetime.fromtimestamp(int(claims["iat"]), tz=now.tzinfo) > now + timedelta(seconds=30):
        raise InvalidToken("The access token was issued in the future")
    tid = claims.get("tid")
    scopes = claims.get("scp") or []
    return TokenClaims(
        subject=str(claims["sub"]),
        kind=str(claims.get("typ", "user")),
        session_id=str(claims["sid"]),
        terminal_id=str(tid) if tid is not None else None,
        scopes=tuple(str(s) for s in scopes),
        expires_at=expires_at,
    )

"""TOTP second factor (RFC 6238, the ``cryptography`` implementation) for administrators and, per branch
policy, confirmers (AU-8, AC-5).

The shared secret is sealed with the key-encryption key like every other secret; a code is accepted
once (the last used 30-second step is remembered) and one step of clock drift either way is tolerated.
Nothing here imports the authentication service, so login can ask it without an import cycle.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from datetime import datetime

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy.ext.asyncio import AsyncSession

from app.context import AppContext
from app.crypto.envelope import Sealed, open_sealed, seal
from app.governance.models import TotpEnrolment

TIME_STEP_SECONDS = 30
CODE_DIGITS = 6
# One step either way: terminals' clocks drift, and a code typed at the end of its window still counts.
DRIFT_STEPS = 1


def _aad(user_id: str) -> bytes:
    return f"totp:{user_id}".encode()


def new_secret() -> bytes:
    return secrets.token_bytes(20)


def secret_text(secret: bytes) -> str:
    """The base32 form authenticator apps take."""
    return base64.b32encode(secret).decode().rstrip("=")


def provisioning_uri(secret: bytes, *, user_id: str, issuer: str) -> str:
    # SHA-1 is what RFC 6238 authenticator apps implement; as an HMAC it is not the weak part.
    return _totp(secret).get_provisioning_uri(user_id, issuer)


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, CODE_DIGITS, SHA1(), TIME_STEP_SECONDS, enforce_key_length=False)  # noqa: S303


def code_at(secret: bytes, at: datetime) -> str:
    """The code an authenticator shows at ``at`` (tests and the enrolment check use it)."""
    return _totp(secret).generate(int(at.timestamp())).decode()


def seal_secret(ctx: AppContext, enrolment: TotpEnrolment, secret: bytes) -> None:
    sealed = seal(ctx.keyring, secret, associated_data=_aad(enrolment.user_id))
    enrolment.secret_sealed = sealed.ciphertext
    enrolment.secret_nonce = sealed.nonce
    enrolment.secret_wrapped_key = sealed.wrapped_key
    enrolment.secret_kek_id = sealed.kek_id


def open_secret(ctx: AppContext, enrolment: TotpEnrolment) -> bytes:
    sealed = Sealed(
        enrolment.secret_sealed, enrolment.secret_nonce, enrolment.secret_wrapped_key, enrolment.secret_kek_id
    )
    return open_sealed(ctx.keyring, sealed, associated_data=_aad(enrolment.user_id))


def matching_step(secret: bytes, code: str, *, at: datetime, after_step: int | None) -> int | None:
    """The time step whose code is ``code`` (within the drift window, later than ``after_step``), or None."""
    typed = code.strip().replace(" ", "")
    if len(typed) != CODE_DIGITS or not typed.isdigit():
        return None
    current = int(at.timestamp()) // TIME_STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if after_step is not None and step <= after_step:
            continue
        expected = _totp(secret).generate(step * TIME_STEP_SECONDS)
        if hmac.compare_digest(expected, typed.encode()):
            return step
    return None


async def confirmed_enrolment(session: AsyncSession, user_id: str) -> TotpEnrolment | None:
    enrolment = await session.get(TotpEnrolment, user_id, with_for_update=True)
    return enrolment if enrolment is not None and enrolment.confirmed_at is not None else None


async def verify_code(session: AsyncSession, *, ctx: AppContext, user_id: str, code: str | None) -> bool:
    """Whether ``code`` is a fresh valid code of the user's confirmed second factor; uses it up if so.

    A user without a confirmed enrolment has no valid code. The caller commits.
    """
    enrolment = await confirmed_enrolment(session, user_id)
    if enrolment is None or not code:
        return False
    step = matching_step(
        open_secret(ctx, enrolment), code, at=ctx.clock.now(), after_step=enrolment.last_used_step
    )
    if step is None:
        return False
    enrolment.last_used_step = step
    return True

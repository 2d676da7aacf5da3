"""Argon2id password hashing (AU-9) and the full password-change check (AU-7)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.authz.password_policy import REUSED, PasswordOwner, PasswordPolicy, password_violations


class PasswordHashing:
    """Argon2id with the configured cost; verification runs in a worker thread so it never stalls the loop."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Unknown user ids are checked against this, so a wrong id costs the same time as a wrong password.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash_async(self, password: str) -> str:
        return await asyncio.to_thread(self.hash, password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


@dataclass(frozen=True)
class PasswordCheck:
    """A password checked against the hash stored before the caller's write transaction began.

    Argon2id costs tens of milliseconds by design. Checked inside a write transaction it would hold the
    transaction's locks that long: on SQLite the one writer lock, so every branch's writes would wait
    behind each login, A1 approval and release. So the caller checks first, then opens its transaction,
    reads the hash again and asks :meth:`matches`. The earlier answer is reused only for the very hash it
    was computed on (the string carries its salt: the same string is the same password); a hash changed
    in between is checked again, inside.
    """

    checked_hash: str | None
    result: bool
    password: str = field(repr=False)
    # A new hash at today's cost parameters, made with the check when the stored one was made at older
    # ones (login only): hashing is as slow as verifying, so it is done before the transaction too.
    rehashed: str | None = field(default=None, repr=False)

    async def matches(self, passwords: PasswordHashing, stored_hash: str | None) -> bool:
        if stored_hash == self.checked_hash:
            return self.result
        return await passwords.verify_async(stored_hash, self.password)

    async def upgraded_hash(self, passwords: PasswordHashing, stored_hash: str) -> str | None:
        """What to store in place of ``stored_hash`` (which this password matched) when it was made at
        other cost parameters; None when it needs no change. Hashes inside only if the stored hash is
        not the one checked before the transaction (changed in between: rare)."""
        if not passwords.needs_rehash(stored_hash):
            return None
        if stored_hash == self.checked_hash and self.rehashed is not None:
            return self.rehashed
        return await passwords.hash_async(self.password)


async def new_password_violations(
    passwords: PasswordHashing,
    *,
    new_password: str,
    owner: PasswordOwner,
    policy: PasswordPolicy,
    current_password: str | None,
    recent_hashes: list[str],
) -> list[str]:
    """The policy's named violations plus reuse of any of the last ``history_depth`` passwords."""
    violations = password_violations(
        new_password, owner=owner, policy=policy, current_password=current_password
    )
    for stored in recent_hashes[: policy.history_depth]:
        if await passwords.verify_async(stored, new_password):
            violations.append(REUSED)
            break
    return violations


def machine_secret_hash(secret: str) -> str:
    """Terminal keys and client secrets are 256 random bits: a plain SHA-256 is enough and fast."""
    return hashlib.sha256(secret.encode()).hexdigest()


def machine_secret_matches(stored_hash: str | None, secret: str) -> bool:
    candidate = machine_secret_hash(secret)
    return hmac.compare_digest(stored_hash or "0" * 64, candidate) and stored_hash is not None


def new_machine_secret() -> str:
    return secrets.token_urlsafe(32)

"""The keyring: versioned key material from a key file or the environment (EN-2).

Key file layout (JSON, mode 0600)::

    {"format": 1,
     "kek": {"current": "kek-1", "keys": {"kek-1": {"secret": b64, "created_at": t}}},
     "token_signing": {"current": "ts-1", "keys": {"ts-1": {"secret": b64 Ed25519 seed, "created_at": t,
                                                             "retired_at": null}}},
     "checkpoint_signing": {... same shape ...},
     "pseudonym": {"current": "ps-1", "keys": {"ps-1": {"secret": b64}}},
     "blind_index": {"current": "bi-1", "keys": {"bi-1": {"secret": b64}}}}

Every family is versioned. Retired token-signing keys stay in the file so tokens they signed keep
verifying until they expire; checkpoint-signing keys are never dropped because old checkpoints must
stay verifiable for the ledger's whole retention. Pseudonym and blind-index keys are not rotated in
place: a new version would change every pseudonym, so rotation there is a migration, not a command.

A :class:`KeyProvider` loads and stores this document; an external KMS/HSM plugs in by
implementing the same protocol.

A running gateway picks up a rotation made by `shokai keys` in another process without a restart: it
re-reads the document when it meets a key id it does not hold (a row re-wrapped, a token signed, under
the new key), and, before it uses a current key of a family rotated in place, when the provider's
``stamp()`` has changed — checked at most every ``check_every``, so sealing costs no file access.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.clock import Clock, from_rfc3339, rfc3339

FAMILIES = ("kek", "token_signing", "checkpoint_signing", "pseudonym", "blind_index")
_PREFIX = {
    "kek": "kek",
    "token_signing": "ts",
    "checkpoint_signing": "cs",
    "pseudonym": "ps",
    "blind_index": "bi",
}


# Families whose current key changes by `shokai keys rotate`; only these are checked for a new current key.
ROTATED_IN_PLACE = ("kek", "token_signing", "checkpoint_signing")

log = logging.getLogger("shokai.keys")


# What :meth:`Keyring.pseudonym` gives: a key id and 32 hex digits. A request that names a person by
# pseudonym (an incident's affected subjects, the subject-access query) is held to it, so a name or an
# Individual Number typed there instead is refused rather than kept in a register or the ledger.
PSEUDONYM_PATTERN = r"^[0-9A-Za-z_.-]{1,32}:[0-9a-f]{32}$"


class KeyringError(Exception):
    """Key material is missing, malformed or cannot be changed here."""


class KeyProvider(Protocol):
    def load(self) -> dict[str, Any] | None: ...

    def store(self, document: dict[str, Any]) -> None: ...

    def update(
        self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> tuple[dict[str, Any], Hashable | None]:
        """Read, ``change`` and store the document with no other process's update in between; ``change``
        returning None stores nothing. Returns the document as it now is and its stamp, taken before any
        other process can change it again."""
        ...

    def stamp(self) -> Hashable | None:
        """Something that changes whenever the stored document does (cheap); None if it never changes."""
        ...

    @property
    def writable(self) -> bool: ...


class FileKeyProvider:
    """A JSON key file, created with mode 0600 and replaced atomically.

    Changes are made under an exclusive ``flock`` on a lock file beside it: without it two rotations at
    once both read the same document and the second store drops the first one's new key (kek-5 issued
    twice with different secrets, and whatever was sealed under the lost one unreadable), and workers
    starting together on an empty data directory each created their own document.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @property
    def writable(self) -> bool:
        return True

    def load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KeyringError(f"key file {self.path} is readable by others (mode {mode:o}); chmod 600 it")
        return dict(json.loads(self.path.read_text(encoding="utf-8")))

    def stamp(self) -> Hashable | None:
        # store() replaces the file, so the inode changes even where mtime is coarse.
        try:
            status = self.path.stat()
        except FileNotFoundError:
            return None
        return (status.st_ino, status.st_mtime_ns, status.st_size)

    def update(
        self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> tuple[dict[str, Any], Hashable | None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the descriptor is closed
            current = self.load()
            document = change(current)
            if document is not None:
                self.store(document)
            elif current is None:
                raise KeyringError("no key material found; run `shokai demo` or provide SHOKAI_KEYS")
            else:
                document = current
            return document, self.stamp()
        finally:
            os.close(lock)

    def store(self, document: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


class EnvironmentKeyProvider:
    """Keys handed in through the environment (SHOKAI_KEYS): read-only, rotation happens upstream."""

    def __init__(self, content: str) -> None:
        self._content = content

    @property
    def writable(self) -> bool:
        return False

    def load(self) -> dict[str, Any] | None:
        return dict(json.loads(self._content))

    def stamp(self) -> Hashable | None:
        return None  # the environment of a running process does not change: restart to take new keys

    def store(self, document: dict[str, Any]) -> None:
        raise KeyringError("keys from the environment are read-only; rotate them where they are kept")

    def update(
        self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> tuple[dict[str, Any], Hashable | None]:
        raise KeyringError("keys from the environment are read-only; rotate them where they are kept")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _new_entry(family: str, now: datetime) -> dict[str, Any]:
    return {"secret": _b64(secrets.token_bytes(32)), "created_at": rfc3339(now), "retired_at": None}


def new_key_document(now: datetime) -> dict[str, Any]:
    document: dict[str, Any] = {"format": 1}
    for family in FAMILIES:
        key_id = f"{_PREFIX[family]}-1"
        document[family] = {"current": key_id, "keys": {key_id: _new_entry(family, now)}}
    return document


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


class Keyring:
    """Read access to the current key material plus the rotations the CLI performs."""

    def __init__(
        self,
        document: dict[str, Any],
        *,
        provider: KeyProvider | None = None,
        stamp: Hashable | None = None,
        clock: Clock | None = None,
        check_every: timedelta | None = None,
    ) -> None:
        _check_document(document)
        self._document = document
        self._provider = provider
        # The provider's stamp of ``_document``, and when it was last compared (see the module docstring).
        self._stamp = stamp
        self._clock = clock
        self._check_every = check_every
        self._checked_at = clock.now() if clock is not None else None
        # Decoded secrets by their base64 text: opening a subject asks for its KEK, and a day's lists open
        # 100,000 of them (decoding each time was 1 µs of 6). Keyed by the text, so a rotation that
        # replaces the document can never be answered with a key it no longer holds.
        self._decoded: dict[str, bytes] = {}
        # Token verification keys by their secret: every request's token is checked with one.
        self._verification_keys: dict[bytes, Ed25519PublicKey] = {}

    @classmethod
    def open(
        cls,
        provider: KeyProvider,
        *,
        clock: Clock,
        create: bool = False,
        check_every: timedelta | None = None,
    ) -> Keyring:
        # Stamp before loading: a file replaced in between is then read again at the next check.
        stamp = provider.stamp()
        document = provider.load()
        if document is None:
            if not create:
                raise KeyringError("no key material found; run `shokai demo` or provide SHOKAI_KEYS")
            # Created under the provider's lock, and only if still missing: of several processes starting
            # at once on an empty data directory, one creates the keys and the others read them.
            document, stamp = provider.update(
                lambda stored: new_key_document(clock.now()) if stored is None else None
            )
        return cls(document, provider=provider, stamp=stamp, clock=clock, check_every=check_every)

    # -- picking up rotations made elsewhere ----------------------------------------------------------

    @property
    def follows_rotations(self) -> bool:
        """Whether this keyring sees a rotation stored by another process (a key file; not SHOKAI_KEYS)."""
        return self._provider is not None and self._provider.stamp() is not None

    def _reload_if_changed(self) -> None:
        if self._provider is None:
            return
        try:
            stamp = self._provider.stamp()
            if stamp is None or stamp == self._stamp:
                return
            document = self._provider.load()
            if document is None:
                return
            _check_document(document)
        except (OSError, ValueError, KeyError, TypeError, KeyringError) as exc:
            # Keep serving with the keys in hand; the next check tries again.
            log.warning(
                "the key file could not be re-read; the keys in use stay",
                extra={"outcome": type(exc).__name__},
            )
            return
        self._document, self._stamp = document, stamp

    def _check_when_due(self) -> None:
        if self._clock is None or self._check_every is None or self._checked_at is None:
            return
        now = self._clock.now()
        if self._checked_at <= now < self._checked_at + self._check_every:
            return
        self._checked_at = now
        self._reload_if_changed()

    # -- lookup -------------------------------------------------------------------------------------

    def _secret(self, family: str, key_id: str | None = None) -> tuple[str, bytes]:
        if key_id is None and family in ROTATED_IN_PLACE:
            self._check_when_due()
        fam = self._document[family]
        kid = key_id or fam["current"]
        entry = fam["keys"].get(kid)
        if entry is None:
            # Made by a rotation in another process (rewrap, a token signed by another worker)?
            self._reload_if_changed()
            entry = self._document[family]["keys"].get(kid)
        if entry is None:
            raise KeyringError(f"unknown {family} key id")
        text = entry["secret"]
        secret = self._decoded.get(text)
        if secret is None:
            secret = self._decoded[text] = _unb64(text)
        return kid, secret

    def current_key_id(self, family: str) -> str:
        return str(self._document[family]["current"])

    def created_at(self, family: str, key_id: str | None = None) -> datetime:
        fam = self._document[family]
        text = fam["keys"][key_id or fam["current"]]["created_at"]
        return from_rfc3339(str(text))

    def key_ids(self, family: str) -> list[str]:
        return list(self._document[family]["keys"])

    def kek(self, key_id: str | None = None) -> tuple[str, bytes]:
        return self._secret("kek", key_id)

    def token_signing_key(self) -> SigningKey:
        kid, seed = self._secret("token_signing")
        return SigningKey(kid, Ed25519PrivateKey.from_private_bytes(seed))

    def token_verification_key(
        self, key_id: str, *, now: datetime, grace: timedelta
    ) -> Ed25519PublicKey | None:
        """The public key for ``key_id`` if it may still verify tokens at ``now``; None otherwise."""
        entry = self._document["token_signing"]["keys"].get(key_id)
        if entry is None:
            self._reload_if_changed()  # signed by a worker that has already seen a rotation
            entry = self._document["token_signing"]["keys"].get(key_id)
        if entry is None:
            return None
        retired_at = entry.get("retired_at")
        if retired_at is not None and from_rfc3339(retired_at) + grace < now:
            return None
        _kid, seed = self._secret("token_signing", key_id)
        key = self._verification_keys.get(seed)
        if key is None:
            key = self._verification_keys[seed] = Ed25519PrivateKey.from_private_bytes(seed).public_key()
        return key

    def checkpoint_signing_key(self) -> SigningKey:
        kid, seed = self._secret("checkpoint_signing")
        return SigningKey(kid, Ed25519PrivateKey.from_private_bytes(seed))

    def checkpoint_keys_retired(self) -> dict[str, datetime]:
        """When each retired checkpoint key stopped signing, by key id (LG-2).

        A checkpoint dated after its key's retirement is not one the gateway signed: a rotation is what
        follows a suspected leak, and whoever holds the old private key could otherwise sign a rewritten
        history with it. Read fresh, like the public keys."""
        self._reload_if_changed()
        return {
            kid: from_rfc3339(entry["retired_at"])
            for kid, entry in self._document["checkpoint_signing"]["keys"].items()
            if entry.get("retired_at") is not None
        }

    @property
    def rotation_lag(self) -> timedelta:
        """How long a process may go on signing with a key another process has just retired: until its
        next look at the key file."""
        return self._check_every or timedelta(0)

    def checkpoint_public_keys(self) -> dict[str, Ed25519PublicKey]:
        self._reload_if_changed()  # checkpoints signed by another process under a key rotated there
        return {
            kid: Ed25519PrivateKey.from_private_bytes(_unb64(entry["secret"])).public_key()
            for kid, entry in self._document["checkpoint_signing"]["keys"].items()
        }

    def pseudonym(self, value: str, *, domain: str = "subject") -> str:
        """Keyed pseudonym (HMAC-SHA256) for the ledger: stable, not reversible without the key."""
        kid, key = self._secret("pseudonym")
        digest = hmac.new(key, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()
        return f"{kid}:{digest[:32]}"

    def blind_index(self, value: str, *, domain: str) -> str:
        """Keyed index for equality lookups of encrypted fields (EN-1)."""
        _kid, key = self._secret("blind_index")
        return hmac.new(key, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()

    def blind_indexer(self, *, domain: str) -> Callable[[str], str]:
        """:meth:`blind_index` for many values: the same HMAC-SHA256, with the key decoded and padded once.

        A million-entry reconciliation otherwise spends more per entry on the HMAC (key decoding,
        OpenSSL's per-call setup) than on anything but parsing. The inner and outer SHA-256 states of
        RFC 2104 are computed once and copied per value.
        """
        _kid, key = self._secret("blind_index")
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key) + f"{domain}\x1f".encode())
        outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))

        def index(value: str) -> str:
            digest = inner.copy()
            digest.update(value.encode())
            result = outer.copy()
            result.update(digest.digest())
            return result.hexdigest()

        return index

    # -- rotation -----------------------------------------------------------------------------------

    def rotate(self, family: str, *, now: datetime) -> str:
        """Add a new current key to ``family``; the previous one is kept (retired) and returns its id."""
        if family not in ("kek", "token_signing", "checkpoint_signing"):
            raise KeyringError(f"{family} keys are not rotated in place")
        if self._provider is None or not self._provider.writable:
            raise KeyringError("this key source is read-only")
        new_ids: list[str] = []

        def add_key(stored: dict[str, Any] | None) -> dict[str, Any]:
            # Change a copy of what is stored now, read under the provider's lock (another process may
            # have rotated since this one read it), and store it first: if writing fails, the running
            # keyring is unchanged.
            document = json.loads(json.dumps(stored or self._document))
            _check_document(document)
            fam = document[family]
            old = fam["current"]
            numbers = [int(k.rsplit("-", 1)[1]) for k in fam["keys"]]
            new_ids.append(f"{_PREFIX[family]}-{max(numbers) + 1}")
            fam["keys"][old]["retired_at"] = rfc3339(now)
            fam["keys"][new_ids[-1]] = _new_entry(family, now)
            fam["current"] = new_ids[-1]
            return dict(document)

        self._document, self._stamp = self._provider.update(add_key)
        return new_ids[-1]


# Every family's secret is 32 bytes: an AES-256 key-encryption key, an Ed25519 seed, an HMAC-SHA-256 key.
KEY_BYTES = 32


def _check_document(document: Any) -> None:
    """Refuse key material that cannot be what it claims, at start-up and on every reload (which then
    keeps the keys in hand). Unchecked, a garbled KEK started the gateway and failed every inquiry with a
    500; an empty HMAC secret silently made the subjects' blind index and pseudonyms computable by anyone
    from a name and birth date; a 16-byte KEK silently wrapped with AES-128. The message names the family
    and key id, never a value."""
    if not isinstance(document, dict):
        raise KeyringError("key material is not a JSON object")
    for family in FAMILIES:
        keys = document.get(family, {}).get("keys") if isinstance(document.get(family), dict) else None
        current = document[family].get("current") if isinstance(keys, dict) else None
        if not isinstance(keys, dict) or not isinstance(current, str) or current not in keys:
            raise KeyringError(f"key family {family!r} is missing or has no current key")
        for key_id, entry in keys.items():
            secret = entry.get("secret") if isinstance(entry, dict) else None
            try:
                raw = base64.b64decode(secret, validate=True) if isinstance(secret, str) else b""
            except ValueError:  # binascii.Error is a ValueError
                raw = b""
            if len(raw) != KEY_BYTES:
                raise KeyringError(f"{family} key {key_id!r} is not {KEY_BYTES} bytes in base64")


def open_keyring(
    *, key_file: Path, env_keys: str | None, clock: Clock, create: bool, check_every: timedelta | None = None
) -> Keyring:
    provider: KeyProvider = EnvironmentKeyProvider(env_keys) if env_keys else FileKeyProvider(key_file)
    return Keyring.open(provider, clock=clock, create=create, check_every=check_every)

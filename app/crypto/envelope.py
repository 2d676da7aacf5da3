"""Envelope encryption for responses and subject identity (EN-1, EN-2).

Each sealed value has its own AES-256-GCM data key; the data key is wrapped (RFC 3394 AES key wrap)
by the current key-encryption key, whose id is stored beside it. The associated data binds the
ciphertext to what it belongs to (e.g. ``inquiry:<id>:response``), so a ciphertext copied onto
another row does not decrypt. Rotation re-wraps data keys without touching ciphertexts; destroying
the wrapped key is crypto-shredding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from app.crypto.keyring import Keyring, KeyringError


class SealError(Exception):
    """A sealed value cannot be opened (wrong binding, altered, or its key was destroyed)."""


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    nonce: bytes
    wrapped_key: bytes
    kek_id: str


def seal(keyring: Keyring, plaintext: bytes, *, associated_data: bytes) -> Sealed:
    data_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data)
    kek_id, kek = keyring.kek()
    return Sealed(ciphertext=ciphertext, nonce=nonce, wrapped_key=aes_key_wrap(kek, data_key), kek_id=kek_id)


def open_sealed(keyring: Keyring, sealed: Sealed, *, associated_data: bytes) -> bytes:
    try:
        _kid, kek = keyring.kek(sealed.kek_id)
        data_key = aes_key_unwrap(kek, sealed.wrapped_key)
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, associated_data)
    except (InvalidUnwrap, InvalidTag, KeyringError, ValueError) as exc:
        raise SealError("the sealed value cannot be opened") from exc


def rewrap(keyring: Keyring, wrapped_key: bytes, kek_id: str) -> tuple[bytes, str]:
    """Re-wrap a data key under the current key-encryption key; returns (wrapped_key, kek_id)."""
    current_id, current = keyring.kek()
    if kek_id == current_id:
        return wrapped_key, kek_id
    try:
        _old_id, old = keyring.kek(kek_id)
        data_key = aes_key_unwrap(old, wrapped_key)
    except (InvalidUnwrap, KeyringError, ValueError) as exc:
        raise SealError("the data key cannot be unwrapped") from exc
    return aes_key_wrap(current, data_key), current_id

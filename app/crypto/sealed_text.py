"""Free text staff write beside a subject's records, sealed like the subject (EN-1).

A cancellation's reason, a list line's check note, a mismatch remark or what was done about an
escalation is where a confirmer writes 「山田様の同意書が…」: a copied database file must not show it any
more than it shows the subject. Each such text is one sealed value (its own data key) in four columns
named after it — ``<name>_sealed``, ``<name>_nonce``, ``<name>_wrapped_key``, ``<name>_kek_id`` — all
empty when no text was written. The last two follow the rewrap convention (``app/crypto/rewrap.py``),
so key rotation re-wraps them like any other data key.

The associated data names the table, the row and the field (``inquiries:<id>:cancel_reason``): a
ciphertext copied onto another row, or into another field of the same row, does not open. The row is
named by its primary key, or by a ``key`` the caller gives when that is not known before the row is
written (an autoincrement id).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect

from app.crypto.envelope import Sealed, open_sealed, seal
from app.crypto.keyring import Keyring

_PARTS = ("sealed", "nonce", "wrapped_key", "kek_id")


def _binding(table: str, key: Iterable[object] | str, name: str) -> bytes:
    named = key if isinstance(key, str) else "/".join(str(part) for part in key)
    return f"{table}:{named}:{name}".encode()


def _row_binding(row: Any, name: str, key: str | None) -> bytes:
    if key is not None:
        return _binding(type(row).__tablename__, key, name)
    mapper = inspect(type(row))
    values = [getattr(row, mapper.get_property_by_column(column).key) for column in mapper.primary_key]
    if any(value is None for value in values):
        raise ValueError(f"{type(row).__name__} has no primary key yet to bind {name!r} to")
    return _binding(type(row).__tablename__, values, name)


def _columns(keyring: Keyring, name: str, text: str | None, binding: bytes) -> dict[str, Any]:
    if not text:
        return {f"{name}_{part}": None for part in _PARTS}
    sealed = seal(keyring, text.encode(), associated_data=binding)
    values = (sealed.ciphertext, sealed.nonce, sealed.wrapped_key, sealed.kek_id)
    return {f"{name}_{part}": value for part, value in zip(_PARTS, values, strict=True)}


def seal_text(keyring: Keyring, row: Any, name: str, text: str | None, *, key: str | None = None) -> None:
    """Write ``text`` (or nothing, for None or "") into ``row``'s four ``name`` columns."""
    if not hasattr(type(row), f"{name}_sealed"):
        # setattr would quietly keep the text on the Python object and store nothing.
        raise AttributeError(f"{type(row).__name__} has no sealed text {name!r}")
    for column, value in _columns(keyring, name, text, _row_binding(row, name, key)).items():
        setattr(row, column, value)


def sealed_text_values(
    keyring: Keyring, model: type[Any], name: str, text: str | None, *, key: Iterable[object]
) -> dict[str, Any]:
    """The four ``name`` columns for a row of ``model`` written in bulk (a dict, not an object), whose
    primary key is ``key``: bound exactly as :func:`seal_text` binds a row object."""
    if not hasattr(model, f"{name}_sealed"):
        raise AttributeError(f"{model.__name__} has no sealed text {name!r}")
    return _columns(keyring, name, text, _binding(model.__tablename__, key, name))


def open_text(keyring: Keyring, row: Any, name: str, *, key: str | None = None) -> str | None:
    """The text sealed in ``row``'s ``name`` columns, or None when none was written.

    Raises :class:`app.crypto.envelope.SealError` when the value is bound to another row or field, was
    altered, or its key is gone.
    """
    ciphertext = getattr(row, f"{name}_sealed")
    if ciphertext is None:
        return None
    nonce, wrapped_key, kek_id = (getattr(row, f"{name}_{part}") for part in _PARTS[1:])
    sealed = Sealed(ciphertext, nonce, wrapped_key, kek_id)
    return open_sealed(keyring, sealed, associated_data=_row_binding(row, name, key)).decode()

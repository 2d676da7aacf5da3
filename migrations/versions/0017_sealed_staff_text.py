"""staff's free text beside a subject's records is sealed (EN-1): cancellation and correction reasons,
the outbox's cancellation payload, list-line check notes, mismatch remarks, acknowledgement notes and
incident records (title, cause, recurrence prevention, timeline)

Existing text is sealed in place, so this needs the instance's keys when there is any: the CLI passes
the keyring it opened (``app.migrate.upgrade(..., keyring=)``); without one, the keys are read as the
gateway reads them (``SHOKAI_*`` settings). An empty database needs no keys. The downgrade opens the
text again with the same keys.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import context, op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTS = ("sealed", "nonce", "wrapped_key", "kek_id")


# A NamedTuple, not a dataclass: Alembic loads this module outside sys.modules.
class _Text(NamedTuple):
    table: str
    # The plain column as it was, and the sealed text's name (its four columns are <name>_<part>).
    plain: str
    name: str
    length: int
    # The columns that name the row in the associated data, joined by "/" (app/crypto/sealed_text.py).
    key: tuple[str, ...]
    nullable: bool = True
    # Only rows matching this hold staff's words in ``plain`` (None: every row).
    only: str | None = None


_TEXTS = (
    _Text("inquiries", "cancel_reason", "cancel_reason", 400, ("id",)),
    _Text("inquiry_corrections", "reason", "reason", 400, ("id",), nullable=False),
    _Text("center_outbox", "payload", "payload", 0, ("idempotency_key",)),
    _Text("daily_list_lines", "note", "note", 400, ("list_id", "line_no")),
    _Text("escalations", "acknowledgement_note", "acknowledgement_note", 400, ("id",)),
    _Text("audit_report_runs", "acknowledgement_note", "acknowledgement_note", 400, ("id",)),
    _Text("incidents", "title", "title", 200, ("id",), nullable=False),
    _Text("incidents", "cause", "cause", 0, ("id",)),
    _Text("incidents", "recurrence_prevention", "recurrence_prevention", 0, ("id",)),
    _Text("incident_entries", "text", "text", 0, ("id",), nullable=False),
)
# A document mismatch's note was the releasing confirmer's words; every other kind's is the system's and
# stays. Those words move to the sealed remark.
_REMARK = _Text("escalations", "note", "remark", 400, ("id",), only="document_mismatch")


def _binding(text: _Text, row: Any) -> bytes:
    # Frozen here as app/crypto/sealed_text.py binds today: <table>:<key>:<name>.
    key = "/".join(str(row[column]) for column in text.key)
    return f"{text.table}:{key}:{text.name}".encode()


_NO_KEYS = (
    "migration 0017 seals or opens the staff notes stored and needs the instance's keys: run it with "
    "`shokai db upgrade --data-dir DIR` (or with SHOKAI_KEYS / the key file the gateway uses)"
)


def _keyring() -> Any:
    given = context.config.attributes.get("keyring")
    if given is not None and not callable(given):
        return given
    try:
        if callable(given):
            return given()
        from app.clock import SystemClock
        from app.config import Settings
        from app.crypto.keyring import open_keyring

        settings = Settings()
        return open_keyring(
            key_file=settings.resolved_key_file(),
            env_keys=settings.keys,
            clock=SystemClock(),
            create=False,
            check_every=timedelta(seconds=settings.key_file_check_seconds),
        )
    except Exception as exc:
        raise RuntimeError(_NO_KEYS) from exc


def _rows(bind: sa.Connection, text: _Text, column: str) -> list[Any]:
    where = f" AND kind = '{text.only}'" if text.only else ""
    columns = ", ".join(dict.fromkeys((*text.key, column)))
    query = f"SELECT {columns} FROM {text.table} WHERE {column} IS NOT NULL{where}"  # noqa: S608 - our names
    return list(bind.execute(sa.text(query)).mappings())


def _where_key(text: _Text) -> str:
    return " AND ".join(f"{column} = :k_{column}" for column in text.key)


def _add_sealed(text: _Text) -> None:
    with op.batch_alter_table(text.table) as batch:
        batch.add_column(sa.Column(f"{text.name}_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column(f"{text.name}_nonce", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column(f"{text.name}_wrapped_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column(f"{text.name}_kek_id", sa.String(length=40), nullable=True))


def _drop_sealed(text: _Text) -> None:
    with op.batch_alter_table(text.table) as batch:
        for part in _PARTS:
            batch.drop_column(f"{text.name}_{part}")


def _seal_rows(bind: sa.Connection, text: _Text, rows: list[Any], keyring: Any) -> None:
    from app.crypto.envelope import seal

    sets = ", ".join(f"{text.name}_{part} = :{part}" for part in _PARTS)
    # The remark's plain column stays (the system's notes); only its words move out of it.
    clear = f", {text.plain} = NULL" if text.only else ""
    statement = sa.text(f"UPDATE {text.table} SET {sets}{clear} WHERE {_where_key(text)}")  # noqa: S608
    for row in rows:
        sealed = seal(keyring, str(row[text.plain]).encode(), associated_data=_binding(text, row))
        bind.execute(
            statement,
            {
                "sealed": sealed.ciphertext,
                "nonce": sealed.nonce,
                "wrapped_key": sealed.wrapped_key,
                "kek_id": sealed.kek_id,
                **{f"k_{column}": row[column] for column in text.key},
            },
        )


def _sealed_rows(bind: sa.Connection, text: _Text) -> list[Any]:
    parts = ", ".join(f"{text.name}_{part}" for part in _PARTS)
    columns = ", ".join(dict.fromkeys((*text.key, parts)))
    query = f"SELECT {columns} FROM {text.table} WHERE {text.name}_sealed IS NOT NULL"  # noqa: S608
    return list(bind.execute(sa.text(query)).mappings())


def _open_rows(bind: sa.Connection, text: _Text, rows: list[Any], keyring: Any) -> None:
    from app.crypto.envelope import Sealed, open_sealed

    statement = sa.text(f"UPDATE {text.table} SET {text.plain} = :plain WHERE {_where_key(text)}")  # noqa: S608
    for row in rows:
        sealed = Sealed(*(row[f"{text.name}_{part}"] for part in _PARTS))
        plain = open_sealed(keyring, sealed, associated_data=_binding(text, row)).decode()
        bind.execute(statement, {"plain": plain, **{f"k_{column}": row[column] for column in text.key}})


def _plain_type(text: _Text) -> sa.types.TypeEngine[Any]:
    return sa.Text() if text.length == 0 else sa.String(length=text.length)


def _overwrite_what_is_freed(bind: sa.Connection) -> None:
    """SQLite keeps a deleted value in its freed pages until they are reused, so the notes this
    migration takes out of the plain columns (batch mode copies each table and drops the old one) would
    still sit in a copied file. With secure_delete on, what this connection frees is overwritten with
    zeros. (PostgreSQL keeps the dropped column's values in the table's pages until it is rewritten:
    docs/operations.md says to run VACUUM FULL on these tables after the upgrade.)"""
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("PRAGMA secure_delete = ON")


def upgrade() -> None:
    bind = op.get_bind()
    _overwrite_what_is_freed(bind)
    # Everything is read and the keys are found before the first ALTER: SQLite commits each one as it
    # runs, so failing after it would leave a half-migrated database that no retry gets past.
    stored = [(text, _rows(bind, text, text.plain)) for text in (*_TEXTS, _REMARK)]
    keyring = _keyring() if any(rows for _text, rows in stored) else None
    for text, rows in stored:
        _add_sealed(text)
        if rows:
            _seal_rows(bind, text, rows, keyring)
    for text in _TEXTS:
        with op.batch_alter_table(text.table) as batch:
            batch.drop_column(text.plain)


def downgrade() -> None:
    bind = op.get_bind()
    stored = [(text, _sealed_rows(bind, text)) for text in (*_TEXTS, _REMARK)]
    keyring = _keyring() if any(rows for _text, rows in stored) else None
    for text in _TEXTS:
        with op.batch_alter_table(text.table) as batch:
            batch.add_column(sa.Column(text.plain, _plain_type(text), nullable=True))
    for text, rows in stored:
        if rows:
            _open_rows(bind, text, rows, keyring)
        _drop_sealed(text)
    for text in _TEXTS:
        if not text.nullable:
            with op.batch_alter_table(text.table) as batch:
                batch.alter_column(text.plain, existing_type=_plain_type(text), nullable=False)

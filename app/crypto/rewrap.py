"""Key rotation for sealed data (EN-2): re-wrap every data key under the current key-encryption key.

Which columns hold wrapped data keys is read from the schema, not listed here: every sealed value
stores ``<prefix>wrapped_key`` beside ``<prefix>kek_id`` (``Sealed``'s two key fields), so a new sealed
table is re-wrapped the day it is added. ``tests/crypto/test_wrapped_key_columns.py`` walks the schema
for anything that looks like key material off that convention.

Ciphertexts are not touched, so this runs while the gateway serves; rows are re-wrapped in small
batches, each its own transaction, and a row read with the old key id keeps working until then.

It runs in another process than the gateways (`shokai keys rewrap`). A gateway opens a row moved to a
KEK it does not hold yet by re-reading the key file, but it seals under the KEK it holds until its next
look at the file (``key_file_check_seconds``). So the rewrap refuses to start until every gateway has
had two such intervals since the rotation (one to look, one for a seal begun before the look to commit),
and a last pass over every table picks up what was still sealed under a retired KEK meanwhile.

A data key that cannot be unwrapped (a tampered row, one whose KEK is no longer held) is left as it is,
recorded (``keys.rewrap_failed``, table and primary key only) and passed over: the rest of its batch, its
table and the tables after it are still re-wrapped, and the run ends with :class:`RewrapIncomplete`
naming what stays under a retired KEK, so that KEK is not destroyed while rows still need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Table, bindparam, select, tuple_, update

from app.audit.ledger import Actor, record
from app.context import AppContext
from app.crypto.envelope import SealError, rewrap
from app.models_registry import metadata

BATCH = 500
WRAPPED_KEY, KEK_ID = "wrapped_key", "kek_id"


@dataclass(frozen=True)
class WrappedKeyColumns:
    """One sealed value's key columns: the wrapped data key and the id of the KEK that wrapped it."""

    table: Table
    wrapped_key: Column[bytes]
    kek_id: Column[str]


def wrapped_key_columns() -> Iterator[WrappedKeyColumns]:
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        for column in table.columns:
            if not column.name.endswith(WRAPPED_KEY):
                continue
            prefix = column.name[: -len(WRAPPED_KEY)]
            kek_id = table.columns.get(prefix + KEK_ID)
            if kek_id is None:
                # A wrapped key whose KEK is not named could never be re-wrapped (or opened after a rotation).
                raise RuntimeError(f"{table.name}.{column.name} has no {prefix + KEK_ID} beside it")
            yield WrappedKeyColumns(table, column, kek_id)


class RewrapTooEarly(Exception):
    """Running gateways may still seal under the retired KEK: a rewrap now could leave rows behind."""

    def __init__(self, kek_id: str, ready_at: datetime) -> None:
        super().__init__(f"gateways may still seal under the KEK before {kek_id} until {ready_at}")
        self.kek_id = kek_id
        self.ready_at = ready_at


class RewrapIncomplete(Exception):
    """Every data key that could be re-wrapped was; ``unreadable`` ones (table, primary key) stay under a
    retired KEK, which must be kept until they are dealt with."""

    def __init__(self, changed: int, unreadable: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(unreadable)} data keys could not be unwrapped; {changed} were re-wrapped")
        self.changed = changed
        self.unreadable = unreadable


def rewrap_ready_at(ctx: AppContext) -> datetime:
    """From when every running gateway seals under the current KEK (see the module docstring)."""
    return ctx.keyring.created_at("kek") + 2 * timedelta(seconds=ctx.settings.key_file_check_seconds)


async def rewrap_all(ctx: AppContext, *, actor: Actor, progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap every data key not yet under the current KEK; returns how many changed. Raises
    :class:`RewrapIncomplete` at the end if some could not be unwrapped."""
    ready_at = rewrap_ready_at(ctx)
    if ctx.clock.now() < ready_at:
        raise RewrapTooEarly(ctx.keyring.current_key_id("kek"), ready_at)
    changed = 0
    unreadable: dict[tuple[str, str], None] = {}
    # The second pass finds only what a gateway sealed under the retired KEK while the first one ran.
    for _ in range(2):
        found = 0
        for columns in wrapped_key_columns():
            found += await _rewrap_table(
                ctx,
                columns,
                actor=actor,
                done_before=changed + found,
                progress=progress,
                unreadable=unreadable,
            )
        changed += found
        if found == 0:
            break
    if unreadable:
        raise RewrapIncomplete(changed, list(unreadable))
    return changed


async def _rewrap_table(
    ctx: AppContext,
    columns: WrappedKeyColumns,
    *,
    actor: Actor,
    done_before: int,
    progress: Callable[[int], None] | None,
    unreadable: dict[tuple[str, str], None],
) -> int:
    table, wrapped_col, kek_col = columns.table, columns.wrapped_key, columns.kek_id
    primary_key = list(table.primary_key.columns)
    # In primary-key order from where the last batch ended: a row passed over (unreadable) is not met
    # again, so it can neither stop the run nor make it loop.
    after: tuple[object, ...] | None = None
    # Only the key columns are read and written: a daily list's sealed content can be large.
    moved = update(table).where(*(c == bindparam(f"pk_{c.name}") for c in primary_key))
    moved = moved.values({wrapped_col.name: bindparam("new_wrapped"), kek_col.name: bindparam("new_kek")})
    changed = 0
    while True:
        current, _ = ctx.keyring.kek()
        async with ctx.db.session() as session:
            query = select(*primary_key, wrapped_col, kek_col).where(kek_col.is_not(None), kek_col != current)
            if after is not None:
                query = query.where(tuple_(*primary_key) > tuple_(*after))
            rows = (await session.execute(query.order_by(*primary_key).limit(BATCH).with_for_update())).all()
            updates = []
            for row in rows:
                *key, wrapped, kek_id = row
                after = tuple(key)
                params = {f"pk_{c.name}": value for c, value in zip(primary_key, key, strict=True)}
                if wrapped is None:  # a destroyed response has no key left to re-wrap
                    updates.append({**params, "new_wrapped": None, "new_kek": current})
                    continue
                try:
                    new_wrapped, new_id = rewrap(ctx.keyring, wrapped, kek_id)
                except SealError:
                    where = (table.name, "/".join(str(value) for value in key))
                    if where not in unreadable:
                        unreadable[where] = None
                        record(
                            session,
                            actor=actor,
                            action="keys.rewrap_failed",
                            object_type="key_family",
                            object_id="kek",
                            outcome="alert",
                            details={"table": table.name, "row": where[1], "kek_id": kek_id},
                        )
                    continue
                updates.append({**params, "new_wrapped": new_wrapped, "new_kek": new_id})
                changed += 1
            if updates:
                await session.execute(moved, updates)
                record(
                    session,
                    actor=actor,
                    action="keys.rewrapped",
                    object_type="key_family",
                    object_id="kek",
                    details={"table": table.name, "rows": len(updates), "kek_id": current},
                )
            await session.commit()
        if progress is not None and rows:
            progress(done_before + changed)
        if len(rows) < BATCH:
            return changed

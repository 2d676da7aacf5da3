"""Key rotation for sealed data (EN-2): re-wrap every data key under the current key-encryption key.

Ciphertexts are not touched, so this runs while the gateway serves; rows are re-wrapped in small
batches, each its own transaction, and a row read with the old key id keeps working until then.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from app.audit.ledger import Actor, record
from app.context import AppContext
from app.crypto.envelope import rewrap
from app.hq.models import HqRequest
from app.inquiry.models import Inquiry, SealedResponse

BATCH = 500


async def rewrap_all(ctx: AppContext, *, actor: Actor, progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap subject and response data keys not yet under the current KEK; returns how many changed."""
    current, _ = ctx.keyring.kek()
    changed = 0
    for model, key_attr, kek_attr in (
        (Inquiry, "subject_wrapped_key", "subject_kek_id"),
        (SealedResponse, "wrapped_key", "kek_id"),
        (HqRequest, "subject_wrapped_key", "subject_kek_id"),
    ):
        while True:
            async with ctx.db.session() as session:
                rows = list(
                    (
                        await session.scalars(
                            select(model)
                            .where(getattr(model, kek_attr) != current)
                            .limit(BATCH)
                            .with_for_update()
                        )
                    ).all()
                )
                batch = 0
                for row in rows:
                    wrapped = getattr(row, key_attr)
                    if wrapped is None:  # a destroyed response has no key left to re-wrap
                        setattr(row, kek_attr, current)
                        continue
                    new_wrapped, new_id = rewrap(ctx.keyring, wrapped, getattr(row, kek_attr))
                    setattr(row, key_attr, new_wrapped)
                    setattr(row, kek_attr, new_id)
                    batch += 1
                if rows:
                    record(
                        session,
                        actor=actor,
                        action="keys.rewrapped",
                        object_type="key_family",
                        object_id="kek",
                        details={"table": model.__tablename__, "rows": len(rows), "kek_id": current},
                    )
                await session.commit()
            changed += batch
            if progress is not None and rows:
                progress(changed)
            if len(rows) < BATCH:
                break
    return changed

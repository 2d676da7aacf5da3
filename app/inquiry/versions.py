"""Policy versions (PL-3): each policy the gateway starts with is stored and its first use recorded."""

from __future__ import annotations

from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR, record
from app.context import AppContext
from app.inquiry.models import PolicyVersion


async def register_policy_version(ctx: AppContext) -> bool:
    """Store the running policy if it is new; returns True when this start changed the policy."""
    policy = ctx.policy
    async with ctx.db.session() as session:
        if await session.get(PolicyVersion, policy.sha256) is not None:
            return False
        previous = await session.scalar(
            select(PolicyVersion).order_by(PolicyVersion.loaded_at.desc()).limit(1)
        )
        session.add(
            PolicyVersion(
                sha256=policy.sha256,
                version=policy.version,
                loaded_at=ctx.clock.now(),
                content=policy.canonical_json(),
            )
        )
        record(
            session,
            actor=SYSTEM_ACTOR,
            action="policy.changed",
            object_type="inquiry_policy",
            object_id=policy.sha256[:32],
            details={
                "version": policy.version,
                "sha256": policy.sha256,
                "previous_sha256": previous.sha256 if previous else None,
            },
        )
        await session.commit()
        return True

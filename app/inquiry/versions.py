"""Policy versions (PL-3): each policy the gateway starts with is stored, and every change of the policy
in force is recorded — also a return to one that ran before.

The ledger's ``policy.changed`` events are the history of what was in force when; ``policy_versions``
keeps each version's content once, under its hash, for an auditor to read what a hash meant.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from app.audit.ledger import SYSTEM_ACTOR, record
from app.audit.models import AuditEvent
from app.context import AppContext
from app.db import lock_or_create
from app.inquiry.models import PolicyVersion
from app.inquiry.policy import PolicyError

POLICY_CHANGED = "policy.changed"


async def register_policy_version(ctx: AppContext) -> bool:
    """Record the running policy if it is not the one last in force; True when this start changed it."""
    policy = ctx.policy
    async with ctx.db.session() as session:
        # A version label names one content: an edited file that kept its label would make two different
        # policies indistinguishable in every report that quotes the version.
        clash = await session.scalar(
            select(PolicyVersion.sha256).where(
                PolicyVersion.version == policy.version, PolicyVersion.sha256 != policy.sha256
            )
        )
        if clash is not None:
            raise PolicyError(
                f"policy version {policy.version!r} already ran with other content (sha256 {clash[:12]}…): "
                "give the changed policy a new version"
            )
        # The version's row, locked (created if new): gateways starting together with one policy take
        # turns here, so the change is recorded once.
        await lock_or_create(
            session,
            PolicyVersion,
            {"sha256": policy.sha256},
            {"version": policy.version, "loaded_at": ctx.clock.now(), "content": policy.canonical_json()},
        )
        last = await session.scalar(
            select(AuditEvent.details)
            .where(AuditEvent.action == POLICY_CHANGED)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
        previous_sha256 = json.loads(last)["sha256"] if last else None
        if previous_sha256 == policy.sha256:
            return False
        record(
            session,
            actor=SYSTEM_ACTOR,
            action=POLICY_CHANGED,
            object_type="inquiry_policy",
            object_id=policy.sha256[:32],
            details={"version": policy.version, "sha256": policy.sha256, "previous_sha256": previous_sha256},
        )
        await session.commit()
        return True

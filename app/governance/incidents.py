"""Incident records (IR-2): restricted to security officers and auditors, with a timeline, the affected
subjects as pseudonyms, links to the forensic queries of AC-6 and the reporting checklist. An incident
closes only with its cause and recurrence prevention recorded.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import record
from app.authz.models import Branch
from app.authz.policy import authorize, may
from app.authz.principal import Principal
from app.clock import rfc3339
from app.context import AppContext
from app.crypto.sealed_text import open_text, seal_text
from app.errors import IncidentCloseIncomplete, InvalidState, NotFound, ValidationFailed
from app.governance.models import Incident, IncidentEntry
from app.idempotency import UNKEYED, KeyedRequest, commit_keyed, replayed_object
from app.pagination import keyset_page

# supervisor / PPC report, notification of individuals, the center, publication (IR-2).
CHECKLIST_ITEMS = ("supervisor_ppc", "individuals", "center", "publication")


async def open_incident(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    title: str,
    severity: str,
    branch_code: str | None,
    window_from: datetime | None,
    window_to: datetime | None,
    affected_subjects: list[str],
    keyed: KeyedRequest = UNKEYED,
) -> Incident:
    """Open an incident. With an Idempotency-Key a retry gets the first record, not a twin to close."""
    authorize(principal, "incident.manage")
    if (replayed := await replayed_object(session, Incident, keyed, principal=principal)) is not None:
        return replayed
    # The branch drives the forensic links (who could reach its data, its register): one that does not
    # exist would make every link answer empty, as if nobody had had access.
    if branch_code is not None and await session.get(Branch, branch_code) is None:
        raise ValidationFailed("No such branch")
    now = ctx.clock.now()
    incident = Incident(
        id=str(uuid.uuid4()),
        severity=severity,
        status="open",
        opened_by=principal.id,
        opened_at=now,
        affected_subjects=sorted(set(affected_subjects)),
        branch_code=branch_code,
        window_from=window_from,
        window_to=window_to,
        checklist={item: None for item in CHECKLIST_ITEMS},
    )
    seal_text(ctx.keyring, incident, "title", title)
    session.add(incident)
    await session.flush()
    await _add_entry(session, ctx, incident, at=now, author=principal.id, kind="opened", text=title)
    # The title is free text and stays out of the ledger: it may name a person.
    record(
        session,
        actor=principal.actor(),
        action="incident.opened",
        object_type="incident",
        object_id=incident.id,
        details={"severity": severity, "affected_subjects": len(incident.affected_subjects)},
    )
    return await commit_keyed(session, ctx, incident, keyed, principal=principal)


async def _add_entry(
    session: AsyncSession,
    ctx: AppContext,
    incident: Incident,
    *,
    at: datetime,
    author: str,
    kind: str,
    text: str,
) -> None:
    """Append a timeline line. Its text is sealed bound to the entry's own id, which the database gives
    it: the row is written first and the sealed text beside it, in the same transaction."""
    entry = IncidentEntry(incident_id=incident.id, at=at, author=author, kind=kind)
    session.add(entry)
    await session.flush()
    seal_text(ctx.keyring, entry, "text", text)


def incident_texts(ctx: AppContext, incident: Incident) -> dict[str, str | None]:
    """The incident's title, cause and recurrence prevention as the officers wrote them."""
    return {
        name: open_text(ctx.keyring, incident, name) for name in ("title", "cause", "recurrence_prevention")
    }


def entry_text(ctx: AppContext, entry: IncidentEntry) -> str:
    return open_text(ctx.keyring, entry, "text") or ""


async def _load(
    session: AsyncSession, principal: Principal, incident_id: str, *, for_update: bool
) -> Incident:
    incident = await session.get(Incident, incident_id, with_for_update=for_update)
    # Restricted visibility: to anyone else an incident does not exist.
    if incident is None or not may(principal, "incident.read"):
        raise NotFound("No such incident")
    return incident


async def get_incident(
    session: AsyncSession, *, principal: Principal, incident_id: str
) -> tuple[Incident, list[IncidentEntry]]:
    incident = await _load(session, principal, incident_id, for_update=False)
    entries = list(
        (
            await session.scalars(
                select(IncidentEntry)
                .where(IncidentEntry.incident_id == incident.id)
                .order_by(IncidentEntry.id)
            )
        ).all()
    )
    return incident, entries


async def list_incidents(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> tuple[list[Incident], str | None]:
    authorize(principal, "incident.read")
    return await keyset_page(
        session, select(Incident), at=Incident.opened_at, row_id=Incident.id, limit=limit, cursor=cursor
    )


async def add_entry(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    incident_id: str,
    text: str,
    checklist_item: str | None,
    keyed: KeyedRequest = UNKEYED,
) -> Incident:
    """A timeline note, or the completion of one reporting-checklist item. With an Idempotency-Key a retry
    answers with the incident as it is and adds no second note."""
    incident = await _load(session, principal, incident_id, for_update=True)
    authorize(principal, "incident.manage")
    # After the incident's lock: a retry sent while the first is running waits for it and finds its key.
    if (replayed := await replayed_object(session, Incident, keyed, principal=principal)) is not None:
        return replayed
    if incident.status != "open":
        raise InvalidState("The incident is closed")
    now = ctx.clock.now()
    if checklist_item is not None:
        checklist: dict[str, Any] = dict(incident.checklist)
        checklist[checklist_item] = {"done_at": rfc3339(now), "by": principal.id}
        incident.checklist = checklist
    await _add_entry(
        session,
        ctx,
        incident,
        at=now,
        author=principal.id,
        kind="checklist" if checklist_item else "note",
        text=text,
    )
    record(
        session,
        actor=principal.actor(),
        action="incident.updated",
        object_type="incident",
        object_id=incident.id,
        details={"checklist_item": checklist_item},
    )
    return await commit_keyed(session, ctx, incident, keyed, principal=principal)


async def close_incident(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    incident_id: str,
    cause: str | None,
    recurrence_prevention: str | None,
) -> Incident:
    incident = await _load(session, principal, incident_id, for_update=True)
    authorize(principal, "incident.manage")
    if incident.status != "open":
        raise InvalidState("The incident is already closed")
    if not (cause or "").strip() or not (recurrence_prevention or "").strip():
        raise IncidentCloseIncomplete("Record the cause and the recurrence prevention before closing")
    now = ctx.clock.now()
    seal_text(ctx.keyring, incident, "cause", cause)
    seal_text(ctx.keyring, incident, "recurrence_prevention", recurrence_prevention)
    incident.status, incident.closed_by, incident.closed_at = "closed", principal.id, now
    await _add_entry(session, ctx, incident, at=now, author=principal.id, kind="closed", text="closed")
    record(
        session,
        actor=principal.actor(),
        action="incident.closed",
        object_type="incident",
        object_id=incident.id,
        details={"checklist_open": [k for k, v in incident.checklist.items() if not v]},
    )
    await session.commit()
    return incident


def forensic_links(incident: Incident, *, api_prefix: str) -> dict[str, str]:
    """Links to the AC-6 queries: who could access the branch then, and who did access each subject."""
    links: dict[str, str] = {}
    if incident.branch_code and incident.window_from:
        query = urlencode({"branch_code": incident.branch_code, "at": rfc3339(incident.window_from)})
        links["access_holders"] = f"{api_prefix}/audit/access-holders?{query}"
    params: dict[str, str] = {}
    if incident.window_from:
        params["since"] = rfc3339(incident.window_from)
    if incident.window_to:
        params["until"] = rfc3339(incident.window_to)
    for pseudonym in incident.affected_subjects:
        # The subject-access query (AC-6) by the pseudonym the ledger carries, never by name.
        links[f"subject:{pseudonym}"] = (
            f"{api_prefix}/audit/subject-access?{urlencode({**params, 'subject_pseudonym': pseudonym})}"
        )
    if incident.branch_code:
        links["register"] = f"{api_prefix}/access-register?{urlencode({'branch_code': incident.branch_code})}"
    return links

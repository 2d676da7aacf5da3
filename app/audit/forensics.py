"""Forensic queries for incident response (AC-6, LG-5): who touched a person, who could have, and the
whole story of one inquiry.

Everything is answered from the ledger and the role history, never from what users say happened:
a subject is found through the keyed blind index of kana name + birth date (the name itself is never
stored in clear), and every access to that subject's data is a ledger event about one of their
inquiries or about a daily list with a line for one of them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.audit.models import AuditEvent
from app.authz.models import ServiceAccount, Terminal, User, UserRole
from app.authz.policy import roles_allow
from app.authz.roles import PERMISSIONS
from app.context import AppContext
from app.escalation.models import Escalation
from app.governance.models import AccessRegisterEntry, EmergencySuspension, HrEvent
from app.hq.models import HqRequest
from app.inquiry.models import Inquiry, SealedResponse
from app.inquiry.sealing import subject_lookup_key
from app.inquiry.subject import normalise_kana
from app.lists.models import DailyList, DailyListLine

# What each ledger action about an inquiry means for the person it is about. Actions missing here
# (e.g. the center's own delivery events, the trace being read) are not a person touching the subject.
INQUIRY_ACCESS_KINDS = {
    "inquiry.created": "inquired",
    "inquiry.draft_changed": "inquired",
    "inquiry.approved": "inquired",
    "inquiry.cancelled": "inquired",
    "inquiry.corrected": "inquired",
    "approval_number.issued": "approved",
    "approval.confirmer_credentials": "approved",
    "inquiry.released": "released",
    "inquiry.response_read": "viewed",
    "inquiry.subject_viewed": "viewed",
    "panel.inquiry_viewed": "viewed",
}
# A branch's request to HQ (HQ-1) names the person as an inquiry does.
HQ_REQUEST_ACCESS_KINDS = {
    "hq_request.created": "inquired",
}
# A daily list names every subject of its lines: who viewed, downloaded or printed it saw this person.
LIST_ACCESS_KINDS = {
    "daily_list.viewed": "viewed",
    "daily_list.downloaded": "downloaded",
    "daily_list.printed": "printed",
    "daily_list.line_checked": "viewed",
}
# Data of a branch a role holder can reach, per the permission matrix (AC-6 "who could access").
BRANCH_DATA_ACTIONS = (
    "inquiry.read",
    "inquiry.read_subject",
    "inquiry.read_response",
    "lists.read",
    "lists.read_subject",
)


def subject_index(ctx: AppContext, *, name_kana: str, birth_date: date) -> str:
    """The blind index the inquiries of this person carry (same normalisation as at entry, PL-4)."""
    return ctx.keyring.blind_index(
        subject_lookup_key(normalise_kana(name_kana), birth_date.isoformat()), domain="subject"
    )


def subject_pseudonym(ctx: AppContext, *, name_kana: str, birth_date: date) -> str:
    return ctx.keyring.pseudonym(
        subject_lookup_key(normalise_kana(name_kana), birth_date.isoformat()), domain="subject"
    )


@dataclass(frozen=True)
class SubjectAccess:
    at: str
    seq: int
    user_id: str | None
    terminal_id: str | None
    address: str | None
    kind: str
    action: str
    inquiry_id: str | None
    daily_list_id: str | None
    hq_request_id: str | None = None


@dataclass
class SubjectAccessReport:
    subject_pseudonym: str
    inquiries: list[Inquiry]
    accesses: list[SubjectAccess] = field(default_factory=list)

    @property
    def users(self) -> list[str]:
        return sorted({a.user_id for a in self.accesses if a.user_id})

    @property
    def terminals(self) -> list[str]:
        return sorted({a.terminal_id for a in self.accesses if a.terminal_id})


def _roles_of(event: AuditEvent) -> set[str]:
    try:
        return set(json.loads(event.actor_roles))
    except ValueError:
        return set()


async def subject_access(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    name_kana: str,
    birth_date: date,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SubjectAccessReport:
    """Every user and terminal that inquired about, approved, released, viewed, printed or downloaded
    this person's data (AC-6). The query itself is recorded, with the pseudonym, never the name."""
    index = subject_index(ctx, name_kana=name_kana, birth_date=birth_date)
    pseudonym = subject_pseudonym(ctx, name_kana=name_kana, birth_date=birth_date)
    inquiries = list(
        (
            await session.scalars(
                select(Inquiry).where(Inquiry.subject_index == index).order_by(Inquiry.created_at)
            )
        ).all()
    )
    request_ids = list(
        (await session.scalars(select(HqRequest.id).where(HqRequest.subject_index == index))).all()
    )
    return await _subject_report(
        session,
        actor=actor,
        pseudonym=pseudonym,
        inquiries=inquiries,
        request_ids=request_ids,
        by="subject",
        since=since,
        until=until,
    )


async def subject_access_by_pseudonym(
    session: AsyncSession,
    *,
    actor: Actor,
    pseudonym: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SubjectAccessReport:
    """As subject_access, for a person already known by their pseudonym (the incident record's forensic
    links, the ledger's own details): the same answer without anyone typing the name again."""
    inquiries = list(
        (
            await session.scalars(
                select(Inquiry).where(Inquiry.subject_pseudonym == pseudonym).order_by(Inquiry.created_at)
            )
        ).all()
    )
    request_ids = list(
        (await session.scalars(select(HqRequest.id).where(HqRequest.subject_pseudonym == pseudonym))).all()
    )
    return await _subject_report(
        session,
        actor=actor,
        pseudonym=pseudonym,
        inquiries=inquiries,
        request_ids=request_ids,
        by="pseudonym",
        since=since,
        until=until,
    )


def _access(event: AuditEvent, kind: str, **about: str | None) -> SubjectAccess:
    return SubjectAccess(
        at=event.at,
        seq=event.seq,
        user_id=about.pop("user_id", event.actor_id),
        terminal_id=event.terminal_id,
        address=event.address,
        kind=kind,
        action=event.action,
        inquiry_id=about.get("inquiry_id"),
        daily_list_id=about.get("daily_list_id"),
        hq_request_id=about.get("hq_request_id"),
    )


async def _subject_report(
    session: AsyncSession,
    *,
    actor: Actor,
    pseudonym: str,
    inquiries: list[Inquiry],
    request_ids: list[str],
    by: str,
    since: datetime | None,
    until: datetime | None,
) -> SubjectAccessReport:
    report = SubjectAccessReport(subject_pseudonym=pseudonym, inquiries=inquiries)
    ids = [inquiry.id for inquiry in inquiries]
    if ids:
        inquiry_events = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_id.in_(ids), AuditEvent.action.in_(sorted(INQUIRY_ACCESS_KINDS)))
            .order_by(AuditEvent.seq)
        )
        for event in inquiry_events:
            report.accesses.append(
                _access(event, INQUIRY_ACCESS_KINDS[event.action], inquiry_id=event.object_id)
            )
            # With A1 the confirmer types their credentials at the operator's terminal: they touched it too.
            if event.action == "approval.confirmer_credentials":
                confirmer = json.loads(event.details).get("confirmer_id")
                if confirmer:
                    report.accesses.append(
                        _access(event, "approved", user_id=str(confirmer), inquiry_id=event.object_id)
                    )
        # Only subject lists name the person; a count list carries the inquiry as a line without any
        # name, so reading one is not an access to this person.
        list_lines = await session.execute(
            select(DailyListLine.list_id, DailyListLine.line_no, DailyListLine.inquiry_id)
            .join(DailyList, DailyList.id == DailyListLine.list_id)
            .where(DailyListLine.inquiry_id.in_(ids), DailyList.kind == "subject")
        )
        lines_by_list: dict[str, dict[int, str]] = defaultdict(dict)
        for list_id, line_no, line_inquiry_id in list_lines:
            lines_by_list[list_id][line_no] = line_inquiry_id
        if lines_by_list:
            readers = PERMISSIONS["lists.read_subject"].roles
            list_events = await session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.object_id.in_(sorted(lines_by_list)),
                    AuditEvent.action.in_(sorted(LIST_ACCESS_KINDS)),
                )
                .order_by(AuditEvent.seq)
            )
            for event in list_events:
                list_id = str(event.object_id)
                details = json.loads(event.details)
                checked: str | None = None
                if event.action == "daily_list.line_checked":
                    checked = details.get("inquiry_id")
                    if checked not in ids:
                        continue
                # Roles that cannot see subjects (auditors) get the list without names.
                elif not (_roles_of(event) & readers):
                    continue
                report.accesses.append(
                    _access(event, LIST_ACCESS_KINDS[event.action], inquiry_id=checked, daily_list_id=list_id)
                )
    if request_ids:
        # A branch's request to HQ carries the person too: its entry, and every listing that showed it
        # to a role allowed to see the subject.
        request_readers = PERMISSIONS["hq_request.read_subject"].roles
        request_events = await session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.action.like("hq_request.%"),
                or_(
                    AuditEvent.object_id.in_(request_ids),
                    *(AuditEvent.details.contains(request_id) for request_id in request_ids),
                ),
            )
            .order_by(AuditEvent.seq)
        )
        for event in request_events:
            if event.object_id in request_ids:
                kind = HQ_REQUEST_ACCESS_KINDS.get(event.action)
                if kind:
                    report.accesses.append(_access(event, kind, hq_request_id=event.object_id))
                continue
            if event.action != "hq_request.listed" or not (_roles_of(event) & request_readers):
                continue
            details = json.loads(event.details)
            if not details.get("with_subjects"):
                continue
            for request_id in details.get("request_ids", []):
                if request_id in request_ids:
                    report.accesses.append(_access(event, "viewed", hq_request_id=request_id))
    if since is not None or until is not None:
        # An incident's window (its forensic links carry it): only what happened inside it.
        report.accesses = [
            a
            for a in report.accesses
            if (since is None or datetime.fromisoformat(a.at) >= since)
            and (until is None or datetime.fromisoformat(a.at) <= until)
        ]
    report.accesses.sort(key=lambda a: (a.seq, a.user_id or ""))
    record(
        session,
        actor=actor,
        action="audit.subject_access_read",
        object_type="subject",
        object_id=pseudonym,
        details={
            "subject_pseudonym": pseudonym,
            "by": by,
            "inquiries": len(inquiries),
            "hq_requests": len(request_ids),
            "accesses": len(report.accesses),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
    )
    await session.commit()
    return report


@dataclass(frozen=True)
class AccessHolder:
    user_id: str
    status: str
    roles: dict[str, list[str]]
    may: list[str]


# What each kind of HR event makes of the person's account when it is applied (app/governance/hr.py).
HR_STATUS = {"leave": "suspended", "resignation": "resigned"}


async def _statuses_at(session: AsyncSession, *, at: datetime, user_ids: list[str]) -> dict[str, str]:
    """Each user's account status at ``at``, not today's: replayed from the append-only access register
    (suspensions by HR events, reactivations), then an emergency suspension of the user in force then
    (IR-1). A user with no status change on the register has the status they have now."""
    if not user_ids:
        return {}
    current = {
        key: value
        for key, value in await session.execute(select(User.id, User.status).where(User.id.in_(user_ids)))
    }
    changes = await session.execute(
        select(
            AccessRegisterEntry.user_id,
            AccessRegisterEntry.recorded_at,
            AccessRegisterEntry.change,
            HrEvent.kind,
        )
        .outerjoin(
            HrEvent,
            (AccessRegisterEntry.source == "hr_event") & (HrEvent.id == AccessRegisterEntry.source_id),
        )
        .where(
            AccessRegisterEntry.user_id.in_(user_ids),
            AccessRegisterEntry.change.in_(("suspend", "reactivate")),
            # An emergency switch on a user is in the register too, but it leaves the account's status
            # alone and is lifted by a "lift" entry: it is judged from the switches below, or a lifted
            # switch would keep the user suspended for ever.
            AccessRegisterEntry.source != "emergency",
        )
        .order_by(AccessRegisterEntry.seq)
    )
    statuses: dict[str, str] = {}
    changed: set[str] = set()
    for user_id, recorded_at, change, hr_kind in changes:
        changed.add(user_id)
        if recorded_at > at:
            continue
        statuses[user_id] = "active" if change == "reactivate" else HR_STATUS.get(hr_kind or "", "suspended")
    for user_id in user_ids:
        # Changes only after T: the user was active then (accounts are created active).
        statuses.setdefault(user_id, "active" if user_id in changed else current.get(user_id, "unknown"))
    suspended = await session.scalars(
        select(EmergencySuspension.target).where(
            EmergencySuspension.scope == "user",
            EmergencySuspension.target.in_(user_ids),
            EmergencySuspension.imposed_at <= at,
            or_(EmergencySuspension.lifted_at.is_(None), EmergencySuspension.lifted_at > at),
        )
    )
    for target in suspended:
        if target is not None and statuses.get(target) == "active":
            statuses[target] = "suspended"
    return statuses


async def access_holders(
    session: AsyncSession, *, actor: Actor, branch_code: str, at: datetime
) -> tuple[list[AccessHolder], list[str]]:
    """Users whose roles at ``at`` let them reach ``branch_code``'s data (AC-6), from the role history
    (grants are never deleted, only ended), judged by the permission matrix. Also the service accounts
    with a data scope; they have no history, so they are listed as they are now."""
    rows = await session.execute(
        select(UserRole.user_id, UserRole.role, UserRole.branch_code).where(
            UserRole.granted_at <= at, or_(UserRole.revoked_at.is_(None), UserRole.revoked_at > at)
        )
    )
    by_user: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for user_id, role, role_branch in rows:
        by_user[user_id][role]
        if role_branch is not None:
            by_user[user_id][role].add(role_branch)
    statuses = await _statuses_at(session, at=at, user_ids=sorted(by_user))
    holders: list[AccessHolder] = []
    for user_id in sorted(by_user):
        role_branches = {role: frozenset(codes) for role, codes in by_user[user_id].items()}
        allowed = [a for a in BRANCH_DATA_ACTIONS if roles_allow(role_branches, a, branch_code=branch_code)]
        if allowed:
            holders.append(
                AccessHolder(
                    user_id=user_id,
                    status=statuses.get(user_id, "unknown"),
                    roles={role: sorted(codes) for role, codes in role_branches.items()},
                    may=allowed,
                )
            )
    data_scopes = set().union(*(PERMISSIONS[a].scopes for a in BRANCH_DATA_ACTIONS))
    services = [
        account.client_id
        for account in (
            await session.scalars(select(ServiceAccount).where(ServiceAccount.created_at <= at))
        ).all()
        if set(account.scopes) & data_scopes
    ]
    record(
        session,
        actor=actor,
        action="audit.access_holders_read",
        object_type="branch",
        object_id=branch_code,
        details={"at": at.isoformat(), "holders": len(holders)},
    )
    await session.commit()
    return holders, sorted(services)


# -- LG-5: the end-to-end trace --------------------------------------------------------------------


@dataclass(frozen=True)
class TracedEvent:
    event: AuditEvent
    # "inquiry"; "daily_list" for events about a list that carries this inquiry as a line;
    # "retention_deletion" for the purge that destroyed its response (and its re-application, RT-2);
    # "escalation" for the handling of an escalation about it.
    via: str


async def inquiry_trace_events(
    session: AsyncSession, *, inquiry_id: str, lists_of_branch: str | None = None
) -> list[TracedEvent]:
    """Every ledger event of one inquiry in seq order: request, checks, approval, center, hold, release,
    every read, then each list line it appears on, the line's check, the list's confirmation, every
    view/print of those lists, how escalations about it were handled, and destruction of the response
    (LG-5). ``lists_of_branch`` keeps only the lists of that branch (a branch tracing HQ's inquiry for
    it sees its own lists, not HQ's)."""
    own = await session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == inquiry_id).order_by(AuditEvent.seq)
    )
    traced = [TracedEvent(event, "inquiry") for event in own]
    lines = select(DailyListLine.list_id).where(DailyListLine.inquiry_id == inquiry_id)
    if lists_of_branch is not None:
        lines = lines.join(DailyList, DailyList.id == DailyListLine.list_id).where(
            DailyList.branch_code == lists_of_branch
        )
    list_ids = sorted(set((await session.scalars(lines)).all()))
    if list_ids:
        list_events = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_id.in_(list_ids), AuditEvent.object_type == "daily_list")
            .order_by(AuditEvent.seq)
        )
        for event in list_events:
            if event.action == "daily_list.line_checked":
                if json.loads(event.details).get("inquiry_id") != inquiry_id:
                    continue
            traced.append(TracedEvent(event, "daily_list"))
    # An escalation about the inquiry is raised by one of its own events (a mismatch on release, the
    # center refusing a cancellation); how it was handled is an event about the escalation.
    escalations = select(Escalation.id).where(
        Escalation.object_type == "inquiry", Escalation.object_id == inquiry_id
    )
    if lists_of_branch is not None:
        escalations = escalations.where(Escalation.branch_code == lists_of_branch)
    escalation_ids = sorted((await session.scalars(escalations)).all())
    if escalation_ids:
        handled = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_id.in_(escalation_ids), AuditEvent.object_type == "escalation")
            .order_by(AuditEvent.seq)
        )
        traced.extend(TracedEvent(event, "escalation") for event in handled)
    # One event tells of a whole purge; the response names the deletion that destroyed it.
    deletion_id = await session.scalar(
        select(SealedResponse.deletion_id).where(SealedResponse.inquiry_id == inquiry_id)
    )
    if deletion_id is not None:
        purge_events = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_id == deletion_id, AuditEvent.object_type == "retention_deletion")
            .order_by(AuditEvent.seq)
        )
        traced.extend(TracedEvent(event, "retention_deletion") for event in purge_events)
    traced.sort(key=lambda t: t.event.seq)
    return traced


async def terminal_branches(session: AsyncSession) -> dict[str, str]:
    return {key: value for key, value in await session.execute(select(Terminal.id, Terminal.branch_code))}

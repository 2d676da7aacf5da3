"""Separation of duties under random use (SD-1, VI(1)① methods A and B, CC-1).

A small world of people — some holding operator *and* confirmer at the same branch, a confirmer of
another branch, someone who operates at one branch and confirms at another, a branch manager and an
HQ confirmer — is created through app.authz.directory. Hypothesis draws sequences of HTTP actions over
random people and inquiries: enter a draft (optionally with A1 credentials of someone), issue an
approval number, submit with a number or with A1 credentials, release (method B), cancel with an
approval, read the response.

Each attempt's outcome is predicted from the SoD matrix (who is the operator, who confirms for the
branch, who released). Every attempt that would break the matrix must be refused with 403
SAME_PERSON / NOT_A_CONFIRMER / FORBIDDEN — or 404 when the inquiry is outside the caller's branches,
or 409/423 when the inquiry's state forbids the action for everybody — never 2xx, never 500; and the
SoD codes appear only where predicted. After every sequence the database and the ledger are checked
(cumulatively, the world is not reset between examples): for every inquiry the approving, releasing
and cancel-approving confirmer is not its operator and confirms for its branch; every approval number
was issued by such a confirmer; every response_read event is by the releasing confirmer or the operator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.audit.ledger import Actor
from app.audit.models import AuditEvent
from app.authz import directory
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import ApprovalNumber, Inquiry
from app.inquiry.service import OPEN_FOR_CANCEL, event_details
from tests.helpers import terminal, terminal_headers
from tests.inquiry.support import draft_body, synthetic_people

BRANCH = "001"
OTHER_BRANCH = "002"
HQ = "000"
SOD_CODES = frozenset({"SAME_PERSON", "NOT_A_CONFIRMER", "FORBIDDEN"})


@dataclass(frozen=True)
class Person:
    id: str
    # (role, branch) as granted; HQ roles are held at the HQ unit, bank-wide roles at no branch.
    grants: tuple[tuple[str, str | None], ...]
    # The branch whose terminal this person logs in at (None: no terminal, e.g. an auditor).
    home: str | None

    @property
    def password(self) -> str:
        return f"Sod-{self.id}-Passw0rd"

    def holds(self, *roles: str) -> bool:
        return any(role in roles for role, _ in self.grants)

    def holds_at(self, branch: str, *roles: str) -> bool:
        return any(role in roles and where == branch for role, where in self.grants)

    def sees(self, branch: str) -> bool:
        """May read the inquiry's metadata (inquiry.read: branch roles at the branch, HQ roles bank-wide)."""
        return self.holds_at(branch, "operator", "confirmer", "branch_manager") or self.holds(
            "hq_operator", "hq_confirmer", "auditor"
        )

    def confirms(self, branch: str) -> bool:
        """A confirmer *for this branch* (the SoD matrix's second person)."""
        return self.holds_at(branch, "confirmer", "hq_confirmer")


PEOPLE = (
    # Index 0..2: operator and confirmer at the same branch — the people SD-1 is really about.
    Person("sod-dual-a", (("operator", BRANCH), ("confirmer", BRANCH)), BRANCH),
    Person("sod-dual-b", (("operator", BRANCH), ("confirmer", BRANCH)), BRANCH),
    Person("sod-dual-c", (("operator", BRANCH), ("confirmer", BRANCH)), BRANCH),
    Person("sod-operator", (("operator", BRANCH),), BRANCH),
    Person("sod-confirmer", (("confirmer", BRANCH),), BRANCH),
    # Operates here, confirms only at the other branch.
    Person("sod-split", (("operator", BRANCH), ("confirmer", OTHER_BRANCH)), BRANCH),
    Person("sod-other-cf", (("confirmer", OTHER_BRANCH),), OTHER_BRANCH),
    Person("sod-manager", (("branch_manager", BRANCH),), BRANCH),
    Person("sod-hq-cf", (("hq_confirmer", HQ),), HQ),
    # HQ's own pair of duties: SoD holds for inquiries entered at HQ too.
    Person("sod-hq-dual", (("hq_operator", HQ), ("hq_confirmer", HQ)), HQ),
    Person("sod-auditor", (("auditor", None),), None),
)
BY_ID = {p.id: p for p in PEOPLE}
KINDS = ("create", "issue", "submit", "release", "cancel", "read")


@dataclass
class IssuedNumber:
    inquiry_id: str
    number: str
    issuer: str
    purpose: str


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    subjects: list[dict[str, Any]]
    inquiries: list[str] = field(default_factory=list)
    numbers: list[IssuedNumber] = field(default_factory=list)


async def _create_people(ctx: AppContext) -> None:
    actor = Actor(id="test-admin")
    async with ctx.db.session() as session:
        for person in PEOPLE:
            await directory.create_user(
                session,
                ctx=ctx,
                actor=actor,
                user_id=person.id,
                name=f"職務分離 {person.id}",
                password=person.password,
                must_change_password=False,
            )
        await session.flush()
        for person in PEOPLE:
            for role, branch in person.grants:
                await directory.grant_role(
                    session, ctx=ctx, actor=actor, user_id=person.id, role=role, branch_code=branch
                )
        await session.commit()


async def _login(client: httpx.AsyncClient, demo: DemoCredentials, person: Person) -> dict[str, str]:
    term = terminal(demo, person.home) if person.home else None
    response = await client.post(
        "/auth/login",
        json={"user_id": person.id, "password": person.password},
        headers=terminal_headers(term) if term else {},
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    if term:
        headers["X-Terminal-Id"] = term["id"]
    return headers


@pytest.fixture
async def world(client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext) -> World:
    # Function-scoped but created once per test: hypothesis reuses it across examples (cumulative world).
    await _create_people(ctx)
    headers = {p.id: await _login(client, demo, p) for p in PEOPLE}
    people = [p for p in await synthetic_people(ctx, limit=60) if p["has_transactions"]]
    return World(headers=headers, subjects=people[:12])


# -- predictions from the SoD matrix -------------------------------------------------------------------

Outcome = tuple[int, str]
OK_CREATED: Outcome = (201, "")
OK: Outcome = (200, "")


def _operator_action_refusal(person: Person, inquiry: Inquiry) -> Outcome | None:
    """Submit and cancel: only the inquiry's own operator (inquiry.submit / inquiry.cancel)."""
    if not person.holds("operator", "hq_operator"):
        return (403, "FORBIDDEN")
    if not person.sees(inquiry.branch_code):
        return (404, "NOT_FOUND")
    if not person.holds_at(inquiry.branch_code, "operator", "hq_operator"):
        return (403, "FORBIDDEN")
    if person.id != inquiry.operator_id:
        return (403, "FORBIDDEN")
    return None


def _second_person_refusal(person: Person, inquiry: Inquiry) -> Outcome | None:
    """Who confirms (A1 credentials, number issuer, releaser): not the operator, a confirmer here."""
    if person.id == inquiry.operator_id:
        return (403, "SAME_PERSON")
    if not person.confirms(inquiry.branch_code):
        return (403, "NOT_A_CONFIRMER")
    return None


def _confirmer_endpoint_refusal(person: Person, inquiry: Inquiry) -> Outcome | None:
    """Issue an approval number / release: a confirmer role, the branch visible, then the second person."""
    if not person.holds("confirmer", "hq_confirmer"):
        return (403, "FORBIDDEN")
    if not person.sees(inquiry.branch_code):
        return (404, "NOT_FOUND")
    return _second_person_refusal(person, inquiry)


def _reader_refusal(person: Person, inquiry: Inquiry) -> Outcome | None:
    if not person.holds("operator", "confirmer", "hq_operator", "hq_confirmer"):
        return (403, "FORBIDDEN")
    if not person.sees(inquiry.branch_code):
        return (404, "NOT_FOUND")
    if not person.holds_at(inquiry.branch_code, "operator", "confirmer", "hq_operator", "hq_confirmer"):
        return (403, "FORBIDDEN")
    return None


THE_OPERATOR = -1
A_CONFIRMER = -2


@dataclass(frozen=True)
class Step:
    kind: str
    # An index into PEOPLE; or THE_OPERATOR (the target's own operator; for create, some operator of the
    # branch); or A_CONFIRMER (some confirmer of the branch other than the target's operator).
    actor: int
    # Whose A1 credentials (an index into PEOPLE or A_CONFIRMER).
    helper: int
    # Which inquiry (counted back from the newest), subject, approval number, legitimate person.
    target: int
    pick: int
    # create: with A1 credentials; submit/cancel: A1 credentials rather than an approval number;
    # release: document_check mismatch (when pick is a multiple of 4).
    flag: bool


# The role selectors make random sequences get drafts through their whole life often enough, while
# every person still acts on every inquiry now and then.
steps = st.builds(
    Step,
    kind=st.sampled_from((*KINDS, "create", "issue", "submit", "release", "read")),
    actor=st.sampled_from((*(THE_OPERATOR, A_CONFIRMER) * 4, *range(len(PEOPLE)))),
    helper=st.sampled_from((*(A_CONFIRMER,) * 4, *range(len(PEOPLE)))),
    target=st.integers(0, 7),
    pick=st.integers(0, 15),
    flag=st.booleans(),
)


def _resolve(selector: int, *, branch: str, operator_id: str | None, pick: int) -> Person:
    if selector == THE_OPERATOR:
        if operator_id is not None:
            return BY_ID[operator_id]
        operators = [p for p in PEOPLE if p.holds_at(branch, "operator", "hq_operator")]
        return operators[pick % len(operators)]
    if selector == A_CONFIRMER:
        confirmers = [p for p in PEOPLE if p.confirms(branch) and p.id != operator_id]
        return confirmers[pick % len(confirmers)]
    return PEOPLE[selector]


async def _settle(ctx: AppContext) -> None:
    """Wait until the outbox sender has answered every queued inquiry, so predictions see a stable state."""
    for _ in range(200):
        async with ctx.db.read_session() as session:
            queued = await session.scalar(select(Inquiry.id).where(Inquiry.status == "queued").limit(1))
        if queued is None:
            return
        ctx.outbox_kick()
        await asyncio.sleep(0.02)
    raise AssertionError("an inquiry stayed queued: the outbox sender did not deliver")


# The state in which each action can succeed for the right person.
NATURAL_STATES = {
    "issue": ("awaiting_approval", "held", "released"),
    "submit": ("awaiting_approval",),
    "release": ("held",),
    "read": ("released",),
    "cancel": OPEN_FOR_CANCEL,
}


async def _choose_target(ctx: AppContext, world: World, step: Step) -> str:
    """Counted back from the newest; for odd ``pick`` only among inquiries where the action can succeed."""
    recent = world.inquiries[-16:]
    if step.pick % 2:
        async with ctx.db.read_session() as session:
            rows = await session.execute(
                select(Inquiry.id).where(
                    Inquiry.id.in_(recent), Inquiry.status.in_(NATURAL_STATES[step.kind])
                )
            )
            ready = {row[0] for row in rows}
        candidates = [i for i in recent if i in ready] or recent
    else:
        candidates = recent
    return candidates[-1 - step.target % len(candidates)]


async def _load(ctx: AppContext, inquiry_id: str) -> Inquiry:
    async with ctx.db.read_session() as session:
        inquiry = await session.get(Inquiry, inquiry_id)
    assert inquiry is not None
    return inquiry


def _a1(person: Person) -> dict[str, str]:
    return {
        "method": "confirmer_credentials",
        "confirmer_user_id": person.id,
        "confirmer_password": person.password,
    }


def _number_for(world: World, inquiry_id: str, pick: int) -> IssuedNumber | None:
    """Mostly a number issued for this inquiry; sometimes one issued for another (must not work)."""
    own = [n for n in world.numbers if n.inquiry_id == inquiry_id]
    if own and pick % 4:
        return own[-1 - pick % len(own)]
    return world.numbers[pick % len(world.numbers)] if world.numbers else None


def _outcome(response: httpx.Response) -> Outcome:
    assert response.status_code != 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        return response.status_code, str(response.json()["code"])
    return response.status_code, ""


def _check(
    world: World, step: Step, response: httpx.Response, *, expected: Outcome | set[Outcome], sod: bool
) -> Outcome:
    """Compare with the prediction. An SoD-breaking attempt is never 2xx; SoD codes only where predicted."""
    got = _outcome(response)
    # What the sequences exercised: pytest --hypothesis-show-statistics lists these.
    event(f"{step.kind} -> {got[0]} {got[1]}".rstrip())
    allowed = expected if isinstance(expected, set) else {expected}
    assert got in allowed, f"{step}: got {got} {response.text}, expected {allowed}"
    if sod:
        assert not 200 <= got[0] < 300, f"{step}: an SoD-breaking attempt succeeded: {response.text}"
        assert got in {(403, c) for c in SOD_CODES} | {(404, "NOT_FOUND"), (409, "INVALID_STATE")} | {
            (423, "RESPONSE_HELD"),
            (410, "RESPONSE_DESTROYED"),
        }
    return got


async def _run_step(client: httpx.AsyncClient, ctx: AppContext, world: World, step: Step) -> None:
    if step.kind == "create" or not world.inquiries:
        actor = _resolve(step.actor, branch=BRANCH, operator_id=None, pick=step.pick)
        helper = _resolve(step.helper, branch=actor.home or BRANCH, operator_id=actor.id, pick=step.pick)
        await _create(client, world, step, actor, helper, world.headers[actor.id])
        return
    await _settle(ctx)
    inquiry_id = await _choose_target(ctx, world, step)
    inquiry = await _load(ctx, inquiry_id)
    actor = _resolve(step.actor, branch=inquiry.branch_code, operator_id=inquiry.operator_id, pick=step.pick)
    helper = _resolve(step.helper, branch=inquiry.branch_code, operator_id=inquiry.operator_id, pick=1)
    headers = world.headers[actor.id]
    url = f"/inquiries/{inquiry_id}"

    if step.kind == "issue":
        refusal = _confirmer_endpoint_refusal(actor, inquiry)
        if refusal is None:
            open_state = inquiry.status == "awaiting_approval" or inquiry.status in OPEN_FOR_CANCEL
            expected = OK_CREATED if open_state else (409, "INVALID_STATE")
        response = await client.post(f"{url}/approval-numbers", json={}, headers=headers)
        got = _check(world, step, response, expected=refusal or expected, sod=refusal is not None)
        if got == OK_CREATED:
            purpose = "submit" if inquiry.status == "awaiting_approval" else "cancel"
            world.numbers.append(
                IssuedNumber(inquiry_id, response.json()["approval_number"], actor.id, purpose)
            )

    elif step.kind in ("submit", "cancel"):
        states = ("awaiting_approval",) if step.kind == "submit" else OPEN_FOR_CANCEL
        refusal = _operator_action_refusal(actor, inquiry)
        number: IssuedNumber | None = None
        if step.flag or not world.numbers:
            approval: dict[str, str] = _a1(helper)
        else:
            number = _number_for(world, inquiry_id, step.pick)
            assert number is not None
            approval = {"method": "approval_number", "approval_number": number.number}
        sod = refusal is not None
        expected: Outcome | set[Outcome]
        if refusal is not None:
            expected = refusal
        elif inquiry.status not in states:
            expected = (409, "INVALID_STATE")
        elif number is None:
            second = _second_person_refusal(helper, inquiry)
            sod = second is not None
            expected = second or OK
        else:
            # A number is good once, for its inquiry, purpose and draft; its issuer was checked at issue.
            expected = {OK, (403, "APPROVAL_INVALID")}
        body: dict[str, Any] = {"approval": approval}
        if step.kind == "cancel":
            body["reason"] = "顧客からの申出により取消"
        response = await client.post(f"{url}/{step.kind}", json=body, headers=headers)
        got = _check(world, step, response, expected=expected, sod=sod)
        if got == OK:
            after = await _load(ctx, inquiry_id)
            confirmer = number.issuer if number is not None else helper.id
            if number is not None:
                assert number.inquiry_id == inquiry_id
            if step.kind == "submit":
                assert after.approval_confirmer_id == confirmer
            else:
                assert after.status == "cancelled"
                assert after.cancel_confirmer_id == confirmer

    elif step.kind == "release":
        refusal = _confirmer_endpoint_refusal(actor, inquiry)
        if refusal is None:
            expected = OK if inquiry.status == "held" else (409, "INVALID_STATE")
        document_check = "mismatch" if step.flag and step.pick % 4 == 0 else "match"
        response = await client.post(
            f"{url}/release",
            json={"password": actor.password, "document_check": document_check},
            headers=headers,
        )
        got = _check(world, step, response, expected=refusal or expected, sod=refusal is not None)
        if got == OK:
            assert (await _load(ctx, inquiry_id)).released_by == actor.id

    else:  # read
        refusal = _reader_refusal(actor, inquiry)
        sod = refusal is not None
        if refusal is not None:
            expected = refusal
        elif inquiry.response_state == "destroyed":
            expected = (410, "RESPONSE_DESTROYED")
        elif inquiry.status == "cancelled":
            expected = (403, "FORBIDDEN")  # CC-1: nobody reads a cancelled inquiry's response
        elif inquiry.response_state in ("none", "held"):
            expected = (423, "RESPONSE_HELD")
            sod = actor.id not in (inquiry.operator_id, inquiry.released_by)
        elif actor.id == inquiry.operator_id:
            withheld = "suspected_misuse" in inquiry.flags
            expected = (403, "FORBIDDEN") if withheld else OK
            sod = withheld
        elif actor.id == inquiry.released_by:
            expected = OK
        else:
            expected, sod = (403, "FORBIDDEN"), True
        response = await client.get(f"{url}/response", headers=headers)
        got = _check(world, step, response, expected=expected, sod=sod)
        if got == OK:
            assert response.json()["inquiry_id"] == inquiry_id


async def _create(
    client: httpx.AsyncClient,
    world: World,
    step: Step,
    actor: Person,
    helper: Person,
    headers: Mapping[str, str],
) -> None:
    subject = world.subjects[step.pick % len(world.subjects)]
    with_a1 = step.flag
    body = draft_body(subject, approval=_a1(helper)) if with_a1 else draft_body(subject)
    refusal: Outcome | None = None
    if not actor.holds("operator", "hq_operator"):
        refusal = (403, "FORBIDDEN")
    elif with_a1:
        # The draft's operator is the caller; its branch is the caller's terminal's branch.
        assert actor.home is not None
        if helper.id == actor.id:
            refusal = (403, "SAME_PERSON")
        elif not helper.confirms(actor.home):
            refusal = (403, "NOT_A_CONFIRMER")
    response = await client.post("/inquiries", json=body, headers=dict(headers))
    got = _check(
        world,
        Step("create", step.actor, step.helper, step.target, step.pick, step.flag),
        response,
        expected=refusal or OK_CREATED,
        sod=refusal is not None,
    )
    if got == OK_CREATED:
        created = response.json()
        world.inquiries.append(created["id"])
        assert created["operator_id"] == actor.id
        if with_a1:
            assert created["approval"]["confirmer_id"] == helper.id
            assert created["status"] in ("queued", "held")
        else:
            assert created["status"] == "awaiting_approval"


# -- the invariant, from the database and the ledger ---------------------------------------------------


async def _assert_sod_invariant(ctx: AppContext) -> None:
    async with ctx.db.read_session() as session:
        inquiries = {i.id: i for i in (await session.scalars(select(Inquiry))).all()}
        numbers = list((await session.scalars(select(ApprovalNumber))).all())
        events = list(
            (
                await session.scalars(
                    select(AuditEvent)
                    .where(
                        AuditEvent.action.in_(
                            ("inquiry.response_read", "inquiry.approved", "inquiry.cancelled")
                        )
                    )
                    .order_by(AuditEvent.seq)
                )
            ).all()
        )
    for inquiry in inquiries.values():
        operator = inquiry.operator_id
        for role, confirmer_id in (
            ("approval", inquiry.approval_confirmer_id),
            ("release", inquiry.released_by),
            ("cancel", inquiry.cancel_confirmer_id),
        ):
            if confirmer_id is None:
                continue
            assert confirmer_id != operator, f"{role} of {inquiry.id} by its own operator {operator}"
            assert BY_ID[confirmer_id].confirms(inquiry.branch_code), f"{role} by a non-confirmer"
        if inquiry.status in ("queued", "held", "released") or inquiry.approved_at is not None:
            assert inquiry.approval_confirmer_id is not None
        if inquiry.status == "released":
            assert inquiry.released_by is not None
        if inquiry.status == "cancelled":
            assert inquiry.cancel_confirmer_id is not None
    for row in numbers:
        inquiry = inquiries[row.inquiry_id]
        assert row.issued_by != inquiry.operator_id
        assert BY_ID[row.issued_by].confirms(inquiry.branch_code)
    for entry in events:
        inquiry = inquiries[str(entry.object_id)]
        if entry.action == "inquiry.response_read":
            assert entry.actor_id in (inquiry.released_by, inquiry.operator_id), (
                f"response of {inquiry.id} read by {entry.actor_id}"
            )
            if entry.actor_id == inquiry.operator_id:
                assert inquiry.released_by is not None
        else:
            assert event_details(entry)["confirmer_id"] != inquiry.operator_id


# Hand-written sequences: hypothesis always runs these first, so every SoD refusal is exercised.
DUAL_A, DUAL_B, DUAL_C, OPERATOR, CONFIRMER, SPLIT, OTHER_CF, MANAGER, HQ_CF, HQ_DUAL, AUDITOR = range(
    len(PEOPLE)
)


def _step(kind: str, actor: int, *, helper: int = A_CONFIRMER, pick: int = 1, flag: bool = False) -> Step:
    return Step(kind, actor, helper, target=0, pick=pick, flag=flag)


OWN_DRAFT = [
    _step("create", DUAL_A, helper=DUAL_A, flag=True),  # A1 with one's own credentials: SAME_PERSON
    _step("create", DUAL_A, helper=OTHER_CF, flag=True),  # another branch's confirmer: NOT_A_CONFIRMER
    _step("create", DUAL_A, helper=HQ_CF, flag=True),  # the HQ confirmer: NOT_A_CONFIRMER
    _step("create", DUAL_A, helper=SPLIT, flag=True),  # confirms only elsewhere: NOT_A_CONFIRMER
    _step("create", DUAL_A),
    _step("issue", DUAL_A),  # a number for one's own draft: SAME_PERSON
    _step("issue", OTHER_CF),  # outside the branch: 404
    _step("issue", HQ_CF),  # NOT_A_CONFIRMER
    _step("issue", MANAGER),  # FORBIDDEN
    _step("submit", DUAL_A, helper=DUAL_A, flag=True),  # SAME_PERSON
    _step("submit", DUAL_B, helper=DUAL_C, flag=True),  # not the operator: FORBIDDEN
    _step("issue", DUAL_B),
    _step("submit", DUAL_C),  # someone else's draft with a good number: FORBIDDEN
    _step("submit", DUAL_A),  # the operator with DUAL_B's number: OK
    _step("read", DUAL_A),  # held: 423
    _step("release", DUAL_A),  # one's own inquiry: SAME_PERSON
    _step("release", SPLIT),  # NOT_A_CONFIRMER
    _step("release", HQ_CF),  # NOT_A_CONFIRMER
    _step("release", MANAGER),  # FORBIDDEN
    _step("release", DUAL_C),  # OK
    _step("read", DUAL_B),  # approved it but did not release it: FORBIDDEN
    _step("read", HQ_CF),  # FORBIDDEN
    _step("read", OTHER_CF),  # 404
    _step("read", DUAL_C),  # the releaser: OK
    _step("read", DUAL_A),  # the operator: OK
    _step("cancel", DUAL_A, helper=DUAL_A, flag=True),  # SAME_PERSON
    _step("cancel", DUAL_C, helper=DUAL_B, flag=True),  # not the operator: FORBIDDEN
    _step("cancel", DUAL_A, helper=CONFIRMER, flag=True),  # OK
]
MISMATCH = [
    _step("create", OPERATOR, helper=DUAL_B, flag=True),
    _step("release", DUAL_A, pick=0, flag=True),  # document_check mismatch: suspected misuse
    _step("read", OPERATOR),  # withheld from the operator: FORBIDDEN
    _step("read", DUAL_A),  # the releaser: OK
    _step("issue", OPERATOR),  # an operator-only person: FORBIDDEN
    _step("issue", DUAL_C),  # a number for cancelling
    _step("cancel", OPERATOR),  # with that number: OK
]
AT_HQ = [
    _step("create", HQ_DUAL, helper=HQ_DUAL, flag=True),  # SAME_PERSON at HQ too
    _step("create", HQ_DUAL, helper=DUAL_A, flag=True),  # a branch confirmer for an HQ inquiry
    _step("create", HQ_DUAL, helper=HQ_CF, flag=True),  # OK
    _step("release", HQ_DUAL),  # SAME_PERSON
    _step("release", DUAL_B),  # outside branch 001: 404
    _step("read", AUDITOR),  # auditors never see response content: FORBIDDEN
    _step("release", AUDITOR),  # FORBIDDEN
    _step("release", HQ_CF),  # OK
    _step("read", HQ_CF),  # the releaser: OK
    _step("read", HQ_DUAL),  # the operator: OK
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(steps, min_size=1, max_size=16))
@example(actions=OWN_DRAFT)
@example(actions=MISMATCH)
@example(actions=AT_HQ)
async def test_separation_of_duties_holds_for_random_action_sequences(
    client: httpx.AsyncClient, ctx: AppContext, world: World, actions: list[Step]
) -> None:
    for step in actions:
        await _run_step(client, ctx, world, step)
    await _settle(ctx)
    await _assert_sod_invariant(ctx)

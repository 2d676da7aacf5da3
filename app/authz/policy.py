"""The one place that answers "may this principal do this action here?" (design.md, SD-1).

Role and scope checks read the permission matrix in app/authz/roles.py; separation-of-duty checks
are functions here that every router and service calls. There is no bypass switch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from app.authz.principal import Principal
from app.authz.roles import (
    CONTENT_ACTIONS,
    ESCALATION_RECIPIENT_ROLES,
    INCOMPATIBLE_ROLES,
    PERMISSIONS,
    PRIVILEGED_ROLES,
)
from app.errors import (
    DomainError,
    Forbidden,
    NotAConfirmer,
    SamePerson,
    SeparationOfDutiesViolation,
    Suspended,
)


def roles_allow(role_branches: Mapping[str, frozenset[str]], action: str, *, branch_code: str | None) -> bool:
    """Whether holding ``role_branches`` allows ``action`` (in ``branch_code`` when given)."""
    permission = PERMISSIONS.get(action)
    if permission is None:
        return False
    if action in CONTENT_ACTIONS and set(role_branches) & (PRIVILEGED_ROLES | {"auditor"}):
        # Administrators and auditors never read response content, whatever else they hold (AC-1, AC-5).
        return False
    for role in permission.roles & set(role_branches):
        branches = role_branches[role]
        if branch_code is None or not branches or branch_code in branches or role in permission.bank_wide:
            return True
    return False


def may(principal: Principal, action: str, *, branch_code: str | None = None) -> bool:
    permission = PERMISSIONS.get(action)
    if permission is None:
        return False
    if principal.kind == "service":
        return bool(permission.scopes & principal.scopes)
    return roles_allow(principal.role_branches, action, branch_code=branch_code)


def authorize(principal: Principal, action: str, *, branch_code: str | None = None) -> None:
    """Raise 403 FORBIDDEN unless ``principal`` may perform ``action`` (in ``branch_code`` when given)."""
    if not may(principal, action, branch_code=branch_code):
        raise Forbidden(f"Your roles do not allow {action}")


def ensure_not_subject_user(principal: Principal, subject_user_id: str) -> None:
    """Nobody changes their own access state (AC-2: nobody grants rights to themselves)."""
    if principal.kind == "user" and principal.id == subject_user_id:
        raise SeparationOfDutiesViolation("You cannot perform this on your own account")


def ensure_different_people(person_id: str, *, others: Mapping[str, str | None]) -> None:
    """The named people of one access change are distinct (AC-2, SD-1: approver ≠ setter ≠ subject user).

    ``others`` maps what each other person is ("the requester") to their id.
    """
    for what, other_id in others.items():
        if other_id is not None and person_id == other_id:
            raise SeparationOfDutiesViolation(f"You are {what} of this change; someone else must do this")


def may_handle_escalation(principal: Principal, *, recipients: Iterable[str], branch_code: str) -> bool:
    """Whether ``principal`` holds, for ``branch_code``, a role that answers for one of the escalation's
    recipients and may acknowledge escalations (a person: a batch job does not decide what was done)."""
    answering = frozenset().union(*(ESCALATION_RECIPIENT_ROLES.get(r, frozenset()) for r in recipients))
    held = {role: branches for role, branches in principal.role_branches.items() if role in answering}
    return principal.kind == "user" and roles_allow(held, "escalation.acknowledge", branch_code=branch_code)


def ensure_not_concerned(person_id: str, *, concerned: Iterable[tuple[str, str | None]]) -> None:
    """Whoever closes an escalation is none of the people it concerns: who entered or approved what it is
    about, who raised it, who ran the HQ day that does not balance (SD-1: nobody settles a concern about,
    or by, themselves).

    ``concerned`` pairs how each is concerned ("entered the inquiry it is about") with their id.
    """
    for how, other_id in concerned:
        if other_id is not None and person_id == other_id:
            raise SeparationOfDutiesViolation(f"You {how}; someone else must handle this escalation")


def ensure_roles_compatible(held: frozenset[str], new_role: str) -> None:
    """No one holds two roles the SD-1 matrix keeps apart (e.g. access_approver and access_admin)."""
    clashes = sorted(role for role in held if frozenset({role, new_role}) in INCOMPATIBLE_ROLES)
    if clashes:
        raise SeparationOfDutiesViolation(f"{new_role} cannot be held together with {', '.join(clashes)}")


def ensure_not_operator(person_id: str, *, operator_id: str) -> None:
    """Operator ≠ confirmer on the same inquiry, list line or HQ request (SD-1, VI(1)①)."""
    if person_id == operator_id:
        raise SamePerson("The person who entered the inquiry cannot also confirm it")


def ensure_may_confirm(
    *,
    confirmer_id: str,
    confirmer_roles: Mapping[str, frozenset[str]],
    confirmer_active: bool,
    branch_code: str,
    operator_ids: Collection[str],
) -> None:
    """A confirmer for this branch, none of the work's operators, not suspended or locked (methods A
    and B). An HQ inquiry run on a branch's request has two: HQ's operator and the one who asked."""
    for operator_id in operator_ids:
        ensure_not_operator(confirmer_id, operator_id=operator_id)
    if not roles_allow(confirmer_roles, "inquiry.confirm", branch_code=branch_code):
        raise NotAConfirmer("This person is not a confirmer for this branch")
    if not confirmer_active:
        raise Suspended("The confirmer's account is suspended or locked")


def may_confirm(
    principal: Principal, action: str, *, branch_code: str, operator_ids: Collection[str]
) -> bool:
    """Whether the signed-in ``principal`` holds ``action`` and passes :func:`ensure_may_confirm` for this
    work: a page offers to approve or release only what the service would then let them do."""
    if not may(principal, action):
        return False
    try:
        ensure_may_confirm(
            confirmer_id=principal.id,
            confirmer_roles=principal.role_branches,
            confirmer_active=True,
            branch_code=branch_code,
            operator_ids=operator_ids,
        )
    except DomainError:
        return False
    return True

"""The one place that answers "may this principal do this action here?" (design.md, SD-1).

Role and scope checks read the permission matrix in app/authz/roles.py; separation-of-duty checks
are functions here that every router and service calls. There is no bypass switch.
"""

from __future__ import annotations

from app.authz.principal import Principal
from app.authz.roles import PERMISSIONS
from app.errors import Forbidden, SeparationOfDutiesViolation


def may(principal: Principal, action: str, *, branch_code: str | None = None) -> bool:
    permission = PERMISSIONS.get(action)
    if permission is None:
        return False
    if principal.kind == "service":
        return bool(permission.scopes & principal.scopes)
    for role in permission.roles & principal.roles:
        if (
            branch_code is None
            or not principal.role_branches[role]
            or branch_code in principal.role_branches[role]
        ):
            return True
    return False


def authorize(principal: Principal, action: str, *, branch_code: str | None = None) -> None:
    """Raise 403 FORBIDDEN unless ``principal`` may perform ``action`` (in ``branch_code`` when given)."""
    if not may(principal, action, branch_code=branch_code):
        raise Forbidden(f"Your roles do not allow {action}")


def ensure_not_subject_user(principal: Principal, subject_user_id: str) -> None:
    """Nobody changes their own access state (AC-2: nobody grants rights to themselves)."""
    if principal.kind == "user" and principal.id == subject_user_id:
        raise SeparationOfDutiesViolation("You cannot perform this on your own account")

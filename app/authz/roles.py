"""The role catalogue and the permission matrix, as data (design.md: policy as data).

Each action names the roles (for people) and scopes (for service accounts) that may perform it.
Separation-of-duty rules live in app/authz/policy.py, which reads these tables; nothing else decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class RoleSpec:
    label_ja: str
    # Held per branch (operator at 001) rather than bank-wide.
    branch_scoped: bool
    # Held at headquarters (scoped to the HQ unit).
    hq: bool = False
    # People with this role log in only from a registered, active terminal of their branch (AU-2).
    terminal_bound: bool = False


ROLES = MappingProxyType(
    {
        "operator": RoleSpec("照会作業者", branch_scoped=True, terminal_bound=True),
        "confirmer": RoleSpec("確認者", branch_scoped=True, terminal_bound=True),
        "branch_manager": RoleSpec("個人信用情報管理者", branch_scoped=True, terminal_bound=True),
        "hq_operator": RoleSpec("本部照会作業者", branch_scoped=True, hq=True, terminal_bound=True),
        "hq_confirmer": RoleSpec("本部確認者", branch_scoped=True, hq=True, terminal_bound=True),
        "auditor": RoleSpec("監査担当者", branch_scoped=False),
        "access_approver": RoleSpec("アクセス権承認者", branch_scoped=False),
        "access_admin": RoleSpec("アクセス権設定者", branch_scoped=False),
        "batch_developer": RoleSpec("バッチ開発者", branch_scoped=False),
        "batch_operator": RoleSpec("バッチ運用者", branch_scoped=False),
        "security_officer": RoleSpec("セキュリティ責任者", branch_scoped=False),
    }
)

# Scopes a service account may hold.
SCOPES = frozenset(
    {"lists:generate", "lists:read", "reconcile:run", "audit:read", "hr:events", "inquiries:read"}
)


@dataclass(frozen=True)
class Permission:
    roles: frozenset[str]
    scopes: frozenset[str] = frozenset()
    # Roles that hold this permission for every branch although they are scoped to one (HQ oversight).
    bank_wide: frozenset[str] = frozenset()


def _perm(*roles: str, scopes: tuple[str, ...] = (), bank_wide: tuple[str, ...] = ()) -> Permission:
    return Permission(frozenset(roles), frozenset(scopes), frozenset(bank_wide))


PERMISSIONS = MappingProxyType(
    {
        "audit.read": _perm("auditor", scopes=("audit:read",)),
        # Inquiries (PL-*, methods A and B, CC-1). Branch scope is checked against the inquiry's branch.
        "inquiry.create": _perm("operator", "hq_operator"),
        "inquiry.read": _perm(
            "operator",
            "confirmer",
            "branch_manager",
            "hq_operator",
            "hq_confirmer",
            "auditor",
            scopes=("inquiries:read",),
            bank_wide=("hq_operator", "hq_confirmer"),
        ),
        "inquiry.read_subject": _perm(
            "operator", "confirmer", "branch_manager", "hq_operator", "hq_confirmer"
        ),
        "inquiry.submit": _perm("operator", "hq_operator"),
        "inquiry.approve": _perm("confirmer", "hq_confirmer"),
        "inquiry.release": _perm("confirmer", "hq_confirmer"),
        "inquiry.read_response": _perm("operator", "confirmer", "hq_operator", "hq_confirmer"),
        "inquiry.cancel": _perm("operator", "hq_operator"),
        "inquiry.trace": _perm("branch_manager", "auditor"),
        # The confirmer side of methods A and B, checked for the person who confirms (not the caller of A1).
        "inquiry.confirm": _perm("confirmer", "hq_confirmer"),
        # Daily lists (methods C and D, DL-*).
        "lists.read": _perm(
            "operator",
            "confirmer",
            "branch_manager",
            "hq_operator",
            "hq_confirmer",
            "auditor",
            scopes=("lists:read",),
            bank_wide=("hq_operator", "hq_confirmer"),
        ),
        "lists.read_subject": _perm("confirmer", "branch_manager", "hq_confirmer"),
        "lists.generate": _perm("hq_operator", "hq_confirmer", scopes=("lists:generate",)),
        "approval_register.read": _perm("confirmer", "branch_manager", "hq_confirmer", "auditor"),
        "directory.read": _perm("access_admin", "access_approver", "auditor", "security_officer"),
        "directory.manage": _perm("access_admin"),
        "account.unlock": _perm("access_admin"),
    }
)

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
        # The auditor's surface (LG-3, AU-8, AC-6, DG-1). Anomalies: branch managers for their own branch.
        "audit.anomalies.read": _perm("auditor", "branch_manager", scopes=("audit:read",)),
        "audit.report.acknowledge": _perm("auditor"),
        "audit.forensics": _perm("auditor"),
        "data_ledger.read": _perm("auditor", "access_admin"),
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
        "inquiry.correct": _perm("operator", "hq_operator"),
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
        # Escalations (document mismatches, overdue lists): the branch manager and HQ compliance.
        "escalation.read": _perm("branch_manager", "hq_confirmer", "auditor", bank_wide=("hq_confirmer",)),
        # Handling one is the branch manager's for their branch and HQ compliance's for any; auditors
        # only read (independent of what they audit).
        "escalation.acknowledge": _perm("branch_manager", "hq_confirmer", bank_wide=("hq_confirmer",)),
        # Reconciliation with the center's inquiry record (RC-1, RC-2): auditors and HQ batch jobs.
        "reconciliation.center.run": _perm("auditor", scopes=("reconcile:run",)),
        "reconciliation.center.read": _perm("auditor", scopes=("reconcile:run", "audit:read")),
        # HQ inquiries on behalf of branches (HQ-1…HQ-4). A branch sees its own requests; HQ sees all.
        "hq_request.create": _perm("operator"),
        "hq_request.read": _perm(
            "operator",
            "confirmer",
            "branch_manager",
            "hq_operator",
            "hq_confirmer",
            "auditor",
            bank_wide=("hq_operator", "hq_confirmer"),
        ),
        # HQ must read whom a branch asks about to execute the request.
        "hq_request.read_subject": _perm(
            "operator",
            "confirmer",
            "branch_manager",
            "hq_operator",
            "hq_confirmer",
            bank_wide=("hq_operator", "hq_confirmer"),
        ),
        "hq_request.execute": _perm("hq_operator"),
        "hq_reconciliation.read": _perm("hq_confirmer", "auditor"),
        "hq_reconciliation.sign_off": _perm("hq_confirmer"),
        "directory.read": _perm("access_admin", "access_approver", "auditor", "security_officer"),
        "directory.manage": _perm("access_admin"),
        # Access-rights governance (AC-2…AC-5). Branch managers request rights for their own branch only.
        "access.request": _perm("branch_manager", "access_admin"),
        "access.approve": _perm("access_approver"),
        "access.apply": _perm("access_admin"),
        "access.register.read": _perm("auditor", "access_admin"),
        "access.review": _perm("access_admin", "access_approver"),
        "access.recertification.manage": _perm("access_admin"),
        "access.attest": _perm("branch_manager", "access_approver"),
        # Who attests reads their share; the administrators who run a campaign and the auditors who check
        # it read every item (AC-4).
        "access.recertification.read": _perm("branch_manager", "access_approver", "access_admin", "auditor"),
        "hr.events": _perm("access_admin", scopes=("hr:events",)),
        "privileged.review": _perm("access_approver", "security_officer", "auditor"),
        "governance.check": _perm("auditor", "access_admin", "security_officer"),
        # Emergency switches and incidents (IR-1, IR-2).
        "emergency.suspend": _perm("security_officer"),
        # A queued inquiry a switch holds, withdrawn before it is sent (app/inquiry/held.py).
        "inquiry.withdraw": _perm("security_officer"),
        "emergency.read": _perm("security_officer", "auditor"),
        "incident.manage": _perm("security_officer"),
        "incident.read": _perm("security_officer", "auditor"),
        # Retention (RT-1): one officer requests a purge, a second approves it (app/retention/service.py).
        "retention.purge": _perm("security_officer"),
        "retention.read": _perm("security_officer", "auditor"),
    }
)

# Administrator roles (AC-5): few holders, TOTP, used only inside a privileged session with a reason.
PRIVILEGED_ROLES = frozenset({"access_admin", "access_approver", "security_officer"})

# Actions that reveal response content: never for holders of a privileged role or an auditor (AC-1, AC-5).
CONTENT_ACTIONS = frozenset({"inquiry.read_response", "inquiry.release"})

# Pairs of roles one person may not hold at once (SD-1): approver ≠ setter, auditor ≠ operator/confirmer,
# and no administrator who could also reach response content.
INCOMPATIBLE_ROLES = frozenset(
    frozenset(pair)
    for pair in (
        ("access_approver", "access_admin"),
        ("auditor", "operator"),
        ("auditor", "confirmer"),
        ("auditor", "hq_operator"),
        ("auditor", "hq_confirmer"),
        ("batch_developer", "batch_operator"),
        *((admin, reader) for admin in PRIVILEGED_ROLES for reader in ("operator", "confirmer")),
        *((admin, reader) for admin in PRIVILEGED_ROLES for reader in ("hq_operator", "hq_confirmer")),
    )
)


# Who answers for each recipient an escalation names: of the roles allowed escalation.acknowledge, only
# those its recipients call for may close it (an HQ balance escalation is HQ compliance's, not the HQ
# unit's branch manager's). Auditors are recipients too, but only read.
ESCALATION_RECIPIENT_ROLES: dict[str, frozenset[str]] = {
    "branch_manager": frozenset({"branch_manager"}),
    "hq_compliance": frozenset({"hq_confirmer"}),
    "hq": frozenset({"hq_confirmer"}),
    "auditor": frozenset(),
}

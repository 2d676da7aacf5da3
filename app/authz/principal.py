"""The authenticated caller of one request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.audit.ledger import Actor


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "service"]
    id: str
    name: str
    session_id: str
    session_expires_at: datetime
    idle_expires_at: datetime | None
    # role -> branch codes where it is held; bank-wide roles map to an empty set.
    role_branches: Mapping[str, frozenset[str]] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()
    terminal_id: str | None = None
    terminal_branch_code: str | None = None
    address: str | None = None
    request_id: str | None = None
    password_change_required: bool = False

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.role_branches)

    @property
    def branch_codes(self) -> frozenset[str]:
        codes: set[str] = set()
        for branches in self.role_branches.values():
            codes |= branches
        return frozenset(codes)

    def has_role(self, role: str, branch_code: str | None = None) -> bool:
        if role not in self.role_branches:
            return False
        return branch_code is None or branch_code in self.role_branches[role]

    def actor(self) -> Actor:
        return Actor(
            id=self.id if self.kind == "user" else f"service:{self.id}",
            roles=tuple(sorted(self.roles | {f"scope:{s}" for s in self.scopes})),
            terminal_id=self.terminal_id,
            address=self.address,
            request_id=self.request_id,
        )

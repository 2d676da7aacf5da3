"""Who may call the governance endpoints, as typed dependencies.

``privileged(action)``: the caller must be allowed ``action`` and, when that uses an administrator role,
must have a privileged session open on this login (AC-5). Service accounts never hold one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends

from app.authz.deps import CurrentPrincipal, require
from app.authz.principal import Principal
from app.deps import DbSession
from app.governance.privileged import ensure_privileged


def privileged(action: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def _dependency(principal: CurrentPrincipal, session: DbSession) -> Principal:
        await ensure_privileged(session, principal, action)
        # Release the read transaction: on SQLite it holds the writer lock the service is about to take.
        await session.commit()
        return principal

    _dependency.__name__ = f"privileged_{action.replace('.', '_')}"
    return _dependency


AccessRequester = Annotated[Principal, Depends(privileged("access.request"))]
AccessApprover = Annotated[Principal, Depends(privileged("access.approve"))]
AccessSetter = Annotated[Principal, Depends(privileged("access.apply"))]
AccessReviewer = Annotated[Principal, Depends(privileged("access.review"))]
RegisterReader = Annotated[Principal, Depends(require("access.register.read"))]
HrFeed = Annotated[Principal, Depends(privileged("hr.events"))]
CampaignManager = Annotated[Principal, Depends(privileged("access.recertification.manage"))]
Attester = Annotated[Principal, Depends(privileged("access.attest"))]
CampaignReader = Annotated[Principal, Depends(privileged("access.recertification.read"))]
PrivilegeReviewer = Annotated[Principal, Depends(privileged("privileged.review"))]
DirectoryAdmin = Annotated[Principal, Depends(privileged("directory.manage"))]
LifecycleChecker = Annotated[Principal, Depends(require("governance.check"))]
SecurityOfficer = Annotated[Principal, Depends(privileged("emergency.suspend"))]
InquiryWithdrawer = Annotated[Principal, Depends(privileged("inquiry.withdraw"))]
SuspensionReader = Annotated[Principal, Depends(require("emergency.read"))]
IncidentManager = Annotated[Principal, Depends(privileged("incident.manage"))]
IncidentReader = Annotated[Principal, Depends(require("incident.read"))]

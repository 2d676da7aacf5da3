"""Who may call the escalation endpoints (branch scope is checked per escalation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.authz.deps import require
from app.authz.principal import Principal

EscalationReader = Annotated[Principal, Depends(require("escalation.read"))]
EscalationHandler = Annotated[Principal, Depends(require("escalation.acknowledge"))]

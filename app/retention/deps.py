"""Who may call the retention endpoints: purges need an open privileged session (AC-5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.authz.deps import require
from app.authz.principal import Principal
from app.governance.deps import privileged

PurgeOfficer = Annotated[Principal, Depends(privileged("retention.purge"))]
RetentionReader = Annotated[Principal, Depends(require("retention.read"))]

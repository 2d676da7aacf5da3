"""Who may call the auditor's endpoints, as typed dependencies (branch scope is checked per request)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.authz.deps import require
from app.authz.principal import Principal

ForensicsReader = Annotated[Principal, Depends(require("audit.forensics"))]
AnomalyReader = Annotated[Principal, Depends(require("audit.anomalies.read"))]
ReportAcknowledger = Annotated[Principal, Depends(require("audit.report.acknowledge"))]
DataLedgerReader = Annotated[Principal, Depends(require("data_ledger.read"))]

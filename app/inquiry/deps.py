"""Who may call the inquiry endpoints, as typed dependencies (branch scope is checked per inquiry)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.authz.deps import require
from app.authz.principal import Principal

InquiryCreator = Annotated[Principal, Depends(require("inquiry.create"))]
InquiryReader = Annotated[Principal, Depends(require("inquiry.read"))]
InquiryConfirmer = Annotated[Principal, Depends(require("inquiry.approve"))]
InquiryReleaser = Annotated[Principal, Depends(require("inquiry.release"))]
InquiryOperator = Annotated[Principal, Depends(require("inquiry.submit"))]
ResponseReader = Annotated[Principal, Depends(require("inquiry.read_response"))]
TraceReader = Annotated[Principal, Depends(require("inquiry.trace"))]
RegisterReader = Annotated[Principal, Depends(require("approval_register.read"))]

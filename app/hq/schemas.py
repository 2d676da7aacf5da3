"""Request and response models of the HQ endpoints (api.md "HQ requests and reconciliation")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.inquiry.schemas import (
    Approval,
    ApprovalOut,
    ConsentDocumentIn,
    ConsentDocumentOut,
    Purpose,
    SubjectIn,
    SubjectOut,
)

HqRequestStatus = Literal["pending", "executed"]


class HqRequestCreate(BaseModel):
    """What a branch asks HQ to inquire; ``approval`` (method A1) when its return option is ``none``."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    customer_status: Literal["new", "existing"]
    subject: SubjectIn
    consent_document: ConsentDocumentIn
    approval: Approval | None = None


class HqRequestCreated(BaseModel):
    id: str
    status: HqRequestStatus


class HqRequestOut(BaseModel):
    id: str
    branch_code: str
    operator_id: str
    terminal_id: str | None
    purpose: str
    customer_status: str
    subject: SubjectOut | None = Field(
        description="Null for readers who may not see subject identity (auditors)"
    )
    consent_document: ConsentDocumentOut
    return_option: Literal["subject_list", "count_list", "none"]
    status: HqRequestStatus
    approval: ApprovalOut | None
    inquiry_id: str | None
    executed_by: str | None
    executed_at: datetime | None
    created_at: datetime
    business_date: date


class HqRequestPage(BaseModel):
    items: list[HqRequestOut]
    next_cursor: str | None


class BranchRequestsExecuted(BaseModel):
    branch_code: str
    requests_executed: int


class HqSignOffOut(BaseModel):
    business_date: date
    signed_by: str
    signed_at: datetime
    hq_executed: int
    branch_requests_executed: int
    own_initiative: int


class HqReconciliationOut(BaseModel):
    """HQ-3: HQ's executed inquiries = branch requests executed + HQ's own initiative."""

    business_date: date
    hq_executed: int
    branch_requests_executed: int
    by_branch: list[BranchRequestsExecuted]
    own_initiative: int
    balanced: bool
    sign_off: HqSignOffOut | None

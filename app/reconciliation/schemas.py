"""Request and response models of the center reconciliation (api.md "HQ requests and reconciliation")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.clock import BusinessDate

FindingKind = Literal["unmatched_center", "unmatched_gateway", "undual_cancellation", "mismatched"]


class CenterReconciliationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    date_from: BusinessDate = Field(alias="from", description="First business date (Asia/Tokyo), inclusive")
    date_to: BusinessDate = Field(alias="to", description="Last business date (Asia/Tokyo), inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> CenterReconciliationRequest:
        if self.date_to < self.date_from:
            raise ValueError("'to' is before 'from'")
        return self


class FindingOut(BaseModel):
    """One discrepancy: where and when, never who was inquired about."""

    kind: FindingKind
    reason: str
    entry_kind: str | None
    entry_id: str | None
    center_inquiry_id: str | None
    inquiry_id: str | None
    at: datetime | None
    business_date: date | None
    branch_code: str | None
    terminal_id: str | None
    operator_ref: str | None
    via: str | None


class TerminalUsageOut(BaseModel):
    branch_code: str
    terminal_id: str
    center_inquiries: int
    center_cancellations: int
    center_corrections: int
    direct_entries: int
    gateway_inquiries: int


class DayCountOut(BaseModel):
    """RC-2 for one day: the gateway's count equals the center's, and each list's total its lines."""

    business_date: date
    center_inquiries: int
    gateway_inquiries: int
    center_cancellations: int
    balanced: bool
    lists_checked: int
    lists_unbalanced: list[str]


class ApprovalRegisterOut(BaseModel):
    branch_code: str
    business_date: date
    issued: int
    used: int
    voided: int
    expired: int
    outstanding: int
    balanced: bool


class AlertOut(BaseModel):
    severity: Literal["critical", "high", "warning"]
    code: str
    count: int
    raised_at: datetime


class CenterReconciliationOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    state: Literal["running", "completed", "failed"]
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    source: Literal["center", "file"]
    source_sha256: str | None
    requested_by: str
    started_at: datetime
    finished_at: datetime | None
    failure: str | None
    center_entries: int
    gateway_entries: int
    clean: bool | None
    finding_counts: dict[str, int]
    # Each list shows at most ``findings_limit`` findings; ``finding_counts`` has the full numbers.
    findings_limit: int
    unmatched_center: list[FindingOut]
    unmatched_gateway: list[FindingOut]
    undual_cancellations: list[FindingOut]
    mismatched: list[FindingOut]
    by_terminal: list[TerminalUsageOut]
    by_day: list[DayCountOut]
    approval_registers: list[ApprovalRegisterOut]
    alerts: list[AlertOut]


class RunSummaryOut(BaseModel):
    id: str
    state: str
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    source: str
    started_at: datetime
    clean: bool | None
    center_entries: int
    gateway_entries: int


class RunPage(BaseModel):
    items: list[RunSummaryOut]
    next_cursor: str | None

"""Response models of the audit endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from app.clock import IsoDate
from app.inquiry.subject import OptionalFreeText


class ChainHeadOut(BaseModel):
    seq: int
    hash: str


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    head: ChainHeadOut
    first_bad_seq: int | None
    reason: str | None
    checkpoints_checked: int
    latest_checkpoint: CheckpointOut | None


class CheckpointPage(BaseModel):
    items: list[CheckpointOut]
    next_cursor: str | None
    public_keys: dict[str, str]


# -- the auditor's surface (AC-6, LG-3, LG-5, AU-8, DG-1) ---------------------------------------------


class SubjectAccessQuery(BaseModel):
    name_kana: str = Field(min_length=1, max_length=100)
    birth_date: IsoDate


class SubjectInquiryOut(BaseModel):
    id: str
    number: str
    branch_code: str
    operator_id: str
    terminal_id: str | None
    purpose: str
    status: str
    created_at: datetime


class SubjectAccessEntry(BaseModel):
    seq: int
    at: str
    user_id: str | None
    terminal_id: str | None
    address: str | None
    # inquired | approved | released | viewed | printed | downloaded
    kind: str
    action: str
    inquiry_id: str | None
    daily_list_id: str | None
    hq_request_id: str | None = None


class SubjectAccessOut(BaseModel):
    """Who touched one person's data; the person is named only by their pseudonym."""

    subject_pseudonym: str
    inquiries: list[SubjectInquiryOut]
    users: list[str]
    terminals: list[str]
    accesses: list[SubjectAccessEntry]


class AccessHolderOut(BaseModel):
    user_id: str
    status: str
    roles: dict[str, list[str]]
    may: list[str]


class AccessHoldersOut(BaseModel):
    branch_code: str
    at: datetime
    users: list[AccessHolderOut]
    service_accounts: list[str]


class ReportRunOut(BaseModel):
    id: str
    kind: str
    period_from: date
    period_to: date
    branch_code: str | None
    trigger: str
    generated_at: datetime
    generated_by: str
    thresholds: dict[str, Any]
    findings_count: int
    content_sha256: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledgement_note: str | None


class AnomalyFinding(BaseModel):
    # night_activity | non_business_day_activity | frequency_outlier | repeated_no_trade_info |
    # late_response_view | subject_multiple_operators
    kind: str
    # user | terminal | subject (a pseudonym)
    subject_type: str
    subject_id: str
    branch_codes: list[str]
    count: int
    details: dict[str, Any]


class AnomaliesOut(BaseModel):
    run: ReportRunOut
    findings: list[AnomalyFinding]


class ConfirmerPair(BaseModel):
    operator_id: str
    approvals: int
    share: float
    concentrated: bool


class ConfirmerDay(BaseModel):
    day: date
    approvals: int
    releases: int


class ConfirmerMove(BaseModel):
    from_branch: str
    to_branch: str
    at: str
    minutes: float


class ConfirmerUsageEntry(BaseModel):
    confirmer_id: str
    branch_codes: list[str]
    approvals: int
    approvals_by_method: dict[str, int]
    releases: int
    per_day: list[ConfirmerDay]
    terminals: list[str]
    addresses: list[str]
    off_hours: int
    same_terminal_as_operator: int
    in_operator_session: int
    quick_approvals: int
    pairs: list[ConfirmerPair]
    two_branches: list[ConfirmerMove]
    # off_hours | same_terminal_as_operator | quick_approval | pair_concentration | two_branches
    flags: list[str]
    examples: dict[str, list[str]]


class ConfirmerUsageOut(BaseModel):
    run: ReportRunOut
    confirmers: list[ConfirmerUsageEntry]


class ReportPage(BaseModel):
    items: list[ReportRunOut]
    next_cursor: str | None


class AcknowledgeRequest(BaseModel):
    note: OptionalFreeText = Field(default=None, max_length=400)


class DataLedgerItem(BaseModel):
    column: str
    type: str
    personal: bool
    description: str | None
    protection: str


class DataLedgerSet(BaseModel):
    data_set: str
    title: str
    described: bool
    purpose: str
    department: str | None
    retention: str | None
    storage: str
    holds_personal_data: bool
    items: list[DataLedgerItem]
    read_roles: list[str]
    read_scopes: list[str]


class DataLedgerOut(BaseModel):
    datasets: list[DataLedgerSet]
    undescribed: list[str]
    personal_data_gaps: list[str]

"""Request and response models of the daily-list endpoints (api.md "Daily lists")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.clock import BusinessDate
from app.inquiry.subject import OptionalFreeText


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_date: BusinessDate
    branch_code: str | None = Field(default=None, max_length=8)


class ListSubjectOut(BaseModel):
    name_kana: str
    birth_date: date


class ConsentDocumentOut(BaseModel):
    type: str
    reference: str
    obtained_on: date


class ListLineOut(BaseModel):
    line_no: int
    line_type: Literal["inquiry", "cancellation", "correction"]
    inquiry_id: str
    inquiry_number: str
    at: datetime
    operator_id: str
    terminal_id: str | None
    purpose: str
    subject: ListSubjectOut | None = Field(
        description="Subject lists only, and only for readers who may see names"
    )
    consent_document: ConsentDocumentOut
    response_delivered: bool
    center_refusal: str | None = Field(
        default=None,
        description="The center's refusal code (e.g. CENTER_NO_TRADE_INFO): answered by a refusal notice",
    )
    check: Literal["matched", "mismatch", "document_missing"] | None
    checked_by: str | None
    checked_at: datetime | None
    check_note: str | None = Field(
        default=None, description="What the confirmer wrote with the check (e.g. why a line does not match)"
    )


class TotalsOut(BaseModel):
    inquiries: int
    responses_delivered: int


class ListTotalsOut(TotalsOut):
    center_refusals: int = Field(
        description="Inquiries the center answered with a refusal (e.g. CENTER_NO_TRADE_INFO). A count "
        "list confirms when responses_in_hand = inquiries = responses_delivered + center_refusals"
    )


class DailyListSummary(BaseModel):
    id: str
    branch_code: str
    business_date: date
    kind: Literal["subject", "count"]
    sequence: int
    version: int
    supersedes: str | None
    supplement_reason: str | None
    generated_at: datetime
    content_sha256: str
    no_inquiries: bool
    totals: TotalsOut
    state: Literal["pending", "confirmed", "overdue", "superseded"]
    due_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    late: bool
    late_reason: str | None


class DailyListOut(DailyListSummary):
    totals: ListTotalsOut
    lines: list[ListLineOut]
    responses_in_hand: int | None
    attested_no_inquiries: bool


class DailyListPage(BaseModel):
    items: list[DailyListSummary]
    next_cursor: str | None = None


class GenerateResponse(BaseModel):
    items: list[DailyListSummary]
    created: int


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Literal["matched", "mismatch", "document_missing"]
    note: OptionalFreeText = Field(default=None, max_length=400)


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responses_in_hand: int | None = Field(default=None, ge=0, le=1_000_000)
    attest_no_inquiries: bool = False
    late_reason: OptionalFreeText = Field(default=None, max_length=400)


class GapOut(BaseModel):
    branch_code: str
    kind: str
    business_date: date


class SequenceGapOut(BaseModel):
    branch_code: str
    kind: str
    missing_from: int
    missing_to: int


class GapsOut(BaseModel):
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    missing_lists: list[GapOut]
    sequence_gaps: list[SequenceGapOut]

    model_config = ConfigDict(populate_by_name=True)

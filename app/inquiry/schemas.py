"""Request and response models of the inquiry endpoints (api.md "Inquiries")."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.clock import IsoDate
from app.inquiry.subject import StatedInquiryText, StatedText

Purpose = Annotated[
    str, Field(min_length=1, max_length=40, description="A purpose code from the policy table")
]


# The states of api.md's inquiry state machine, for filtering: a state not in it is a typing error the
# caller should hear about (422), not an empty page that reads as "none today".
InquiryStatus = Literal[
    "awaiting_approval", "queued", "held", "released", "center_error", "cancelled", "expired"
]


def _printable(value: str) -> str:
    """Control characters (a bell, an escape sequence, a line break) and invisible format characters (a
    right-to-left override, zero-width characters) would be stored, sent to the center and printed on the
    daily lists as they are, where they can hide or reorder what a confirmer reads: refused."""
    if not value.isascii() or not value.isprintable():
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
            raise ValueError("control and invisible format characters are not allowed")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, AfterValidator(_printable)]
NonBlankText = Annotated[str, AfterValidator(_printable), AfterValidator(_not_blank)]


class SubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The center's limits (app/center/interface.py CenterSubject) hold for the text once normalised, and
    # service.normalised_subject checks them there: NFKC lengthens some text ('㍿' is '株式会社') and
    # shortens other (half-width 'ｶﾞ' is one 'ガ', runs of spaces become one). As typed, up to twice the
    # center's limit is taken, so a half-width name that fits once folded is not refused for its form.
    name_kana: NonBlankText = Field(min_length=1, max_length=200)
    name_kanji: Text | None = Field(default=None, max_length=200)
    # Not after today and not before EARLIEST_BIRTH_DATE: service.normalised_subject (a schema has no clock).
    birth_date: IsoDate
    phone: Text | None = Field(default=None, max_length=40)
    postal_code: Text | None = Field(default=None, max_length=20)
    address: Text | None = Field(default=None, max_length=400)


class ConsentDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=40)
    reference: NonBlankText = Field(min_length=1, max_length=80)
    # By the day of the inquiry: service.check_consent_obtained.
    obtained_on: IsoDate


class ApprovalNumberApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["approval_number"]
    approval_number: str = Field(min_length=4, max_length=32)


class ConfirmerCredentialsApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["confirmer_credentials"]
    confirmer_user_id: str = Field(min_length=1, max_length=80)
    confirmer_password: str = Field(min_length=1, max_length=1024)
    confirmer_totp: str | None = Field(default=None, max_length=12)


Approval = Annotated[ApprovalNumberApproval | ConfirmerCredentialsApproval, Field(discriminator="method")]


class InquiryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    customer_status: Literal["new", "existing"]
    subject: SubjectIn
    consent_document: ConsentDocumentIn
    hq_request_id: str | None = Field(default=None, max_length=36)
    approval: Approval | None = None


class InquiryUpdate(BaseModel):
    """A change to a draft awaiting approval; any change voids its approval numbers (method A2)."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose | None = None
    customer_status: Literal["new", "existing"] | None = None
    subject: SubjectIn | None = None
    consent_document: ConsentDocumentIn | None = None


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval: Approval


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=12)
    document_check: Literal["match", "mismatch"]
    note: str | None = Field(default=None, max_length=400)


class HeldInquiryOut(BaseModel):
    """An inquiry an emergency switch keeps from the center: who entered it where, not about whom."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    number: str
    branch_code: str
    terminal_id: str | None
    operator_id: str
    purpose: str
    status: str
    flags: list[str]
    created_at: datetime
    approved_at: datetime | None


class WithdrawRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Staff's words, sealed on the inquiry (EN-1); checked like every free text.
    reason: StatedText = Field(min_length=1, max_length=400)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedInquiryText = Field(min_length=1, max_length=400)
    approval: Approval


class CorrectionFields(BaseModel):
    """What may be corrected in a sent inquiry's record (CC-1): the purpose code and the consent
    document as entered. Never the subject, the customer status, the branch, operator or terminal: an
    inquiry about someone else, or on another footing, is a new inquiry (cancel this one)."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose | None = None
    consent_document: ConsentDocumentIn | None = None


class CorrectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedInquiryText = Field(min_length=1, max_length=400)
    corrections: CorrectionFields
    approval: Approval


class ApprovalNumberRequest(BaseModel):
    """Empty to approve sending a draft or cancelling an inquiry; with ``correction`` to approve exactly
    that correction (the number is bound to it)."""

    model_config = ConfigDict(extra="forbid")

    correction: CorrectionFields | None = None


class SubjectOut(BaseModel):
    name_kana: str
    name_kanji: str | None = None
    birth_date: date
    phone: str | None = None
    postal_code: str | None = None
    address: str | None = None


class ConsentDocumentOut(BaseModel):
    type: str
    reference: str
    obtained_on: date


class ApprovalOut(BaseModel):
    method: str
    confirmer_id: str
    approved_at: datetime


class CenterOut(BaseModel):
    inquiry_id: str | None
    sent_at: datetime | None
    result_code: str | None


class ResponseStateOut(BaseModel):
    state: Literal["none", "held", "released", "destroyed"]
    released_by: str | None
    released_at: datetime | None
    document_check: str | None
    release_note: str | None = Field(
        default=None,
        description="What the releasing confirmer wrote; null for readers who may not see subject identity",
    )


class CorrectionOut(BaseModel):
    corrected_at: datetime
    corrected_by: str
    confirmer_id: str
    approval_method: str
    at_center: bool
    # Each corrected field: [as recorded before, as corrected].
    changes: dict[str, list[Any]]


class InquiryOut(BaseModel):
    id: str
    number: str
    branch_code: str
    terminal_id: str | None
    operator_id: str
    purpose: str
    customer_status: str
    subject: SubjectOut | None = Field(
        description="Null for readers who may not see subject identity (auditors)"
    )
    consent_document: ConsentDocumentOut
    status: str
    flags: list[str]
    approval: ApprovalOut | None
    center: CenterOut | None
    response: ResponseStateOut
    hq_request_id: str | None
    created_at: datetime
    business_date: date
    expires_at: datetime
    correction: CorrectionOut | None = Field(
        default=None,
        description="CC-1: the correction of this record (flag `corrected`); given by GET /inquiries/{id} "
        "and the correct call. The fields above stay as sent; `changes` holds what they are corrected to.",
    )


class CorrectedInquiryOut(InquiryOut):
    """The inquiry with the flag ``corrected`` and the correction itself."""

    correction: CorrectionOut


class InquiryPage(BaseModel):
    items: list[InquiryOut]
    next_cursor: str | None


class ApprovalNumberOut(BaseModel):
    approval_number: str = Field(description="Shown once; only a keyed hash is stored")
    expires_at: datetime


class ResponseOut(BaseModel):
    inquiry_id: str
    center_inquiry_id: str
    received_at: datetime
    record: dict[str, Any]


class ReleaseOut(ResponseOut):
    document_check: Literal["match", "mismatch"]
    flags: list[str]
    next_steps: str | None = None


class TraceEvent(BaseModel):
    seq: int
    at: str
    actor_id: str | None
    terminal_id: str | None = None
    action: str
    object_type: str | None = None
    object_id: str | None = None
    # inquiry | daily_list (an event about a list this inquiry is a line of) | retention_deletion (the purge
    # that destroyed its response, RT-1, and its re-application after a restore, RT-2) | escalation (the
    # handling of an escalation about it)
    via: str = "inquiry"
    outcome: str
    details: dict[str, Any]


class TraceOut(BaseModel):
    inquiry_id: str
    number: str
    events: list[TraceEvent]


class ApprovalRegisterOut(BaseModel):
    branch_code: str
    business_date: date
    issued: int
    used: int
    voided: int
    expired: int
    outstanding: int
    balanced: bool

"""Request and response models of the governance endpoints (api.md "Access governance and emergency
controls")."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from app.clock import BusinessDate, Instant, IsoDate
from app.crypto.keyring import PSEUDONYM_PATTERN
from app.inquiry.subject import FreeText, OptionalFreeText, StatedText

if TYPE_CHECKING:
    from app.governance.privileged import PrivilegedUse

Reason = Field(min_length=1, max_length=400)


class AccessRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=40)
    action: Literal["grant", "revoke", "unlock", "reset_password", "reactivate"]
    role: str | None = Field(default=None, max_length=32)
    branch_code: str | None = Field(default=None, max_length=8)
    reason: StatedText = Reason
    effective_from: BusinessDate | None = None
    expires_at: Instant | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: OptionalFreeText = Field(default=None, max_length=400)


class AccessRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    action: str
    role: str | None
    branch_code: str | None
    reason: str
    effective_from: date | None
    expires_at: datetime | None = Field(validation_alias=AliasChoices("role_expires_at", "expires_at"))
    status: str
    requested_by: str
    requested_at: datetime
    lapses_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    rejected_by: str | None
    rejected_at: datetime | None
    applied_by: str | None
    applied_at: datetime | None


class AppliedOut(AccessRequestOut):
    initial_password_half: str | None = Field(
        default=None,
        description="reset_password: the setter's half of the one-time password, shown once; the approver "
        "collects the other half, so no administrator knows the whole",
    )


class SecretHalfOut(BaseModel):
    request_id: str
    initial_password_half: str


class RegisterEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    recorded_at: datetime
    change: str
    user_id: str
    role: str | None
    branch_code: str | None
    source: str
    source_id: str | None
    access_request_id: str | None
    requested_by: str
    requested_at: datetime
    approved_by: str
    approved_at: datetime
    set_by: str
    set_at: datetime
    reason: str
    effective_from: date
    expires_at: datetime | None


class HrEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=40)
    kind: Literal["transfer", "leave", "resignation", "return"]
    effective_on: BusinessDate
    to_branch_code: str | None = Field(default=None, max_length=8)


class HrEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    user_id: str
    kind: str
    effective_on: date
    to_branch_code: str | None
    status: str
    received_at: datetime
    applied_at: datetime | None


class ReviewTaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    user_id: str
    branch_code: str | None
    source_id: str | None
    status: str
    opened_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    outcome: str | None


class ReviewCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: StatedText = Reason


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["on_demand", "release"] = "on_demand"
    note: OptionalFreeText = Field(default=None, max_length=400)
    deadline_at: Instant | None = None


class CampaignOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    reason: str
    started_by: str
    started_at: datetime
    deadline_at: datetime
    status: str
    closed_at: datetime | None


class CampaignItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: str
    user_id: str
    role: str
    branch_code: str | None
    attester_role: str
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None


class AttestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["attest", "revoke"]
    reason: OptionalFreeText = Field(default=None, max_length=400)


class TotpEnrolmentOut(BaseModel):
    secret: str = Field(description="Base32 secret, shown once")
    provisioning_uri: str


class TotpCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=12)


class PrivilegedSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedText = Reason
    totp: str = Field(min_length=6, max_length=12)


class PrivilegedSessionOut(BaseModel):
    id: str
    user_id: str
    reason: str
    opened_at: datetime
    # When it could no longer act: closed, or its login ended (logout, timeout, suspension); null while open.
    ended_at: datetime | None
    end_reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None

    @classmethod
    def of(cls, use: PrivilegedUse) -> PrivilegedSessionOut:
        row = use.session
        return cls(
            id=row.id,
            user_id=row.user_id,
            reason=row.reason,
            opened_at=row.opened_at,
            ended_at=use.ended_at,
            end_reason=use.end_reason,
            reviewed_by=row.reviewed_by,
            reviewed_at=row.reviewed_at,
            review_note=row.review_note,
        )


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: StatedText = Reason


class SuspensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["user", "terminal", "branch", "all"]
    target: str | None = Field(default=None, max_length=40)
    reason: StatedText = Reason


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedText = Reason


class SuspensionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    scope: str
    target: str | None
    reason: str
    status: str
    imposed_by: str
    imposed_at: datetime
    sessions_ended: int
    # Lifting takes two officers: the one who asked (the switch stays on) and the one who lifted it.
    lift_requested_by: str | None
    lift_requested_at: datetime | None
    lifted_by: str | None
    lifted_at: datetime | None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The ID is in every ledger event the user causes (actor_id): it may not be an Individual Number.
    id: FreeText = Field(pattern=r"^[0-9A-Za-z_.-]{3,40}$")
    name: FreeText = Field(min_length=1, max_length=100)
    name_kana: OptionalFreeText = Field(default=None, max_length=100)
    birth_date: IsoDate | None = None
    phone: OptionalFreeText = Field(default=None, max_length=32)


class UserPatchIn(BaseModel):
    """Corrections to a user record; roles change only through access requests."""

    model_config = ConfigDict(extra="forbid")

    name: OptionalFreeText = Field(default=None, min_length=1, max_length=100)
    name_kana: OptionalFreeText = Field(default=None, max_length=100)
    name_latin: OptionalFreeText = Field(default=None, max_length=100)
    birth_date: IsoDate | None = None
    phone: OptionalFreeText = Field(default=None, max_length=32)


class UserDeactivateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedText = Reason


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str
    must_change_password: bool
    created_at: datetime


class BranchCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedText = Reason


class LifecycleCheckOut(BaseModel):
    total: int
    roles_at_closed_branches: list[dict[str, object]]
    active_terminals_at_closed_branches: list[str]
    live_sessions_on_retired_terminals: int


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: FreeText = Field(min_length=1, max_length=200)
    severity: Literal["low", "medium", "high", "critical"]
    branch_code: str | None = Field(default=None, max_length=8)
    window_from: Instant | None = None
    window_to: Instant | None = None
    affected_subjects: list[Annotated[str, Field(pattern=PSEUDONYM_PATTERN)]] = Field(
        default_factory=list, max_length=1000
    )

    @model_validator(mode="after")
    def _window_in_order(self) -> IncidentIn:
        # The window drives the forensic links (who accessed what, when): one ending before it starts
        # would answer every one of them empty.
        if self.window_from is not None and self.window_to is not None and self.window_from > self.window_to:
            raise ValueError("window_from must not be after window_to")
        return self


class IncidentEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: FreeText = Field(min_length=1, max_length=4000)
    checklist_item: Literal["supervisor_ppc", "individuals", "center", "publication"] | None = None


class IncidentCloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cause: OptionalFreeText = Field(default=None, max_length=4000)
    recurrence_prevention: OptionalFreeText = Field(default=None, max_length=4000)


class IncidentEntryOut(BaseModel):
    at: datetime
    author: str
    kind: str
    text: str


class IncidentOut(BaseModel):
    id: str
    title: str
    severity: str
    status: str
    opened_by: str
    opened_at: datetime
    affected_subjects: list[str]
    branch_code: str | None
    checklist: dict[str, object]
    cause: str | None
    recurrence_prevention: str | None
    closed_by: str | None
    closed_at: datetime | None
    timeline: list[IncidentEntryOut] = Field(default_factory=list)
    forensic_links: dict[str, str] = Field(default_factory=dict)

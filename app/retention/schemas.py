from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.inquiry.subject import StatedText


class PurgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StatedText = Field(min_length=1, max_length=400)


class PurgeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    data_set: str
    cutoff: datetime = Field(
        description="Responses received before this instant have passed their use period"
    )
    expected_count: int = Field(description="How many the cutoff covered when the purge was requested")
    reason: str
    status: str = Field(description="pending | executed")
    requested_by: str
    requested_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    deletion_id: str | None


class DeletionOut(BaseModel):
    """A deletion record (RT-1): data set, range, count, method, operator, approver, time."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    data_set: str
    range_from: datetime | None = Field(description="The earliest receipt among the items destroyed")
    range_to: datetime = Field(description="Items received before this instant were destroyed")
    count: int
    method: str = Field(description="crypto_shred: the wrapped data key deleted, the ciphertext emptied")
    operator: str
    approver: str
    at: datetime

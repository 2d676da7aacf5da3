"""What the escalation endpoints take and return."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.inquiry.subject import StatedText

EscalationState = Literal["open", "acknowledged", "all"]


class EscalationOut(BaseModel):
    id: str
    kind: str = Field(description="document_mismatch, list_overdue, list_line_mismatch, ...")
    branch_code: str
    object_type: str = Field(description="inquiry, daily_list or hq_reconciliation")
    object_id: str
    recipients: list[str]
    created_at: datetime
    note: str | None
    raised_by: str | None = Field(description="The staff member whose finding raised it; none for the system")
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledgement_note: str | None


class AcknowledgeEscalationIn(BaseModel):
    # What was done is the point of acknowledging: it is required, and checked like every free text.
    note: StatedText = Field(min_length=1, max_length=400, description="What was done about it")

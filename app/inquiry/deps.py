"""Who may call the inquiry endpoints, as typed dependencies (branch scope is checked per inquiry)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header

from app.authz.deps import require
from app.authz.principal import Principal
from app.errors import MyNumberForbidden
from app.inquiry.subject import contains_my_number

InquiryCreator = Annotated[Principal, Depends(require("inquiry.create"))]
InquiryReader = Annotated[Principal, Depends(require("inquiry.read"))]
InquiryConfirmer = Annotated[Principal, Depends(require("inquiry.approve"))]
InquiryReleaser = Annotated[Principal, Depends(require("inquiry.release"))]
InquiryOperator = Annotated[Principal, Depends(require("inquiry.submit"))]
ResponseReader = Annotated[Principal, Depends(require("inquiry.read_response"))]
TraceReader = Annotated[Principal, Depends(require("inquiry.trace"))]
RegisterReader = Annotated[Principal, Depends(require("approval_register.read"))]
# api.md sets no minimum length: keys are the caller's own (looked up per caller and endpoint), so a short
# one can only collide with the same caller's earlier request, which the body fingerprint then refuses.
TypedIdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


def _is_canonical_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def idempotency_key(key: TypedIdempotencyKey = None) -> str | None:
    """The caller's key, which is stored as sent: an Individual Number in it is refused like one in the
    body (PL-4), before anything is read or written."""
    # A canonical UUID, the usual key, is passed over: its hex groups read as a valid number in about 1 in
    # 400 keys (as for hq_request_id in inquiry.subject.without_issued_ids).
    if key is not None and not _is_canonical_uuid(key) and contains_my_number(key):
        raise MyNumberForbidden("Remove the Individual Number from the Idempotency-Key")
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]

"""Domain errors and their one rendering as RFC 9457 problem+json (ER-1).

A DomainError carries a stable machine ``code`` and an HTTP status. Messages never contain
personal data or secrets: they are seen by clients and may reach logs.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, audited: bool = False, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        # True when the service already wrote the ledger event for this refusal (e.g. a failed login),
        # so the generic denied-request event is not written twice.
        self.audited = audited


class ValidationFailed(DomainError):
    status = 422
    code = "VALIDATION_ERROR"
    title = "The request is not valid"


class BusinessDateNotBegun(DomainError):
    """A list, a reconciliation or a report for a day that has not begun in Tokyo: there is no record of
    it yet, and a clean result for it would be a claim about nothing."""

    status = 422
    code = "BUSINESS_DATE_IN_FUTURE"
    title = "The business date has not begun (Asia/Tokyo)"


class PayloadTooLarge(DomainError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    title = "The request body is too large"


class PasswordPolicyViolated(DomainError):
    status = 422
    code = "PASSWORD_POLICY"
    title = "The new password breaks the policy"


class NotAuthenticated(DomainError):
    status = 401
    code = "NOT_AUTHENTICATED"
    title = "Authentication is required"


class InvalidCredentials(DomainError):
    status = 401
    code = "INVALID_CREDENTIALS"
    title = "The user ID or password is wrong"


class InvalidToken(DomainError):
    status = 401
    code = "INVALID_TOKEN"
    title = "The access token is not valid"


class SessionEnded(DomainError):
    status = 401
    code = "SESSION_EXPIRED"
    title = "The session has ended; log in again"


class TerminalMismatch(DomainError):
    status = 401
    code = "TERMINAL_MISMATCH"
    title = "The token belongs to another terminal"


class ReauthFailed(DomainError):
    status = 401
    code = "REAUTH_FAILED"
    title = "Re-authentication failed"


class Forbidden(DomainError):
    status = 403
    code = "FORBIDDEN"
    title = "Not allowed"


class AccountLocked(DomainError):
    status = 403
    code = "ACCOUNT_LOCKED"
    title = "The account is locked"


class TerminalNotRegistered(DomainError):
    status = 403
    code = "TERMINAL_NOT_REGISTERED"
    title = "The terminal is not registered"


class TerminalNotAllowed(DomainError):
    status = 403
    code = "TERMINAL_NOT_ALLOWED"
    title = "This terminal may not be used by this user"


class Suspended(DomainError):
    status = 403
    code = "SUSPENDED"
    title = "Suspended"


class PasswordChangeRequired(DomainError):
    status = 403
    code = "PASSWORD_CHANGE_REQUIRED"
    title = "The password must be changed first"


class SeparationOfDutiesViolation(DomainError):
    status = 403
    code = "SOD_VIOLATION"
    title = "Separation of duties forbids this"


class NotFound(DomainError):
    status = 404
    code = "NOT_FOUND"
    title = "Not found"


class OutOfScope(NotFound):
    """A record that exists but lies outside the caller's branches. Answered as absent — its existence is
    data — yet recorded as the denied request it is (LG-1), so probing another branch leaves a trace."""


class Conflict(DomainError):
    status = 409
    code = "CONFLICT"
    title = "Conflict"


class InvalidState(DomainError):
    status = 409
    code = "INVALID_STATE"
    title = "The object is not in a state that allows this"


class IdempotencyKeyReused(DomainError):
    status = 409
    code = "IDEMPOTENCY_KEY_REUSED"
    title = "The Idempotency-Key was used with another body"


class LedgerUnavailable(DomainError):
    status = 503
    code = "LEDGER_UNAVAILABLE"
    title = "The audit ledger cannot be written; nothing was changed"


class ServiceUnavailable(DomainError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
    title = "Temporarily unavailable"


class PurposeUnknown(DomainError):
    status = 422
    code = "PURPOSE_UNKNOWN"
    title = "The purpose is not one of the permitted purposes"


class DocumentNotAllowedForPurpose(DomainError):
    status = 422
    code = "DOCUMENT_NOT_ALLOWED_FOR_PURPOSE"
    title = "This consent document does not support this purpose"


class CustomerStatusNotAllowed(DomainError):
    status = 422
    code = "CUSTOMER_STATUS_NOT_ALLOWED"
    title = "This purpose is not allowed for this customer status"


class MyNumberForbidden(DomainError):
    status = 422
    code = "MY_NUMBER_FORBIDDEN"
    title = "An Individual Number (My Number) may not be sent to the gateway"


class SelfInquiry(DomainError):
    status = 403
    code = "SELF_INQUIRY"
    title = "An inquiry about yourself is not allowed"


class SamePerson(DomainError):
    status = 403
    code = "SAME_PERSON"
    title = "The operator and the confirmer must be different people"


class NotAConfirmer(DomainError):
    status = 403
    code = "NOT_A_CONFIRMER"
    title = "This person is not a confirmer for this branch"


class ApprovalInvalid(DomainError):
    status = 403
    code = "APPROVAL_INVALID"
    title = "The approval is not valid for this inquiry"


class ResponseHeld(DomainError):
    status = 423
    code = "RESPONSE_HELD"
    title = "The response is held until a confirmer releases it"


class ResponseDestroyed(DomainError):
    status = 410
    code = "RESPONSE_DESTROYED"
    title = "The response has been destroyed"


# -- access governance and emergency controls (AC-2…AC-5, IR-1, IR-2) --------------------------------


class TotpRequired(DomainError):
    status = 401
    code = "TOTP_REQUIRED"
    title = "A valid one-time code from the second factor is required"


class PrivilegedSessionRequired(DomainError):
    status = 403
    code = "PRIVILEGED_SESSION_REQUIRED"
    title = "Open a privileged session with a reason first"


class AccessRequestLapsed(DomainError):
    status = 409
    code = "ACCESS_REQUEST_EXPIRED"
    title = "The access request expired before it was approved and applied"


class IncidentCloseIncomplete(DomainError):
    status = 422
    code = "INCIDENT_CLOSE_INCOMPLETE"
    title = "An incident closes only with its cause and recurrence prevention recorded"


# -- HQ inquiries on behalf of branches (HQ-1…HQ-4) ---------------------------------------------------


class ApprovalRequired(DomainError):
    status = 403
    code = "APPROVAL_REQUIRED"
    title = "A confirmer's approval is required before this can be sent"


class HqRequestAlreadyExecuted(DomainError):
    status = 409
    code = "HQ_REQUEST_ALREADY_EXECUTED"
    title = "This HQ request has already been executed"


class HqRequestMismatch(DomainError):
    status = 422
    code = "HQ_REQUEST_MISMATCH"
    title = "The inquiry does not match the branch's HQ request"


class HqCountMismatch(DomainError):
    status = 409
    code = "HQ_COUNT_MISMATCH"
    title = "HQ's executed inquiries do not equal branch requests executed plus HQ's own"


# -- reconciliation with the center (RC-1, RC-2) -------------------------------------------------------


class RecordFileInvalid(DomainError):
    status = 422
    code = "RECORD_FILE_INVALID"
    title = "The center inquiry record file cannot be read"


class CenterRecordUnavailable(DomainError):
    status = 503
    code = "CENTER_UNAVAILABLE"
    title = "The center's inquiry record cannot be fetched now; nothing was reconciled"


# -- rendering ----------------------------------------------------------------------------------------

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_body(
    *, status: int, code: str, title: str, detail: str, request_id: str | None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:shokai:problem:{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    body.update(extra)
    return body


_STATUS_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated (INVALID_CREDENTIALS, INVALID_TOKEN, SESSION_EXPIRED, TERMINAL_MISMATCH, ...)",
    403: "Refused (FORBIDDEN, ACCOUNT_LOCKED, TERMINAL_NOT_REGISTERED, TERMINAL_NOT_ALLOWED, SUSPENDED, ...)",
    404: "Not found",
    409: "Conflict (INVALID_STATE, IDEMPOTENCY_KEY_REUSED, ...)",
    410: "Gone",
    422: "Invalid input (VALIDATION_ERROR or a named rule)",
    423: "Locked (RESPONSE_HELD)",
    503: "Temporarily unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problem+json errors an endpoint can return."""
    return {
        status: {
            "description": _STATUS_DESCRIPTIONS.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


# -- the confirmer's web panel ------------------------------------------------------------------------


class CsrfRejected(DomainError):
    status = 403
    code = "CSRF_TOKEN_INVALID"
    title = "The form was not sent from this panel page (missing or wrong CSRF token)"

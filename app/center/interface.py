"""The one interface the gateway uses to reach the credit information center (ER-3, RC-1, PL-2, EN-3).

:class:`CenterLink` has four calls — send an inquiry, cancel one, correct one, and stream the center's
own inquiry record for a period — and the models below mirror the HTTP contract of api.md ("The center link")
field for field, so the httpx adapter (app/center/http_adapter.py), the bundled simulator
(app/center/simulator/) and a future real-center adapter all speak the same shapes.

Failures are two exceptions, because the outbox must decide between "try again later" and "give up":

* :class:`CenterUnavailable` — transient (timeout, refused connection, 5xx, circuit open). The caller
  retries later **with the same idempotency key** (ER-3); the center answers a repeated key with the
  first answer and never records a second inquiry.
* :class:`CenterRefused` — definitive, with the center's stable ``code`` (``NO_TRADE_INFO`` for
  ``credit_review`` / ``relocation_check`` on a subject without transactions, PL-2; ``VALIDATION``;
  ``NOT_FOUND``; ...). Retrying cannot change it.

Neither exception's message carries personal data: they reach logs and the audit ledger.

What the center records: every inquiry it accepted for processing, including those it answered with
``NO_TRADE_INFO`` (the refusal then carries the ``center_inquiry_id`` and the ``received_at`` of the
entry); a request refused as invalid is not recorded. The record's ``subject.name_kana`` is the matching
form of app/center/kana.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date, datetime
from typing import Annotated, Literal, Protocol, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Purpose = Literal[
    "new_credit", "guarantor", "suspension_check", "gazette_check", "credit_review", "relocation_check"
]
PURPOSES: tuple[str, ...] = get_args(Purpose)

# PL-2: for these purposes the center answers NO_TRADE_INFO when it holds no transaction for the subject.
TRADE_INFO_PURPOSES: frozenset[str] = frozenset({"credit_review", "relocation_check"})
NO_TRADE_INFO = "NO_TRADE_INFO"
# The codes with which the center's contract answers an error (api.md, "The center link"): only these
# make a 4xx a definitive refusal of the request. A 4xx without one came from something in between —
# a proxy, a TLS terminator refusing an expired client certificate, a wrong path — and says nothing of
# the inquiry: it is a link failure, retried with the same key and counted by the circuit breaker, so a
# misconfigured link leaves inquiries queued instead of settling every one of them as refused.
CENTER_ANSWER_CODES: frozenset[str] = frozenset(
    {NO_TRADE_INFO, "VALIDATION", "NOT_FOUND", "CANCELLED", "IDEMPOTENCY_KEY_REUSED"}
)

# What part of the credit record each purpose may see (PL-2: the purpose limits the answer, not only
# the question).
RecordScope = Literal["full", "suspension", "gazette", "address"]
RECORD_SCOPE_BY_PURPOSE: dict[str, RecordScope] = {
    "new_credit": "full",
    "guarantor": "full",
    "credit_review": "full",
    "suspension_check": "suspension",
    "gazette_check": "gazette",
    "relocation_check": "address",
}

# The longest reason the center records with a cancellation or a correction (the gateway keeps more).
CENTER_REASON_MAX_LENGTH = 200
CenterCode = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
EntryKind = Literal["inquiry", "cancellation", "correction"]
Via = Literal["gateway", "direct"]


class _Sent(BaseModel):
    """What we send: strict, so a field the contract does not know is caught before it leaves."""

    # Validation errors must not quote names or birth dates back into logs.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class _Received(BaseModel):
    """What the center sends: tolerant of fields added to the contract later."""

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)


# -- the inquiry -----------------------------------------------------------------------------------------


class CenterSubject(_Sent):
    name_kana: str = Field(min_length=1, max_length=100)
    name_kanji: str | None = Field(default=None, max_length=100)
    birth_date: date
    phone: str | None = Field(default=None, max_length=20)
    postal_code: str | None = Field(default=None, max_length=10)
    address: str | None = Field(default=None, max_length=200)


class CenterInquiryRequest(_Sent):
    member_code: CenterCode
    branch_code: CenterCode
    terminal_id: str = Field(min_length=1, max_length=40)
    operator_ref: str = Field(min_length=1, max_length=64)
    purpose: Purpose
    subject: CenterSubject
    idempotency_key: IdempotencyKey


class CenterIdentity(_Received):
    name_kana: str
    name_kanji: str | None = None
    birth_date: date


class CenterAddress(_Received):
    postal_code: str
    address: str
    registered_on: date


class CenterLoan(_Received):
    lender: str
    kind: str
    amount: int
    balance: int
    started_on: date
    monthly_payment: int


class CenterCardContract(_Received):
    issuer: str
    contracted_on: date
    credit_limit: int
    status: str


class CenterDelinquency(_Received):
    lender: str
    occurred_on: date
    amount: int
    resolved_on: date | None = None


class CenterGazetteEntry(_Received):
    kind: str
    published_on: date
    court: str
    case_number: str


class CenterSuspension(_Received):
    kind: str
    bank: str
    clearing_house: str
    suspended_on: date


class CenterRecord(_Received):
    """The subject's credit record, cut to what the inquiry's purpose may see (``scope``)."""

    scope: RecordScope
    identity: CenterIdentity
    latest_address: CenterAddress | None = None
    loans: list[CenterLoan] = Field(default_factory=list)
    cards: list[CenterCardContract] = Field(default_factory=list)
    delinquencies: list[CenterDelinquency] = Field(default_factory=list)
    gazette_entries: list[CenterGazetteEntry] = Field(default_factory=list)
    suspensions: list[CenterSuspension] = Field(default_factory=list)


class CenterAnswer(_Received):
    """The center's answer; ``record`` is None exactly when ``result`` is ``not_found``."""

    center_inquiry_id: str
    received_at: AwareDatetime
    result: Literal["found", "not_found"]
    record: CenterRecord | None = None


# -- cancellation ----------------------------------------------------------------------------------------


class CenterCancelRequest(_Sent):
    reason: str = Field(min_length=1, max_length=CENTER_REASON_MAX_LENGTH)
    idempotency_key: IdempotencyKey | None = None


class CenterCancellation(_Received):
    center_inquiry_id: str
    entry_id: str
    cancelled_at: AwareDatetime


# -- correction ------------------------------------------------------------------------------------------


class CenterCorrectRequest(_Sent):
    """A correction of what the center recorded for an inquiry (CC-1). The center holds the purpose of
    an inquiry, not its consent document, so the purpose is what can be corrected there; the subject
    never (that would be another inquiry)."""

    reason: str = Field(min_length=1, max_length=CENTER_REASON_MAX_LENGTH)
    purpose: Purpose
    idempotency_key: IdempotencyKey


class CenterCorrection(_Received):
    center_inquiry_id: str
    entry_id: str
    corrected_at: AwareDatetime


# -- the center's inquiry record (照会依頼実績) ---------------------------------------------------------


class CenterRecordSubject(_Received):
    name_kana: str
    birth_date: date


class CenterRecordEntry(_Received):
    entry_id: str
    kind: EntryKind
    center_inquiry_id: str
    at: AwareDatetime
    member_code: str
    branch_code: str
    terminal_id: str
    operator_ref: str
    purpose: Purpose
    subject: CenterRecordSubject
    via: Via
    idempotency_key: str | None = None


class CenterRecordPage(_Received):
    items: list[CenterRecordEntry]
    next_cursor: str | None = None


# -- errors ------------------------------------------------------------------------------------------------


class CenterLinkError(Exception):
    """Base of the link's errors. Messages name reasons and codes only, never a person."""


class CenterUnavailable(CenterLinkError):
    """Transient: try again later with the same idempotency key (ER-3)."""

    def __init__(
        self,
        reason: str,
        *,
        attempts: int = 0,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"the center is unavailable ({reason}) after {attempts} attempt(s)")
        self.reason = reason
        self.attempts = attempts
        self.status = status
        # Seconds until the circuit breaker lets a call through again, when that is known.
        self.retry_after = retry_after


class CenterRefused(CenterLinkError):
    """Definitive: the center answered and said no. Retrying with the same request cannot help."""

    def __init__(
        self,
        code: str,
        *,
        status: int | None = None,
        center_inquiry_id: str | None = None,
        received_at: datetime | None = None,
    ) -> None:
        super().__init__(f"the center refused the request: {code}")
        self.code = code
        self.status = status
        # Set when the center recorded the refused inquiry (NO_TRADE_INFO): its id and the time of its entry.
        self.center_inquiry_id = center_inquiry_id
        self.received_at = received_at


# -- the interface -------------------------------------------------------------------------------------------


class CenterLink(Protocol):
    """What the gateway needs from the center. Implementations: HttpCenterLink (simulator or real center)."""

    async def inquire(self, request: CenterInquiryRequest) -> CenterAnswer:
        """Send one inquiry; a repeated ``idempotency_key`` returns the first answer (ER-2, ER-3)."""
        ...

    async def cancel(self, center_inquiry_id: str, reason: str, idempotency_key: str) -> CenterCancellation:
        """Record a cancellation of an inquiry at the center (CC-1); repeating it changes nothing."""
        ...

    async def correct(self, center_inquiry_id: str, request: CenterCorrectRequest) -> CenterCorrection:
        """Record a correction of an inquiry at the center (CC-1); a repeated key returns the first one."""
        ...

    def inquiry_record(
        self, member_code: str, date_from: date, date_to: date
    ) -> AsyncIterator[CenterRecordEntry]:
        """Every inquiry, cancellation and correction the center holds for the member (RC-1).

        Dates are business dates (Asia/Tokyo), both inclusive. Entries arrive page by page in the
        center's stable order, so a month of a million entries streams in bounded memory.
        """
        ...

    @property
    def state(self) -> str:
        """The link's health for ``/readyz``: ``closed`` (calls go through), ``open`` (failing: calls
        are refused until a cool-down ends) or ``half_open`` (one trial call let through)."""
        ...

    def watch_state(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        """Have ``listener(previous, current)`` called, synchronously, whenever ``state`` changes (LG-4:
        app/monitoring/center_link.py records the link going down and coming back); returns the call
        that stops it."""
        ...


class DetachedCenterLink:
    """A center link for processes that must not reach the center (CLI maintenance commands).

    Building the in-process simulator costs a second; commands such as ``audit verify`` never need it.
    """

    @property
    def state(self) -> str:
        return "open"  # every call is refused

    def watch_state(self, listener: Callable[[str, str], None]) -> Callable[[], None]:
        return lambda: None  # the state never changes

    async def inquire(self, request: CenterInquiryRequest) -> CenterAnswer:
        raise CenterUnavailable("detached")

    async def cancel(self, center_inquiry_id: str, reason: str, idempotency_key: str) -> CenterCancellation:
        raise CenterUnavailable("detached")

    async def correct(self, center_inquiry_id: str, request: CenterCorrectRequest) -> CenterCorrection:
        raise CenterUnavailable("detached")

    async def inquiry_record(
        self, member_code: str, date_from: date, date_to: date
    ) -> AsyncIterator[CenterRecordEntry]:
        raise CenterUnavailable("detached")
        yield  # pragma: no cover - makes this an async generator like the real link

"""The simulated center's rules: answers per purpose, idempotency, cancellations, corrections, the record.

(PL-2, ER-2, ER-3, CC-1, RC-1.) Every method is synchronous and does no I/O. The router awaits nothing
between calling one and getting its result, so in the single event loop that serves the simulator a
check-then-record (``has this idempotency key been seen?``) can never interleave with another request:
concurrent duplicates produce one recorded inquiry without any lock.

The inquiry record is kept per member code, sorted by ``(at, seq)``. A page is a bisection to the
cursor plus a walk of ``limit`` entries, so reading a month of a million entries costs O(limit) per
page, not a scan of everything per page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from app.center.interface import (
    NO_TRADE_INFO,
    RECORD_SCOPE_BY_PURPOSE,
    TRADE_INFO_PURPOSES,
    CenterAddress,
    CenterAnswer,
    CenterCancellation,
    CenterCardContract,
    CenterCorrection,
    CenterCorrectRequest,
    CenterDelinquency,
    CenterGazetteEntry,
    CenterIdentity,
    CenterInquiryRequest,
    CenterLoan,
    CenterRecord,
    CenterRecordEntry,
    CenterRecordPage,
    CenterRecordSubject,
    CenterSuspension,
    EntryKind,
    RecordScope,
    Via,
)
from app.center.kana import is_katakana_name, normalise_kana
from app.center.simulator.population import Population, SyntheticPerson
from app.center.simulator.schemas import DirectEntryIn, SimulatorStats
from app.clock import TOKYO, Clock

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class CenterProblem(Exception):
    """A refusal the simulator renders as problem JSON with a stable ``code``."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True, slots=True)
class RecordEntry:
    seq: int
    kind: EntryKind
    center_inquiry_id: str
    at: datetime
    member_code: str
    branch_code: str
    terminal_id: str
    operator_ref: str
    purpose: str
    name_kana: str
    birth_date: date
    via: Via
    idempotency_key: str | None

    @property
    def entry_id(self) -> str:
        return f"E{self.seq:010d}"

    @property
    def sort_key(self) -> tuple[int, int]:
        return (_micros(self.at), self.seq)

    def to_json(self) -> dict[str, Any]:
        """The entry as the contract's JSON object, without a pydantic round trip (bulk export)."""
        return {
            "entry_id": self.entry_id,
            "kind": self.kind,
            "center_inquiry_id": self.center_inquiry_id,
            "at": self.at.astimezone(UTC),
            "member_code": self.member_code,
            "branch_code": self.branch_code,
            "terminal_id": self.terminal_id,
            "operator_ref": self.operator_ref,
            "purpose": self.purpose,
            "subject": {"name_kana": self.name_kana, "birth_date": self.birth_date},
            "via": self.via,
            "idempotency_key": self.idempotency_key,
        }

    def to_model(self) -> CenterRecordEntry:
        return CenterRecordEntry.model_validate(
            {
                "entry_id": self.entry_id,
                "kind": self.kind,
                "center_inquiry_id": self.center_inquiry_id,
                "at": self.at,
                "member_code": self.member_code,
                "branch_code": self.branch_code,
                "terminal_id": self.terminal_id,
                "operator_ref": self.operator_ref,
                "purpose": self.purpose,
                "subject": CenterRecordSubject(name_kana=self.name_kana, birth_date=self.birth_date),
                "via": self.via,
                "idempotency_key": self.idempotency_key,
            }
        )


@dataclass
class _Inquiry:
    """One recorded inquiry and what the center answered, replayed for a repeated idempotency key."""

    entry: RecordEntry
    fingerprint: str
    answer: CenterAnswer | None
    refusal_code: str | None
    cancellation: CenterCancellation | None = None


@dataclass
class _MemberRecord:
    keys: list[tuple[int, int]] = field(default_factory=list)
    entries: list[RecordEntry] = field(default_factory=list)

    def add(self, entry: RecordEntry) -> None:
        # Entries almost always arrive in time order, so this is an append; a direct entry back-dated
        # by a test lands in its place and the order stays (at, seq).
        position = bisect_right(self.keys, entry.sort_key)
        self.keys.insert(position, entry.sort_key)
        self.entries.insert(position, entry)


@dataclass
class _Counters:
    inquiries_recorded: int = 0
    duplicates_suppressed: int = 0
    no_trade_info_refusals: int = 0
    cancellations_recorded: int = 0
    corrections_recorded: int = 0
    direct_entries: int = 0


class SimulatedCenter:
    def __init__(self, *, population: Population, clock: Clock) -> None:
        self.population = population
        self._clock = clock
        # Distinguishes this run's inquiry ids from an earlier run's, so a restarted simulator never
        # hands the gateway an id it already holds for another inquiry.
        self._run_tag = secrets.token_hex(3).upper()
        self._seq = 0
        self._inquiries: dict[str, _Inquiry] = {}
        self._by_key: dict[tuple[str, str], _Inquiry] = {}
        self._cancel_keys: dict[str, str] = {}
        # A correction's idempotency key → (the inquiry it corrected, its body's fingerprint, the answer).
        self._corrections: dict[str, tuple[str, str, CenterCorrection]] = {}
        self._records: dict[str, _MemberRecord] = {}
        self.counters = _Counters()

    # -- inquiries --------------------------------------------------------------------------------------

    def inquire(self, request: CenterInquiryRequest) -> CenterAnswer:
        """Answer an inquiry (PL-2) or replay the answer already given to its idempotency key (ER-2)."""
        fingerprint = _fingerprint(request.model_dump(mode="json"))
        seen = self._by_key.get((request.member_code, request.idempotency_key))
        if seen is not None:
            if seen.fingerprint != fingerprint:
                raise CenterProblem(
                    409, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used for another inquiry"
                )
            self.counters.duplicates_suppressed += 1
            return _replay(seen)

        kana = normalise_kana(request.subject.name_kana)
        if not is_katakana_name(kana):
            raise CenterProblem(422, "VALIDATION", "name_kana must be written in kana")
        person = self.population.find(kana, request.subject.birth_date)
        entry = self._new_entry(
            kind="inquiry",
            center_inquiry_id=self._new_inquiry_id(),
            at=self._clock.now(),
            member_code=request.member_code,
            branch_code=request.branch_code,
            terminal_id=request.terminal_id,
            operator_ref=request.operator_ref,
            purpose=request.purpose,
            name_kana=kana,
            birth_date=request.subject.birth_date,
            via="gateway",
            idempotency_key=request.idempotency_key,
        )
        inquiry = _Inquiry(entry=entry, fingerprint=fingerprint, answer=None, refusal_code=None)
        if request.purpose in TRADE_INFO_PURPOSES and (person is None or not person.has_transactions):
            # The center still records the inquiry: it was made, even though nothing was disclosed.
            inquiry.refusal_code = NO_TRADE_INFO
            self.counters.no_trade_info_refusals += 1
        else:
            scope = RECORD_SCOPE_BY_PURPOSE[request.purpose]
            inquiry.answer = CenterAnswer(
                center_inquiry_id=entry.center_inquiry_id,
                received_at=entry.at,
                result="found" if person is not None else "not_found",
                record=_record_of(person, scope) if person is not None else None,
            )
        self._inquiries[entry.center_inquiry_id] = inquiry
        self._by_key[(request.member_code, request.idempotency_key)] = inquiry
        self._record(entry)
        self.counters.inquiries_recorded += 1
        return _replay(inquiry)

    def cancel(self, center_inquiry_id: str, *, idempotency_key: str | None) -> CenterCancellation:
        """Record the cancellation of an inquiry (CC-1); an inquiry is cancelled at most once."""
        inquiry = self._inquiries.get(center_inquiry_id)
        if inquiry is None:
            raise CenterProblem(404, "NOT_FOUND", "No such inquiry at the center")
        if idempotency_key is not None:
            owner = self._cancel_keys.get(idempotency_key)
            if owner is not None and owner != center_inquiry_id:
                raise CenterProblem(
                    409, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used for another cancellation"
                )
        if inquiry.cancellation is not None:
            self.counters.duplicates_suppressed += 1
            return inquiry.cancellation
        entry = self._follow_up_entry(inquiry.entry, kind="cancellation", idempotency_key=idempotency_key)
        inquiry.cancellation = CenterCancellation(
            center_inquiry_id=center_inquiry_id, entry_id=entry.entry_id, cancelled_at=entry.at
        )
        if idempotency_key is not None:
            self._cancel_keys[idempotency_key] = center_inquiry_id
        self._record(entry)
        self.counters.cancellations_recorded += 1
        return inquiry.cancellation

    def correct(self, center_inquiry_id: str, request: CenterCorrectRequest) -> CenterCorrection:
        """Record a correction of an inquiry's purpose (CC-1); a repeated key returns the first answer."""
        inquiry = self._inquiries.get(center_inquiry_id)
        if inquiry is None:
            raise CenterProblem(404, "NOT_FOUND", "No such inquiry at the center")
        fingerprint = _fingerprint({"id": center_inquiry_id, **request.model_dump(mode="json")})
        seen = self._corrections.get(request.idempotency_key)
        if seen is not None:
            if seen[1] != fingerprint:
                raise CenterProblem(
                    409, "IDEMPOTENCY_KEY_REUSED", "The idempotency key was used for another correction"
                )
            self.counters.duplicates_suppressed += 1
            return seen[2]
        if inquiry.cancellation is not None:
            raise CenterProblem(409, "CANCELLED", "A cancelled inquiry cannot be corrected")
        # The entry carries the purpose as corrected.
        entry = self._follow_up_entry(
            inquiry.entry, kind="correction", idempotency_key=request.idempotency_key, purpose=request.purpose
        )
        correction = CenterCorrection(
            center_inquiry_id=center_inquiry_id, entry_id=entry.entry_id, corrected_at=entry.at
        )
        self._corrections[request.idempotency_key] = (center_inquiry_id, fingerprint, correction)
        self._record(entry)
        self.counters.corrections_recorded += 1
        return correction

    def record_direct(self, body: DirectEntryIn) -> CenterRecordEntry:
        """An inquiry (or cancellation, correction) made at the center itself, bypassing the gateway."""
        kana = normalise_kana(body.subject.name_kana)
        if not is_katakana_name(kana):
            raise CenterProblem(422, "VALIDATION", "name_kana must be written in kana")
        if body.kind == "inquiry":
            center_inquiry_id = self._new_inquiry_id()
        elif body.center_inquiry_id is None:
            raise CenterProblem(422, "VALIDATION", "a cancellation or correction names its center_inquiry_id")
        else:
            center_inquiry_id = body.center_inquiry_id
        entry = self._new_entry(
            kind=body.kind,
            center_inquiry_id=center_inquiry_id,
            at=body.at or self._clock.now(),
            member_code=body.member_code,
            branch_code=body.branch_code,
            terminal_id=body.terminal_id,
            operator_ref=body.operator_ref,
            purpose=body.purpose,
            name_kana=kana,
            birth_date=body.subject.birth_date,
            via="direct",
            idempotency_key=None,
        )
        self._record(entry)
        self.counters.direct_entries += 1
        return entry.to_model()

    # -- the inquiry record ----------------------------------------------------------------------------------

    def record_page(
        self, *, member_code: str, date_from: date, date_to: date, cursor: str | None, limit: int
    ) -> CenterRecordPage:
        """One page of the member's inquiry record for business dates ``date_from``..``date_to`` (RC-1)."""
        entries, next_cursor = self._page_entries(
            member_code=member_code, date_from=date_from, date_to=date_to, cursor=cursor, limit=limit
        )
        return CenterRecordPage(items=[entry.to_model() for entry in entries], next_cursor=next_cursor)

    def _page_entries(
        self, *, member_code: str, date_from: date, date_to: date, cursor: str | None, limit: int
    ) -> tuple[list[RecordEntry], str | None]:
        if date_to < date_from:
            raise CenterProblem(422, "VALIDATION", "'to' is before 'from'")
        record = self._records.get(member_code)
        if record is None:
            return [], None
        # Business dates are Tokyo dates; the bounds are their midnights in UTC micros.
        start = _micros(datetime.combine(date_from, time(0), tzinfo=TOKYO))
        end = _micros(datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=TOKYO))
        position = bisect_left(record.keys, (start, -1))
        if cursor is not None:
            position = max(position, bisect_right(record.keys, _decode_cursor(cursor)))
        items: list[RecordEntry] = []
        keys, entries = record.keys, record.entries
        while position < len(keys) and keys[position][0] < end and len(items) < limit:
            items.append(entries[position])
            position += 1
        more = position < len(keys) and keys[position][0] < end
        next_cursor = _encode_cursor(keys[position - 1]) if items and more else None
        return items, next_cursor

    def record_ndjson(
        self, *, member_code: str, date_from: date, date_to: date, chunk: int = 1000
    ) -> Iterator[bytes]:
        """The same record as :meth:`record_page`, as NDJSON (the file format of app/center/record_file.py).

        Walks page by page through the cursor, so entries recorded while the stream runs never shift it,
        and serialises with orjson straight from the stored entries: a million lines stream in seconds.
        """
        cursor: str | None = None
        while True:
            page = self._page_entries(
                member_code=member_code, date_from=date_from, date_to=date_to, cursor=cursor, limit=chunk
            )
            entries, cursor = page
            if entries:
                yield b"".join(orjson.dumps(entry.to_json()) + b"\n" for entry in entries)
            if cursor is None:
                return

    def stats(self) -> SimulatorStats:
        counters = self.counters
        return SimulatorStats(
            inquiries_recorded=counters.inquiries_recorded,
            duplicates_suppressed=counters.duplicates_suppressed,
            no_trade_info_refusals=counters.no_trade_info_refusals,
            cancellations_recorded=counters.cancellations_recorded,
            corrections_recorded=counters.corrections_recorded,
            direct_entries=counters.direct_entries,
            entries_total=self._seq,
        )

    # -- internals ----------------------------------------------------------------------------------------

    def _new_inquiry_id(self) -> str:
        return f"CI-{self._run_tag}-{self._seq + 1:010d}"

    def _follow_up_entry(
        self, original: RecordEntry, *, kind: str, idempotency_key: str | None, purpose: str | None = None
    ) -> RecordEntry:
        """A cancellation or correction entry about ``original``, made now through the gateway."""
        return self._new_entry(
            kind=kind,
            center_inquiry_id=original.center_inquiry_id,
            at=self._clock.now(),
            member_code=original.member_code,
            branch_code=original.branch_code,
            terminal_id=original.terminal_id,
            operator_ref=original.operator_ref,
            purpose=original.purpose if purpose is None else purpose,
            name_kana=original.name_kana,
            birth_date=original.birth_date,
            via="gateway",
            idempotency_key=idempotency_key,
        )

    def _new_entry(self, **fields: Any) -> RecordEntry:
        self._seq += 1
        return RecordEntry(seq=self._seq, **fields)

    def _record(self, entry: RecordEntry) -> None:
        self._records.setdefault(entry.member_code, _MemberRecord()).add(entry)


def _replay(inquiry: _Inquiry) -> CenterAnswer:
    if inquiry.refusal_code is not None:
        raise CenterProblem(
            422,
            inquiry.refusal_code,
            "The center holds no transaction for this subject",
            center_inquiry_id=inquiry.entry.center_inquiry_id,
            received_at=inquiry.entry.at.astimezone(UTC).isoformat(),
        )
    assert inquiry.answer is not None
    return inquiry.answer


def _fingerprint(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def _encode_cursor(key: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{key[0]}.{key[1]}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        micros, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(".")
        return int(micros), int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CenterProblem(422, "VALIDATION", "The cursor is not valid") from None


def _record_of(person: SyntheticPerson, scope: RecordScope) -> CenterRecord:
    """The part of the person's record the purpose may see (PL-2)."""
    identity = CenterIdentity(
        name_kana=person.name_kana, name_kanji=person.name_kanji, birth_date=person.birth_date
    )
    latest = person.latest_address
    address = CenterAddress(
        postal_code=latest.postal_code, address=latest.address, registered_on=latest.registered_on
    )
    if scope == "address":
        return CenterRecord(scope=scope, identity=identity, latest_address=address)
    suspensions = [
        CenterSuspension(
            kind=s.kind, bank=s.bank, clearing_house=s.clearing_house, suspended_on=s.suspended_on
        )
        for s in person.suspensions
    ]
    if scope == "suspension":
        return CenterRecord(scope=scope, identity=identity, suspensions=suspensions)
    gazette = [
        CenterGazetteEntry(kind=g.kind, published_on=g.published_on, court=g.court, case_number=g.case_number)
        for g in person.gazette_entries
    ]
    if scope == "gazette":
        return CenterRecord(scope=scope, identity=identity, gazette_entries=gazette)
    return CenterRecord(
        scope=scope,
        identity=identity,
        latest_address=address,
        loans=[
            CenterLoan(
                lender=loan.lender,
                kind=loan.kind,
                amount=loan.amount,
                balance=loan.balance,
                started_on=loan.started_on,
                monthly_payment=loan.monthly_payment,
            )
            for loan in person.loans
        ],
        cards=[
            CenterCardContract(
                issuer=card.issuer,
                contracted_on=card.contracted_on,
                credit_limit=card.credit_limit,
                status=card.status,
            )
            for card in person.cards
        ],
        delinquencies=[
            CenterDelinquency(
                lender=d.lender, occurred_on=d.occurred_on, amount=d.amount, resolved_on=d.resolved_on
            )
            for d in person.delinquencies
        ],
        gazette_entries=gazette,
        suspensions=suspensions,
    )

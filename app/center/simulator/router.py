"""The simulator's endpoints: the center's HTTP contract (api.md) and ``/_sim/`` controls (RC-1, ER-3, PL-2).

Thin: parse, call one method of the simulated center, return. Handlers call the center's synchronous
methods without awaiting in between, which is what makes idempotency hold under concurrent duplicates
(see service.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.center.interface import (
    CenterAnswer,
    CenterCancellation,
    CenterCancelRequest,
    CenterCorrection,
    CenterCorrectRequest,
    CenterInquiryRequest,
    CenterRecordEntry,
    CenterRecordPage,
)
from app.center.simulator.schemas import (
    DirectEntryIn,
    FaultSettings,
    PopulationPage,
    PopulationPerson,
    SimulatorStats,
)
from app.center.simulator.service import CenterProblem
from app.center.simulator.state import SimulatorState

NDJSON = "application/x-ndjson"
router = APIRouter(prefix="/center/v1", tags=["center"])
control_router = APIRouter(prefix="/center/v1/_sim", tags=["simulator control"])


def _state(request: Request) -> SimulatorState:
    state: SimulatorState = request.app.state.simulator
    return state


State = Annotated[SimulatorState, Depends(_state)]


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"description": "problem JSON with a stable `code`"} for code in statuses}


@router.post(
    "/inquiries",
    summary="Inquire about a subject's credit record",
    response_model=CenterAnswer,
    responses=_problems(409, 422, 503, 504),
)
async def post_inquiry(body: CenterInquiryRequest, state: State) -> CenterAnswer:
    return state.center.inquire(body)


@router.post(
    "/inquiries/{center_inquiry_id}/cancel",
    summary="Cancel an inquiry record",
    response_model=CenterCancellation,
    responses=_problems(404, 409, 422, 503),
)
async def cancel_inquiry(
    center_inquiry_id: str, body: CenterCancelRequest, state: State
) -> CenterCancellation:
    return state.center.cancel(center_inquiry_id, idempotency_key=body.idempotency_key)


@router.post(
    "/inquiries/{center_inquiry_id}/correct",
    summary="Correct an inquiry record (its purpose)",
    response_model=CenterCorrection,
    responses=_problems(404, 409, 422, 503),
)
async def correct_inquiry(
    center_inquiry_id: str, body: CenterCorrectRequest, state: State
) -> CenterCorrection:
    return state.center.correct(center_inquiry_id, body)


@router.get(
    "/inquiry-record",
    summary="The member's inquiry record (inquiries, cancellations, corrections) for a period",
    response_model=CenterRecordPage,
    responses=_problems(422, 503),
)
async def inquiry_record(
    state: State,
    member_code: Annotated[str, Query(min_length=1, max_length=16)],
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CenterRecordPage:
    return state.center.record_page(
        member_code=member_code, date_from=date_from, date_to=date_to, cursor=cursor, limit=limit
    )


@router.get(
    "/inquiry-record.ndjson",
    summary="The member's inquiry record for a period as one NDJSON stream (the center's file format)",
    response_class=StreamingResponse,
    responses={200: {"content": {NDJSON: {}}}, **_problems(422, 503)},
)
async def inquiry_record_ndjson(
    state: State,
    member_code: Annotated[str, Query(min_length=1, max_length=16)],
    date_from: Annotated[date, Query(alias="from")],
    date_to: Annotated[date, Query(alias="to")],
) -> StreamingResponse:
    if date_to < date_from:
        raise CenterProblem(422, "VALIDATION", "'to' is before 'from'")
    lines = state.center.record_ndjson(member_code=member_code, date_from=date_from, date_to=date_to)

    async def chunks() -> AsyncIterator[bytes]:
        # Each chunk is made on the event loop, like every other call into the center (see service.py):
        # a thread would read the record while the loop inserts into it.
        for chunk in lines:
            yield chunk

    return StreamingResponse(chunks(), media_type=NDJSON)


# -- simulator control (tests and demos) ---------------------------------------------------------------


@control_router.post(
    "/direct-inquiries",
    summary="Record an inquiry made directly at the center, bypassing the gateway",
    status_code=status.HTTP_201_CREATED,
    response_model=CenterRecordEntry,
    responses=_problems(422),
)
async def direct_inquiry(body: DirectEntryIn, state: State) -> CenterRecordEntry:
    return state.center.record_direct(body)


@control_router.get("/faults", summary="The faults in force", response_model=FaultSettings)
async def get_faults(state: State) -> FaultSettings:
    return state.faults.settings


@control_router.post(
    "/faults", summary="Inject faults", response_model=FaultSettings, responses=_problems(422)
)
async def set_faults(body: FaultSettings, state: State) -> FaultSettings:
    state.faults.apply(body)
    if body.refuse_connections_seconds > 0:
        state.gate.refuse_for(body.refuse_connections_seconds)
    else:
        state.gate.reopen()
    return body


@control_router.delete("/faults", summary="Clear all faults", status_code=status.HTTP_204_NO_CONTENT)
async def clear_faults(state: State) -> Response:
    state.faults.clear()
    state.gate.reopen()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@control_router.get(
    "/population", summary="Synthetic subjects, to pick people for tests", response_model=PopulationPage
)
async def population(
    state: State,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PopulationPage:
    people = state.population.window(offset, limit)
    total = len(state.population)
    items = [
        PopulationPerson(
            index=person.index,
            name_kana=person.name_kana,
            name_kanji=person.name_kanji,
            birth_date=person.birth_date,
            phone=person.phone,
            postal_code=person.latest_address.postal_code,
            address=person.latest_address.address,
            has_transactions=person.has_transactions,
            has_delinquency=person.has_delinquency,
            in_gazette=person.in_gazette,
            suspended=person.suspended,
        )
        for person in people
    ]
    next_offset = offset + len(items) if offset + len(items) < total else None
    return PopulationPage(items=items, total=total, next_offset=next_offset)


@control_router.get(
    "/stats", summary="What the center recorded and which faults fired", response_model=SimulatorStats
)
async def stats(state: State) -> SimulatorStats:
    return state.stats()

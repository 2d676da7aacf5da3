"""Models of the simulator's control endpoints under ``/center/v1/_sim/`` (test and demo only; RC-1, ER-3).

The center's own contract (inquiries, cancellations, the inquiry record) uses the models of
app/center/interface.py, so the simulator and the adapter cannot drift apart.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.center.interface import CenterCode, CenterSubject, EntryKind, Purpose


class DirectEntryIn(BaseModel):
    """An entry made at the center's own terminal, bypassing the gateway (what RC-1 must catch)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    kind: EntryKind = "inquiry"
    member_code: CenterCode
    branch_code: CenterCode
    terminal_id: str = Field(min_length=1, max_length=40)
    operator_ref: str = Field(min_length=1, max_length=64)
    purpose: Purpose
    subject: CenterSubject
    # Defaults to now; tests back-date entries to place them in a reconciliation period.
    at: AwareDatetime | None = None
    # The inquiry a cancellation or correction refers to.
    center_inquiry_id: str | None = Field(default=None, max_length=64)


class FaultSettings(BaseModel):
    """Faults the simulator injects into the center's endpoints (never into ``/_sim/``)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=600_000)
    # Share of requests answered 503 before the center looks at them.
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # Share of requests the center processes (and records) but answers only after ``timeout_ms``,
    # by which time the client has given up: the case the idempotency key exists for.
    timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout_ms: int = Field(default=30_000, ge=0, le=600_000)
    # Stop accepting TCP connections for this long (see app/center/simulator/server.py).
    refuse_connections_seconds: float = Field(default=0.0, ge=0.0, le=3600.0)
    # Picks the deterministic sequence of faulted requests; the same seed gives the same sequence.
    seed: int = 0

    @model_validator(mode="after")
    def _rates_fit(self) -> FaultSettings:
        if self.error_rate + self.timeout_rate > 1.0:
            raise ValueError("error_rate + timeout_rate must not exceed 1")
        return self


class PopulationPerson(BaseModel):
    index: int
    name_kana: str
    name_kanji: str
    birth_date: date
    phone: str
    postal_code: str
    address: str
    has_transactions: bool
    has_delinquency: bool
    in_gazette: bool
    suspended: bool


class PopulationPage(BaseModel):
    items: list[PopulationPerson]
    total: int
    next_offset: int | None


class SimulatorStats(BaseModel):
    inquiries_recorded: int
    duplicates_suppressed: int
    no_trade_info_refusals: int
    cancellations_recorded: int
    corrections_recorded: int = 0
    direct_entries: int
    entries_total: int
    # Requests to the center's endpoints that reached the application (refused connections never do).
    center_requests: int = 0
    faulted_errors: int = 0
    faulted_timeouts: int = 0
    refused_requests: int = 0

"""Everything one simulator instance holds, built once in create_simulator_app (RC-1, ER-3; no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from app.center.simulator.faults import ConnectionGate, FaultPlan
from app.center.simulator.population import Population
from app.center.simulator.schemas import SimulatorStats
from app.center.simulator.service import SimulatedCenter
from app.clock import Clock


@dataclass
class SimulatorState:
    seed: int
    clock: Clock
    population: Population
    center: SimulatedCenter
    faults: FaultPlan
    gate: ConnectionGate

    def stats(self) -> SimulatorStats:
        faults = self.faults
        return self.center.stats().model_copy(
            update={
                "center_requests": faults.center_requests,
                "faulted_errors": faults.faulted_errors,
                "faulted_timeouts": faults.faulted_timeouts,
                "refused_requests": faults.refused_requests,
            }
        )

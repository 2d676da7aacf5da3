"""Job runs with their counts and output hashes (LG-4: operating status recorded and kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class JobRun(Base):
    """One run of a background or scheduled job (lists, reconciliation, anomaly analysis, heartbeat)."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job: Mapped[str] = mapped_column(String(60), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # success | failure
    outcome: Mapped[str] = mapped_column(String(16))
    # What the run produced, as counts (lists created, entries matched, findings, ...).
    counts: Mapped[dict[str, int]] = mapped_column(JSON)
    # SHA-256 over the run's output (e.g. the content hashes of the lists it wrote), so a later copy can be
    # compared with what the job actually produced.
    output_sha256: Mapped[str | None] = mapped_column(String(64))
    # An error class or code, never a message that could carry data.
    error: Mapped[str | None] = mapped_column(String(200))
    actor_id: Mapped[str] = mapped_column(String(80))

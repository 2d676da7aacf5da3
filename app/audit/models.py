"""Ledger tables. ``audit_events`` and ``audit_checkpoints`` are append-only (a PostgreSQL trigger
refuses UPDATE, DELETE and TRUNCATE); ``audit_chain_head`` is the single row that serialises appends."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

GENESIS_HASH = "0" * 64


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # RFC 3339 UTC with microseconds, fixed width: the exact text that is hashed, and it sorts.
    at: Mapped[str] = mapped_column(String(27), index=True)
    actor_id: Mapped[str | None] = mapped_column(String(80), index=True)
    # Canonical JSON text (hashed as it is stored).
    actor_roles: Mapped[str] = mapped_column(Text)
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80), index=True)
    object_type: Mapped[str | None] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    last_checkpoint_seq: Mapped[int] = mapped_column(BigInteger)
    last_checkpoint_at: Mapped[str | None] = mapped_column(String(27))


class AuditCheckpoint(Base):
    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(27))
    key_id: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(128))

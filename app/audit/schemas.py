"""Response models of the audit endpoints."""

from __future__ import annotations

from pydantic import BaseModel


class ChainHeadOut(BaseModel):
    seq: int
    hash: str


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    head: ChainHeadOut
    first_bad_seq: int | None
    reason: str | None
    checkpoints_checked: int
    latest_checkpoint: CheckpointOut | None


class CheckpointPage(BaseModel):
    items: list[CheckpointOut]
    next_cursor: str | None
    public_keys: dict[str, str]

"""Request and response models of the authentication and directory endpoints (api.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from app.inquiry.subject import FreeText

T = TypeVar("T")


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=12)


class UserSummary(BaseModel):
    id: str
    name: str
    roles: list[str]
    branch_codes: list[str]


class PreviousLoginOut(BaseModel):
    at: datetime
    terminal_id: str | None
    address: str | None


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    user: UserSummary
    previous_login: PreviousLoginOut | None
    failed_attempts_since_previous_login: int
    password_expires_at: datetime
    must_change_password: bool


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=80)
    client_secret: str = Field(min_length=1, max_length=200)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scopes: list[str]


class PasswordChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MeResponse(BaseModel):
    kind: str
    id: str
    name: str
    roles: list[str]
    role_branches: dict[str, list[str]]
    branch_codes: list[str]
    scopes: list[str]
    terminal_id: str | None
    session_expires_at: datetime
    idle_expires_at: datetime | None
    must_change_password: bool


class BranchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[0-9A-Z]{3,8}$")
    name: FreeText = Field(min_length=1, max_length=100)


class BranchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    is_hq: bool
    status: str


class BranchPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: FreeText = Field(min_length=1, max_length=100)


class TerminalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The ID is recorded with every request from the terminal: it may not be an Individual Number.
    id: FreeText = Field(pattern=r"^[0-9A-Za-z_-]{3,40}$")
    branch_code: str = Field(min_length=1, max_length=8)
    description: FreeText = Field(default="", max_length=200)


class TerminalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    branch_code: str
    description: str
    status: str
    registered_at: datetime


class TerminalRegistered(TerminalOut):
    key: str = Field(description="The terminal key, shown once; only its hash is stored")


class TerminalStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str = Field(pattern=r"^(active|suspended|decommissioned)$")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

"""Branches, terminals, users and their roles, login state, sessions and service accounts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class Branch(Base):
    __tablename__ = "branches"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    is_hq: Mapped[bool] = mapped_column(Boolean, default=False)
    # active | closed
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Its daily lists are due for every day from the one it was opened (created) to the one it was closed.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Terminal(Base):
    __tablename__ = "terminals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of the per-terminal key; the key itself is 256 random bits, shown once at registration.
    key_hash: Mapped[str] = mapped_column(String(64))
    # active | suspended | decommissioned
    status: Mapped[str] = mapped_column(String(16), default="active")
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_kana: Mapped[str | None] = mapped_column(String(100))
    name_latin: Mapped[str | None] = mapped_column(String(100))
    # Kept only to refuse passwords built from them (AU-7) and to spot self-inquiries (PL-5).
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(32))
    # active | suspended | resigned | deactivated
    status: Mapped[str] = mapped_column(String(16), default="active")
    password_hash: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_terminal_id: Mapped[str | None] = mapped_column(String(40))
    last_login_address: Mapped[str | None] = mapped_column(String(64))
    failed_since_last_login: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserRole(Base):
    """One role held by a user, in one branch where the role is branch-scoped; never deleted, only ended."""

    __tablename__ = "user_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    branch_code: Mapped[str | None] = mapped_column(ForeignKey("branches.code"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    granted_by: Mapped[str] = mapped_column(String(80))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(80))


class PasswordHistory(Base):
    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Consecutive failures per attempted user id — existing or not — keyed by a keyed pseudonym.

    Keying unknown ids the same way as real ones is what makes the lock reveal nothing (AU-5); storing
    only the pseudonym keeps a password typed into the user-id field out of the database.
    """

    __tablename__ = "login_throttle"

    login_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthSession(Base):
    """Server-side session behind every token: logout, suspension and timeouts end it at once."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # user | service
    principal_kind: Mapped[str] = mapped_column(String(16))
    principal_id: Mapped[str] = mapped_column(String(80), index=True)
    terminal_id: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout | idle_timeout | absolute_timeout | suspended | locked | password_changed | revoked |
    # terminal_required (a role granted during the login that its terminal does not fit) | ...
    end_reason: Mapped[str | None] = mapped_column(String(32))


class ServiceAccount(Base):
    __tablename__ = "service_accounts"

    client_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of a 256-bit random secret shown once.
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

"""Branches, terminals, users, roles and service accounts: the directory the rest of the system trusts.

Every change is recorded in the ledger in the same transaction. Secrets (terminal keys, client
secrets, initial passwords) are returned once to the caller and stored only as hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.ledger import Actor, record
from app.authz.models import Branch, PasswordHistory, ServiceAccount, Terminal, User, UserRole
from app.authz.passwords import machine_secret_hash, new_machine_secret
from app.authz.principal import Principal
from app.authz.roles import ROLES, SCOPES
from app.context import AppContext
from app.errors import Conflict, InvalidState, NotFound, ValidationFailed
from app.idempotency import UNKEYED, KeyedRequest, create_once
from app.pagination import keyset_page


@dataclass(frozen=True)
class RegisteredTerminal:
    terminal: Terminal
    key: str


async def create_branch(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    code: str,
    name: str,
    is_hq: bool = False,
    opened_at: datetime | None = None,
) -> Branch:
    """A branch, open from ``opened_at`` (now unless given): its daily lists are due from that day."""
    if await session.get(Branch, code) is not None:
        raise Conflict("A branch with this code exists")
    if is_hq and (await session.scalar(select(Branch).where(Branch.is_hq.is_(True)))) is not None:
        raise Conflict("There is already an HQ unit")
    branch = Branch(
        code=code, name=name, is_hq=is_hq, status="active", created_at=opened_at or ctx.clock.now()
    )
    session.add(branch)
    record(
        session,
        actor=actor,
        action="directory.branch_created",
        object_type="branch",
        object_id=code,
        details={"is_hq": is_hq},
    )
    return branch


async def register_branch(
    session: AsyncSession,
    *,
    ctx: AppContext,
    principal: Principal,
    code: str,
    name: str,
    keyed: KeyedRequest = UNKEYED,
) -> Branch:
    """A directory admin registers a branch. With an Idempotency-Key a retry of a registration that went
    through gets the branch, not 409 ``CONFLICT``."""
    return await create_once(
        session,
        ctx,
        Branch,
        keyed,
        principal=principal,
        make=lambda: create_branch(session, ctx=ctx, actor=principal.actor(), code=code, name=name),
        client_named=True,
    )


async def rename_branch(session: AsyncSession, *, actor: Actor, branch_code: str, name: str) -> Branch:
    branch = await session.get(Branch, branch_code, with_for_update=True)
    if branch is None:
        raise NotFound("No such branch")
    if branch.status != "active":
        raise InvalidState("A closed branch is not changed")
    previous = branch.name
    branch.name = name
    record(
        session,
        actor=actor,
        action="directory.branch_renamed",
        object_type="branch",
        object_id=branch_code,
        details={"from": previous, "to": name},
    )
    return branch


async def hq_branch(session: AsyncSession) -> Branch:
    branch = await session.scalar(select(Branch).where(Branch.is_hq.is_(True)))
    if branch is None:
        raise NotFound("No HQ unit is registered")
    return branch


async def register_terminal(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    terminal_id: str,
    branch_code: str,
    description: str = "",
) -> RegisteredTerminal:
    branch = await session.get(Branch, branch_code)
    if branch is None or branch.status != "active":
        raise ValidationFailed("The branch does not exist or is closed")
    if await session.get(Terminal, terminal_id) is not None:
        raise Conflict("A terminal with this id exists")
    key = new_machine_secret()
    terminal = Terminal(
        id=terminal_id,
        branch_code=branch_code,
        description=description,
        key_hash=machine_secret_hash(key),
        status="active",
        registered_at=ctx.clock.now(),
    )
    session.add(terminal)
    record(
        session,
        actor=actor,
        action="directory.terminal_registered",
        object_type="terminal",
        object_id=terminal_id,
        details={"branch_code": branch_code},
    )
    return RegisteredTerminal(terminal, key)


async def set_terminal_status(
    session: AsyncSession, *, actor: Actor, terminal_id: str, status: str
) -> Terminal:
    if status not in ("active", "suspended", "decommissioned"):
        raise ValidationFailed("Unknown terminal status")
    terminal = await session.get(Terminal, terminal_id)
    if terminal is None:
        raise NotFound("No such terminal")
    if terminal.status == "decommissioned":
        raise Conflict("A decommissioned terminal cannot be changed")
    previous = terminal.status
    terminal.status = status
    if status == "decommissioned":
        # The key dies with the terminal: a decommissioned device can never authenticate again.
        terminal.key_hash = machine_secret_hash(new_machine_secret())
    record(
        session,
        actor=actor,
        action="directory.terminal_status_changed",
        object_type="terminal",
        object_id=terminal_id,
        details={"from": previous, "to": status},
    )
    return terminal


async def users_known_as(session: AsyncSession, typed_user_id: str) -> list[User]:
    """The users a typed id logs in as for the lockout (``service.login_key``): the same id up to case and
    surrounding spaces. One at most, since :func:`create_user` refuses a second."""
    typed = typed_user_id.strip()
    if not typed:
        return []
    candidates = (await session.scalars(select(User).where(func.lower(User.id) == typed.lower()))).all()
    # SQLite lowers ASCII only: the fold is judged here, the query only narrows.
    return [u for u in candidates if u.id.strip().casefold() == typed.casefold()]


async def create_user(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    user_id: str,
    name: str,
    password: str,
    name_kana: str | None = None,
    name_latin: str | None = None,
    birth_date: date | None = None,
    phone: str | None = None,
    must_change_password: bool = True,
) -> User:
    if await session.get(User, user_id) is not None:
        raise Conflict("A user with this id exists")
    if await users_known_as(session, user_id):
        # "OP001" next to op001 would share op001's lockout counter: one's guesses would lock the other.
        raise Conflict("A user with this id in other capitals exists")
    now = ctx.clock.now()
    password_hash = await ctx.passwords.hash_async(password)
    user = User(
        id=user_id,
        name=name,
        name_kana=name_kana,
        name_latin=name_latin,
        birth_date=birth_date,
        phone=phone,
        status="active",
        password_hash=password_hash,
        password_changed_at=now,
        must_change_password=must_change_password,
        failed_since_last_login=0,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    session.add(PasswordHistory(user_id=user_id, password_hash=password_hash, set_at=now))
    record(
        session,
        actor=actor,
        action="directory.user_created",
        object_type="user",
        object_id=user_id,
        details={"must_change_password": must_change_password},
    )
    return user


# What an administrator may correct on a user record; roles and status have their own paths.
USER_FIELDS = ("name", "name_kana", "name_latin", "birth_date", "phone")


async def update_user(
    session: AsyncSession, *, actor: Actor, user_id: str, changes: dict[str, object]
) -> User:
    """Correct a user's name fields, birth date or phone (used by the password rules, AU-7)."""
    unknown = set(changes) - set(USER_FIELDS)
    if unknown:
        raise ValidationFailed("Only name fields, birth date and phone are changed here")
    if "name" in changes and not changes["name"]:
        raise ValidationFailed("A user keeps a name")
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such user")
    changed = sorted(field for field, value in changes.items() if getattr(user, field) != value)
    for field in changed:
        setattr(user, field, changes[field])
    record(
        session,
        actor=actor,
        action="directory.user_updated",
        object_type="user",
        object_id=user_id,
        # Which fields, never their values: they are personal data.
        details={"fields": changed},
    )
    return user


async def grant_role(
    session: AsyncSession, *, ctx: AppContext, actor: Actor, user_id: str, role: str, branch_code: str | None
) -> UserRole:
    spec = ROLES.get(role)
    if spec is None:
        raise ValidationFailed("Unknown role")
    if spec.hq:
        branch_code = (await hq_branch(session)).code
    elif spec.branch_scoped:
        if branch_code is None:
            raise ValidationFailed("This role is held per branch; name the branch")
        branch = await session.get(Branch, branch_code)
        if branch is None or branch.is_hq:
            raise ValidationFailed("No such branch")
    else:
        branch_code = None
    if await session.get(User, user_id) is None:
        raise NotFound("No such user")
    grant = UserRole(
        user_id=user_id,
        role=role,
        branch_code=branch_code,
        granted_at=ctx.clock.now(),
        granted_by=actor.id or "system",
    )
    session.add(grant)
    record(
        session,
        actor=actor,
        action="directory.role_granted",
        object_type="user",
        object_id=user_id,
        details={"role": role, "branch_code": branch_code},
    )
    return grant


async def create_service_account(
    session: AsyncSession,
    *,
    ctx: AppContext,
    actor: Actor,
    client_id: str,
    scopes: list[str],
    description: str = "",
) -> tuple[ServiceAccount, str]:
    unknown = set(scopes) - SCOPES
    if unknown:
        raise ValidationFailed("Unknown scope")
    if await session.get(ServiceAccount, client_id) is not None:
        raise Conflict("A service account with this id exists")
    secret = new_machine_secret()
    account = ServiceAccount(
        client_id=client_id,
        description=description,
        secret_hash=machine_secret_hash(secret),
        scopes=sorted(scopes),
        status="active",
        created_at=ctx.clock.now(),
    )
    session.add(account)
    record(
        session,
        actor=actor,
        action="directory.service_account_created",
        object_type="service_account",
        object_id=client_id,
        details={"scopes": sorted(scopes)},
    )
    return account, secret


async def list_terminals(session: AsyncSession, *, branch_code: str | None = None) -> list[Terminal]:
    query = select(Terminal).order_by(Terminal.id)
    if branch_code is not None:
        query = query.where(Terminal.branch_code == branch_code)
    return list((await session.scalars(query)).all())


async def list_branches(session: AsyncSession) -> list[Branch]:
    return list((await session.scalars(select(Branch).order_by(Branch.code))).all())


async def branch_page(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[Branch], str | None]:
    """A page of the branches in the order they were opened (api.md: lists are cursor-paginated)."""
    return await keyset_page(
        session, select(Branch), at=Branch.created_at, row_id=Branch.code, limit=limit, cursor=cursor
    )


async def terminal_page(
    session: AsyncSession, *, branch_code: str | None, limit: int, cursor: str | None
) -> tuple[list[Terminal], str | None]:
    """A page of the terminals (of one branch, or all) in the order they were registered."""
    query = select(Terminal)
    if branch_code is not None:
        query = query.where(Terminal.branch_code == branch_code)
    return await keyset_page(
        session, query, at=Terminal.registered_at, row_id=Terminal.id, limit=limit, cursor=cursor
    )


async def staff_names(session: AsyncSession, user_ids: Iterable[str | None]) -> dict[str, str]:
    """Staff names by user id, for pages that name who entered, checked or confirmed something: a
    confirmer recognises a colleague by name. An id with no user (a system actor) is left out."""
    wanted = sorted({user_id for user_id in user_ids if user_id})
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {row.id: row.name for row in rows}

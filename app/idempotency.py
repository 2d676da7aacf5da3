"""Idempotency-Key on creating and sending POSTs (api.md, ER-2), for every capability that takes one.

A key is looked up per caller and endpoint (``IdempotencyRecord``): the same key with the same body
answers with the object the first request made, the same key with another body is 409
``IDEMPOTENCY_KEY_REUSED``. What is kept is the object's id and a keyed fingerprint of the body, never
the response: a body may hold a confirmer's password and a response a person's name (EN-2), so a replay
reads the object afresh. Two requests with one key sent at once both try to insert the record; the one
whose commit fails on its primary key rolls back and answers with the winner's object.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, Header
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.principal import Principal
from app.context import AppContext
from app.errors import Conflict, IdempotencyKeyReused, InvalidState, MyNumberForbidden
from app.inquiry.models import IdempotencyRecord
from app.inquiry.subject import contains_my_number

Made = TypeVar("Made")

# api.md sets no minimum length: keys are the caller's own (looked up per caller and endpoint), so a short
# one can only collide with the same caller's earlier request, which the body fingerprint then refuses.
TypedIdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


def _is_canonical_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def idempotency_key(key: TypedIdempotencyKey = None) -> str | None:
    """The caller's key, which is stored as sent: an Individual Number in it is refused like one in the
    body (PL-4), before anything is read or written."""
    # A canonical UUID, the usual key, is passed over: its hex groups read as a valid number in about 1 in
    # 400 keys (as for hq_request_id in inquiry.subject.without_issued_ids).
    if key is not None and not _is_canonical_uuid(key) and contains_my_number(key):
        raise MyNumberForbidden("Remove the Individual Number from the Idempotency-Key")
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


def request_fingerprint(ctx: AppContext, payload: Any) -> str:
    """What an Idempotency-Key's request said, to tell a retry from a different request.

    Keyed (the blind-index HMAC), not a bare SHA-256: the body may hold a confirmer's password or an
    approval number, and a plain hash of an otherwise known body would let anyone with a copy of the
    database test guesses of them offline (AU-9)."""
    return ctx.keyring.blind_index(
        orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode(), domain="idempotency-request"
    )


async def replayed_id(
    session: AsyncSession, *, key: str | None, principal: Principal, endpoint: str, fingerprint: str
) -> str | None:
    """The id of the object a previous request with this key made, or None; 409 if the body differs."""
    if key is None:
        return None
    stored = await session.get(IdempotencyRecord, (key, principal.id, endpoint))
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used with a different request")
    return stored.response_body


def remember_idempotency(
    session: AsyncSession,
    ctx: AppContext,
    *,
    key: str | None,
    principal: Principal,
    endpoint: str,
    fingerprint: str,
    object_id: str,
    status_code: int,
) -> None:
    """Keep the key with the object it made, in the transaction that makes it."""
    if key is None:
        return
    session.add(
        IdempotencyRecord(
            key=key,
            principal_id=principal.id,
            endpoint=endpoint,
            request_hash=fingerprint,
            status_code=status_code,
            response_body=object_id,
            created_at=ctx.clock.now(),
        )
    )


async def commit_or_replay(session: AsyncSession, *, key: str | None) -> bool:
    """Commit; when a concurrent request with the same Idempotency-Key won the race, roll back and say so."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        if key is None:
            raise
        return False
    return True


async def end_replay(session: AsyncSession, *answered: object) -> None:
    """End the transaction a replay read its answer in, keeping ``answered`` readable.

    A replay writes nothing, but its reads ran in the request's write transaction: on SQLite that is the
    database-wide writer lock, on PostgreSQL the inquiry's row lock. Held while the router waits for the
    center (up to the interactive wait) it kept the delivery from storing the very answer the retry was
    waiting for, and every other writer of the process with it. Rolling back would expire the objects, so
    they leave the session first; nothing on the answer's path loads more of them."""
    for obj in answered:
        if obj in session:
            session.expunge(obj)
    await session.rollback()


# -- one keyed creation, for the capabilities whose POST makes one object -------------------------------


def _primary_key(made: object) -> str:
    """The made object's primary key as text: an id for most, the code for a branch."""
    (value,) = inspect(type(made)).primary_key_from_instance(made)
    return str(value)


@dataclass(frozen=True)
class KeyedRequest:
    """A creating request as its Idempotency-Key identifies it: the caller's key (or none), the
    endpoint it is looked up under and the fingerprint of the body."""

    key: str | None
    endpoint: str
    fingerprint: str


UNKEYED = KeyedRequest(None, "", "")


def keyed_request(ctx: AppContext, *, key: str | None, endpoint: str, body: Any) -> KeyedRequest:
    return KeyedRequest(key, endpoint, request_fingerprint(ctx, body) if key is not None else "")


async def replayed_object(
    session: AsyncSession, model: type[Made], keyed: KeyedRequest, *, principal: Principal
) -> Made | None:
    """The object an earlier request with this key made, its transaction ended (409 if the body differs)."""
    made_id = await replayed_id(
        session, key=keyed.key, principal=principal, endpoint=keyed.endpoint, fingerprint=keyed.fingerprint
    )
    if made_id is None:
        return None
    made = await session.get(model, made_id)
    if made is None:
        raise InvalidState("What this Idempotency-Key made is no longer there")
    await end_replay(session, made)
    return made


async def _twin_won(
    session: AsyncSession,
    model: type[Made],
    keyed: KeyedRequest,
    error: IntegrityError,
    *,
    principal: Principal,
    client_named: bool,
) -> Made:
    """After an ``IntegrityError`` on a creation, which a concurrent request may explain.

    With this Idempotency-Key, committed first by the caller's own retry: its object is the answer. For an
    object whose id the client chooses (a user id, a branch code): a twin made at the same moment, 409
    ``CONFLICT``. Anything else is not a twin (the id is a fresh UUID) and is not dressed up as one."""
    await session.rollback()
    winner = await replayed_object(session, model, keyed, principal=principal) if keyed.key else None
    if winner is not None:
        return winner
    if client_named:
        raise Conflict("Made by another request at the same moment") from None
    if keyed.key is not None:
        raise InvalidState("Changed by another request at the same moment: send it again") from None
    raise error


async def commit_created(session: AsyncSession) -> None:
    """Commit a creation that takes no key (a terminal, whose key is shown once): a twin with the same
    client-chosen id committed at the same moment is 409 ``CONFLICT``, not the driver's error."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("Made by another request at the same moment") from None


async def commit_keyed(
    session: AsyncSession,
    ctx: AppContext,
    made: Made,
    keyed: KeyedRequest,
    *,
    principal: Principal,
    client_named: bool = False,
) -> Made:
    """Commit ``made`` with its key; when another request with the key committed first, its object."""
    remember_idempotency(
        session,
        ctx,
        key=keyed.key,
        principal=principal,
        endpoint=keyed.endpoint,
        fingerprint=keyed.fingerprint,
        object_id=_primary_key(made),
        status_code=201,
    )
    try:
        await session.commit()
    except IntegrityError as error:
        return await _twin_won(
            session, type(made), keyed, error, principal=principal, client_named=client_named
        )
    return made


async def create_once(
    session: AsyncSession,
    ctx: AppContext,
    model: type[Made],
    keyed: KeyedRequest,
    *,
    principal: Principal,
    make: Callable[[], Awaitable[Made]],
    client_named: bool = False,
) -> Made:
    """Make one object under an Idempotency-Key: the earlier request's object if there was one, else
    ``make()`` committed with the key.

    A retry sent while the first attempt runs may pass the replay check before the first commits and then
    meet its object: ``make`` refuses a second user id, branch code or live switch with 409 ``CONFLICT``,
    or on PostgreSQL the insert waits for the first and fails on the key. Either way, when the first
    committed under this key, its object is the answer. ``client_named``: the client chooses the object's
    id, so a twin without the key is 409 ``CONFLICT``."""
    if (replayed := await replayed_object(session, model, keyed, principal=principal)) is not None:
        return replayed
    try:
        made = await make()
    except IntegrityError as error:
        return await _twin_won(session, model, keyed, error, principal=principal, client_named=client_named)
    except Conflict:
        if keyed.key is not None:
            if (replayed := await replayed_object(session, model, keyed, principal=principal)) is not None:
                return replayed
        raise
    return await commit_keyed(session, ctx, made, keyed, principal=principal, client_named=client_named)

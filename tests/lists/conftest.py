"""Inquiry tests run the app with its lifespan: the outbox sender delivers in the background."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.context import AppContext
from app.main import create_app


@pytest.fixture
def app(ctx: AppContext) -> Any:
    return create_app(context=ctx, background_tasks=True)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver/api/v1") as http:
            yield http

"""HQ tests run the app with its lifespan (the outbox sender delivers), like the inquiry tests."""

from tests.inquiry.conftest import app, client

__all__ = ["app", "client"]

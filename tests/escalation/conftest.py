"""Escalation tests run the app with its lifespan (the outbox sender delivers), like the inquiry tests:
escalations are raised by real releases, list checks and HQ days."""

from tests.inquiry.conftest import app, client

__all__ = ["app", "client"]

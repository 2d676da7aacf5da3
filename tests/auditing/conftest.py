"""The auditor's surface runs against the app with its lifespan (outbox sender, schedules), like the
inquiry tests: the shared backend-parametrised fixtures come from tests/conftest.py."""

from tests.inquiry.conftest import app, client

__all__ = ["app", "client"]

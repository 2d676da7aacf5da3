"""Retention tests need answered inquiries: the app runs with its lifespan, as in the inquiry tests."""

from tests.inquiry.conftest import app, client

__all__ = ["app", "client"]

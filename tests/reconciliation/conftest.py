"""Reconciliation tests: the app with its lifespan (the outbox delivers to the in-process center), and a
key file in the instance directory so the CLI opens the same keys as the test's app."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.clock import ManualClock
from app.crypto.keyring import Keyring, open_keyring
from tests.inquiry.conftest import app, client

__all__ = ["app", "client"]


@pytest.fixture
def keyring(clock: ManualClock, tmp_path: Path) -> Keyring:
    return open_keyring(key_file=tmp_path / "keys.json", env_keys=None, clock=clock, create=True)

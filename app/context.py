"""Everything a service needs from the running instance, built once in create_app (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from app.authz.passwords import PasswordHashing
from app.clock import Clock
from app.config import Settings
from app.crypto.keyring import Keyring
from app.db import Database
from app.metrics import Metrics


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    keyring: Keyring
    db: Database
    passwords: PasswordHashing
    metrics: Metrics

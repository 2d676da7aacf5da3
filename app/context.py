"""Everything a service needs from the running instance, built once in create_app (no module globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.authz.passwords import PasswordHashing
from app.clock import Clock
from app.config import Settings
from app.crypto.keyring import Keyring
from app.db import Database
from app.inquiry.policy import InquiryPolicy
from app.inquiry.signals import DeliverySignals
from app.lists.calendar import BusinessCalendar
from app.metrics import Metrics

if TYPE_CHECKING:
    from app.center.interface import CenterLink


def _nothing() -> None:
    return None


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    keyring: Keyring
    db: Database
    passwords: PasswordHashing
    metrics: Metrics
    policy: InquiryPolicy
    calendar: BusinessCalendar
    center: CenterLink
    # The bundled simulator when it is mounted in-process (embedded default, tests); None for a real center.
    center_simulator: Any = None
    # Wakes the outbox sender after a submit; replaced by the running sender (no-op without one).
    outbox_kick: Callable[[], None] = field(default=_nothing)
    # Starts the delivery of an outbox row that the submit claimed for this process (ER-3: the row is
    # still retried by a sender if this process dies); set by the running sender, None without one.
    outbox_deliver_claimed: Callable[[Any, Any], None] | None = None
    # Wakes a submit waiting for the center's answer as soon as the outbox has stored it.
    deliveries: DeliverySignals = field(default_factory=DeliverySignals)

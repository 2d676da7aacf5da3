"""Staff's free text is sealed bound to its row and field (EN-1): moved anywhere else it does not open,
so an attacker with write access cannot show one escalation's words on another, or a remark as what
was done; rotation re-wraps it like any other data key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.clock import ManualClock
from app.crypto.envelope import SealError, rewrap
from app.crypto.keyring import Keyring, open_keyring
from app.crypto.sealed_text import open_text, seal_text, sealed_text_values
from app.escalation.models import Escalation
from app.inquiry.models import OutboxMessage
from app.lists.models import DailyListLine

PARTS = ("sealed", "nonce", "wrapped_key", "kek_id")


def _copy(source: object, source_name: str, target: object, target_name: str) -> None:
    for part in PARTS:
        setattr(target, f"{target_name}_{part}", getattr(source, f"{source_name}_{part}"))


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    # A key file, so the KEK can be rotated.
    return open_keyring(key_file=tmp_path / "keys.json", env_keys=None, clock=ManualClock(), create=True)


def test_a_note_opens_on_its_own_row_and_field_only(keyring: Keyring) -> None:
    first, second = Escalation(id="e-1"), Escalation(id="e-2")
    seal_text(keyring, first, "remark", "架空 太郎様の同意書の署名が異なる")
    assert open_text(keyring, first, "remark") == "架空 太郎様の同意書の署名が異なる"
    assert b"\xe6\x9e\xb6\xe7\xa9\xba" not in first.remark_sealed  # 架空, in UTF-8
    _copy(first, "remark", second, "remark")
    with pytest.raises(SealError):
        open_text(keyring, second, "remark")
    _copy(first, "remark", first, "acknowledgement_note")
    with pytest.raises(SealError):
        open_text(keyring, first, "acknowledgement_note")


def test_no_text_stores_nothing_and_reads_as_none(keyring: Keyring) -> None:
    escalation = Escalation(id="e-1")
    seal_text(keyring, escalation, "remark", "書きかけ")
    seal_text(keyring, escalation, "remark", "")
    assert [getattr(escalation, f"remark_{part}") for part in PARTS] == [None] * 4
    assert open_text(keyring, escalation, "remark") is None


def test_a_bulk_written_line_note_is_bound_like_a_row_objects(keyring: Keyring) -> None:
    values = sealed_text_values(keyring, DailyListLine, "note", "原本と照合", key=("list-1", 3))
    line = DailyListLine(list_id="list-1", line_no=3, **values)
    assert open_text(keyring, line, "note") == "原本と照合"
    elsewhere = DailyListLine(list_id="list-1", line_no=4, **values)
    with pytest.raises(SealError):
        open_text(keyring, elsewhere, "note")


def test_an_outbox_payload_is_bound_to_its_idempotency_key_and_survives_a_rotation(keyring: Keyring) -> None:
    message = OutboxMessage(idempotency_key="cancel:inq-1")
    seal_text(keyring, message, "payload", '{"reason": "申込撤回"}', key=message.idempotency_key)
    other = OutboxMessage(idempotency_key="cancel:inq-2")
    _copy(message, "payload", other, "payload")
    with pytest.raises(SealError):
        open_text(keyring, other, "payload", key=other.idempotency_key)
    keyring.rotate("kek", now=ManualClock().now() + timedelta(days=1))
    message.payload_wrapped_key, message.payload_kek_id = rewrap(
        keyring, message.payload_wrapped_key, message.payload_kek_id
    )
    assert message.payload_kek_id == keyring.current_key_id("kek")
    assert open_text(keyring, message, "payload", key=message.idempotency_key) == '{"reason": "申込撤回"}'

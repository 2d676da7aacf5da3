"""Every wrapped data key in the schema is re-wrapped by `shokai keys rewrap` (EN-2).

The schema is walked here independently of the rewrap: any column that looks like key material
(``wrapped`` or ``kek`` in its name) must belong to a pair the rewrap moves, so a new sealed table or
a column named off the convention is caught before it ships with data the old KEK alone can open.
"""

from __future__ import annotations

from app.crypto.rewrap import wrapped_key_columns
from app.models_registry import metadata


def test_every_key_column_in_the_schema_is_re_wrapped() -> None:
    covered = {
        (pair.table.name, column.name)
        for pair in wrapped_key_columns()
        for column in (pair.wrapped_key, pair.kek_id)
    }
    key_material = {
        (table.name, column.name)
        for table in metadata.tables.values()
        for column in table.columns
        if "wrapped" in column.name or "kek" in column.name
    }
    assert key_material - covered == set()


def test_the_sealed_values_known_today_are_all_covered() -> None:
    pairs = {(p.table.name, p.wrapped_key.name, p.kek_id.name) for p in wrapped_key_columns()}
    assert pairs >= {
        ("inquiries", "subject_wrapped_key", "subject_kek_id"),
        ("inquiry_responses", "wrapped_key", "kek_id"),
        ("hq_requests", "subject_wrapped_key", "subject_kek_id"),
        ("daily_lists", "content_wrapped_key", "content_kek_id"),
        ("totp_enrolments", "secret_wrapped_key", "secret_kek_id"),
        ("access_requests", "secret_half_wrapped_key", "secret_half_kek_id"),
    }

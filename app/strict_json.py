"""JSON read with every object's keys distinct.

JSON leaves a repeated key's meaning open (RFC 8259 §4) and Python keeps the last one, so a second
entry silently replaces the first. Wherever that would let a text say one thing and mean another — a
request body (``app/request_guard.py``), the inquiry policy file (``app/inquiry/policy.py``) — it is read
through here and refused instead.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeys(ValueError):
    """An object in the text names ``keys`` more than once."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"{keys} named more than once in one object")
        self.keys = keys


def _distinct(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    made = dict(pairs)
    if len(made) != len(pairs):
        names = [key for key, _ in pairs]
        raise DuplicateKeys(sorted({key for key in names if names.count(key) > 1}))
    return made


def loads_distinct(text: str | bytes) -> Any:
    """``json.loads``, raising :class:`DuplicateKeys` when an object repeats a key."""
    return json.loads(text, object_pairs_hook=_distinct)

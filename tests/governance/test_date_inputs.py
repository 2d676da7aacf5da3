"""Dates typed into governance forms are taken only as YYYY-MM-DD (api.md), like every other date.

Pydantic alone reads 0 as 1 January 1970 and a datetime at midnight as its date: an HR event "effective"
in 1970, a right granted from 1970, or a user's birth date of 1970 would be stored without a word.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from app.governance.schemas import AccessRequestIn, HrEventIn, UserIn, UserPatchIn

NOT_ISO = (0, 1_700_000_000, "2026-12-01T00:00:00", "2026/12/01", "20261201")


def _with(model: type[BaseModel], field: str, value: Any) -> dict[str, Any]:
    """A body that is valid except for ``field``: the model's own example if it has one, else minimal."""
    base: dict[str, Any] = {
        AccessRequestIn: {"user_id": "op001", "role": "operator", "branch_code": "001", "reason": "異動"},
        HrEventIn: {"user_id": "op001", "kind": "leave", "effective_on": "2026-12-01"},
        UserIn: {"id": "op900", "name": "試験 太郎", "name_kana": "シケン タロウ"},
        UserPatchIn: {},
    }[model]
    return {**base, field: value}


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (AccessRequestIn, "effective_from"),
        (HrEventIn, "effective_on"),
        (UserIn, "birth_date"),
        (UserPatchIn, "birth_date"),
    ],
)
@pytest.mark.parametrize("value", NOT_ISO)
def test_a_date_not_written_yyyy_mm_dd_is_refused(model: type[BaseModel], field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(_with(model, field, value))
    assert any(error["loc"][0] == field for error in refused.value.errors())


@pytest.mark.parametrize("model", [AccessRequestIn, HrEventIn, UserIn, UserPatchIn])
def test_a_date_written_yyyy_mm_dd_is_taken(model: type[BaseModel]) -> None:
    field = {AccessRequestIn: "effective_from", HrEventIn: "effective_on"}.get(model, "birth_date")
    # An HR event's day and a right's first day are business dates (2000-2099); birth dates go further back.
    written = "2026-12-01" if model in (HrEventIn, AccessRequestIn) else "1990-04-01"
    try:
        model.model_validate(_with(model, field, written))
    except ValidationError as refused:
        assert all(error["loc"][0] != field for error in refused.errors())


@pytest.mark.parametrize("value", ["0001-01-01", "1999-12-31", "2100-01-01", "9999-12-31"])
def test_an_hr_event_outside_the_business_dates_is_refused(value: str) -> None:
    """A feed's typo (0001 for 2026) would otherwise apply at once, as a day long past."""
    with pytest.raises(ValidationError) as refused:
        HrEventIn.model_validate(_with(HrEventIn, "effective_on", value))
    assert [error["loc"] for error in refused.value.errors()] == [("effective_on",)]

"""The data ledger, 個人情報管理台帳 (DG-1): generated from the schema and configuration, and complete."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import Column, Date, Integer, MetaData, String, Table

from app.audit.data_ledger import CATALOGUE, DataSet, personal_data_gaps
from app.context import AppContext
from app.demo import DemoCredentials
from app.models_registry import metadata
from tests.auditing.support import login_at
from tests.helpers import ledger_events


def test_every_personal_data_column_of_the_schema_is_in_the_ledger() -> None:
    assert personal_data_gaps(metadata) == []
    # Every table is a data set with a purpose, a department and a retention, personal or not.
    assert sorted(set(metadata.tables) - set(CATALOGUE)) == []


def test_a_personal_data_column_added_without_a_ledger_entry_is_caught() -> None:
    # A throwaway model: a new table with a birth date, and a known table that grows a phone column.
    throwaway = MetaData()
    Table("loyalty_members", throwaway, Column("id", Integer, primary_key=True), Column("birth_date", Date))
    Table(
        "inquiries",
        throwaway,
        Column("id", String(36), primary_key=True),
        Column("subject_index", String(64)),
        Column("guarantor_phone", String(32)),
        Column("notes", String(200), info={"personal_data": True}),
        # Staff are people too: who did something, and free text about it.
        Column("escalated_by", String(40)),
        Column("reviewer_user_id", String(40)),
        Column("override_reason", String(400)),
    )
    assert personal_data_gaps(throwaway) == [
        "inquiries.guarantor_phone",
        "inquiries.notes",
        "inquiries.escalated_by",
        "inquiries.reviewer_user_id",
        "inquiries.override_reason",
        "loyalty_members.birth_date",
    ]
    # Declaring it (or explaining why it is not personal) closes the gap.
    described = dict(CATALOGUE)
    described["loyalty_members"] = DataSet(
        "会員", "loyalty", "営業部", "5 years", personal={"birth_date": "birth date"}
    )
    described["inquiries"] = DataSet(
        "照会記録",
        "inquiries",
        "営業店",
        "as lists",
        personal={
            "subject_index": "blind index",
            "guarantor_phone": "phone",
            "notes": "free text",
            "escalated_by": "staff user id",
            "reviewer_user_id": "staff user id",
        },
        not_personal={"override_reason": "a code"},
    )
    assert personal_data_gaps(throwaway, described) == []


async def test_the_ledger_names_items_protection_retention_department_and_readers(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    auditor = await login_at(client, demo, "auditor")
    response = await client.get("/admin/data-ledger", headers=auditor)
    assert response.status_code == 200, response.text
    ledger = response.json()
    assert ledger["personal_data_gaps"] == []
    assert ledger["undescribed"] == []
    assert all(d["purpose"] and d["department"] and d["retention"] for d in ledger["datasets"])
    sets = {d["data_set"]: d for d in ledger["datasets"]}
    assert set(sets) == set(metadata.tables)
    inquiries = sets["inquiries"]
    items = {i["column"]: i for i in inquiries["items"]}
    assert items["subject_sealed"]["personal"] and items["subject_sealed"]["protection"].startswith(
        "AES-256-GCM"
    )
    assert items["subject_index"]["protection"].startswith("keyed HMAC")
    assert not items["purpose"]["personal"]
    assert inquiries["retention"] and inquiries["department"] and inquiries["purpose"]
    # Readers come from the permission matrix: auditors see inquiry metadata, never responses.
    assert "auditor" in inquiries["read_roles"]
    assert "auditor" not in sets["inquiry_responses"]["read_roles"]
    assert sets["inquiry_responses"]["read_roles"] == ["confirmer", "hq_confirmer", "hq_operator", "operator"]
    assert {i["column"] for i in sets["users"]["items"] if i["personal"]} >= {"name", "birth_date", "phone"}
    assert "SQLite" in inquiries["storage"] or "PostgreSQL" in inquiries["storage"]
    # The staff in the access-rights register and the pseudonyms in an incident are personal data.
    register = {i["column"] for i in sets["access_register"]["items"] if i["personal"]}
    assert {"user_id", "requested_by", "approved_by", "set_by", "reason"} <= register
    assert "affected_subjects" in {i["column"] for i in sets["incidents"]["items"] if i["personal"]}
    # Reading the ledger is itself on the record.
    reads = await ledger_events(ctx, action="data_ledger.read")
    assert [e.actor_id for e in reads] == ["auditor"]
    assert json.loads(reads[0].details) == {"datasets": len(ledger["datasets"]), "gaps": 0}

    accadmin = await login_at(client, demo, "accadmin")
    assert (await client.get("/admin/data-ledger", headers=accadmin)).status_code == 200
    operator = await login_at(client, demo, "op001")
    assert (await client.get("/admin/data-ledger", headers=operator)).status_code == 403

"""Reconciliation with the center's inquiry record (RC-1, RC-2; guideline VI(1)① note 1), over the API."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app.clock import TOKYO, ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.errors import RecordFileInvalid
from app.inquiry.models import Inquiry, OutboxMessage
from app.migrate import downgrade, upgrade
from app.reconciliation import scheduler
from app.reconciliation.models import ReconciliationRun
from tests.helpers import ledger_events
from tests.inquiry.support import a1, as_user, center_record, draft_body, person, sim_client
from tests.reconciliation.support import (
    DAY,
    cancel_with_approval_number,
    direct_entry,
    reconcile,
    reconcile_file,
    sent_inquiry,
)


async def test_an_inquiry_made_directly_at_the_center_raises_the_critical_alert(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    through_gateway = await sent_inquiry(client, demo, await person(ctx, index=0))
    bypass = await direct_entry(ctx, await person(ctx, index=1), at=clock.now())

    run = await reconcile(client, demo)

    assert run["clean"] is False
    assert (run["center_entries"], run["gateway_entries"]) == (2, 1)
    assert [(f["center_inquiry_id"], f["via"], f["terminal_id"]) for f in run["unmatched_center"]] == [
        (bypass["center_inquiry_id"], "direct", "CENTER-T9")
    ]
    assert run["unmatched_gateway"] == []
    assert run["mismatched"] == []
    assert [(a["severity"], a["code"], a["count"]) for a in run["alerts"]] == [
        ("critical", "INQUIRY_BYPASSED_GATEWAY", 1),
        ("high", "DAILY_COUNT_MISMATCH", 1),
    ]
    # RC-2: the day's counts differ by the bypassing inquiry.
    assert [
        (d["business_date"], d["center_inquiries"], d["gateway_inquiries"], d["balanced"])
        for d in run["by_day"]
    ] == [("2026-11-24", 2, 1, False)]
    usage = {(t["branch_code"], t["terminal_id"]): t for t in run["by_terminal"]}
    gateway_terminal = usage[("001", through_gateway["terminal_id"])]
    assert (gateway_terminal["center_inquiries"], gateway_terminal["gateway_inquiries"]) == (1, 1)
    assert (
        usage[("001", "CENTER-T9")]["direct_entries"],
        usage[("001", "CENTER-T9")]["gateway_inquiries"],
    ) == (1, 0)

    alert = next(
        e for e in await ledger_events(ctx, action="reconciliation.alert") if "CRITICAL" in e.details.upper()
    )
    assert alert.outcome == "alert"
    details = json.loads(alert.details)
    assert details == {
        "severity": "critical",
        "code": "INQUIRY_BYPASSED_GATEWAY",
        "count": 1,
        "center_inquiry_ids": [bypass["center_inquiry_id"]],
    }
    # No name or birth date in the ledger, the stored findings or the answer.
    subject = await person(ctx, index=1)
    assert subject["name_kana"] not in alert.details
    assert subject["name_kana"] not in json.dumps(run, ensure_ascii=False)
    assert "shokai_reconciliation_bypassed_entries_total 1.0" in ctx.metrics.render().decode()

    # The run is stored: reading it again gives the same findings and alerts, and the read is logged.
    stored = await client.get(
        f"/reconciliation/center/{run['id']}", headers=await as_user(client, demo, "auditor")
    )
    assert stored.status_code == 200
    assert stored.json()["unmatched_center"] == run["unmatched_center"]
    assert stored.json()["alerts"] == run["alerts"]
    assert [e.actor_id for e in await ledger_events(ctx, action="reconciliation.read")] == ["auditor"]
    listed = await client.get("/reconciliation/center", headers=await as_user(client, demo, "auditor"))
    assert [item["id"] for item in listed.json()["items"]] == [run["id"]]
    [list_read] = await ledger_events(ctx, action="reconciliation.runs_listed")
    assert (list_read.actor_id, json.loads(list_read.details)["run_ids"]) == ("auditor", [run["id"]])


async def test_with_nothing_bypassed_the_report_is_clean(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    kept = await sent_inquiry(client, demo, await person(ctx, index=0))
    withdrawn = await sent_inquiry(client, demo, await person(ctx, index=1))
    other_branch = await sent_inquiry(client, demo, await person(ctx, index=2), operator="op002")
    await cancel_with_approval_number(client, ctx, demo, withdrawn)

    run = await reconcile(client, demo)

    assert run["clean"] is True, run["finding_counts"]
    assert run["finding_counts"] == {}
    assert run["alerts"] == []
    # Three inquiries and one cancellation at the center; three sent and one cancelled at the gateway.
    assert (run["center_entries"], run["gateway_entries"]) == (4, 4)
    for kind in ("unmatched_center", "unmatched_gateway", "undual_cancellations", "mismatched"):
        assert run[kind] == []
    assert [
        (d["center_inquiries"], d["gateway_inquiries"], d["center_cancellations"], d["balanced"])
        for d in run["by_day"]
    ] == [(3, 3, 1, True)]
    assert {(t["branch_code"], t["gateway_inquiries"]) for t in run["by_terminal"]} == {
        ("001", 2),
        ("002", 1),
    }
    assert {kept["branch_code"], other_branch["branch_code"]} == {"001", "002"}
    # The approval number the cancellation used is in branch 001's register, which balances.
    assert [(r["branch_code"], r["issued"], r["used"], r["balanced"]) for r in run["approval_registers"]] == [
        ("001", 1, 1, True)
    ]
    completed = await ledger_events(ctx, action="reconciliation.completed")
    assert [(e.actor_id, e.outcome) for e in completed] == [("auditor", "success")]


async def test_a_gateway_inquiry_the_center_never_recorded_is_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, tmp_path: Path
) -> None:
    recorded = await sent_inquiry(client, demo, await person(ctx, index=0))
    lost = await sent_inquiry(client, demo, await person(ctx, index=1))
    # The center's file as an auditor receives it, from the simulator's NDJSON export, without the line
    # of one inquiry: the center says it never received it.
    async with sim_client(ctx) as sim:
        export = await sim.get(
            "/center/v1/inquiry-record.ndjson",
            params={"member_code": ctx.settings.center_member_code, "from": DAY["from"], "to": DAY["to"]},
        )
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = export.content.splitlines()
    assert len(lines) == 2
    record_file = tmp_path / "center-record.ndjson"
    record_file.write_bytes(b"\n".join(line for line in lines if lost["id"].encode() not in line) + b"\n")

    run, view = await reconcile_file(ctx, record_file)

    assert (run.center_entries, run.gateway_entries, run.clean) == (1, 2, False)
    assert [(f.inquiry_id, f.reason) for f in view.findings["unmatched_gateway"]] == [
        (lost["id"], "inquiry_missing_at_center")
    ]
    assert view.findings["unmatched_center"] == []
    assert recorded["id"] not in {f.inquiry_id for f in view.findings["unmatched_gateway"]}
    assert [(a.severity, a.code) for a in view.alerts] == [
        ("high", "DAILY_COUNT_MISMATCH"),
        ("high", "GATEWAY_RECORD_MISSING_AT_CENTER"),
    ]


async def test_an_entry_under_another_center_id_is_a_mismatch_not_a_missing_inquiry(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, tmp_path: Path
) -> None:
    sent = await sent_inquiry(client, demo, await person(ctx, index=0))
    async with sim_client(ctx) as sim:
        export = await sim.get(
            "/center/v1/inquiry-record.ndjson",
            params={"member_code": ctx.settings.center_member_code, "from": DAY["from"], "to": DAY["to"]},
        )
    # The center's file names the inquiry by its idempotency key but under a center id of its own.
    (line,) = export.content.splitlines()
    entry = json.loads(line)
    assert entry["idempotency_key"] == sent["id"]
    entry["center_inquiry_id"] = "CI-RENUMBERED-0000000001"
    record_file = tmp_path / "center-record.ndjson"
    record_file.write_text(json.dumps(entry, ensure_ascii=False) + "\n", encoding="utf-8")

    run, view = await reconcile_file(ctx, record_file)

    # Found by its key: not missing at the center, not a bypass, but the differing center id is reported.
    assert view.findings["unmatched_gateway"] == []
    assert view.findings["unmatched_center"] == []
    assert [(f.inquiry_id, f.center_inquiry_id, f.reason) for f in view.findings["mismatched"]] == [
        (sent["id"], "CI-RENUMBERED-0000000001", "center_id")
    ]
    assert run.finding_counts == {"mismatched": 1}


async def test_an_entry_about_another_person_than_the_gateway_asked_about_is_a_mismatch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, tmp_path: Path
) -> None:
    sent = await sent_inquiry(client, demo, await person(ctx, index=0))
    other = await sent_inquiry(client, demo, await person(ctx, index=1))
    async with sim_client(ctx) as sim:
        export = await sim.get(
            "/center/v1/inquiry-record.ndjson",
            params={"member_code": ctx.settings.center_member_code, "from": DAY["from"], "to": DAY["to"]},
        )
    # Same key, same center id, but the center recorded the other inquiry's person for the first one.
    entries = [json.loads(line) for line in export.content.splitlines()]
    by_key = {entry["idempotency_key"]: entry for entry in entries}
    by_key[sent["id"]]["subject"] = by_key[other["id"]]["subject"]
    record_file = tmp_path / "center-record.ndjson"
    record_file.write_text(
        "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries), encoding="utf-8"
    )

    run, view = await reconcile_file(ctx, record_file)

    assert [(f.inquiry_id, f.reason) for f in view.findings["mismatched"]] == [(sent["id"], "subject")]
    assert run.finding_counts == {"mismatched": 1}


async def test_a_broken_record_file_is_refused_by_line_number_and_leaves_no_half_run(
    ctx: AppContext, demo: DemoCredentials, tmp_path: Path
) -> None:
    record_file = tmp_path / "broken.ndjson"
    record_file.write_text(
        '{"entry_id": "E1", "kind": "inquiry", "subject": {"name_kana": "ヤマダタロウ"}}\n', encoding="utf-8"
    )
    with pytest.raises(RecordFileInvalid) as refusal:
        await reconcile_file(ctx, record_file)
    assert refusal.value.code == "RECORD_FILE_INVALID"
    assert "ヤマダ" not in str(refusal.value)
    async with ctx.db.read_session() as session:
        runs = list((await session.scalars(select(ReconciliationRun))).all())
    assert [(r.state, r.failure) for r in runs] == [("failed", "file_line_1")]


async def test_cancellations_without_two_person_control_are_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    cancelled_at_center = await sent_inquiry(client, demo, await person(ctx, index=0))
    # Someone cancels the first inquiry at the center's own terminal: no gateway, no second person.
    clock.advance(minutes=5)
    direct = await direct_entry(
        ctx,
        await person(ctx, index=0),
        at=clock.now(),
        kind="cancellation",
        center_inquiry_id=cancelled_at_center["center"]["inquiry_id"],
    )
    # The second is cancelled properly, then its record is altered to show no second person.
    tampered = await sent_inquiry(client, demo, await person(ctx, index=1))
    await cancel_with_approval_number(client, ctx, demo, tampered)
    async with ctx.db.session() as session:
        await session.execute(
            update(Inquiry)
            .where(Inquiry.id == tampered["id"])
            .values(cancel_confirmer_id=Inquiry.cancelled_by)
        )
        await session.commit()

    run = await reconcile(client, demo)

    found = {(f["inquiry_id"], f["entry_id"], f["reason"]) for f in run["undual_cancellations"]}
    assert found == {
        (cancelled_at_center["id"], direct["entry_id"], "made_at_center"),
        (
            tampered["id"],
            next(f["entry_id"] for f in run["undual_cancellations"] if f["inquiry_id"] == tampered["id"]),
            "no_second_person",
        ),
    }
    assert ("high", "CANCELLATION_WITHOUT_TWO_PERSON_CONTROL", 2) in {
        (a["severity"], a["code"], a["count"]) for a in run["alerts"]
    }
    # The cancellation made at the center is not an inquiry bypassing the gateway.
    assert run["unmatched_center"] == []


async def test_service_accounts_need_the_reconcile_scope(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    def token_body(client_id: str) -> dict[str, str]:
        account = next(a for a in demo.service_accounts if a["client_id"] == client_id)
        return {"client_id": account["client_id"], "client_secret": account["client_secret"]}

    batch = (await client.post("/auth/token", json=token_body("hq-batch"))).json()["access_token"]
    hr_feed = (await client.post("/auth/token", json=token_body("hr-feed"))).json()["access_token"]

    allowed = await client.post(
        "/reconciliation/center", json=DAY, headers={"Authorization": f"Bearer {batch}"}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["requested_by"] == "service:hq-batch"
    assert allowed.json()["from"] == "2026-11-24"
    read_back = await client.get(
        f"/reconciliation/center/{allowed.json()['id']}", headers={"Authorization": f"Bearer {batch}"}
    )
    assert read_back.status_code == 200

    wrong_scope = await client.post(
        "/reconciliation/center", json=DAY, headers={"Authorization": f"Bearer {hr_feed}"}
    )
    assert wrong_scope.status_code == 403
    assert wrong_scope.json()["code"] == "FORBIDDEN"
    operator = await client.post(
        "/reconciliation/center", json=DAY, headers=await as_user(client, demo, "op001")
    )
    assert operator.status_code == 403
    backwards = await client.post(
        "/reconciliation/center",
        json={"from": "2026-11-24", "to": "2026-11-01"},
        headers={"Authorization": f"Bearer {batch}"},
    )
    assert backwards.status_code == 422
    # A period that has not begun was a stored, clean run about days with no record on either side.
    ahead = await client.post(
        "/reconciliation/center",
        json={"from": "2027-01-01", "to": "2027-01-31"},
        headers={"Authorization": f"Bearer {batch}"},
    )
    assert (ahead.status_code, ahead.json()["code"]) == (422, "BUSINESS_DATE_IN_FUTURE")
    async with ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(ReconciliationRun)) == 1


async def test_the_monthly_schedule_reconciles_the_previous_month_once(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    # 2026-12-01 01:00 JST: before the configured 02:00, nothing is due yet.
    clock.set(datetime(2026, 11, 30, 16, 0, tzinfo=UTC))
    assert await scheduler.run_once(ctx) is None
    clock.advance(hours=2)
    run = await scheduler.run_once(ctx)
    assert run is not None
    assert (run.period_from.isoformat(), run.period_to.isoformat(), run.schedule_key) == (
        "2026-11-01",
        "2026-11-30",
        "monthly:2026-11",
    )
    clock.advance(days=3)
    assert await scheduler.run_once(ctx) is None
    async with ctx.db.read_session() as session:
        runs = list((await session.scalars(select(ReconciliationRun))).all())
    assert [(r.requested_by, r.state) for r in runs] == [("system", "completed")]
    assert timedelta(days=29) == run.period_to - run.period_from


async def test_what_the_center_recorded_before_midnight_is_counted_on_the_centers_day(
    client: httpx.AsyncClient,
    demo: DemoCredentials,
    ctx: AppContext,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RC-1, RC-2: the center records an inquiry at 23:59:58 and its answer is stored after midnight; a
    cancellation confirmed before midnight reaches the center after it. Each side of each day then still
    counts the same entries: no false inquiry missing at the center, no false daily count mismatch."""
    clock.set(datetime(2026, 11, 24, 14, 59, 58, tzinfo=UTC))  # 23:59:58 in Tokyo
    link = ctx.center
    inquire, cancel = link.inquire, link.cancel

    async def answered_after_midnight(request: Any) -> Any:
        try:
            return await inquire(request)
        finally:
            clock.set(datetime(2026, 11, 24, 15, 0, 3, tzinfo=UTC))  # the answer comes back at 00:00:03

    async def delivered_after_midnight(*args: Any) -> Any:
        clock.set(datetime(2026, 11, 24, 15, 2, 0, tzinfo=UTC))  # the center was unreachable until 00:02
        return await cancel(*args)

    monkeypatch.setattr(link, "inquire", answered_after_midnight)
    withdrawn = await sent_inquiry(client, demo, await person(ctx, index=0))
    clock.set(datetime(2026, 11, 24, 14, 59, 58, tzinfo=UTC))
    operator = await as_user(client, demo, "op001")
    refused = await client.post(
        "/inquiries",
        json=draft_body(
            await person(ctx, has_transactions=False),
            purpose="credit_review",
            customer_status="existing",
            consent_document={"type": "ledger", "reference": "LEDGER-77", "obtained_on": "2026-11-01"},
            approval=a1(demo),
        ),
        headers=operator,
    )
    assert refused.json()["center"]["result_code"] == "CENTER_NO_TRADE_INFO"
    clock.set(datetime(2026, 11, 24, 14, 59, 59, tzinfo=UTC))
    monkeypatch.setattr(link, "cancel", delivered_after_midnight)
    await cancel_with_approval_number(client, ctx, demo, withdrawn)
    # The center's own record: both inquiries on the 24th, the cancellation on the 25th.
    recorded = sorted((e["kind"], tokyo_day(e["at"])) for e in await center_record(ctx))
    assert recorded == [("cancellation", "2026-11-25"), ("inquiry", "2026-11-24"), ("inquiry", "2026-11-24")]

    clock.set(datetime(2026, 11, 26, 1, 0, tzinfo=UTC))
    for day in ("2026-11-24", "2026-11-25"):
        run = await reconcile(client, demo, period={"from": day, "to": day})
        assert run["clean"] is True, (day, run["finding_counts"], run["alerts"])
    both = await reconcile(client, demo, period={"from": "2026-11-24", "to": "2026-11-25"})
    assert both["clean"] is True, both["finding_counts"]
    assert [
        (d["business_date"], d["center_inquiries"], d["gateway_inquiries"], d["center_cancellations"])
        for d in both["by_day"]
    ] == [("2026-11-24", 2, 2, 0), ("2026-11-25", 0, 0, 1)]
    assert (both["center_entries"], both["gateway_entries"]) == (3, 3)


def tokyo_day(at: str) -> str:
    return datetime.fromisoformat(at).astimezone(TOKYO).date().isoformat()


async def test_a_database_upgraded_from_before_the_centers_time_was_kept_reconciles_the_same(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """Migration 0014 fills the center's time of record in for what was sent before it: the center's
    received_at where its answer is kept, the delivery time of a cancellation."""
    await sent_inquiry(client, demo, await person(ctx, index=0))
    withdrawn = await sent_inquiry(client, demo, await person(ctx, index=1))
    await cancel_with_approval_number(client, ctx, demo, withdrawn)

    async def recorded() -> list[tuple[Any, ...]]:
        async with ctx.db.read_session() as session:
            inquiries = await session.execute(
                select(Inquiry.id, Inquiry.center_recorded_at).order_by(Inquiry.id)
            )
            messages = await session.execute(
                select(OutboxMessage.idempotency_key, OutboxMessage.center_recorded_at).order_by(
                    OutboxMessage.idempotency_key
                )
            )
            return [tuple(row) for row in (*inquiries, *messages)]

    as_written = await recorded()
    assert len(as_written) == 5 and all(at is not None for _, at in as_written)
    url = ctx.settings.resolved_database_url()
    await asyncio.to_thread(downgrade, url, "0013", keyring=ctx.keyring)
    await asyncio.to_thread(upgrade, url, keyring=ctx.keyring)
    assert await recorded() == as_written

    run = await reconcile(client, demo)
    assert run["clean"] is True and (run["center_entries"], run["gateway_entries"]) == (3, 3)

"""Corrections of inquiry records in the center reconciliation (CC-1, RC-1): the center's corrections are
matched to the gateway's; one made at the center is reported like a bypass; one without a second person
like an undual cancellation; one the center never recorded as missing there."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.inquiry.models import InquiryCorrection
from tests.inquiry.support import a1, as_user, center_record, person, sim_client
from tests.reconciliation.support import DAY, direct_entry, reconcile, reconcile_file, sent_inquiry

GUARANTOR = {
    "purpose": "guarantor",
    "consent_document": {"type": "ledger", "reference": "L-0001", "obtained_on": "2026-11-20"},
}


async def corrected_through_gateway(
    client: httpx.AsyncClient, ctx: AppContext, demo: DemoCredentials, inquiry: dict[str, Any]
) -> None:
    """CC-1 done right: the operator corrects the purpose with a confirmer's approval; wait for the center."""
    corrected = await client.post(
        f"/inquiries/{inquiry['id']}/correct",
        json={"reason": "目的入力誤り", "corrections": GUARANTOR, "approval": a1(demo)},
        headers=await as_user(client, demo, "op001"),
    )
    assert corrected.status_code == 200, corrected.text
    for _ in range(100):
        if any(e["kind"] == "correction" for e in await center_record(ctx)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the correction never reached the center")


async def test_a_gateway_correction_matches_the_centers_and_the_report_stays_clean(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await sent_inquiry(client, demo, await person(ctx, index=0))
    await corrected_through_gateway(client, ctx, demo, inquiry)

    run = await reconcile(client, demo)

    assert run["clean"] is True, run["finding_counts"]
    # One inquiry and one correction at the center; the same at the gateway.
    assert (run["center_entries"], run["gateway_entries"]) == (2, 2)


async def test_a_correction_made_at_the_center_is_reported_like_a_bypass(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    inquiry = await sent_inquiry(client, demo, await person(ctx, index=0))
    clock.advance(minutes=5)
    direct = await direct_entry(
        ctx,
        await person(ctx, index=0),
        at=clock.now(),
        kind="correction",
        center_inquiry_id=inquiry["center"]["inquiry_id"],
    )

    run = await reconcile(client, demo)

    assert [(f["entry_kind"], f["entry_id"], f["reason"]) for f in run["unmatched_center"]] == [
        ("correction", direct["entry_id"], "made_at_center")
    ]
    assert ("critical", "INQUIRY_BYPASSED_GATEWAY", 1) in {
        (a["severity"], a["code"], a["count"]) for a in run["alerts"]
    }
    # A correction is not a cancellation: the cancellation report stays empty.
    assert run["undual_cancellations"] == []


async def test_a_correction_without_a_second_person_is_reported_like_an_undual_cancellation(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry = await sent_inquiry(client, demo, await person(ctx, index=0))
    await corrected_through_gateway(client, ctx, demo, inquiry)
    # The correction's record is altered afterwards to show no second person.
    async with ctx.db.session() as session:
        await session.execute(
            update(InquiryCorrection)
            .where(InquiryCorrection.inquiry_id == inquiry["id"])
            .values(confirmer_id=InquiryCorrection.corrected_by)
        )
        await session.commit()

    run = await reconcile(client, demo)

    assert [(f["inquiry_id"], f["entry_kind"], f["reason"]) for f in run["undual_cancellations"]] == [
        (inquiry["id"], "correction", "no_second_person")
    ]
    assert ("high", "CANCELLATION_WITHOUT_TWO_PERSON_CONTROL", 1) in {
        (a["severity"], a["code"], a["count"]) for a in run["alerts"]
    }
    assert run["unmatched_center"] == []


async def test_a_gateway_correction_the_center_never_recorded_is_reported(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, tmp_path: Path
) -> None:
    inquiry = await sent_inquiry(client, demo, await person(ctx, index=0))
    await corrected_through_gateway(client, ctx, demo, inquiry)
    # The center's file without its correction line.
    async with sim_client(ctx) as sim:
        export = await sim.get(
            "/center/v1/inquiry-record.ndjson",
            params={"member_code": ctx.settings.center_member_code, "from": DAY["from"], "to": DAY["to"]},
        )
    lines = [line for line in export.content.splitlines() if b'"correction"' not in line]
    assert len(lines) == 1
    record_file = tmp_path / "center-record.ndjson"
    record_file.write_bytes(b"\n".join(lines) + b"\n")

    _run, view = await reconcile_file(ctx, record_file)

    assert [(f.inquiry_id, f.entry_kind, f.reason) for f in view.findings["unmatched_gateway"]] == [
        (inquiry["id"], "correction", "correction_missing_at_center")
    ]
    assert ("high", "GATEWAY_RECORD_MISSING_AT_CENTER") in {(a.severity, a.code) for a in view.alerts}

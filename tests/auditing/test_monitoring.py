"""Monitoring health (LG-4): job runs with counts and output hashes, the lists schedule recording its runs,
the operating-status metrics, and JSON log lines with the request id and no personal data."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from sqlalchemy import select

from app.audit import reports
from app.center.simulator import simulator_state
from app.center.simulator.schemas import FaultSettings
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DemoCredentials
from app.lists import scheduler as list_schedule
from app.lists import service as lists_service
from app.monitoring import scheduler as monitoring
from app.monitoring.jobs import output_digest, record_job_run
from app.monitoring.logs import REQUEST_ID, JsonFormatter
from app.monitoring.models import JobRun
from app.reconciliation import scheduler as reconciliation_schedule
from tests.auditing.support import inquire_with_credentials, login_at, release, subjects
from tests.auditing.test_anomalies import NO_TRADE
from tests.helpers import ledger_events


async def test_a_job_run_is_stored_with_counts_and_hash_and_is_in_the_ledger(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    started = clock.now()
    clock.advance(seconds=3)
    digest = output_digest(["b", "a"])
    assert digest == output_digest(["a", "b"])
    run = await record_job_run(
        ctx,
        job="reconciliation.center",
        started_at=started,
        counts={"center_entries": 4},
        output_sha256=digest,
    )
    (event,) = [
        e for e in await ledger_events(ctx, action="job.run") if e.object_id == "reconciliation.center"
    ]
    details = json.loads(event.details)
    assert details["run_id"] == run.id
    assert details["counts"] == {"center_entries": 4} and details["output_sha256"] == digest
    async with ctx.db.read_session() as session:
        stored = await session.get(JobRun, run.id)
    assert stored is not None and (stored.finished_at - stored.started_at).total_seconds() == 3


async def test_the_lists_schedule_records_its_runs(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))
    created = await list_schedule.run_once(ctx)
    assert created > 0
    assert await list_schedule.run_once(ctx) == 0  # nothing new: no second job run
    async with ctx.db.read_session() as session:
        runs = list((await session.scalars(select(JobRun).where(JobRun.job == "lists.generate"))).all())
    assert len(runs) == 1
    assert runs[0].counts["lists_created"] == created and runs[0].output_sha256


async def test_a_reconciliation_is_a_job_run_with_its_counts_and_output_hash(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    # The monthly schedule, as the service runs it: 2026-12-01 03:00 JST reconciles November.
    clock.set(datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    run = await reconciliation_schedule.run_once(ctx)
    assert run is not None and run.state == "completed"
    async with ctx.db.read_session() as session:
        (job,) = (await session.scalars(select(JobRun).where(JobRun.job == "reconciliation.center"))).all()
    assert job.outcome == "success" and job.output_sha256
    assert job.counts == {
        "center_entries": run.center_entries,
        "gateway_entries": run.gateway_entries,
        "findings": sum(run.finding_counts.values()),
    }
    (event,) = [
        e for e in await ledger_events(ctx, action="job.run") if e.object_id == "reconciliation.center"
    ]
    assert json.loads(event.details)["run_id"] == job.id


class Broken(RuntimeError):
    pass


async def test_failed_scheduled_runs_are_recorded_with_the_error_class_once(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise Broken("ヤマダ タロウ 1980-01-01")

    clock.set(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # 10:00 JST: lists and the daily run are due
    monkeypatch.setattr(lists_service, "generate", broken)
    monkeypatch.setattr(reports, "run_report", broken)
    for _ in range(2):  # the schedules retry every tick; a failure that repeats is recorded once
        with pytest.raises(Broken):
            await list_schedule.run_once(ctx)
        with pytest.raises(Broken):
            await monitoring.run_daily(ctx)

    async def runs() -> list[tuple[str, str, str | None]]:
        async with ctx.db.read_session() as session:
            rows = (await session.scalars(select(JobRun).order_by(JobRun.id))).all()
        return [(r.job, r.outcome, r.error) for r in rows]

    assert await runs() == [
        ("lists.generate", "failure", "Broken"),
        ("audit.anomalies", "failure", "Broken"),
    ]
    # The ledger carries the class, never the message (it could carry a name).
    failed = [e for e in await ledger_events(ctx, action="job.run") if e.outcome == "failure"]
    assert len(failed) == 2 and all("ヤマダ" not in e.details for e in failed)
    assert not await ledger_events(ctx, action="monitoring.heartbeat")

    monkeypatch.undo()
    assert await list_schedule.run_once(ctx) > 0
    assert await monitoring.run_daily(ctx) is True
    assert [(job, outcome) for job, outcome, _ in await runs()][2:] == [
        ("lists.generate", "success"),
        ("audit.anomalies", "success"),
        ("audit.confirmer_usage", "success"),
    ]


async def test_metrics_show_inquiries_by_state_approvals_and_the_ledger(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    person, other = await subjects(ctx, 2)
    (stranger,) = await subjects(ctx, 1, has_transactions=False)
    op001 = await login_at(client, demo, "op001")
    await inquire_with_credentials(client, demo, op001, "cf001", person)
    released = await inquire_with_credentials(client, demo, op001, "cf001", other)
    await release(client, demo, "cf001b", await login_at(client, demo, "cf001b", index=1), released["id"])
    refused = await inquire_with_credentials(client, demo, op001, "cf001", stranger, **NO_TRADE)
    assert refused["center"]["result_code"] == "CENTER_NO_TRADE_INFO"
    text = (await client.get("/metrics")).text
    assert 'shokai_inquiries{state="held"} 1.0' in text
    assert "shokai_approvals 3.0" in text
    assert "shokai_releases 1.0" in text
    assert 'shokai_center_errors_total{code="NO_TRADE_INFO",kind="inquire"} 1.0' in text
    assert "shokai_overdue_lists" in text
    assert "shokai_audit_ledger_head_seq" in text and "shokai_audit_checkpoint_age_seconds" in text
    assert 'shokai_center_call_seconds_count{kind="inquire"}' in text
    assert 'shokai_outbox_pending{kind="inquire"} 0.0' in text  # everything sent was answered
    assert 'shokai_outbox_oldest_pending_seconds{kind="inquire"} 0.0' in text
    assert person["name_kana"] not in text


async def test_metrics_show_how_long_the_oldest_message_has_waited_for_the_center(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    """An inquiry the center keeps failing stays queued (never given up on: the center may have it);
    the age of the oldest undelivered message is what operations alert on (docs/operations.md)."""
    (person,) = await subjects(ctx, 1)
    simulator_state(ctx.center_simulator).faults.apply(FaultSettings(error_rate=1.0))
    op001 = await login_at(client, demo, "op001")
    queued = await inquire_with_credentials(client, demo, op001, "cf001", person)
    assert queued["status"] == "queued"
    clock.advance(seconds=600)
    text = (await client.get("/metrics")).text
    assert 'shokai_outbox_pending{kind="inquire"} 1.0' in text
    assert 'shokai_outbox_oldest_pending_seconds{kind="inquire"} 600.0' in text
    assert 'shokai_outbox_pending{kind="cancel"} 0.0' in text


def test_json_log_lines_carry_the_request_id_and_no_exception_message() -> None:
    token = REQUEST_ID.set("req-1234abcd")
    try:
        try:
            raise ValueError("ヤマダ タロウ 1980-01-01")
        except ValueError:
            record = logging.LogRecord("shokai.test", logging.ERROR, __file__, 1, "insert failed", None, None)
            import sys

            record.exc_info = sys.exc_info()
            record.code = "LEDGER_UNAVAILABLE"
            record.name_kana = "ヤマダ タロウ"
        line = orjson.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "req-1234abcd"
    assert line["message"] == "insert failed" and line["code"] == "LEDGER_UNAVAILABLE"
    assert line["exception"] == "ValueError" and line["stack"]
    assert "ヤマダ" not in json.dumps(line, ensure_ascii=False)

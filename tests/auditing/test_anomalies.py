"""Anomaly analysis (LG-3) and the confirmer-usage report (AU-8) over a scripted stretch of branch life:
every planted pattern is flagged, a clean day flags nothing, runs are stored and acknowledged."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from app.audit.models import AuditReportRun
from app.authz import directory
from app.clock import ManualClock
from app.context import AppContext
from app.demo import DEMO_ACTOR, DemoCredentials
from app.monitoring import scheduler as monitoring
from app.monitoring.models import JobRun
from tests.auditing.support import inquire_with_credentials, inquire_with_number, login_at, release, subjects
from tests.helpers import ledger_events

HOLIDAY = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 11:00 JST, 勤労感謝の日 (Monday)
TUESDAY = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 10:00 JST
NO_TRADE = {
    "purpose": "credit_review",
    "customer_status": "existing",
    "consent_document": {"type": "ledger", "reference": "LEDGER-0042", "obtained_on": "2026-11-10"},
}


def by_kind(findings: list[dict[str, Any]]) -> dict[str, set[tuple[str, str]]]:
    kinds: dict[str, set[tuple[str, str]]] = {}
    for finding in findings:
        kinds.setdefault(finding["kind"], set()).add((finding["subject_type"], finding["subject_id"]))
    return kinds


async def reports(
    client: httpx.AsyncClient, demo: DemoCredentials, day_from: str, day_to: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    auditor = await login_at(client, demo, "auditor")
    params = {"from": day_from, "to": day_to}
    anomalies = await client.get("/audit/anomalies", params=params, headers=auditor)
    assert anomalies.status_code == 200, anomalies.text
    usage = await client.get("/audit/confirmer-usage", params=params, headers=auditor)
    assert usage.status_code == 200, usage.text
    return anomalies.json(), usage.json()


async def test_a_clean_day_flags_nothing(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(TUESDAY)
    people = await subjects(ctx, 3)
    op001 = await login_at(client, demo, "op001", index=0)
    # Confirmers work at their own terminal and take their time over the consent document.
    cf001 = await login_at(client, demo, "cf001", index=1)
    cf001b = await login_at(client, demo, "cf001b", index=1)
    for subject in people[:2]:
        created = await client.post("/inquiries", json={**_draft(subject)}, headers=op001)
        assert created.status_code == 201
        clock.advance(minutes=2)
        issued = await client.post(
            f"/inquiries/{created.json()['id']}/approval-numbers", json={}, headers=cf001
        )
        submitted = await client.post(
            f"/inquiries/{created.json()['id']}/submit",
            json={
                "approval": {"method": "approval_number", "approval_number": issued.json()["approval_number"]}
            },
            headers=op001,
        )
        assert submitted.json()["status"] == "held"
        await release(client, demo, "cf001b", cf001b, created.json()["id"])
        clock.advance(minutes=5)
    op002 = await login_at(client, demo, "op002")
    await inquire_with_credentials(client, demo, op002, "cf002", people[2])

    anomalies, usage = await reports(client, demo, "2026-11-24", "2026-11-24")
    assert anomalies["findings"] == []
    assert anomalies["run"]["findings_count"] == 0
    assert {c["confirmer_id"]: c["flags"] for c in usage["confirmers"]} == {
        "cf001": [],
        "cf001b": [],
        "cf002": [],
    }
    cf001_usage = next(c for c in usage["confirmers"] if c["confirmer_id"] == "cf001")
    assert cf001_usage["approvals_by_method"] == {"approval_number": 2}
    assert cf001_usage["per_day"] == [{"day": "2026-11-24", "approvals": 2, "releases": 0}]
    assert cf001_usage["terminals"] == ["T001-02"]
    assert next(c for c in usage["confirmers"] if c["confirmer_id"] == "cf002")["in_operator_session"] == 1


def _draft(subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    from tests.inquiry.support import draft_body

    return draft_body(subject, **overrides)


async def test_a_scripted_stretch_flags_every_planted_pattern(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    # Thresholds are configuration: a late view here is one more than a week after release.
    ctx.settings.audit_late_view_days = 7
    people = await subjects(ctx, 22)
    strangers = await subjects(ctx, 3, has_transactions=False)

    # Baseline: op002 sends one inquiry a day, 16–20 November; the first one's response is released.
    first_of_op002 = None
    for day in range(5):
        clock.set(datetime(2026, 11, 16, 1, 0, tzinfo=UTC) + timedelta(days=day))
        op002 = await login_at(client, demo, "op002")
        sent = await inquire_with_credentials(client, demo, op002, "cf002", people[day])
        if first_of_op002 is None:
            first_of_op002 = sent
            cf002 = await login_at(client, demo, "cf002", index=1)
            await release(client, demo, "cf002", cf002, sent["id"])
    assert first_of_op002 is not None

    # The holiday: op001 works on 勤労感謝の日.
    clock.set(HOLIDAY)
    op001 = await login_at(client, demo, "op001", index=0)
    await inquire_with_credentials(client, demo, op001, "cf001b", people[5])

    # Tuesday: op002 sends twelve inquiries (their own baseline is one a day), all approved by cf002b;
    # one of them is about a person op001 also looks up today; op002 reads a week-old response.
    clock.set(TUESDAY)
    op002 = await login_at(client, demo, "op002")
    for index in range(6, 18):
        await inquire_with_credentials(client, demo, op002, "cf002b", people[index])
    assert (await client.get(f"/inquiries/{first_of_op002['id']}/response", headers=op002)).status_code == 200

    # cf001 issues an approval number on op001's own terminal, seconds after the draft was entered.
    op001 = await login_at(client, demo, "op001", index=0)
    cf001_at_operator = await login_at(client, demo, "cf001", index=0)
    shared = await inquire_with_number(client, op001, cf001_at_operator, people[6])
    # op001 probes three people the bank has no business with (CENTER_NO_TRADE_INFO).
    for stranger in strangers:
        refused = await inquire_with_credentials(client, demo, op001, "cf001b", stranger, **NO_TRADE)
        assert refused["center"]["result_code"] == "CENTER_NO_TRADE_INFO"

    # cf001 is also a confirmer at branch 002 and approves there ten minutes after approving at 001.
    async with ctx.db.session() as session:
        await directory.grant_role(
            session, ctx=ctx, actor=DEMO_ACTOR, user_id="cf001", role="confirmer", branch_code="002"
        )
        await session.commit()
    clock.advance(minutes=10)
    op002 = await login_at(client, demo, "op002", index=0)
    cf001_at_002 = await login_at(client, demo, "cf001", branch="002", index=1)
    clock.advance(minutes=1)
    await inquire_with_number(client, op002, cf001_at_002, people[18])

    # Late at night (22:30 JST) op001 sends one more.
    clock.set(datetime(2026, 11, 24, 13, 30, tzinfo=UTC))
    op001 = await login_at(client, demo, "op001", index=0)
    await inquire_with_credentials(client, demo, op001, "cf001b", people[19])
    # ... and the branch manager reads the day's inquiries, names and birth dates, at 22:40.
    clock.advance(minutes=10)
    bm001 = await login_at(client, demo, "bm001")
    seen = (await client.get("/inquiries", headers=bm001)).json()["items"]
    assert seen and all(item["subject"] is not None for item in seen)

    anomalies, usage = await reports(client, demo, "2026-11-23", "2026-11-24")
    kinds = by_kind(anomalies["findings"])
    assert ("user", "op001") in kinds["non_business_day_activity"]
    assert ("terminal", "T001-01") in kinds["non_business_day_activity"]
    assert ("user", "op001") in kinds["night_activity"] and ("terminal", "T001-01") in kinds["night_activity"]
    assert kinds["frequency_outlier"] == {("user", "op002")}
    assert kinds["repeated_no_trade_info"] == {("user", "op001")}
    assert kinds["late_response_view"] == {("user", "op002")}
    (shared_subject,) = [f for f in anomalies["findings"] if f["kind"] == "subject_multiple_operators"]
    assert shared_subject["details"]["operators"] == ["op001", "op002"]
    # The person is named by their keyed pseudonym only.
    assert shared_subject["subject_id"].count(":") == 1
    assert shared["subject"]["name_kana"] not in str(shared_subject)
    # Nobody else was at work at night or on the holiday (cf001b's credentials were typed into op001's
    # session; the confirmer-usage report counts that below).
    # Reading names at night is activity too (LG-3: inquiries, views and prints).
    assert {s for s in kinds["night_activity"] if s[0] == "user"} == {("user", "op001"), ("user", "bm001")}
    assert {s for s in kinds["non_business_day_activity"] if s[0] == "user"} == {("user", "op001")}

    flags = {c["confirmer_id"]: set(c["flags"]) for c in usage["confirmers"]}
    assert {"same_terminal_as_operator", "quick_approval", "two_branches"} <= flags["cf001"]
    assert "pair_concentration" in flags["cf002b"]
    assert "off_hours" in flags["cf001b"]
    assert "cf002" not in flags  # not active in the period
    cf001 = next(c for c in usage["confirmers"] if c["confirmer_id"] == "cf001")
    assert cf001["two_branches"][0]["from_branch"] == "001" and cf001["two_branches"][0]["to_branch"] == "002"
    assert {"T001-01", "T002-02"} <= set(cf001["terminals"])
    pair = next(p for p in next(c for c in usage["confirmers"] if c["confirmer_id"] == "cf002b")["pairs"])
    assert (pair["operator_id"], pair["approvals"], pair["concentrated"]) == ("op002", 12, True)

    # Both runs are stored, hashed and on the record; no names anywhere in the findings.
    async with ctx.db.read_session() as session:
        runs = list(
            (await session.scalars(select(AuditReportRun).order_by(AuditReportRun.generated_at))).all()
        )
    assert [r.kind for r in runs if r.trigger == "on_demand"] == ["anomalies", "confirmer_usage"]
    for subject in [*people, *strangers]:
        assert all(subject["name_kana"] not in r.findings for r in runs)
    generated = await ledger_events(ctx, action="audit.report_generated")
    assert {e.object_id for e in generated} >= {anomalies["run"]["id"], usage["run"]["id"]}


async def test_runs_are_acknowledged_once_by_an_auditor_and_branch_managers_see_their_branch(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))  # 21:00 JST
    people = await subjects(ctx, 2)
    await inquire_with_credentials(client, demo, await login_at(client, demo, "op001"), "cf001", people[0])
    await inquire_with_credentials(client, demo, await login_at(client, demo, "op002"), "cf002", people[1])

    bm001 = await login_at(client, demo, "bm001")
    own = await client.get(
        "/audit/anomalies",
        params={"from": "2026-11-24", "to": "2026-11-24", "branch_code": "001"},
        headers=bm001,
    )
    assert own.status_code == 200, own.text
    assert own.json()["findings"] and all("001" in f["branch_codes"] for f in own.json()["findings"])
    assert {f["subject_id"] for f in own.json()["findings"]} == {"op001", "T001-01"}
    other = await client.get(
        "/audit/anomalies",
        params={"from": "2026-11-24", "to": "2026-11-24", "branch_code": "002"},
        headers=bm001,
    )
    assert other.status_code == 403
    unscoped = await client.get(
        "/audit/anomalies", params={"from": "2026-11-24", "to": "2026-11-24"}, headers=bm001
    )
    assert unscoped.status_code == 422
    # A period that has not begun stored a report for the auditors to acknowledge, about nothing.
    ahead = await client.get(
        "/audit/anomalies",
        params={"from": "2027-01-01", "to": "2027-01-31", "branch_code": "001"},
        headers=bm001,
    )
    assert (ahead.status_code, ahead.json()["code"]) == (422, "BUSINESS_DATE_IN_FUTURE")
    assert (
        await client.get(
            "/audit/confirmer-usage", params={"from": "2026-11-24", "to": "2026-11-24"}, headers=bm001
        )
    ).status_code == 403

    auditor = await login_at(client, demo, "auditor")
    run = (
        await client.get(
            "/audit/anomalies", params={"from": "2026-11-24", "to": "2026-11-24"}, headers=auditor
        )
    ).json()["run"]
    assert run["acknowledged_by"] is None
    refused = await client.post(f"/audit/reports/{run['id']}/acknowledge", json={}, headers=bm001)
    assert refused.status_code == 403
    acked = await client.post(
        f"/audit/reports/{run['id']}/acknowledge",
        json={"note": "夜間の照会は支店長に確認済み"},
        headers=auditor,
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "auditor"
    again = await client.post(f"/audit/reports/{run['id']}/acknowledge", json={}, headers=auditor)
    assert again.status_code == 409 and again.json()["code"] == "INVALID_STATE"
    pending = (await client.get("/audit/reports", params={"acknowledged": "false"}, headers=auditor)).json()[
        "items"
    ]
    assert run["id"] not in {r["id"] for r in pending}
    assert [e.object_id for e in await ledger_events(ctx, action="audit.report_acknowledged")] == [run["id"]]
    stored = await client.get(f"/audit/reports/{run['id']}", headers=auditor)
    assert stored.status_code == 200 and stored.json()["run"]["content_sha256"] == run["content_sha256"]
    # Reading the stored runs, listed or one by one, is itself on the record.
    listed = await ledger_events(ctx, action="audit.reports_listed")
    assert [e.actor_id for e in listed] == ["auditor"]
    assert json.loads(listed[0].details)["acknowledged"] is False
    read = await ledger_events(ctx, action="audit.report_read")
    assert [(e.actor_id, e.object_id) for e in read] == [("auditor", run["id"])]
    bad_period = await client.get(
        "/audit/anomalies", params={"from": "2026-11-25", "to": "2026-11-24"}, headers=auditor
    )
    assert bad_period.status_code == 422


async def test_the_daily_run_stores_yesterdays_reports_and_a_heartbeat_once(
    ctx: AppContext, demo: DemoCredentials, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 25, 0, 30, tzinfo=UTC))  # 09:30 JST
    assert await monitoring.run_daily(ctx) is True
    assert await monitoring.run_daily(ctx) is False
    async with ctx.db.read_session() as session:
        runs = list((await session.scalars(select(AuditReportRun))).all())
        jobs = list((await session.scalars(select(JobRun).order_by(JobRun.id))).all())
    assert sorted((r.kind, r.schedule_key, r.trigger) for r in runs) == [
        ("anomalies", "anomalies:2026-11-24", "scheduled"),
        ("confirmer_usage", "confirmer_usage:2026-11-24", "scheduled"),
    ]
    assert [j.job for j in jobs] == ["audit.anomalies", "audit.confirmer_usage"]
    assert all(j.output_sha256 and j.outcome == "success" for j in jobs)
    heartbeats = await ledger_events(ctx, action="monitoring.heartbeat")
    assert len(heartbeats) == 1
    assert '"audit.anomalies"' in heartbeats[0].details


async def test_a_branch_managers_report_names_only_their_own_branchs_operators(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext, clock: ManualClock
) -> None:
    clock.set(TUESDAY)
    (shared,) = await subjects(ctx, 1)
    # The same person looked up by op001 at branch 001 and by op002 at branch 002.
    await inquire_with_credentials(client, demo, await login_at(client, demo, "op001"), "cf001", shared)
    await inquire_with_credentials(client, demo, await login_at(client, demo, "op002"), "cf002", shared)
    period = {"from": "2026-11-24", "to": "2026-11-24"}

    auditor = await login_at(client, demo, "auditor")
    bank_wide = (await client.get("/audit/anomalies", params=period, headers=auditor)).json()
    (finding,) = [f for f in bank_wide["findings"] if f["kind"] == "subject_multiple_operators"]
    assert finding["details"]["operators"] == ["op001", "op002"]
    assert finding["branch_codes"] == ["001", "002"] and finding["count"] == 2

    bm001 = await login_at(client, demo, "bm001")
    own = await client.get("/audit/anomalies", params={**period, "branch_code": "001"}, headers=bm001)
    assert own.status_code == 200, own.text
    (scoped,) = [f for f in own.json()["findings"] if f["kind"] == "subject_multiple_operators"]
    assert scoped["subject_id"] == finding["subject_id"]
    assert scoped["details"] == {"operators": ["op001"]}
    assert scoped["branch_codes"] == ["001"] and scoped["count"] == 1
    # Nothing of branch 002's staff anywhere in the manager's report, stored or shown.
    assert "op002" not in json.dumps(own.json())
    stored = await client.get(f"/audit/reports/{own.json()['run']['id']}", headers=bm001)
    assert stored.status_code == 200 and "op002" not in stored.text


async def test_a_report_period_outside_the_business_calendar_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    """ER-1: year 1 or 9999 has no JST midnight in UTC; it was a 500, now 422 like every other date."""
    auditor = await login_at(client, demo, "auditor")
    for day in ("0001-01-01", "9999-12-31"):
        for path in ("/audit/anomalies", "/audit/confirmer-usage"):
            refused = await client.get(path, params={"from": day, "to": day}, headers=auditor)
            assert (refused.status_code, refused.json()["code"]) == (422, "VALIDATION_ERROR"), (path, day)
    async with ctx.db.read_session() as session:
        periods = {
            (run.period_from.year, run.period_to.year)
            for run in await session.scalars(select(AuditReportRun))
        }
    assert not periods & {(1, 1), (9999, 9999)}


async def test_the_auditor_pages_through_every_unacknowledged_report_while_acknowledging_them(
    client: httpx.AsyncClient, demo: DemoCredentials, clock: ManualClock
) -> None:
    """LG-3 (found by an API review): the list's cursor was an offset, so acknowledging the reports of
    one page moved the next page past two that were never shown — and never acknowledged."""
    auditor = await login_at(client, demo, "auditor")
    made: set[str] = set()
    for day in range(16, 22):  # six runs, one a minute apart
        clock.advance(minutes=1)
        response = await client.get(
            "/audit/anomalies", params={"from": f"2026-11-{day}", "to": f"2026-11-{day}"}, headers=auditor
        )
        assert response.status_code == 200, response.text
        made.add(response.json()["run"]["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"acknowledged": "false", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/audit/reports", params=params, headers=auditor)).json()
        for item in page["items"]:
            seen.append(item["id"])
            acked = await client.post(f"/audit/reports/{item['id']}/acknowledge", json={}, headers=auditor)
            assert acked.status_code == 200, acked.text
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and made <= set(seen)
    left = (await client.get("/audit/reports", params={"acknowledged": "false"}, headers=auditor)).json()
    assert left["items"] == []
    bad = await client.get("/audit/reports", params={"cursor": "no-such-run"}, headers=auditor)
    assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR")

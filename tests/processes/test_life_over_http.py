"""The guarded inquiry's whole life over real HTTP, gateway and center as separate processes.

VI(1)① A and B, ER-3: ``shokai demo`` + ``shokai serve`` on SQLite and PostgreSQL, pointed at
``shokai center-sim`` through SHOKAI_CENTER_URL. A branch's staff walk three inquiries:

(a) method A2 — draft, approval number from a confirmer, submit; the operator meets 423 until a second
    confirmer re-authenticates and releases the response, then reads it;
(b) method A1 — the confirmer's credentials in the POST /inquiries body send it at once;
(c) a branch whose policy has no method A (SHOKAI_POLICY_FILE) — the inquiry goes out at once, held.

The center's own inquiry record (what the bank is reconciled against) must hold exactly one entry per
inquiry sent, keyed by the inquiry id, and none for a draft that was never approved.
"""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from app.inquiry.subject import normalise_kana
from tests.processes.support import (
    MEMBER_CODE,
    Desk,
    Gateway,
    GatewayDatabase,
    Simulator,
    gateway_instance,
    process_env,
)


def _policy_without_a_for_branch_002(path: Path) -> Path:
    policy: dict[str, Any] = json.loads(
        resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    )
    policy["check_methods"]["branches"] = {"002": ["B", "C", "D"]}
    policy["version"] = "2026-11-01-branch-002-without-a"
    path.write_text(json.dumps(policy, ensure_ascii=False), encoding="utf-8")
    return path


async def _life_with_an_approval_number(desk: Desk, simulator: Simulator, subject: dict[str, Any]) -> str:
    draft = await desk.draft("op001", subject)
    assert draft["status"] == "awaiting_approval"
    assert draft["approval"] is None and draft["center"] is None
    assert simulator.inquiries_per_key()[draft["id"]] == 0, "nothing reaches the center before approval"

    # The operator cannot approve their own draft.
    own = await desk.call("POST", f"/inquiries/{draft['id']}/approval-numbers", "op001", json={})
    assert own.status_code == 403

    number = await desk.approval_number("cf001", draft["id"])
    submitted = await desk.submit("op001", draft["id"], number)
    assert submitted.status_code == 200, submitted.text
    state = submitted.json()
    # The interactive submit waited for the center: the answer is in, sealed.
    assert state["status"] == "held", state
    assert state["approval"]["method"] == "approval_number"
    assert state["approval"]["confirmer_id"] == "cf001"
    assert state["response"]["state"] == "held"
    assert state["center"]["inquiry_id"]

    # The same number a second time is refused: single use.
    again = await desk.submit("op001", draft["id"], number)
    assert again.status_code in (403, 409), again.text

    held = await desk.read_response("op001", draft["id"])
    assert held.status_code == 423
    assert held.json()["code"] == "RESPONSE_HELD"
    assert "record" not in held.json()

    # Release needs a fresh password, not just the session: a wrong one is refused and recorded.
    wrong = await desk.call(
        "POST",
        f"/inquiries/{draft['id']}/release",
        "cf001b",
        json={"password": "not-the-password-1", "document_check": "match"},
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "REAUTH_FAILED"
    released = await desk.release("cf001b", draft["id"])
    assert released.status_code == 200, released.text
    assert released.json()["record"]["result"] == "found"
    identity = released.json()["record"]["record"]["identity"]
    assert normalise_kana(identity["name_kana"]) == normalise_kana(subject["name_kana"])

    read = await desk.read_response("op001", draft["id"])
    assert read.status_code == 200, read.text
    assert read.headers["cache-control"] == "no-store"
    assert read.json()["center_inquiry_id"] == state["center"]["inquiry_id"]
    after = await desk.get("op001", draft["id"])
    assert after["status"] == "released"
    assert after["response"]["released_by"] == "cf001b"
    assert after["response"]["document_check"] == "match"
    return str(draft["id"])


async def _life_with_confirmer_credentials(desk: Desk, subject: dict[str, Any]) -> str:
    approval = {
        "method": "confirmer_credentials",
        "confirmer_user_id": "cf001",
        "confirmer_password": desk.gateway.password("cf001"),
    }
    created = await desk.draft("op001", subject, approval=approval)
    assert created["status"] == "held", created
    assert created["approval"]["method"] == "confirmer_credentials"
    assert created["approval"]["confirmer_id"] == "cf001"
    held = await desk.read_response("op001", created["id"])
    assert held.status_code == 423
    released = await desk.release("cf001b", created["id"])
    assert released.status_code == 200, released.text
    assert (await desk.read_response("op001", created["id"])).status_code == 200
    return str(created["id"])


async def _life_without_method_a(desk: Desk, subject: dict[str, Any]) -> str:
    created = await desk.draft("op002", subject)
    # No confirmer before sending in this branch, but method B still seals the answer.
    assert created["status"] == "held", created
    assert created["approval"] is None
    assert created["branch_code"] == "002"
    held = await desk.read_response("op002", created["id"])
    assert held.status_code == 423 and held.json()["code"] == "RESPONSE_HELD"
    released = await desk.release("cf002", created["id"])
    assert released.status_code == 200, released.text
    assert (await desk.read_response("op002", created["id"])).status_code == 200
    return str(created["id"])


async def test_whole_life_over_http_with_the_center_as_its_own_process(
    tmp_path: Path, simulator: Simulator, gateway_db: GatewayDatabase
) -> None:
    env = process_env(
        SHOKAI_CENTER_URL=simulator.url,
        SHOKAI_POLICY_FILE=str(_policy_without_a_for_branch_002(tmp_path / "policy.json")),
        **gateway_db.env,
    )
    people = [p for p in simulator.people(40) if p["has_transactions"]]
    with gateway_instance(gateway_db.gateway_root, env=env) as gateway:
        async with httpx.AsyncClient(timeout=30) as http:
            desk = Desk(gateway, http)
            # A draft that is never approved must never reach the center.
            unapproved = await desk.draft("op001", people[3])
            sent = [
                await _life_with_an_approval_number(desk, simulator, people[0]),
                await _life_with_confirmer_credentials(desk, people[1]),
                await _life_without_method_a(desk, people[2]),
            ]
            gateway_view = {i: await desk.get("auditor", i) for i in sent}
            assert (await desk.get("op001", unapproved["id"]))["status"] == "awaiting_approval"
        _assert_gateway_still_healthy(gateway)
    assert "Traceback" not in gateway.log_path.read_text(encoding="utf-8", errors="replace")

    record = simulator.record(MEMBER_CODE)
    inquiries = [e for e in record if e["kind"] == "inquiry"]
    assert Counter(e["idempotency_key"] for e in inquiries) == Counter(sent), "one entry per sent inquiry"
    assert unapproved["id"] not in {e["idempotency_key"] for e in record}
    for entry in inquiries:
        ours = gateway_view[entry["idempotency_key"]]
        assert entry["center_inquiry_id"] == ours["center"]["inquiry_id"]
        assert entry["branch_code"] == ours["branch_code"]
        assert entry["operator_ref"] == ours["operator_id"]
        assert entry["via"] == "gateway"
    assert simulator.stats()["duplicates_suppressed"] == 0


def _assert_gateway_still_healthy(gateway: Gateway) -> None:
    ready = httpx.get(f"{gateway.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text

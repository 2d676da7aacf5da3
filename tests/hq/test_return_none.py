"""HQ-2 with the return option ``none``: the branch gets no list back, so method A (a confirmer's
approval before the request leaves the branch) and/or method B (HQ's answer held for the requesting
branch's own confirmer) must cover it; a policy with neither refuses to start. B alone is in
test_return_none_method_b.py."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.clock import ManualClock
from app.config import Settings
from app.context import AppContext
from app.crypto.keyring import Keyring
from app.demo import DemoCredentials
from app.inquiry.policy import PolicyError
from app.main import build_context
from tests.hq.support import TODAY, execute
from tests.inquiry.support import a1, as_user, draft_body, person


def bundled_policy() -> dict[str, Any]:
    text = resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def write_policy(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    document = bundled_policy()
    document["hq_return_option"]["branches"] = {"002": "none"}  # 002 keeps A, B, C, D
    return settings.model_copy(update={"policy_file": write_policy(tmp_path / "policy.json", document)})


async def test_a_branch_without_a_list_back_needs_a_confirmers_approval_before_asking(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    op002, hq = await as_user(client, demo, "op002"), await as_user(client, demo, "hqop")
    subject = await person(ctx)
    unapproved = await client.post("/hq-requests", json=draft_body(subject), headers=op002)
    assert unapproved.status_code == 403 and unapproved.json()["code"] == "APPROVAL_REQUIRED"
    by_oneself = await client.post(
        "/hq-requests", json=draft_body(subject, approval=a1(demo, "op002")), headers=op002
    )
    assert by_oneself.status_code == 403 and by_oneself.json()["code"] == "SAME_PERSON"
    by_other_branch = await client.post(
        "/hq-requests", json=draft_body(subject, approval=a1(demo, "cf001")), headers=op002
    )
    assert by_other_branch.status_code == 403 and by_other_branch.json()["code"] == "NOT_A_CONFIRMER"

    approved = await client.post(
        "/hq-requests", json=draft_body(subject, approval=a1(demo, "cf002")), headers=op002
    )
    assert approved.status_code == 201 and approved.json()["status"] == "pending"
    [listed] = (await client.get("/hq-requests", headers=op002)).json()["items"]
    assert listed["return_option"] == "none" and listed["approval"]["confirmer_id"] == "cf002"

    assert (await execute(client, hq, listed["id"], subject)).status_code == 201
    generated = await client.post(
        "/daily-lists/generate", json={"business_date": TODAY, "branch_code": "002"}, headers=hq
    )
    # Nothing comes back on 002's lists: the branch's check was the approval before asking.
    assert all(item["no_inquiries"] for item in generated.json()["items"])


@pytest.mark.parametrize(
    ("methods", "option", "message"),
    [
        (["C", "D"], "none", "needs method A or B"),
        (["D"], "none", "needs method A or B"),
        (["A", "B", "D"], "subject_list", "needs method C"),
        (["A", "B", "C"], "count_list", "needs method D"),
    ],
)
def test_a_return_option_the_branch_cannot_check_refuses_start_up(
    tmp_path: Path, clock: ManualClock, keyring: Keyring, methods: list[str], option: str, message: str
) -> None:
    document = bundled_policy()
    document["check_methods"]["branches"] = {"002": methods}
    document["hq_return_option"]["branches"] = {"002": option}
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'never-opened.db'}",
        policy_file=write_policy(tmp_path / "bad.json", document),
    )
    with pytest.raises(PolicyError, match=message):
        build_context(settings, clock=clock, keyring=keyring)

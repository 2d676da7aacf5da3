"""Policy as data (PL-3, VI(1)①, HQ-2): validated at start, versioned, every new version recorded."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from app.context import AppContext
from app.inquiry.policy import PolicyError, load_policy
from app.inquiry.versions import register_policy_version
from app.main import build_context
from tests.helpers import ledger_events


def bundled() -> dict[str, Any]:
    text = resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_bundled_policy_is_the_guideline_table() -> None:
    policy = load_policy()
    assert policy.purposes["new_credit"].documents == {
        "new": ["loan_application"],
        "existing": ["loan_application"],
    }
    assert policy.purposes["suspension_check"].documents == {
        "new": ["current_account_application"],
        "existing": ["ledger"],
    }
    assert "new" not in policy.purposes["credit_review"].documents
    assert "new" not in policy.purposes["relocation_check"].documents
    assert policy.methods_for("001") == {"A", "B", "C", "D"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["check_methods"]["branches"].update({"002": []}), "branch 002 has no check method"),
        (lambda d: d["check_methods"].update({"default": []}), "every branch needs at least one"),
        (
            lambda d: (
                d["check_methods"]["branches"].update({"002": ["C", "D"]}),
                d["hq_return_option"]["branches"].update({"002": "none"}),
            ),
            "needs method A",
        ),
        (
            lambda d: d["purposes"]["new_credit"]["documents"].update({"new": ["passport"]}),
            "unknown documents",
        ),
        (lambda d: d.update({"self_inquiry": "ignore"}), "not valid"),
        # Without B nobody releases, so the operator is the only possible reader of the answer.
        (
            lambda d: (
                d.update({"operator_reads_after_release": False}),
                d["check_methods"]["branches"].update({"002": ["A", "C", "D"]}),
            ),
            "branch 002 omit method B, so nobody could read",
        ),
        (
            lambda d: (
                d.update({"operator_reads_after_release": False}),
                d["check_methods"].update({"default": ["A", "C"]}),
            ),
            "the default check methods omit method B",
        ),
    ],
)
def test_unacceptable_policies_refuse_to_start(tmp_path: Path, change: Any, message: str) -> None:
    document = bundled()
    change(document)
    with pytest.raises(PolicyError, match=message):
        load_policy(write(tmp_path, document))


def test_a_policy_file_naming_a_purpose_twice_or_one_the_center_lacks_refuses_to_start(
    tmp_path: Path,
) -> None:
    text = json.dumps(bundled(), ensure_ascii=False)
    twice = text.replace(
        '"purposes": {', '"purposes": {"new_credit": {"label_ja": "x", "documents": {}}, ', 1
    )
    (tmp_path / "twice.json").write_text(twice, encoding="utf-8")
    with pytest.raises(PolicyError, match="more than once"):
        load_policy(tmp_path / "twice.json")
    document = bundled()
    document["purposes"]["marketing"] = document["purposes"]["new_credit"]
    with pytest.raises(PolicyError, match="not in the center's interface"):
        load_policy(write(tmp_path, document))
    document = bundled()
    document["purposes"]["new_credit"]["center_may_answer_no_trade_info"] = True
    with pytest.raises(PolicyError, match="center_may_answer_no_trade_info must be false"):
        load_policy(write(tmp_path, document))


async def test_a_changed_policy_that_kept_its_version_label_refuses_to_start(
    ctx: AppContext, tmp_path: Path
) -> None:
    assert await register_policy_version(ctx) is True
    document = bundled()  # the same version label as the bundled policy, other content
    document["check_methods"]["branches"] = {"002": ["B", "C", "D"]}
    edited = build_context(
        ctx.settings.model_copy(update={"policy_file": write(tmp_path, document)}),
        clock=ctx.clock,
        keyring=ctx.keyring,
        center=ctx.center,
    )
    try:
        with pytest.raises(PolicyError, match="already ran with other content"):
            await register_policy_version(edited)
    finally:
        await edited.db.dispose()
    assert len(await ledger_events(ctx, action="policy.changed")) == 1


async def test_each_new_policy_version_is_recorded_once(ctx: AppContext, tmp_path: Path) -> None:
    assert await register_policy_version(ctx) is True
    assert await register_policy_version(ctx) is False
    document = bundled()
    document["version"] = "2026-12-01"
    document["check_methods"]["branches"] = {"002": ["B", "C", "D"]}
    changed = build_context(
        ctx.settings.model_copy(update={"policy_file": write(tmp_path, document)}),
        clock=ctx.clock,
        keyring=ctx.keyring,
        center=ctx.center,
    )
    try:
        assert await register_policy_version(changed) is True
        assert await register_policy_version(changed) is False
    finally:
        await changed.db.dispose()
    # Back to the first policy: a change like any other, though its content is already stored.
    assert await register_policy_version(ctx) is True
    events = await ledger_events(ctx, action="policy.changed")
    assert [json.loads(e.details)["version"] for e in events] == ["2026-11-01", "2026-12-01", "2026-11-01"]
    assert json.loads(events[1].details)["previous_sha256"] == json.loads(events[0].details)["sha256"]
    assert json.loads(events[2].details)["previous_sha256"] == json.loads(events[1].details)["sha256"]
    assert json.loads(events[2].details)["sha256"] == ctx.policy.sha256

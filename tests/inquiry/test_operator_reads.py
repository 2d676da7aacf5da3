"""``operator_reads_after_release: false``: after release only the releasing confirmer reads the response.

The policy is only accepted where every branch has method B (tests/inquiry/test_policy.py): without B
nobody releases, and barring the operator would leave nobody allowed to read.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.context import AppContext
from app.demo import DemoCredentials
from tests.helpers import ledger_events
from tests.inquiry.support import released_inquiry


@pytest.fixture
def settings(settings: Any, tmp_path: Path) -> Any:  # type: ignore[override]
    document = json.loads(
        resources.files("app.inquiry.data").joinpath("policy.json").read_text(encoding="utf-8")
    )
    document["operator_reads_after_release"] = False
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return settings.model_copy(update={"policy_file": path})


async def test_only_the_releasing_confirmer_reads_when_operators_may_not(
    client: httpx.AsyncClient, demo: DemoCredentials, ctx: AppContext
) -> None:
    inquiry_id, operator, releaser = await released_inquiry(client, demo, ctx)

    refused = await client.get(f"/inquiries/{inquiry_id}/response", headers=operator)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "FORBIDDEN"
    again = await client.get(f"/inquiries/{inquiry_id}/response", headers=releaser)
    assert again.status_code == 200
    reads = await ledger_events(ctx, action="inquiry.response_read")
    # The release itself is the confirmer's first read; the operator's refused attempt is no read.
    assert [e.actor_id for e in reads if e.object_id == inquiry_id] == ["cf001b", "cf001b"]

"""`shokai audit verify` (LG-2) on an embedded instance: exit 0 on an intact ledger, exit 1 naming the first
bad seq once the SQLite file has been edited behind the application's back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def shokai(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    # Cheap password hashing for the demo users: this test is about the ledger.
    env |= {"SHOKAI_ARGON2_MEMORY_KIB": "1024", "SHOKAI_ARGON2_TIME_COST": "1"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verify_passes_on_a_fresh_demo_and_names_the_first_edited_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "instance"
    demo = shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(tmp_path / "logins.json"))
    assert demo.returncode == 0, demo.stderr

    database = data_dir / "shokai.db"
    with closing(sqlite3.connect(database)) as conn:
        seeded = conn.execute("SELECT max(seq) FROM audit_events").fetchone()[0]
    assert seeded > 20

    intact = shokai("audit", "verify", "--data-dir", str(data_dir))
    assert intact.returncode == 0, intact.stderr
    report = json.loads(intact.stdout)
    assert report["ok"] is True
    assert report["checked"] == seeded
    assert report["first_bad_seq"] is None
    assert report["latest_checkpoint"] is not None

    k = seeded // 2
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("UPDATE audit_events SET actor_id = 'mallory' WHERE seq = ?", (k,))
        conn.commit()

    altered = shokai("audit", "verify", "--data-dir", str(data_dir))
    assert altered.returncode == 1
    assert f"first bad seq {k}" in altered.stderr
    assert "altered_event" in altered.stderr
    report = json.loads(altered.stdout)
    assert (report["ok"], report["first_bad_seq"], report["checked"]) == (False, k, k - 1)

    # Both runs are on the record, the failed one as a failure.
    with closing(sqlite3.connect(database)) as conn:
        runs = conn.execute(
            "SELECT outcome, details FROM audit_events WHERE action = 'audit.verified' ORDER BY seq"
        ).fetchall()
    assert [outcome for outcome, _ in runs] == ["success", "failure"]
    assert json.loads(runs[1][1])["first_bad_seq"] == k

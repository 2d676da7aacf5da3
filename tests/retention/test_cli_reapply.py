"""`shokai retention reapply` (RT-2) on an embedded instance, as an operator runs it after a restore."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.audit.test_cli_verify import shokai


def test_reapply_puts_a_missing_deletion_record_back_and_stops_on_a_damaged_journal(tmp_path: Path) -> None:
    data_dir = tmp_path / "instance"
    demo = shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(tmp_path / "logins.json"))
    assert demo.returncode == 0, demo.stderr
    # A purge made after the backup this database was restored from: its record is in the journal only.
    entry = {
        "id": "6f1d0c3e-2b1a-4c59-9d8e-0a1b2c3d4e5f",
        "data_set": "inquiry_responses",
        "range_from": "2026-10-01T01:00:00+00:00",
        "range_to": "2026-11-01T00:00:00+00:00",
        "count": 3,
        "method": "crypto_shred",
        "operator": "secoff",
        "approver": "secoff2",
        "at": "2026-11-02T00:00:00+00:00",
    }
    journal = data_dir / "deletions.jsonl"
    journal.write_text(json.dumps(entry) + "\n", encoding="ascii")

    for _ in range(2):  # the second run finds nothing behind the journal
        reapplied = shokai("retention", "reapply", "--data-dir", str(data_dir))
        assert reapplied.returncode == 0, reapplied.stderr
        assert json.loads(reapplied.stdout) == {"journal": str(journal), "destroyed_again": 0}
    with closing(sqlite3.connect(data_dir / "shokai.db")) as conn:
        rows = conn.execute("SELECT id, count, operator, approver FROM retention_deletions").fetchall()
        events = conn.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'retention.reapplied'"
        ).fetchone()
    assert rows == [(entry["id"], 3, "secoff", "secoff2")]
    assert events == (1,)

    journal.write_text(journal.read_text(encoding="ascii") + "not a record\n", encoding="ascii")
    stopped = shokai("retention", "reapply", "--data-dir", str(data_dir))
    assert stopped.returncode == 1
    assert "REAPPLY STOPPED: line 2 of the deletion journal" in stopped.stderr

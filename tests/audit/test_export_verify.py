"""`shokai audit export` and the auditor's offline `shokai audit verify --export` (LG-2): an untouched
export verifies against a signed checkpoint with no database; one changed byte is named by seq; the
export itself is recorded in the ledger."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shokai(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOKAI_")}
    env |= {"SHOKAI_ARGON2_MEMORY_KIB": "1024", "SHOKAI_ARGON2_TIME_COST": "1"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
def test_export_verifies_offline_and_one_changed_byte_is_named(tmp_path: Path, fmt: str) -> None:
    data_dir = tmp_path / "instance"
    assert (
        shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(tmp_path / "l.json")).returncode
        == 0
    )
    export = tmp_path / f"ledger.{fmt}"
    exported = shokai("audit", "export", "--format", fmt, "--out", str(export), "--data-dir", str(data_dir))
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stderr.strip().splitlines()[-1])
    assert summary["first_seq"] == 1 and summary["count"] == summary["last_seq"]
    checkpoints = tmp_path / "checkpoints.json"
    assert (
        shokai("audit", "checkpoints", "--out", str(checkpoints), "--data-dir", str(data_dir)).returncode == 0
    )
    keys = tmp_path / "public.json"
    keys.write_text(shokai("keys", "public", "--data-dir", str(data_dir)).stdout, encoding="utf-8")
    with closing(sqlite3.connect(data_dir / "shokai.db")) as conn:
        recorded = conn.execute("SELECT details FROM audit_events WHERE action = 'audit.exported'").fetchall()
    assert len(recorded) == 1 and json.loads(recorded[0][0])["sha256"] == summary["sha256"]

    # The auditor's machine: another directory, no instance, no database.
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    args = (
        "audit",
        "verify",
        "--export",
        str(export),
        "--checkpoint",
        str(checkpoints),
        "--public-key",
        str(keys),
    )
    intact = shokai(*args, "--data-dir", str(elsewhere / "none"), cwd=elsewhere)
    assert intact.returncode == 0, intact.stderr
    report = json.loads(intact.stdout)
    assert report["ok"] is True and report["checked"] == summary["count"]
    assert report["checkpoints_matched"]
    assert not (elsewhere / "none").exists()

    # Change one byte of one event in the middle: a letter of its action name.
    lines = export.read_bytes().split(b"\n")
    target = summary["count"] // 2
    # NDJSON: seq k is line k-1 (0-based); CSV has a header line first, so seq k is line k.
    index = target - 1 if fmt == "ndjson" else target
    line = lines[index]
    position = line.index(b"directory.") + 2  # the demo's seeding events: directory.*
    lines[index] = line[:position] + bytes([line[position] ^ 0x01]) + line[position + 1 :]
    export.write_bytes(b"\n".join(lines))
    altered = shokai(*args, cwd=elsewhere)
    assert altered.returncode == 1
    bad = json.loads(altered.stdout)
    assert bad["first_bad_seq"] == target and bad["reason"] == "altered_event"
    assert f"first bad seq {target}" in altered.stderr


def test_a_forged_checkpoint_or_a_foreign_key_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "instance"
    assert (
        shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(tmp_path / "l.json")).returncode
        == 0
    )
    export = tmp_path / "ledger.ndjson"
    assert shokai("audit", "export", "--out", str(export), "--data-dir", str(data_dir)).returncode == 0
    checkpoints = tmp_path / "checkpoints.json"
    assert (
        shokai("audit", "checkpoints", "--out", str(checkpoints), "--data-dir", str(data_dir)).returncode == 0
    )
    keys = tmp_path / "public.json"
    keys.write_text(shokai("keys", "public", "--data-dir", str(data_dir)).stdout, encoding="utf-8")

    other = tmp_path / "other"
    assert (
        shokai("demo", "--data-dir", str(other), "--credentials-out", str(tmp_path / "o.json")).returncode
        == 0
    )
    foreign = tmp_path / "foreign.json"
    foreign.write_text(shokai("keys", "public", "--data-dir", str(other)).stdout, encoding="utf-8")
    wrong_key = shokai(
        "audit",
        "verify",
        "--export",
        str(export),
        "--checkpoint",
        str(checkpoints),
        "--public-key",
        str(foreign),
    )
    assert wrong_key.returncode == 1
    assert json.loads(wrong_key.stdout)["ok"] is False

    forged = json.loads(checkpoints.read_text(encoding="utf-8"))
    forged["items"][0]["hash"] = "0" * 64
    checkpoints.write_text(json.dumps(forged), encoding="utf-8")
    refused = shokai(
        "audit",
        "verify",
        "--export",
        str(export),
        "--checkpoint",
        str(checkpoints),
        "--public-key",
        str(keys),
    )
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["reason"] == "checkpoint_signature_invalid"


def _verify_args(export: Path, checkpoints: Path, keys: Path) -> tuple[str, ...]:
    return (
        "audit",
        "verify",
        "--export",
        str(export),
        "--checkpoint",
        str(checkpoints),
        "--public-key",
        str(keys),
    )


def test_a_bounded_export_verifies_and_events_past_the_last_checkpoint_are_named(tmp_path: Path) -> None:
    data_dir = tmp_path / "instance"
    assert (
        shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(tmp_path / "l.json")).returncode
        == 0
    )
    checkpoints = tmp_path / "checkpoints.json"
    assert (
        shokai("audit", "checkpoints", "--out", str(checkpoints), "--data-dir", str(data_dir)).returncode == 0
    )
    keys = tmp_path / "public.json"
    keys.write_text(shokai("keys", "public", "--data-dir", str(data_dir)).stdout, encoding="utf-8")
    anchor = max(int(c["seq"]) for c in json.loads(checkpoints.read_text(encoding="utf-8"))["items"])
    with closing(sqlite3.connect(data_dir / "shokai.db")) as conn:
        at = dict(conn.execute("SELECT seq, at FROM audit_events").fetchall())
    # From the 10th event to just before the first one after the checkpoint (--to is exclusive).
    bounded = tmp_path / "bounded.ndjson"
    exported = shokai(
        "audit",
        "export",
        "--from",
        at[10],
        "--to",
        at[anchor + 1],
        "--out",
        str(bounded),
        "--data-dir",
        str(data_dir),
    )
    assert exported.returncode == 0, exported.stderr
    summary = json.loads(exported.stderr.strip().splitlines()[-1])
    assert (summary["first_seq"], summary["last_seq"]) == (10, anchor)
    intact = shokai(*_verify_args(bounded, checkpoints, keys), "--require-anchored")
    assert intact.returncode == 0, intact.stderr
    report = json.loads(intact.stdout)
    assert (report["ok"], report["first_seq"], report["anchored_through"]) == (True, 10, anchor)
    assert report["unanchored"] is None and "warning" not in intact.stderr
    # The start was recorded before the file was written, with the range asked for; then the end.
    with closing(sqlite3.connect(data_dir / "shokai.db")) as conn:
        started = conn.execute(
            "SELECT seq, details FROM audit_events WHERE action = 'audit.export_started'"
        ).fetchall()
        finished = conn.execute(
            "SELECT seq, details FROM audit_events WHERE action = 'audit.exported'"
        ).fetchall()
    assert len(started) == 1 and len(finished) == 1 and started[0][0] < finished[0][0]
    details = json.loads(started[0][1])
    assert (details["first_seq"], details["last_seq"], details["format"]) == (10, anchor, "ndjson")
    assert details["from"] is not None and details["to"] is not None
    assert json.loads(finished[0][1])["sha256"] == summary["sha256"]

    # Open-ended: it now runs past the checkpoint (the reads and exports since are not signed yet).
    tail = tmp_path / "tail.ndjson"
    exported = shokai("audit", "export", "--from", at[10], "--out", str(tail), "--data-dir", str(data_dir))
    assert exported.returncode == 0, exported.stderr
    last = json.loads(exported.stderr.strip().splitlines()[-1])["last_seq"]
    assert last > anchor
    warned = shokai(*_verify_args(tail, checkpoints, keys))
    assert warned.returncode == 0, warned.stderr
    assert json.loads(warned.stdout)["unanchored"] == [anchor + 1, last]
    assert f"events seq {anchor + 1}-{last}" in warned.stderr and "not anchored" in warned.stderr
    strict = shokai(*_verify_args(tail, checkpoints, keys), "--require-anchored")
    assert strict.returncode == 1
    assert f"events seq {anchor + 1}-{last}" in strict.stderr


def test_an_export_the_ledger_cannot_record_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "instance"
    assert (
        shokai("demo", "--data-dir", str(data_dir), "--credentials-out", str(tmp_path / "l.json")).returncode
        == 0
    )
    # A row forged at head+1 behind the application's back: the next append collides and fails.
    with closing(sqlite3.connect(data_dir / "shokai.db")) as conn:
        conn.execute(
            "INSERT INTO audit_events (seq, at, actor_id, actor_roles, terminal_id, address, action, "
            "object_type, object_id, outcome, details, request_id, prev_hash, hash) "
            "SELECT seq + 1, at, actor_id, actor_roles, terminal_id, address, action, object_type, "
            "object_id, outcome, details, request_id, hash, hash FROM audit_events "
            "WHERE seq = (SELECT max(seq) FROM audit_events)"
        )
        conn.commit()
    export = tmp_path / "ledger.ndjson"
    refused = shokai("audit", "export", "--out", str(export), "--data-dir", str(data_dir))
    assert refused.returncode == 1
    assert "EXPORT ABORTED" in refused.stderr and "nothing was written" in refused.stderr
    assert not export.exists()
    with closing(sqlite3.connect(data_dir / "shokai.db")) as conn:
        actions = {a for (a,) in conn.execute("SELECT action FROM audit_events").fetchall()}
    assert not {"audit.export_started", "audit.exported"} & actions

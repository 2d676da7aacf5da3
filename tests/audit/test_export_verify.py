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

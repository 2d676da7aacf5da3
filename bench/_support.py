"""Helpers the benchmark scripts share: paths, machine facts, child processes, synthetic ledger events.

Every ``bench/bench_*.py`` script puts the repository root on ``sys.path`` itself, so it runs as
``python bench/NAME.py`` from anywhere; this module is imported as ``bench._support`` after that.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"  # gitignored: cached ledgers and JSON results


def results_dir() -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "sched_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_end": load_average(),
    }


def load_average() -> str:
    """1/5/15-minute load: on a shared 2-core machine this says how much the figures can be trusted."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def print_machine() -> None:
    m = machine()
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}")
    print(f"load average at start: {load_average()}")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this address space. Not
    ``ru_maxrss``: Linux carries that across fork/vfork + exec, so a child started by a big parent
    would report the parent's peak (we saw 345 MB before verify had read a single row).
    """
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: Path, args: list[str], *, timeout: float = 600) -> dict[str, Any]:
    """Run ``python script args...`` in a fresh interpreter; its last stdout line is a JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(ROOT),
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise RuntimeError(f"child {script.name} {' '.join(args)} exited {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def save_result(name: str, result: dict[str, Any]) -> Path:
    path = results_dir() / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **result}, indent=2) + "\n", encoding="utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


# -- synthetic but realistic ledger events -------------------------------------------------------------

ACTIONS: tuple[tuple[str, str | None, float], ...] = (
    # (action, object_type, relative weight) — roughly what a branch day looks like
    ("auth.login", "session", 8),
    ("auth.logout", "session", 6),
    ("auth.login_failed", "login", 1),
    ("inquiry.created", "inquiry", 10),
    ("inquiry.approval_number_issued", "inquiry", 4),
    ("inquiry.submitted", "inquiry", 10),
    ("inquiry.sent", "inquiry", 10),
    ("inquiry.response_held", "inquiry", 10),
    ("inquiry.response_released", "inquiry", 8),
    ("inquiry.response_viewed", "inquiry", 12),
    ("lists.generated", "daily_list", 1),
    ("lists.confirmed", "daily_list", 1),
    ("audit.events_read", "audit", 0.5),
    ("directory.role_granted", "user", 0.3),
    ("system.started", "system", 0.05),
)
PURPOSES = ("loan_application", "guarantor", "credit_review", "gazette_check", "relocation_check")
ROLES = ("operator", "confirmer", "branch_manager", "hq_operator", "hq_confirmer", "auditor")


@dataclass(frozen=True)
class _Person:
    id: str
    roles: str  # canonical JSON text, as stored
    branch: str
    terminal: str


def synthetic_events(count: int, *, seed: int = 20261124) -> Iterator[tuple[Any, ...]]:
    """``count`` events in ``EVENT_COLUMNS`` order (without prev_hash/hash), seq 1..count.

    Deterministic for a seed. Sizes and shapes follow what the application records: pseudonymous
    object ids, small canonical ``details``, request ids, RFC 3339 microsecond times.
    """
    from app.audit.ledger import canonical_json

    rng = random.Random(seed)
    people: list[_Person] = []
    for number in range(400):
        branch = f"{rng.randint(1, 40):03d}"
        role = ROLES[number % len(ROLES)]
        people.append(
            _Person(
                id=f"u{number:05d}",
                roles=canonical_json(sorted({role, *rng.sample(ROLES, rng.choice((0, 0, 1)))})),
                branch=branch,
                terminal=f"T{branch}-{rng.randint(1, 4):02d}",
            )
        )
    actions = [a for a, _t, _w in ACTIONS]
    object_types = {a: t for a, t, _w in ACTIONS}
    weights = [w for _a, _t, w in ACTIONS]
    at = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    for seq in range(1, count + 1):
        at += timedelta(microseconds=rng.randint(1_000, 4_000_000))
        action = rng.choices(actions, weights)[0]
        person = rng.choice(people)
        object_type = object_types[action]
        outcome = "success"
        actor_id: str | None = person.id
        roles = person.roles
        details: dict[str, Any]
        if object_type == "inquiry":
            object_id = f"inq-{rng.getrandbits(64):016x}"
            details = {"branch_code": person.branch, "purpose": rng.choice(PURPOSES)}
            if action == "inquiry.response_viewed":
                details["reason"] = "customer_visit"
        elif object_type in ("session", "login"):
            object_id = f"s-{rng.getrandbits(80):020x}"
            details = {"failed_attempts_since_previous_login": rng.choice((0, 0, 0, 1))}
            if action == "auth.login_failed":
                actor_id, roles, outcome = None, "[]", "failure"
                object_id = f"ps-1:{rng.getrandbits(128):032x}"
                details = {"consecutive_failures": rng.randint(1, 4)}
        elif object_type == "daily_list":
            object_id = f"{person.branch}-{at:%Y%m%d}"
            details = {"branch_code": person.branch, "count": rng.randint(0, 120)}
        else:
            object_id = person.id if object_type == "user" else None
            details = {"filter": {"after_seq": max(0, seq - 5000), "limit": 1000}} if object_type else {}
        yield (
            seq,
            at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            actor_id,
            roles,
            person.terminal,
            f"10.{int(person.branch) % 250}.{rng.randint(0, 3)}.{rng.randint(10, 250)}",
            action,
            object_type,
            object_id,
            outcome,
            canonical_json(details),
            f"{rng.getrandbits(128):032x}",
        )

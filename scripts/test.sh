#!/usr/bin/env bash
# Install everything (system packages for the real PostgreSQL server and Chromium, the Python
# package with its test extras) and run the whole suite: lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system-deps.sh
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Two workers, one test file each at a time (a file's tests share its fixtures' servers and data).
.venv/bin/pytest -q -n "${SHOKAI_TEST_WORKERS:-2}" --dist loadfile "$@"

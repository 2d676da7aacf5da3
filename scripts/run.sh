#!/usr/bin/env bash
# Install Shokai into .venv and start the gateway on its embedded default
# (SQLite file, key file and demo data in .shokai/; demo logins printed and written to .shokai/demo-logins.json).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
DATA_DIR="${SHOKAI_DATA_DIR:-.shokai}"
if [ ! -f "$DATA_DIR/keys.json" ] && [ -z "${SHOKAI_DATABASE_URL:-}" ]; then
  .venv/bin/shokai demo --data-dir "$DATA_DIR" --credentials-out "$DATA_DIR/demo-logins.json"
fi
.venv/bin/shokai logins --credentials "$DATA_DIR/demo-logins.json" || true
exec .venv/bin/shokai serve --data-dir "$DATA_DIR" --host "${SHOKAI_HOST:-127.0.0.1}" --port "${SHOKAI_PORT:-8000}"

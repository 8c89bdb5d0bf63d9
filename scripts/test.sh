#!/usr/bin/env bash
# Lint, type-check and run every test against SQLite and a real local PostgreSQL.
# Starts PostgreSQL (installing it from Debian's packages when absent) and stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLWR_TELEMETRY_ENABLED=0 HF_HUB_OFFLINE=1 INSPECT_DISPLAY=none

echo "== ruff"
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
echo "== mypy (strict)"
.venv/bin/mypy

started_pg=0
if [[ -z "${MINDCOMMONS_TEST_PG_URL:-}" ]]; then
    echo "== starting local PostgreSQL"
    if ! scripts/pg.sh status >/dev/null 2>&1; then started_pg=1; fi
    MINDCOMMONS_TEST_PG_URL="$(scripts/pg.sh start)"
    export MINDCOMMONS_TEST_PG_URL
fi
cleanup() { if [[ "$started_pg" == 1 ]]; then scripts/pg.sh stop || true; fi; }
trap cleanup EXIT

echo "== pytest"
.venv/bin/pytest "$@"

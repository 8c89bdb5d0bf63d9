#!/usr/bin/env bash
# Create .venv (when missing) and install mindcommons with pinned dependencies.
# Idempotent: reinstalls only when requirements.lock or pyproject.toml changed.
# Usage: scripts/setup-venv.sh [dev]
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    for cand in python3.11 python3.12 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            PY="$cand"
            break
        fi
    done
fi
[[ -n "$PY" ]] || { echo "setup: Python >= 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 4; }

if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv with $PY" >&2
    "$PY" -m venv .venv
fi

want="$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)-${1:-run}"
stamp=".venv/.mindcommons-installed"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

echo "setup: installing pinned dependencies (first run compiles llama-cpp-python: 10-20 min)" >&2
.venv/bin/python -m pip install -q --upgrade "pip>=24" >&2
# The lock pins torch 2.13.0+cpu so pip never pulls a CUDA build.
.venv/bin/python -m pip install -q -r requirements.lock >&2
.venv/bin/python -m pip install -q --no-deps -e . >&2
echo "$want" > "$stamp"
echo "setup: done" >&2

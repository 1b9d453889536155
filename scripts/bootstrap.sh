#!/usr/bin/env bash
# Create .venv and install fabbrica with the given extras (default: none). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=".venv/.installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  if [ -n "$extras" ]; then
    .venv/bin/python -m pip install -q -e ".[${extras}]" >&2
  else
    .venv/bin/python -m pip install -q -e . >&2
  fi
  touch "$stamp"
fi

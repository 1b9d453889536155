#!/usr/bin/env bash
# The whole default test suite on a fresh machine: system packages, virtual environment, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# the system packages are installed below, so a missing server fails its tests (tests/ci.py)
export CI=true
bash scripts/install-system-packages.sh
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
# two workers (tests/conftest.py: each file in order on one worker, the longest files first);
# the slowest tests at the end: the suite must stay under 15 min
exec .venv/bin/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder --durations=15 "$@"

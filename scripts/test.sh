#!/usr/bin/env bash
# The whole default test suite on a fresh machine: system packages, virtual environment, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# the system packages are installed below, so a missing server fails its tests (tests/ci.py)
export CI=true
bash scripts/install-system-packages.sh
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
# compile the numba kernels once, both at a time (cached on disk in twin/__pycache__), before the
# workers and the commands the tests start need them: a first compile takes a minute or two
.venv/bin/python -c "from twin.run import run_line; from twin.line import Line
run_line(Line.model_validate({'stations': [{'name': 'a', 'cycle_time': 1}]}), engine='flow', horizon=60.0)" &
flow=$!
.venv/bin/python -c "from twin.run import run_line; from twin.line import Line
run_line(Line.model_validate({'stations': [{'name': 'a', 'cycle_time': 1, 'capacity': 2}]}), engine='event', horizon=60.0)"
wait "$flow"
# two workers (tests/conftest.py: each file in order on one worker, the longest files first);
# the slowest tests at the end: the suite must stay under 15 min
exec .venv/bin/python -m pytest -n 2 --dist loadgroup --no-loadscope-reorder --durations=15 "$@"

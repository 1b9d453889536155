#!/usr/bin/env bash
# The main job on a fresh machine, no server needed: `fabbrica demo` streams the simulated pilot
# line through the connectors into the embedded historian, calibrates and validates the twin,
# runs a what-if experiment and writes out/demo/report.html. Extra options go to `fabbrica demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/fabbrica demo "$@"

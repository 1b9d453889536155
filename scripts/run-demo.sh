#!/usr/bin/env bash
# The main job on a fresh machine, no server needed: simulate the shipped demonstrator line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/fabbrica twin run simulations/lines/demonstrator.yaml "$@"

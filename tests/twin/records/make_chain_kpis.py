"""Write the chain records that tests/twin/test_shipped_lines.py compares against, from a checkout
of the commit before the network work (05de1af), so that the record is what that code printed:

    mkdir /tmp/before && git archive 05de1af | tar -x -C /tmp/before
    cd /tmp/before && /path/to/.venv/bin/python /path/to/tests/twin/records/make_chain_kpis.py 05de1af \
        > /path/to/tests/twin/records/chain_kpis_05de1af.json

Each case is `fabbrica twin run LINE --json ARGS` in a fresh interpreter; its stdout is kept whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

# a chain the flow engine runs (the demonstrator needs the SimPy engine: calendar failures, 2 machines)
TANDEM = {
    "name": "tandem",
    "release": "saturated",
    "stations": [
        {
            "name": "cut",
            "cycle_time": {"dist": "exponential", "mean": 50},
            "failures": {"mtbf": "20min", "mttr": "2min"},
        },
        {"name": "weld", "cycle_time": {"dist": "gamma", "mean": 60, "cv": 0.5}, "buffer": 2, "scrap": 0.02},
        {"name": "pack", "cycle_time": {"dist": "exponential", "mean": 45}, "buffer": 1},
    ],
}
DEMONSTRATOR = "simulations/lines/demonstrator.yaml"
CASES = [
    {"name": "demonstrator", "line": DEMONSTRATOR, "args": []},
    {
        "name": "demonstrator-24h-seed-2",
        "line": DEMONSTRATOR,
        "args": ["--seed", "2", "--horizon", "24h", "--warmup", "2h"],
    },
    {"name": "demonstrator-simpy-seed-3", "line": DEMONSTRATOR, "args": ["--seed", "3", "--engine", "simpy"]},
    {"name": "tandem-flow", "line": TANDEM, "args": ["--horizon", "24h"]},
    {"name": "tandem-simpy", "line": TANDEM, "args": ["--horizon", "24h", "--engine", "simpy"]},
]


def main(commit: str) -> None:
    folder = Path(tempfile.mkdtemp())
    for case in CASES:
        line = case["line"]
        path = Path(line) if isinstance(line, str) else folder / "tandem.yaml"
        if isinstance(line, dict):
            path.write_text(yaml.safe_dump(line, sort_keys=False))
        command = [sys.executable, "-m", "fabbrica", "twin", "run", str(path), "--json", *case["args"]]
        case["stdout"] = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    print(json.dumps({"commit": commit, "cases": CASES}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])

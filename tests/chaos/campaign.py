"""The full fault-injection campaign: every scenario at full duration, results as JSON and markdown.

    .venv/bin/python -m tests.chaos.campaign --out chaos-results/
    .venv/bin/python -m tests.chaos.campaign --out chaos-results/ --short --only network

Writes `results.json` (every figure and detail) and `results.md` (the table of
docs/RELIABILITY.md) into `--out`; the servers, logs and truth files of each run stay in
`--out/runs/`. Exits 1 if a scenario misses its goal (0 lost, 0 duplicated, no stored value
other than the truth's; with a full spool, lost equal to the reported dropped count).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos.harness import SCENARIOS, Outcome, Stack, goal_met, run_scenario

WHAT = {
    "broker-kill": "kill -9 Mosquitto, restart on its port and persistence",
    "database-down": "kill -9 InfluxDB, restart on its data folder",
    "opcua-restart": "kill -9 an OPC UA server (PLC), restart it",
    "connector-kill": "kill -9 the connector, restart it",
    "spool-full": "InfluxDB down, 64 KiB spool: drop-oldest",
    "network": "proxy: 300 ms delay, black hole, RST every 0.5 s (1/3 each)",
}




def markdown(outcomes: list[Outcome], header: str) -> str:
    lines = [
        header,
        "",
        "| scenario | fault | fault s | points expected | lost | duplicated | dropped (reported) "
        "| OPC UA gap | unsent at kill | recovery s | goal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for item in outcomes:
        recovery = "-" if item.recovery_s is None else f"{item.recovery_s:.2f}"
        lines.append(
            f"| {item.scenario} | {WHAT[item.scenario]} | {item.fault_s:.1f} | {item.expected} | {item.lost} "
            f"| {item.duplicated} | {item.dropped_reported} | {item.opcua_gap} | {item.unsent_at_kill} "
            f"| {recovery} "
            f"| {'met' if goal_met(item) else 'MISSED'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("chaos-results"))
    parser.add_argument("--short", action="store_true", help="the short faults of the test suite")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these (repeatable)")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(SCENARIOS)
    began = time.monotonic()
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    stack = Stack(out / "runs" / "stack").start()
    outcomes = []
    try:
        for name in names:
            print(f"{name} ...", flush=True)
            outcome = run_scenario(stack, name, out / "runs" / name, full=not args.short)
            outcomes.append(outcome)
            print(
                f"  lost {outcome.lost}, duplicated {outcome.duplicated}, "
                f"dropped {outcome.dropped_reported}, gap {outcome.opcua_gap}, "
                f"unsent {outcome.unsent_at_kill}, "
                f"recovery {outcome.recovery_s} s ({outcome.wall_s} s)",
                flush=True,
            )
    finally:
        stack.stop()
    machine = {
        "date": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_before": [round(value, 2) for value in load_before],
        "load_after": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mode": "short" if args.short else "full",
        "wall_s": round(time.monotonic() - began, 1),
    }
    (out / "results.json").write_text(
        json.dumps({"machine": machine, "scenarios": [item.as_dict() for item in outcomes]}, indent=1) + "\n"
    )
    header = (
        f"Measured {machine['date']} ({machine['mode']} faults), {machine['cpus']} cores, "
        f"load average {machine['load_before'][0]} before / {machine['load_after'][0]} after, "
        f"{machine['wall_s']} s in all."
    )
    (out / "results.md").write_text(markdown(outcomes, header))
    print((out / "results.md").read_text())
    return 0 if all(goal_met(item) for item in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

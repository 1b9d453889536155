"""The shift forecast: 200 replications from a mid-shift state to the end of an 8-hour shift.

The state is the line's true state after 4 hours of a SimPy run (`LineModel.snapshot`), so
the forecast runs 4 hours (`twin.forecast.forecast`, as `fabbrica twin forecast` calls it).

a. A serial line of 5 single machines (two products, lognormal, gamma, normal and uniform
   cycle times of about 60 s, a hand-over and buffers of 3, failures, a set-up, scrap) on the
   flow engine, in this process (the default: 1 worker) and in 2 worker processes.
   Peer: the same replications on the SimPy engine. Goal: under 1 s.
b. The demonstrator line (simulations/lines/demonstrator.yaml: parallel machines and calendar
   failures, so the SimPy engine) with the default workers (2 on this machine) and with 1.
   Peer: the minimal hand-written SimPy model of benchmarks/bench_engine.py (ten exponential
   stations, no statistics) for as many replications of as many simulated hours: what SimPy
   itself costs on this machine at this moment. Goal: under 10 s.

The forecasts and their peers are run in turn, `--repeats` times, after one unmeasured
forecast of each line (the compiled kernels and scipy loaded); medians of wall and processor
time. Then each forecast once more as the command (`fabbrica twin forecast ... --json` in a
fresh interpreter: start-up, imports and loading the compiled kernels included).

    .venv/bin/python benchmarks/bench_forecast.py [--repeats 5] [--replications 200]

Other work on the machine slows every figure; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from bench_engine import minimal_model
from bench_flow import load

from twin.engine import LineModel
from twin.forecast import default_workers, forecast
from twin.line import Line, line_from_dict, load_line
from twin.state import LineState

ROOT = Path(__file__).resolve().parent.parent
DEMONSTRATOR = ROOT / "simulations" / "lines" / "demonstrator.yaml"
SHIFT = 8 * 3600.0
ELAPSED = 4 * 3600.0  # the state's instant: mid-shift
HORIZON = SHIFT - ELAPSED

SERIAL = {
    "name": "serial",
    "horizon": SHIFT,
    "seed": 1,
    "products": [{"name": "A", "mix": 0.7}, {"name": "B", "mix": 0.3}],
    "stations": [
        {
            "name": "saw",
            "cycle_time": {"A": {"dist": "lognormal", "mean": 55, "cv": 0.2}, "B": 65},
            "failures": {"mtbf": "1h", "mttr": "3min"},
            "setup": "45s",
        },
        {"name": "mill", "cycle_time": {"dist": "gamma", "mean": 58, "cv": 0.3}, "buffer": 3},
        {
            "name": "drill",
            "cycle_time": {"dist": "normal", "mean": 50, "sd": 10},
            "buffer": 0,
            "failures": {
                "ttf": {"dist": "exponential", "mean": 2400},
                "ttr": {"dist": "lognormal", "mean": 120, "cv": 0.5},
            },
        },
        {
            "name": "wash",
            "cycle_time": {"dist": "uniform", "low": 40, "high": 70},
            "buffer": 3,
            "scrap": 0.02,
        },
        {
            "name": "check",
            "cycle_time": {"dist": "lognormal", "mean": 57, "cv": 0.25},
            "buffer": 3,
            "failures": {"mtbf": "2h", "mttr": "5min"},
        },
    ],
}


def mid_shift(line: Line) -> LineState:
    """The line's state after the first half of the shift (SimPy engine, seed 1000)."""
    model = LineModel(line, 1000)
    model.env.run(until=ELAPSED)
    return model.snapshot()


def run_forecast(
    line: Line, state: LineState, engine: str, workers: int, replications: int
) -> dict[str, Any]:
    return forecast(
        line, state, horizon=HORIZON, replications=replications, seed=1, engine=engine, workers=workers
    )


def minimal_replications(replications: int) -> int:
    """The peer of b: the minimal SimPy model, once per replication, over the forecast's horizon."""
    return sum(minimal_model(HORIZON, seed) for seed in range(replications))


def command(line_file: Path, state_file: Path, replications: int) -> tuple[float, dict[str, Any]]:
    """`fabbrica twin forecast` in a fresh interpreter: its wall time and its JSON."""
    started = time.perf_counter()
    done = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "fabbrica",
                "twin",
                "forecast",
                str(line_file),
                "--state",
                str(state_file),
            ),
            *("--horizon", f"{HORIZON:g}s", "-n", str(replications), "--seed", "1", "--json"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - started, json.loads(done.stdout)


class Clock:
    """Wall and processor seconds of a call, the processor's of worker processes included."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, function, *args, **kwargs):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), _cpu()
        value = function(*args, **kwargs)
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(_cpu() - cpu)
        return value

    @property
    def median(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def row(label: str, clock: Clock, peer: Clock | None = None, goal: str = "") -> None:
    wall, cpu = clock.median
    ratio = ""
    if peer is not None:
        peer_wall, peer_cpu = peer.median
        ratio = f"{wall / peer_wall:6.2f} {cpu / peer_cpu:6.2f}"
    print(f"| {label:<42} | {wall:7.2f} | {cpu:7.2f} | {ratio:>13} | {goal}")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--replications", type=int, default=200)
    args = parser.parse_args()
    n = args.replications
    print(f"load average (1, 5, 15 min) before: {load()} on {os.cpu_count()} cores")

    serial = line_from_dict(SERIAL, "serial")
    demonstrator = load_line(DEMONSTRATOR)
    states = {"serial": mid_shift(serial), "demonstrator": mid_shift(demonstrator)}
    workers = default_workers(demonstrator, "simpy", n, HORIZON)
    for line in (serial, demonstrator):  # load the compiled kernels and scipy before timing
        run_forecast(line, states[line.name], "auto", 1, 2)
    minimal_model(600.0, 0)

    clocks = {
        name: Clock()
        for name in ("flow", "flow-2", "simpy-serial", "demonstrator", "demonstrator-1", "minimal")
    }
    results: dict[str, Any] = {}
    for repeat in range(args.repeats):
        results["flow"] = clocks["flow"](run_forecast, serial, states["serial"], "flow", 1, n)
        results["flow-2"] = clocks["flow-2"](run_forecast, serial, states["serial"], "flow", 2, n)
        results["simpy-serial"] = clocks["simpy-serial"](
            run_forecast, serial, states["serial"], "simpy", 1, n
        )
        demo = states["demonstrator"]
        results["demonstrator"] = clocks["demonstrator"](
            run_forecast, demonstrator, demo, "simpy", workers, n
        )
        results["demonstrator-1"] = clocks["demonstrator-1"](run_forecast, demonstrator, demo, "simpy", 1, n)
        clocks["minimal"](minimal_replications, n)
        print(
            f"repeat {repeat}: "
            + ", ".join(f"{name} {clock.wall[-1]:.2f} s" for name, clock in clocks.items())
            + f" (load {os.getloadavg()[0]:.2f})"
        )
    flow, twin_simpy = results["flow"], results["simpy-serial"]
    same = {k: v for k, v in flow.items() if k != "engine"} == {
        k: v for k, v in twin_simpy.items() if k != "engine"
    }
    assert results["flow-2"] == flow and results["demonstrator-1"] == results["demonstrator"]

    hours = HORIZON / 3600
    flow_out, demo = results["flow"], results["demonstrator"]
    print(
        f"\n{n} replications of {hours:g} h, from the state at {ELAPSED / 3600:g} h to the end of the shift"
    )
    print(
        f"a. serial line: parts out {flow_out['parts_out']['mean']:.1f}, bottleneck {flow_out['bottleneck']}"
    )
    print(f"b. demonstrator: parts out {demo['parts_out']['mean']:.1f}, bottleneck {demo['bottleneck']}")
    print(f"flow and SimPy engine give the same forecast, to the bit: {same}")
    print("medians (s); ratios against the peer, wall and cpu (cpu: worker processes included)")
    print(f"| {'forecast':<42} | {'wall':>7} | {'cpu':>7} | {'/ peer':>13} |")
    row("a. flow engine, 1 worker (default)", clocks["flow"], clocks["simpy-serial"], "goal < 1 s")
    row("a. flow engine, 2 workers", clocks["flow-2"], clocks["simpy-serial"])
    row("a. peer: SimPy engine, 1 worker", clocks["simpy-serial"])
    row(
        f"b. SimPy engine, {workers} worker{'s' if workers > 1 else ''} (default)",
        clocks["demonstrator"],
        clocks["minimal"],
        "goal < 10 s",
    )
    row("b. SimPy engine, 1 worker", clocks["demonstrator-1"], clocks["minimal"])
    row(f"b. peer: minimal SimPy model, {n} x {hours:g} h", clocks["minimal"])

    print("\nthe command, in a fresh interpreter (start-up, imports and compiled kernels included):")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in (("serial", SERIAL), ("demonstrator", None)):
            line_file = Path(folder) / f"{name}.yaml"
            if data is None:
                line_file = DEMONSTRATOR
            else:
                line_file.write_text(yaml.safe_dump(data, sort_keys=False))
            state_file = Path(folder) / f"{name}-state.json"
            state_file.write_text(json.dumps(states[name].to_json()))
            walls = []
            for _ in range(args.repeats):
                wall, printed = command(line_file, state_file, n)
                walls.append(wall)
            assert (
                printed["parts_out"] == results["flow" if name == "serial" else "demonstrator"]["parts_out"]
            )
            shown = line_file if data is None else f"{name}.yaml"
            print(
                f"   fabbrica twin forecast {shown} --state STATE.json --horizon {HORIZON:g}s -n {n} --json: "
                f"median {statistics.median(walls):.2f} s wall ({printed['engine']})"
            )
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()

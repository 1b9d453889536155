"""How often `twin validate` calls a correctly calibrated twin invalid, and a wrong one valid.

    .venv/bin/python benchmarks/validation_false_alarm.py [--line simulations/lines/demonstrator.yaml]
        [--hours 10] [--seeds 60] [--replications 10] [--tolerance 0.05] [--slower test] [--workers 2]
        [--wip counter|sampled] [--speed 1200]

For each seed the line runs `--hours` from empty (as `fabbrica demo` records it, and as
tests/test_demo.py validates it: the whole recorded window) in the simulated PLCs' runtime at
`--speed` (the demo's 1200: the PLCs refresh their counters every 600 simulated seconds), and
the records are what its PLCs publish: each station's state (each machine's, for a station with
several), the parts, and every station's `OccupancySeconds` counter (`--wip counter`) or only
its `Occupancy` values (`--wip sampled`, as before the counter existed). The twin is calibrated
from that window and validated against it; so is a wrong twin, the calibrated one with the
`--slower` station's mean cycle time made 20 % longer. Per check it prints the signed relative
deviation d = twin mean / observed - 1 (mean and standard deviation over the seeds), the largest
|d|, how often the check failed, and the normal-approximation chance P(|d| > tolerance) that a
correct twin fails it; then the verdicts.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from simulations.hardware.config import HardwareConfig
from simulations.hardware.records import plc_records
from simulations.hardware.runtime import LineRuntime
from twin.calibration.estimate import calibrate_line
from twin.calibration.validate import validate
from twin.line import line_from_dict, read_yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEED = 1200.0  # `fabbrica demo`'s: the PLCs refresh their counters every 600 simulated seconds


def one_seed(args: tuple[Path, float, int, int, float, str, str, float]) -> dict[str, Any]:
    """The validation records of the calibrated twin and of the wrong one for one recorded window."""
    line_path, hours, seed, replications, tolerance, slower, wip, speed = args
    prior = read_yaml(line_path)
    line = line_from_dict(prior, str(line_path))
    config = HardwareConfig.model_validate(
        {"speed": speed, "opcua": {"enabled": False}, "mqtt": {"enabled": False}}
    )
    runtime = LineRuntime(line, config, seed=seed)
    window = hours * 3600
    env = runtime.env
    while env.peek() <= window:  # everything due at the window's end too: its refresh is published
        env.step()
    records = plc_records(runtime, counters=wip == "counter")
    if wip == "sampled":  # the sampled WIP is what is measured here: no warning per seed
        logging.getLogger("twin.calibration.validate").setLevel(logging.ERROR)
    calibrated, _ = calibrate_line(prior, records, window)
    right = validate(line_from_dict(calibrated, "calibrated"), records, window,
                     replications=replications, tolerance=tolerance)  # fmt: skip
    station = next(s for s in calibrated["stations"] if s["name"] == slower)
    station["cycle_time"]["mean"] *= 1.2
    wrong = validate(line_from_dict(calibrated, "slow"), records, window,
                     replications=replications, tolerance=tolerance)  # fmt: skip
    return {"seed": seed, "right": right, "wrong": wrong}


def _normal_tail(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line", type=Path, default=ROOT / "simulations/lines/demonstrator.yaml")
    parser.add_argument("--hours", type=float, default=10.0, help="hours of line time recorded")
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--replications", type=int, default=10)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--slower", default="test", help="the station made 20 %% slower in the wrong twin")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--wip", choices=("counter", "sampled"), default="counter",
                        help="WIP from the OccupancySeconds counters or the sampled Occupancy")  # fmt: skip
    parser.add_argument("--speed", type=float, default=DEMO_SPEED,
                        help="PLC speed: counters refreshed every max(10, speed/2) simulated s")  # fmt: skip
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds: at least 2 (a spread needs two runs)")
    jobs = [
        (
            args.line,
            args.hours,
            1000 + k,
            args.replications,
            args.tolerance,
            args.slower,
            args.wip,
            args.speed,
        )
        for k in range(args.seeds)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one_seed, jobs))
    print(f"{args.line.name}: {args.hours:g} h windows from empty, {args.seeds} seeds, "
          f"{args.replications} replications, tolerance {args.tolerance:.0%}, WIP from "
          f"{'OccupancySeconds' if args.wip == 'counter' else 'Occupancy'}, PLCs refreshed every "
          f"{max(10.0, args.speed / 2):g} s")  # fmt: skip
    for which in ("right", "wrong"):
        deviations: dict[str, list[float]] = defaultdict(list)
        failed: dict[str, int] = defaultdict(int)
        for result in results:
            for name, check in result[which]["checks"].items():
                deviations[name].append(check["twin_mean"] / check["observed"] - 1)
                failed[name] += not check["ok"]
        print(f"\n{which} twin: {'check':18s} {'mean d':>8s} {'sd d':>7s} {'max |d|':>8s} "
              f"{'failed':>7s} {'P(|d|>tol)':>11s}")  # fmt: skip
        union = 0.0
        for name, values in deviations.items():
            mean, sd = statistics.fmean(values), statistics.stdev(values)
            chance = _normal_tail((args.tolerance - mean) / sd) + _normal_tail((args.tolerance + mean) / sd)
            union += chance
            print(f"{'':13s}{name:18s} {mean:8.2%} {sd:7.2%} {max(map(abs, values)):8.2%} "
                  f"{failed[name]:4d}/{len(values):<3d}{chance:11.1e}")  # fmt: skip
        verdicts = sum(result[which]["verdict"] == "invalid" for result in results)
        print(f"{'':13s}invalid in {verdicts}/{len(results)} seeds; "
              f"union bound of the checks' chances {union:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()

"""How close calibration gets to a line's true parameters from a window of recorded data.

    .venv/bin/python benchmarks/calibration_accuracy.py [--line simulations/lines/demonstrator.yaml]
        [--hours 8] [--seeds 20] [--within 0.10]

Runs the line (after its warm-up) with an engine observer that records what its PLCs show,
each machine's own state included, calibrates the line from the window, and compares every
station's mean cycle time (per product), MTBF and MTTR with the values the line was built with.
Prints, per quantity, the median relative error over the seeds, the share of seeds within
`--within`, and the relative standard error the sample sizes allow (1/sqrt(n) for exponential
times): the limit no estimator beats with that much data.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path

from twin.calibration.estimate import calibrate_line
from twin.calibration.records import Recorder
from twin.engine import LineModel
from twin.line import Line, load_line, read_yaml

ROOT = Path(__file__).resolve().parents[1]


def truths(line: Line) -> dict[tuple[str, str], float]:
    """(station, quantity) -> the true value the line was built with."""
    values: dict[tuple[str, str], float] = {}
    products = [product.name for product in line.products] if line.products else ["default"]
    for station in line.stations:
        if isinstance(station.cycle_time, dict):
            for product in products:
                values[station.name, f"cycle[{product}]"] = station.cycle_time_for(product).mean
        else:
            values[station.name, "cycle[*]"] = station.cycle_time.mean
        if station.failures is not None:
            values[station.name, "mtbf"] = station.failures.time_to_failure.mean
            values[station.name, "mttr"] = station.failures.time_to_repair.mean
    return values


def estimates(line: Line, prior: dict, hours: float, seed: int) -> dict[tuple[str, str], tuple[float, int]]:
    """(station, quantity) -> (estimate, sample size) from one recorded window."""
    warmup = float(line.warmup or 0.0)
    recorder = Recorder(
        [s.name for s in line.stations], start=warmup, capacities=[s.capacity for s in line.stations]
    )
    model = LineModel(line, seed, observer=recorder)
    window = hours * 3600
    model.env.run(until=warmup + window)
    _, results = calibrate_line(prior, recorder.records, window)
    found: dict[tuple[str, str], tuple[float, int]] = {}
    for result in results:
        for product, fit in result.cycle_fits.items():
            spec = fit.best.spec
            found[result.name, f"cycle[{product}]"] = (spec.get("mean", spec.get("value", math.nan)), fit.n)
        if result.mtbf_s is not None and result.repair_fit is not None:
            found[result.name, "mtbf"] = (result.mtbf_s, result.failures_observed)
            found[result.name, "mttr"] = (
                result.repair_fit.best.spec.get("mean", math.nan),
                result.repair_fit.n,
            )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line", type=Path, default=ROOT / "simulations/lines/demonstrator.yaml")
    parser.add_argument("--hours", type=float, default=8.0, help="hours of line time recorded")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--within", type=float, default=0.10, help="relative error counted as recovered")
    args = parser.parse_args()
    line = load_line(args.line)
    prior = read_yaml(args.line)
    truth = truths(line)
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    sizes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for seed in range(args.seeds):
        for key, (value, n) in estimates(line, prior, args.hours, 1000 + seed).items():
            if key in truth:
                errors[key].append(value / truth[key] - 1)
                sizes[key].append(n)
    print(f"{args.line.name}: {args.hours:g} h windows, {args.seeds} seeds, within {args.within:.0%}")
    print(
        f"{'station':10s} {'quantity':12s} {'truth':>8s} {'median |err|':>12s} "
        f"{'within':>7s} {'n':>6s} {'1/sqrt(n)':>9s}"
    )
    for key, value in truth.items():
        errs = errors.get(key, [])
        if not errs:
            print(f"{key[0]:10s} {key[1]:12s} {value:8.1f}  (kept from the prior: too little data)")
            continue
        n = statistics.median(sizes[key])
        within = sum(abs(e) <= args.within for e in errs) / len(errs)
        limit = 1 / math.sqrt(n) if key[1] in ("mtbf", "mttr") else float("nan")
        print(
            f"{key[0]:10s} {key[1]:12s} {value:8.1f} {statistics.median(abs(e) for e in errs):12.1%} "
            f"{within:7.0%} {n:6.0f} {limit:9.1%}"
        )


if __name__ == "__main__":
    main()

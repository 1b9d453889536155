"""How often `twin validate` calls a correctly calibrated twin invalid, and a wrong one valid.

    .venv/bin/python benchmarks/validation_false_alarm.py [--line simulations/lines/demonstrator.yaml]
        [--hours 10] [--seeds 60] [--replications 10] [--tolerance 0.05] [--slower test] [--workers 2]
        [--occupancy-period 600]

For each seed the line runs `--hours` from empty (as `fabbrica demo` records it, and as
tests/test_demo.py validates it: the whole recorded window) with an engine observer that records
what its PLCs show: each machine's state, the parts, and every station's `Occupancy` sampled as
the PLCs refresh it (every 600 simulated seconds at the demo's speed 1200). The twin is calibrated
from that window and validated against it; so is a wrong twin, the calibrated one with the
`--slower` station's mean cycle time made 20 % longer. Per check it prints the signed relative
deviation d = twin mean / observed - 1 (mean and standard deviation over the seeds), the largest
|d|, how often the check failed, and the normal-approximation chance P(|d| > tolerance) that a
correct twin fails it; then the verdicts.
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from collections.abc import Generator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import simpy

from simulations.hardware.runtime import _holds_a_part
from simulations.hardware.states import station_state
from twin.calibration.estimate import calibrate_line
from twin.calibration.records import Recorder
from twin.calibration.validate import validate
from twin.engine import LineModel
from twin.line import line_from_dict, read_yaml
from twin.station import STATE_NAMES, Machine

ROOT = Path(__file__).resolve().parents[1]
DEMO_OCCUPANCY_PERIOD = 600.0  # simulated seconds between the PLCs' counter refreshes at speed 1200


class PlcRecorder(Recorder):
    """A Recorder that also keeps the state a station with several machines shows (`State`)."""

    def __init__(self, names: list[str], capacities: list[int]) -> None:
        super().__init__(names, start=0.0, capacities=capacities)
        self._machine_states: dict[str, list[int | None]] = {
            name: [None] * capacity for name, capacity in zip(names, capacities, strict=True) if capacity > 1
        }

    def machine_state(self, machine: Machine, state: int, now: float) -> None:
        super().machine_state(machine, state, now)
        name = self._names[machine.station_index]
        if name not in self._machine_states:
            return
        states = self._machine_states[name]
        states[machine.machine_index] = state
        known = [s for s in states if s is not None]
        if len(known) < len(states):
            return
        shown = STATE_NAMES[station_state(known)]
        record = self.records[name]
        if not record.states or record.states[-1] != shown:
            record.state_times.append(now)
            record.states.append(shown)


def _sample_occupancy(
    model: LineModel, recorder: Recorder, names: list[str], period: float
) -> Generator[simpy.Event, Any, None]:
    while True:
        now = model.env.now
        for index, name in enumerate(names):
            buffer = model.buffers[index]
            held = sum(1 for machine in model.machines[index] if _holds_a_part(machine))
            record = recorder.records[name]
            record.occupancy_times.append(now)
            record.occupancy.append(held + (len(buffer.items) if buffer is not None else 0))
        yield model.env.timeout(period)


def one_seed(args: tuple[Path, float, int, int, float, str, float]) -> dict[str, Any]:
    """The validation records of the calibrated twin and of the wrong one for one recorded window."""
    line_path, hours, seed, replications, tolerance, slower, period = args
    prior = read_yaml(line_path)
    line = line_from_dict(prior, str(line_path))
    names = [station.name for station in line.stations]
    recorder = PlcRecorder(names, [station.capacity for station in line.stations])
    model = LineModel(line, seed, observer=recorder)
    model.env.process(_sample_occupancy(model, recorder, names, period))
    window = hours * 3600
    model.env.run(until=window)
    calibrated, _ = calibrate_line(prior, recorder.records, window)
    right = validate(line_from_dict(calibrated, "calibrated"), recorder.records, window,
                     replications=replications, tolerance=tolerance)  # fmt: skip
    station = next(s for s in calibrated["stations"] if s["name"] == slower)
    station["cycle_time"]["mean"] *= 1.2
    wrong = validate(line_from_dict(calibrated, "slow"), recorder.records, window,
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
    parser.add_argument("--occupancy-period", type=float, default=DEMO_OCCUPANCY_PERIOD,
                        help="simulated seconds between two recorded occupancies")  # fmt: skip
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds: at least 2 (a spread needs two runs)")
    jobs = [
        (args.line, args.hours, 1000 + k, args.replications, args.tolerance, args.slower,
         args.occupancy_period)
        for k in range(args.seeds)
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one_seed, jobs))
    print(f"{args.line.name}: {args.hours:g} h windows from empty, {args.seeds} seeds, "
          f"{args.replications} replications, tolerance {args.tolerance:.0%}, occupancy every "
          f"{args.occupancy_period:g} s")  # fmt: skip
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

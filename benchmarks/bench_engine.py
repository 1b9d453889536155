"""Engine overhead: fabbrica's SimPy engine (with all its KPI bookkeeping) against a minimal
hand-written SimPy model of the same 10-station saturated line, run alternately in one process.

    .venv/bin/python benchmarks/bench_engine.py [--repeats 7] [--hours 200]

Prints the wall time of each and the median ratio engine / minimal (goal: <= 1.25).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import simpy

from twin.engine import simulate
from twin.line import line_from_dict

STATIONS = 10
MEAN_CYCLE = 60.0
BUFFER = 3


def minimal_model(horizon: float, seed: int) -> int:
    """The smallest honest SimPy model of the line: Store buffers, one process per machine."""
    env = simpy.Environment()
    rng = random.Random(seed)
    buffers = [simpy.Store(env, capacity=BUFFER) for _ in range(STATIONS)]
    done = [0]

    def machine(index: int):
        inbound = buffers[index] if index > 0 else None
        outbound = buffers[index + 1] if index + 1 < STATIONS else None
        while True:
            if inbound is not None:
                yield inbound.get()
            yield env.timeout(rng.expovariate(1.0 / MEAN_CYCLE))
            if outbound is not None:
                yield outbound.put(1)
            else:
                done[0] += 1

    for index in range(STATIONS):
        env.process(machine(index))
    env.run(until=horizon)
    return done[0]


def engine_line(horizon: float) -> dict:
    return {
        "name": "bench",
        "horizon": horizon,
        "stations": [
            {"name": f"s{i}", "cycle_time": {"dist": "exponential", "mean": MEAN_CYCLE}, "buffer": BUFFER}
            for i in range(STATIONS)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--hours", type=float, default=200.0, help="simulated hours per run")
    args = parser.parse_args()
    horizon = args.hours * 3600
    line = line_from_dict(engine_line(horizon), "bench")
    engine_times, minimal_times, ratios = [], [], []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        minimal_out = minimal_model(horizon, repeat)
        minimal = time.perf_counter() - started
        started = time.perf_counter()
        result = simulate(line, seed=repeat)
        engine = time.perf_counter() - started
        engine_times.append(engine)
        minimal_times.append(minimal)
        ratios.append(engine / minimal)
        print(
            f"repeat {repeat}: minimal {minimal:.3f}s ({minimal_out} parts), "
            f"engine {engine:.3f}s ({result.kpis['parts_out']} parts), ratio {engine / minimal:.3f}"
        )
    print(
        f"median: minimal {statistics.median(minimal_times):.3f}s, "
        f"engine {statistics.median(engine_times):.3f}s, "
        f"ratio engine/minimal {statistics.median(ratios):.3f} (goal <= 1.25)"
    )


if __name__ == "__main__":
    main()

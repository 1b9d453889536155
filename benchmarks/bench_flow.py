"""The flow engine against the SimPy engine and a minimal hand-written SimPy model, in one run.

The line is the one of benchmarks/bench_engine.py: ten stations in series, exponential
cycle times of 60 s, buffers of 3, saturated release.

1. One long run (a simulated year by default) with each of: the minimal SimPy model
   (Store buffers, one process per machine, no statistics), fabbrica's SimPy engine and
   the flow engine, taken in turn; wall times and medians over the repeats.
   Goal: the flow engine at least 50 times faster than the minimal model.
2. 1,000 replications of one simulated week with the flow engine (`twin.flow.replicate`,
   one full KPI record each). Goal: under 10 s. For comparison: the SimPy engine's
   median time per replication (times 1,000), and the same recursion without numba,
   in numpy vectorised over the replications (departure instants only, no KPIs).
3. A year of the recursion in plain Python floats (one run, departure instants only):
   what numba buys for long runs.

    .venv/bin/python benchmarks/bench_flow.py [--hours 8760] [--repeats 3] [--replications 1000]

Other work on the machine slows every figure; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from bench_engine import BUFFER, MEAN_CYCLE, STATIONS, engine_line, minimal_model

from twin.engine import simulate
from twin.flow import replicate, simulate_flow
from twin.line import line_from_dict

WEEK = 7 * 86400.0


def numpy_recursion(replications: int, horizon: float, seed: int) -> np.ndarray:
    """Exits by `horizon` of each replication: the max-plus recursion in numpy, over replications."""
    rng = np.random.default_rng(seed)
    free = np.zeros((STATIONS, replications))
    got = np.zeros((STATIONS, BUFFER + 1, replications))
    exits = np.zeros(replications, dtype=np.int64)
    part = 0
    while free[0].min() < horizon:
        cycles = rng.exponential(MEAN_CYCLE, (STATIONS, replications))
        arriving = free[0]
        for j in range(STATIONS):
            start = np.maximum(free[j], arriving)
            got[j, part % (BUFFER + 1)] = start
            done = start + cycles[j]
            leave = done
            if j == STATIONS - 1:
                exits += done < horizon
            elif part >= BUFFER:
                leave = np.maximum(done, got[j + 1, (part - BUFFER) % (BUFFER + 1)])
            free[j] = leave
            arriving = leave
        part += 1
    return exits


def python_recursion(horizon: float, seed: int) -> int:
    """Exits by `horizon` of one run: the same recursion in plain Python floats."""
    rng = np.random.default_rng(seed)
    free = [0.0] * STATIONS
    got = [[0.0] * (BUFFER + 1) for _ in range(STATIONS)]
    exits = part = 0
    cycles: list[float] = []
    while free[0] < horizon:
        if len(cycles) < STATIONS:
            cycles = rng.exponential(MEAN_CYCLE, 100_000).tolist()
        arriving = free[0]
        for j in range(STATIONS):
            start = max(free[j], arriving)
            got[j][part % (BUFFER + 1)] = start
            done = start + cycles.pop()
            leave = done
            if j == STATIONS - 1:
                exits += done < horizon
            elif part >= BUFFER:
                leave = max(done, got[j + 1][(part - BUFFER) % (BUFFER + 1)])
            free[j] = leave
            arriving = leave
        part += 1
    return exits


class Clock:
    """Wall and processor seconds of a call; the processor time suffers less from other work."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __call__(self, function, *args, **kwargs):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        value = function(*args, **kwargs)
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)
        return value

    @property
    def last(self) -> str:
        return f"{self.wall[-1]:8.3f} s wall {self.cpu[-1]:8.3f} s cpu"

    @property
    def median(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--hours", type=float, default=8760.0, help="simulated hours of the long run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--replications", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min) before: {load()} on {os.cpu_count()} cores")

    horizon = args.hours * 3600
    line = line_from_dict(engine_line(horizon), "bench")
    warm = line_from_dict(engine_line(3600.0), "bench")
    simulate_flow(warm), simulate(warm)  # load the compiled kernels before timing
    minimal, engine, flow = Clock(), Clock(), Clock()
    print(f"\n1. one run of {args.hours:g} simulated hours")
    for repeat in range(args.repeats):
        parts = minimal(minimal_model, horizon, repeat)
        print(f"   repeat {repeat}: minimal SimPy model {minimal.last} ({parts} parts)")
        result = engine(simulate, line, seed=repeat)
        print(f"             SimPy engine        {engine.last} ({result.kpis['parts_out']} parts)")
        result = flow(simulate_flow, line, seed=repeat)
        print(f"             flow engine         {flow.last} ({result.kpis['parts_out']} parts)")
    (m, m_cpu), (e, e_cpu), (f, f_cpu) = minimal.median, engine.median, flow.median
    print(f"   median wall: minimal {m:.3f} s, SimPy engine {e:.3f} s, flow {f:.3f} s")
    print(f"   median cpu:  minimal {m_cpu:.3f} s, SimPy engine {e_cpu:.3f} s, flow {f_cpu:.3f} s")
    print(
        f"   flow is {m / f:.0f}x (wall) / {m_cpu / f_cpu:.0f}x (cpu) faster than the minimal model "
        f"(goal >= 50x), {e / f:.0f}x / {e_cpu / f_cpu:.0f}x faster than the SimPy engine"
    )

    week = line_from_dict(engine_line(WEEK), "bench")
    print(f"\n2. {args.replications} replications of one simulated week")
    runs = Clock()
    for repeat in range(args.repeats):
        seeds = range(repeat * args.replications, (repeat + 1) * args.replications)
        records = runs(replicate, week, seeds)
        throughput = statistics.mean(record["throughput_per_hour"] for record in records)
        print(f"   repeat {repeat}: flow engine {runs.last} (mean throughput {throughput:.2f}/h)")
    single = Clock()
    for seed in range(args.repeats):
        single(simulate, week, seed=seed)
    vectorised = Clock()
    exits = vectorised(numpy_recursion, args.replications, WEEK, 0)
    (r, r_cpu), (one, one_cpu), (v, v_cpu) = runs.median, single.median, vectorised.median
    print(f"   median: flow engine {r:.2f} s wall, {r_cpu:.2f} s cpu (goal < 10 s)")
    print(
        f"   SimPy engine: {one:.3f} s wall, {one_cpu:.3f} s cpu a run, "
        f"so {one * args.replications:.0f} s wall for {args.replications}"
    )
    print(
        f"   numpy recursion over the replications (departure instants only): "
        f"{v:.2f} s wall, {v_cpu:.2f} s cpu (mean throughput {exits.mean() / (WEEK / 3600):.2f}/h)"
    )

    print(f"\n3. the recursion alone, {args.hours:g} simulated hours, one run")
    plain = Clock()
    exits = plain(python_recursion, horizon, 0)
    print(f"   plain Python floats {plain.last} ({exits} parts); flow engine with every KPI {f:.3f} s wall")
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()

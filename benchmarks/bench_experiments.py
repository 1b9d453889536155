"""Experiment throughput: scaling from 1 to 2 local workers, and the twin against Ciw and salabim.

    .venv/bin/python benchmarks/bench_experiments.py [--repeats 5] [--scaling-hours 100]
                                                     [--peer-repeats 5] [--peer-hours 200]
                                                     [--only scaling|peers]

Scaling: a 40-run experiment on the demonstrator line (8 buffer levels x 5 replications)
is run with `workers=1` (in this process) and `workers=2` (two local worker processes,
pool start-up included), alternately; prints the median wall times, the median ratio
1 worker / 2 workers (goal >= 1.8 on a 2-core machine) and checks that the runs are
identical. The engines' lazily loaded parts are loaded once per process before the
measurements (that cold start is printed separately). After each
repeat, two pure-Python loops run serially and in two processes: their ratio is what
the machine lets two processes gain at that moment (other work shares the cores).

Peers: the same open tandem line (Poisson arrivals every 60 s on average into an
unlimited first queue; three exponential machines, 45 s, 50 s and 40 s; 3 places
between them; blocking after service) simulated for the same horizon by this
project's twin (`twin.run.run_line`, all KPIs included: "twin" as `engine: auto` picks
it, the flow engine; "twin-simpy" forced onto the SimPy event simulation), by Ciw and
by salabim, alternately in one process after one unmeasured warm-up run of each;
prints the median wall time of each and the median wall-time ratios twin / Ciw and
twin / salabim (goal for Ciw: <= 1/3, three times faster).
Ciw and salabim come with the `bench` extra: pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import time
from typing import Any

import pandas as pd

from twin.experiments import Experiment
from twin.line import Line, line_from_dict
from twin.run import run_line

ROOT_LINE = "simulations/lines/demonstrator.yaml"
ARRIVAL_MEAN = 60.0
SERVICE_MEANS = (45.0, 50.0, 40.0)
BUFFER = 3


# -- scaling --------------------------------------------------------------------------------
def scaling_experiment(hours: float, warmup: str = "1h") -> Experiment:
    return Experiment.from_dict(
        {
            "name": "scaling",
            "line": ROOT_LINE,
            "factors": {"stations.lathe.buffer": [1, 2, 3, 4, 5, 6, 7, 8]},
            "replications": 5,
            "horizon": hours * 3600,
            "warmup": warmup,
            "seed": 1,
        },
        base_dir=".",
    )


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def machine_ceiling(n: int = 10_000_000) -> float:
    """What two processes can gain over one right now: two pure-Python loops, serial vs parallel."""
    started = time.perf_counter()
    _burn(n)
    _burn(n)
    serial = time.perf_counter() - started
    with multiprocessing.get_context("fork").Pool(2) as pool:
        started = time.perf_counter()
        pool.map(_burn, [n, n])
        parallel = time.perf_counter() - started
    return serial / parallel


def bench_scaling(repeats: int, hours: float) -> None:
    experiment = scaling_experiment(hours)
    runs = len(experiment.scenarios) * experiment.max_replications
    print(f"scaling: {runs} runs of {hours:g} h on the demonstrator, workers=1 vs workers=2")
    started = time.perf_counter()
    scaling_experiment(0.5, warmup="0s").run(workers=2)  # loads the engines: once per process
    print(
        f"  cold start of the first worker pool (engines loaded), once: {time.perf_counter() - started:.2f}s"
    )
    one_times, two_times, ratios, ceilings = [], [], [], []
    reference: pd.DataFrame | None = None
    for repeat in range(repeats):
        timed = {}
        for workers in (1, 2) if repeat % 2 == 0 else (2, 1):
            started = time.perf_counter()
            result = experiment.run(workers=workers)
            timed[workers] = time.perf_counter() - started
            if reference is None:
                reference = result.runs
            else:
                pd.testing.assert_frame_equal(reference, result.runs, check_exact=True)
        one_times.append(timed[1])
        two_times.append(timed[2])
        ratios.append(timed[1] / timed[2])
        ceiling = machine_ceiling()
        ceilings.append(ceiling)
        print(
            f"  repeat {repeat}: 1 worker {timed[1]:.2f}s, 2 workers {timed[2]:.2f}s, ratio {ratios[-1]:.2f} "
            f"(two pure CPU loops gain {ceiling:.2f}x right now)"
        )
    one, two = statistics.median(one_times), statistics.median(two_times)
    print(
        f"  median: 1 worker {one:.2f}s, 2 workers {two:.2f}s, "
        f"speed-up {statistics.median(ratios):.2f}x (goal >= 1.8x); runs identical in every repeat; "
        f"the machine allowed {statistics.median(ceilings):.2f}x"
    )


# -- peers --------------------------------------------------------------------------------------
def tandem_line(horizon: float, engine: str) -> Line:
    return line_from_dict(
        {
            "name": "tandem",
            "engine": engine,
            "release": {"interarrival": {"dist": "exponential", "mean": ARRIVAL_MEAN}},
            "horizon": horizon,
            "stations": [
                {"name": f"m{i}", "cycle_time": {"dist": "exponential", "mean": mean}}
                | ({"buffer": BUFFER} if i else {})
                for i, mean in enumerate(SERVICE_MEANS)
            ],
        },
        "tandem",
    )


def twin_tandem(horizon: float, seed: int) -> int:
    """The project's default: `engine: auto` picks the flow engine for this line."""
    return int(run_line(tandem_line(horizon, "auto"), seed=seed).kpis["parts_out"])


def twin_simpy_tandem(horizon: float, seed: int) -> int:
    """The same line forced onto the SimPy event simulation."""
    return int(run_line(tandem_line(horizon, "simpy"), seed=seed).kpis["parts_out"])


def ciw_tandem(horizon: float, seed: int) -> int:
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=1 / ARRIVAL_MEAN), None, None],
        service_distributions=[ciw.dists.Exponential(rate=1 / mean) for mean in SERVICE_MEANS],
        routing=[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]],
        number_of_servers=[1, 1, 1],
        queue_capacities=[float("inf"), BUFFER, BUFFER],
    )
    ciw.seed(seed)  # Ciw keeps its random state in the module
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(horizon)
    return sum(1 for r in simulation.get_all_records() if r.node == 3 and r.exit_date <= horizon)


def salabim_tandem(horizon: float, seed: int) -> int:
    import salabim as sim

    sim.yieldless(False)
    env = sim.Environment(trace=False, random_seed=seed)
    stores = [sim.Store(capacity=sim.inf, env=env)] + [sim.Store(capacity=BUFFER, env=env) for _ in range(2)]
    arrivals = sim.Exponential(ARRIVAL_MEAN, env=env)
    services = [sim.Exponential(mean, env=env) for mean in SERVICE_MEANS]
    done = [0]

    class Source(sim.Component):
        def process(self) -> Any:
            while True:
                yield self.hold(arrivals.sample())
                yield self.to_store(stores[0], sim.Component(env=env))

    class Machine(sim.Component):
        def setup(self, index: int) -> None:
            self.index = index

        def process(self) -> Any:
            index = self.index
            last = index == len(SERVICE_MEANS) - 1
            while True:
                yield self.from_store(stores[index])
                part = self.from_store_item()
                yield self.hold(services[index].sample())
                if last:
                    done[0] += 1
                else:
                    yield self.to_store(stores[index + 1], part)

    Source(env=env)
    for index in range(len(SERVICE_MEANS)):
        Machine(index=index, env=env)
    env.run(till=horizon)
    return done[0]


def bench_peers(repeats: int, hours: float) -> None:
    horizon = hours * 3600
    engines = {
        "twin": twin_tandem,
        "twin-simpy": twin_simpy_tandem,
        "ciw": ciw_tandem,
        "salabim": salabim_tandem,
    }
    print(f"peers: open tandem line, {hours:g} h simulated (about {horizon / ARRIVAL_MEAN:.0f} parts)")
    for engine in engines.values():  # one unmeasured run each: imports and first-call caches
        engine(3600.0, 0)
    times: dict[str, list[float]] = {name: [] for name in engines}
    pairs = [(ours, peer) for ours in ("twin", "twin-simpy") for peer in ("ciw", "salabim")]
    ratios: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    for repeat in range(repeats):
        order = list(engines) if repeat % 2 == 0 else list(reversed(engines))
        line = []
        for name in order:
            started = time.perf_counter()
            parts = engines[name](horizon, repeat + 1)
            elapsed = time.perf_counter() - started
            times[name].append(elapsed)
            line.append(f"{name} {elapsed:.2f}s ({parts} parts)")
        for ours, peer in ratios:
            ratios[ours, peer].append(times[ours][-1] / times[peer][-1])
        print(f"  repeat {repeat}: " + ", ".join(line))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print("  median wall: " + ", ".join(f"{name} {value:.2f}s" for name, value in medians.items()))
    for (ours, peer), values in ratios.items():
        ratio = statistics.median(values)
        goal = " (goal <= 0.33)" if peer == "ciw" else ""
        print(f"  wall-time ratio {ours}/{peer}: {ratio:.4f}{goal}, i.e. {1 / ratio:.1f}x as fast")
    assert all(math.isfinite(v) for v in medians.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats of the scaling benchmark")
    parser.add_argument("--scaling-hours", type=float, default=100.0, help="simulated hours per scaling run")
    parser.add_argument(
        "--peer-repeats", type=int, default=5, help="alternating repeats of the peer benchmark"
    )
    parser.add_argument("--peer-hours", type=float, default=200.0, help="simulated hours per peer run")
    parser.add_argument("--only", choices=("scaling", "peers"))
    args = parser.parse_args()
    print(
        f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f} (others share the cores)"
    )
    if args.only in (None, "scaling"):
        bench_scaling(args.repeats, args.scaling_hours)
    if args.only in (None, "peers"):
        bench_peers(args.peer_repeats, args.peer_hours)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

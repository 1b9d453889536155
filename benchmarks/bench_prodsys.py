"""fabbrica optimize against prodsys's optimiser on one problem with an exact answer, in one run.

prodsys 1.3.1 cannot optimise buffer capacities (its ReconfigurationEnum covers production
and transport capacity, process modules, layout and control policies; queues are not among
them), so the shared problem is the closest one both can search: which stations of a line
get a second machine under a budget.

The line: five stations in series, exponential processing (means 48, 54, 42, 51, 45 s, so
loads 0.80, 0.90, 0.70, 0.85, 0.75), Poisson arrivals every 60 s on average, unlimited
buffers: a Jackson network. Decision: at most two extra machines (a station has 1 or 2).
Objective: minimise the mean work in process. Every design is stable, so the exact mean WIP
of a design is the sum over stations of the M/M/c mean number in system (Erlang C), computed
here for all 16 designs; the exact optimum is the best of them.

- fabbrica: `fabbrica optimize --json` in this venv, exhaustive search over the 16 designs
  (4 replications of 10 h, warm-up 1 h, common random numbers), then KN over the five best
  (delta 0.5 parts, alpha 0.05). A station of capacity 2 is one shared queue: M/M/2.
- prodsys: its evolutionary algorithm (`InMemoryOptimizer`, only the `production_capacity`
  transformation, at most 7 machines, one process per machine, WIP as the objective), one
  simulation of `--time-range` minutes per evaluation, in its own virtual environment
  (created on first use with `python -m venv` and `pip install prodsys==1.3.1 pyyaml`;
  prodsys imports yaml without declaring it), run by a driver script written to a temporary
  folder. A second machine in prodsys is a second resource with its own queue, fed by the
  shortest-queue heuristic; a negligible transport step (speed 1e6) moves parts between
  stations. The chosen design is read back as the number of machines per process and scored
  with the same exact formula as fabbrica's.

Both run one after the other on one core each (no workers); the table gives each one's
choice, its exact WIP, the exact optimum, the gap, the distinct designs simulated and the
wall time (median over --repeats).

    .venv/bin/python benchmarks/bench_prodsys.py [--repeats 1] [--venv DIR] [--generations 2]

Other work on the machine slows every figure; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PRODSYS = "prodsys==1.3.1"
INTERARRIVAL = 60.0  # s
MEANS = [48.0, 54.0, 42.0, 51.0, 45.0]  # s
NAMES = [f"s{i + 1}" for i in range(len(MEANS))]
EXTRA = 2  # extra machines allowed


def mmc_number_in_system(lam: float, mu: float, c: int) -> float:
    """Mean number in an M/M/c system (Erlang C)."""
    a = lam / mu
    rho = a / c
    if rho >= 1:
        return math.inf
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) / (1 - rho)
    wait = tail / (head + tail)
    return wait * rho / (1 - rho) + a


def exact_wip(capacities: tuple[int, ...]) -> float:
    lam = 1 / INTERARRIVAL
    return sum(mmc_number_in_system(lam, 1 / m, c) for m, c in zip(MEANS, capacities, strict=True))


def designs() -> list[tuple[int, ...]]:
    return [d for d in itertools.product([1, 2], repeat=len(MEANS)) if sum(d) - len(MEANS) <= EXTRA]


def label(capacities: tuple[int, ...]) -> str:
    extra = [n for n, c in zip(NAMES, capacities, strict=True) if c > 1]
    return "+".join(extra) if extra else "none"


DRIVER = r"""
import json, sys, time
import prodsys.express as psx
from prodsys.models.scenario_data import ScenarioData
from prodsys.optimization.evolutionary_algorithm import EvolutionaryAlgorithmHyperparameters
from prodsys.optimization.optimizer import InMemoryOptimizer

cfg = json.loads(sys.argv[1])
means, extra, n = cfg["means"], cfg["extra"], len(cfg["means"])
exp = lambda m: psx.FunctionTimeModel(distribution_function="exponential", location=m)
procs = [psx.ProductionProcess(time_model=exp(m), ID=f"P{i + 1}") for i, m in enumerate(means)]
tp = psx.TransportProcess(time_model=psx.DistanceTimeModel(speed=1e6, reaction_time=0.0), ID="TP")
machines = [psx.Resource(processes=[p], location=[float(i + 1), 0.0], ID=f"M{i + 1}")
            for i, p in enumerate(procs)]
agv = psx.Resource(processes=[tp], location=[0.0, 0.0], ID="AGV")
part = psx.Product(process=procs, transport_process=tp, ID="part")
source = psx.Source(product=part, time_model=exp(cfg["interarrival"]), location=[0.0, 0.0], ID="src")
sink = psx.Sink(product=part, location=[float(n + 1), 0.0], ID="snk")
system = psx.ProductionSystem(resources=[*machines, agv], sources=[source], sinks=[sink], ID="line")
system = system.to_model()
system.scenario_data = ScenarioData.model_validate({
    "constraints": {"max_reconfiguration_cost": extra * 1000.0, "max_num_machines": n + extra,
                    "max_num_processes_per_machine": 1, "max_num_transport_resources": 1,
                    "target_product_count": None},
    "options": {"transformations": ["production_capacity"], "machine_controllers": ["FIFO"],
                "transport_controllers": ["FIFO"], "routing_heuristics": ["shortest_queue"],
                "positions": [[float(i + 1), y] for i in range(n) for y in (0.0, 1.0, 2.0)]},
    "info": {"machine_cost": 1000.0, "transport_resource_cost": 1000.0, "process_module_cost": 0.0,
             "time_range": cfg["time_range"]},
    "objectives": [{"name": "WIP", "weight": 1.0}],
})
hp = EvolutionaryAlgorithmHyperparameters(
    seed=cfg["seed"], number_of_generations=cfg["generations"], population_size=cfg["population"],
    mutation_rate=0.5, crossover_rate=0.1, number_of_seeds=1, number_of_processes=1)
start = time.perf_counter()
optimizer = InMemoryOptimizer(adapter=system, hyperparameters=hp)
optimizer.optimize()
wall = time.perf_counter() - start
seen = {}
for entries in optimizer.get_optimization_results().values():
    for fitness in entries.values():
        seen.setdefault(fitness.hash, fitness)
best = max(seen.values(), key=lambda f: f.agg_fitness)
configuration = optimizer.get_configuration_by_hash(best.hash)
counts = {f"P{i + 1}": 0 for i in range(n)}
for resource in configuration.resource_data:
    for pid in resource.process_ids:
        if pid in counts:
            counts[pid] += 1
print(json.dumps({"counts": [counts[f"P{i + 1}"] for i in range(n)], "wip": best.fitness[0],
                  "evaluations": len(seen), "wall_s": wall}))
"""


def prodsys_venv(path: Path) -> Path:
    path = path.absolute()
    python = path / "bin" / "python"
    if not python.exists():
        print(f"creating {path} and installing {PRODSYS} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PRODSYS, "pyyaml"], check=True)
    return python


def run_prodsys(python: Path, args: argparse.Namespace, seed: int) -> dict:
    cfg = {
        "means": [m / 60 for m in MEANS],
        "interarrival": INTERARRIVAL / 60,
        "extra": EXTRA,
        "time_range": args.time_range,
        "seed": seed,
        "generations": args.generations,
        "population": args.population,
    }
    with tempfile.TemporaryDirectory() as tmp:
        driver = Path(tmp) / "prodsys_driver.py"
        driver.write_text(DRIVER)
        start = time.perf_counter()
        done = subprocess.run(
            [str(python), str(driver), json.dumps(cfg)],
            cwd=tmp,
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        outer = time.perf_counter() - start
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["outer_s"] = outer
    return result


def run_fabbrica(seed: int) -> dict:
    line = {
        "name": "jackson5",
        "release": {"interarrival": {"dist": "exponential", "mean": INTERARRIVAL}},
        "stations": [
            {"name": n, "cycle_time": {"dist": "exponential", "mean": m}, "capacity": 1}
            for n, m in zip(NAMES, MEANS, strict=True)
        ],
    }
    spec = {
        "name": "second-machines",
        "line": "line.yaml",
        "horizon": "10h",
        "warmup": "1h",
        "seed": seed,
        "replications": 4,
        "variables": {f"stations.{n}.capacity": {"choice": [1, 2]} for n in NAMES},
        "constraints": [{"sum": [f"stations.{n}.capacity" for n in NAMES], "max": len(NAMES) + EXTRA}],
        "objectives": [{"kpi": "wip_mean", "goal": "minimize"}],
        "search": {"method": "exhaustive"},
        "selection": {"delta": 0.5, "alpha": 0.05, "candidates": 5, "first": 10, "max_replications": 200},
    }
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "line.yaml").write_text(yaml.safe_dump(line, sort_keys=False))
        Path(tmp, "opt.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        fabbrica = Path(sys.executable).parent / "fabbrica"
        start = time.perf_counter()
        done = subprocess.run(
            [str(fabbrica), "optimize", str(Path(tmp, "opt.yaml")), "--out", str(Path(tmp, "out")), "--json"],
            check=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        outer = time.perf_counter() - start
    result = json.loads(done.stdout)
    factors = result["best"]["factors"]
    return {
        "counts": [int(factors[f"stations.{n}.capacity"]) for n in NAMES],
        "wip": result["best"]["kpis"]["wip_mean"]["mean"],
        "evaluations": result["evaluations"],
        "runs": result["replications"],
        "wall_s": result["wall_s"],
        "outer_s": outer,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each optimiser (seeds 0, 1, ...)")
    venv = Path.home() / ".cache" / "fabbrica" / "venv-prodsys-1.3.1"
    parser.add_argument("--venv", type=Path, default=venv, help="prodsys's virtual environment")
    parser.add_argument("--generations", type=int, default=2, help="prodsys EA generations")
    parser.add_argument("--population", type=int, default=8, help="prodsys EA population, a multiple of 4")
    parser.add_argument("--time-range", type=int, default=2000, help="prodsys minutes per evaluation")
    args = parser.parse_args()

    print("load average before:", os.getloadavg())
    table = {d: exact_wip(d) for d in designs()}
    optimum = min(table, key=table.get)
    ranked = sorted(table.items(), key=lambda kv: kv[1])
    print(f"{len(table)} feasible designs; exact mean WIP, best first:")
    for d, w in ranked[:4]:
        print(f"  {label(d):8s} {w:7.3f}")
    python = prodsys_venv(args.venv)

    rows = []
    for name, run in (("fabbrica", run_fabbrica), ("prodsys", lambda s: run_prodsys(python, args, s))):
        results = [run(seed) for seed in range(args.repeats)]
        for r in results:
            r["design"] = tuple(r["counts"])
            r["exact"] = table.get(r["design"], math.nan)
            print(
                f"{name}: chose {label(r['design'])} (its estimate {r['wip']:.3f}, "
                f"exact {r['exact']:.3f}), {r['evaluations']} designs, {r['wall_s']:.1f} s",
                file=sys.stderr,
            )
        rows.append((name, results))

    print()
    print(
        "| optimiser | chosen (2nd machine) | exact WIP of choice | exact optimum | gap "
        f"| designs evaluated | runs | wall s (median of {args.repeats}) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, results in rows:
        chosen = ", ".join(sorted({label(r["design"]) for r in results}))
        exact = statistics.median(r["exact"] for r in results)
        gaps = statistics.median(r["exact"] - table[optimum] for r in results)
        evals = statistics.median(r["evaluations"] for r in results)
        runs = statistics.median(r.get("runs", r["evaluations"]) for r in results)
        wall = statistics.median(r["outer_s"] for r in results)
        hits = sum(r["design"] == optimum for r in results)
        print(
            f"| {name} | {chosen} ({hits}/{len(results)} optimal) | {exact:.3f} "
            f"| {table[optimum]:.3f} ({label(optimum)}) | {gaps:.3f} | {evals:g} | {runs:g} | {wall:.1f} |"
        )
    print()
    print("command: .venv/bin/python benchmarks/bench_prodsys.py " + " ".join(sys.argv[1:]))
    print("load average after:", os.getloadavg())


if __name__ == "__main__":
    main()

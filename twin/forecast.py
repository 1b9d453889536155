"""The shift forecast: replications of the twin from the line's current state to the end of a horizon.

"At 10:40, with these parts in the buffers and the lathe down for 6 minutes, how many
parts will the line make by 14:00, will it reach 330, and what holds it back?" Every
replication starts from the same state (`twin.state`) and runs to `horizon` seconds
after it, without warm-up. Replication i uses seed `seed + i`: common random numbers,
so two forecasts from nearby states differ by the state, not by noise.

The result is the JSON object of `fabbrica twin forecast --json` (see docs/live-twin.md):
`parts_out` counts good parts leaving the line after the state's instant (mean with
its 95 % half-width, and the 10/50/90 % quantiles of the replications), the throughput,
per station its parts out and state shares, the bottleneck (the station with the
largest mean share of the time it held the line back, `twin.bottleneck`) and, with a
target, the probability of reaching it by the horizon and the quantiles of when.
The target counts the parts the state says were made already (`produced` of the
last station). An ETA quantile that the replications do not reach within the
horizon is null.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.engine import RunResult
from twin.experiments.stats import estimate
from twin.line import Line
from twin.run import choose_engine, run_line
from twin.state import LineState, check_state
from twin.station import REPORTED_STATES

QUANTILES = {"p10": 0.10, "p50": 0.50, "p90": 0.90}
Progress = Callable[[int], None]  # told how many replications have just finished


@dataclass(frozen=True)
class Replication:
    """What the forecast keeps of one replication."""

    parts_out: int
    stations: dict[str, dict[str, float]]  # parts_out, the state shares and the bottleneck share
    reached_at: float | None  # when the target was reached (None: not within the horizon)
    path: tuple[int, ...] = ()  # parts out by each of the forecast's `path` instants


def default_workers(line: Line, engine: str, replications: int, horizon: float) -> int:
    """How many processes a forecast is worth: the flow engine's runs are too short to share out;
    the SimPy engine's are worth the CPUs once the replications add up to more than ~2 s."""
    if engine == "flow":
        return 1
    machine_hours = replications * horizon / 3600 * sum(station.capacity for station in line.stations)
    return max(1, os.cpu_count() or 1) if machine_hours > 300 else 1


def _one(
    line: Line,
    state: LineState,
    engine: str,
    seed: int,
    horizon: float,
    still_to_make: int | None,
    path: Sequence[float] = (),
) -> Replication:
    """One replication, alone (`_runs` runs many, the flow engine's batched)."""
    result = run_line(line, engine=engine, seed=seed, horizon=horizon, warmup=0.0, state=state)
    return _kept(result, still_to_make, path)


def _runs(
    line: Line,
    state: LineState,
    engine: str,
    seeds: Sequence[int],
    horizon: float,
    still_to_make: int | None,
    path: Sequence[float] = (),
) -> Iterator[Replication]:
    """The replications of `seeds` in turn.

    The flow engine's runs are a few milliseconds, as long as setting one up: they go
    through `twin.flow.runs`, which checks the state once and draws ahead for each run
    as much as the runs before it needed. The SimPy engine's run one by one.
    """
    if engine in ("flow", "event"):
        # the compiled engines load numba: only when they run
        from twin.event import runs as event_runs
        from twin.flow import runs as flow_runs

        runs = flow_runs if engine == "flow" else event_runs
        for result in runs(line, seeds, horizon=horizon, warmup=0.0, state=state):
            yield _kept(result, still_to_make, path)
    else:
        for seed in seeds:
            yield _one(line, state, engine, seed, horizon, still_to_make, path)


def _kept(result: RunResult, still_to_make: int | None, path: Sequence[float]) -> Replication:
    """What the forecast keeps of one run."""
    record = result.kpis
    stations = {
        name: {
            "parts_out": float(values["parts_out"]),
            **{share: float(values[share]) for share in REPORTED_STATES},
            "bottleneck": float(values["bottleneck_sole"] + values["bottleneck_shifting"]),
        }
        for name, values in record["stations"].items()
    }
    reached = None
    if still_to_make is not None:
        exits = result.exit_times
        if still_to_make <= 0:
            reached = 0.0
        elif len(exits) >= still_to_make:
            reached = float(exits[still_to_make - 1])
    counts: tuple[int, ...] = ()
    if len(path):
        counts = tuple(int(n) for n in np.searchsorted(np.asarray(result.exit_times), path, side="right"))
    return Replication(int(record["parts_out"]), stations, reached, counts)


_Chunk = tuple[Line, LineState, str, Sequence[int], float, int | None, Sequence[float]]


def _chunk(args: _Chunk) -> list[Replication]:
    line, state, engine, seeds, horizon, still_to_make, path = args
    return list(_runs(line, state, engine, seeds, horizon, still_to_make, path))


def replicate(
    line: Line,
    state: LineState,
    *,
    horizon: float,
    replications: int,
    seed: int,
    engine: str | None = None,
    target: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    path: Sequence[float] = (),
) -> tuple[str, list[Replication]]:
    """Run the replications (in `workers` processes when more than one); returns (engine, replications).

    `path`: instants (seconds after the state's) at which to count the parts out as well.
    """
    chosen = choose_engine(line, engine)
    still = None if target is None else target - state.produced(line)
    seeds = [seed + i for i in range(replications)]
    workers = max(1, min(workers, replications))
    if workers == 1:
        results = []
        for replication in _runs(line, state, chosen, seeds, horizon, still, path):
            results.append(replication)
            if progress is not None:
                progress(1)
        return chosen, results
    size = max(1, math.ceil(replications / (workers * 4)))
    chunks = [seeds[i : i + size] for i in range(0, len(seeds), size)]
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    results = []
    with context.Pool(workers) as pool:
        for done in pool.imap(
            _chunk, [(line, state, chosen, chunk, horizon, still, path) for chunk in chunks]
        ):
            results.extend(done)
            if progress is not None:
                progress(len(done))
    return chosen, results


def forecast(
    line: Line,
    state: LineState,
    *,
    horizon: float,
    replications: int = 200,
    seed: int | None = None,
    engine: str | None = None,
    target: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    source: str = "<state>",
    path: Sequence[float] = (),
) -> dict[str, Any]:
    """The forecast of `line` from `state` over `horizon` seconds, as the `--json` object.

    `path`: instants (seconds after the state's, within the horizon) at which the quantiles
    of the parts out are given too, as `"path": [{"t_s", "p10", "p50", "p90"}, ...]` (a fan).
    """
    if horizon <= 0:
        raise ValueError(f"horizon must be > 0, got {horizon:g}s")
    if replications < 2:
        raise ValueError(f"replications must be >= 2, got {replications}")
    check_state(line, state, source)
    seed = line.seed if seed is None else seed
    chosen, runs = replicate(
        line,
        state,
        horizon=horizon,
        replications=replications,
        seed=seed,
        engine=engine,
        target=target,
        workers=workers,
        progress=progress,
        path=path,
    )
    return summarise(line, state, runs, horizon=horizon, engine=chosen, target=target, path=path)


def summarise(
    line: Line,
    state: LineState,
    runs: Sequence[Replication],
    *,
    horizon: float,
    engine: str,
    target: int | None,
    path: Sequence[float] = (),
) -> dict[str, Any]:
    """The forecast's JSON object from its replications."""
    parts = np.array([run.parts_out for run in runs], dtype=float)
    parts_estimate = estimate(parts)
    rate = parts * 3600.0 / horizon
    rate_estimate = estimate(rate)
    stations: dict[str, Any] = {}
    held_back: dict[str, float] = {}
    for station in line.stations:
        name = station.name
        per_run = [run.stations[name] for run in runs]
        stations[name] = {
            "parts_out": {"mean": float(np.mean([values["parts_out"] for values in per_run]))},
            "shares": {
                share: float(np.mean([values[share] for values in per_run])) for share in REPORTED_STATES
            },
        }
        held_back[name] = float(np.mean([values["bottleneck"] for values in per_run]))
    result: dict[str, Any] = {
        "horizon_s": float(horizon),
        "replications": len(runs),
        "engine": engine,
        "parts_out": {
            "mean": parts_estimate.mean,
            "ci95": parts_estimate.ci95,
            **{name: float(np.quantile(parts, q)) for name, q in QUANTILES.items()},
        },
        "throughput_per_hour": {"mean": rate_estimate.mean, "ci95": rate_estimate.ci95},
        "stations": stations,
        "bottleneck": max(held_back, key=lambda name: held_back[name]),
    }
    if state.time is not None:
        result["time"] = state.time.isoformat().replace("+00:00", "Z")
    result["produced"] = state.produced(line)
    if target is not None:
        reached = np.array([math.inf if run.reached_at is None else run.reached_at for run in runs])
        result["target"] = {
            "parts": int(target),
            "probability": float(np.mean(np.isfinite(reached))),
            "eta_s": {name: _quantile_or_none(reached, q) for name, q in QUANTILES.items()},
        }
    if len(path):
        counts = np.array([run.path for run in runs], dtype=float)
        result["path"] = [
            {"t_s": float(t), **{name: float(np.quantile(counts[:, k], q)) for name, q in QUANTILES.items()}}
            for k, t in enumerate(path)
        ]
    return result


def _quantile_or_none(values: np.ndarray, q: float) -> float | None:
    """np.quantile's (linear) q-quantile of `values`, where inf stands for "not within the horizon":
    None when the quantile reaches into those (interpolating towards inf would only warn)."""
    ordered = np.sort(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    if not math.isfinite(ordered[high]):
        return None
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))

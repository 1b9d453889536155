"""Validating a twin against the line: does the calibrated model reproduce what the line did?

The twin is run with independent replications over a window as long as the observed one
(after its own warm-up). Observed and simulated throughput and per-station state shares are
compared; the twin is `valid` when the relative error of the throughput and of every
station's working share (where the line worked at least 5 % of the time) is within the
tolerance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from twin.calibration.records import StationRecord
from twin.engine import simulate
from twin.line import Line

STATES = ("working", "blocked", "starved", "down", "setup")


def half_width(values: list[float], confidence: float = 0.95) -> float:
    """Student-t half-width of the mean of independent replications."""
    if len(values) < 2:
        return math.inf
    sd = float(np.std(values, ddof=1))
    return float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * sd / math.sqrt(len(values))


def validate(
    line: Line,
    records: dict[str, StationRecord],
    window_s: float,
    *,
    replications: int = 10,
    tolerance: float = 0.05,
    seed: int | None = None,
) -> dict[str, Any]:
    """The validation record (the JSON of `fabbrica twin validate`)."""
    last = line.stations[-1].name
    observed_parts = sum(1 for scrapped in records[last].scrapped if not scrapped) if last in records else 0
    observed_throughput = observed_parts / window_s * 3600
    base_seed = line.seed if seed is None else seed
    runs = [
        simulate(line, seed=base_seed + r, horizon=line.warmup + window_s, warmup=line.warmup).kpis
        for r in range(replications)
    ]
    throughputs = [run["throughput_per_hour"] for run in runs]
    twin_mean = float(np.mean(throughputs))
    rel_error = (
        abs(twin_mean - observed_throughput) / observed_throughput if observed_throughput else math.inf
    )
    stations: dict[str, Any] = {}
    verdict_ok = rel_error <= tolerance
    for station in line.stations:
        twin_shares = {
            state: float(np.mean([run["stations"][station.name][state] for run in runs])) for state in STATES
        }
        entry: dict[str, Any] = {"twin": twin_shares}
        record = records.get(station.name)
        if record is not None and record.states:
            observed = record.state_shares(window_s)
            entry["observed"] = observed
            if observed["working"] >= 0.05:
                working_error = abs(twin_shares["working"] - observed["working"]) / observed["working"]
                entry["working_rel_error"] = working_error
                verdict_ok = verdict_ok and working_error <= tolerance
        else:
            entry["observed"] = {}
        stations[station.name] = entry
    return {
        "throughput": {
            "observed": observed_throughput,
            "twin_mean": twin_mean,
            "twin_ci95": half_width(throughputs),
            "rel_error": rel_error,
        },
        "stations": stations,
        "verdict": "valid" if verdict_ok else "invalid",
        "tolerance": tolerance,
        "replications": replications,
        "window_s": window_s,
    }

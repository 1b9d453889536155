"""The design of an experiment: which scenarios are run, and with which random-number seeds.

- `full_factorial`: every combination of the factors' levels (a range contributes its
  two ends, or `levels: N` evenly spaced values);
- `latin_hypercube`: `samples` scenarios; each factor's range (or list of levels) is cut
  into `samples` equal strata and every stratum is used exactly once;
- explicit `scenarios`: each a mapping of dotted paths to values.

Seeds: replication r of every scenario runs with the seed derived from
(experiment seed, r) only. Scenarios therefore share common random numbers
(scenario differences are not drowned in sampling noise), and a run's result
does not depend on which worker runs it, when, or in which order.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.experiments.spec import ExperimentSpec, FullFactorial, LatinHypercube, Range, Scenarios


@dataclass(frozen=True)
class Scenario:
    """One combination of factor values; `factors` maps dotted paths to the values applied."""

    id: str
    factors: dict[str, Any]


def derived_seed(seed: int, stream: int, index: int) -> int:
    """Run seed `index` of seed stream `stream` under `seed`: 0 replications, 1 warm-up pilots,
    2 the selection stage of an optimisation. Streams never share a seed."""
    state = np.random.SeedSequence(seed, spawn_key=(stream, index)).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def replication_seed(seed: int, replication: int) -> int:
    """The run seed of replication `replication` (0-based) in an experiment seeded with `seed`."""
    return derived_seed(seed, 0, replication)


def pilot_seed(seed: int, pilot: int) -> int:
    """The seed of warm-up pilot run `pilot` (0-based), never the seed of a replication."""
    return derived_seed(seed, 1, pilot)


def _ids(count: int) -> list[str]:
    width = len(str(count))
    return [f"s{index:0{width}d}" for index in range(1, count + 1)]


def _value(factor: Range, x: float) -> float | int:
    if factor.integer:
        return round(x)
    return float(x)


def _factorial_levels(factor: list[Any] | Range) -> list[Any]:
    if isinstance(factor, list):
        return factor
    count = factor.levels or 2
    values = [_value(factor, x) for x in np.linspace(factor.low, factor.high, count)]
    return list(dict.fromkeys(values))


def _latin_hypercube(factors: dict[str, list[Any] | Range], samples: int, seed: int) -> list[dict[str, Any]]:
    columns: dict[str, list[Any]] = {}
    for path, factor in factors.items():
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(path.encode()),)))
        )
        u = (rng.permutation(samples) + rng.random(samples)) / samples
        if isinstance(factor, list):
            columns[path] = [factor[min(int(x * len(factor)), len(factor) - 1)] for x in u]
        elif factor.integer:
            span = factor.high - factor.low + 1
            columns[path] = [int(factor.low + min(int(x * span), span - 1)) for x in u]
        else:
            columns[path] = [float(factor.low + x * (factor.high - factor.low)) for x in u]
    return [{path: column[i] for path, column in columns.items()} for i in range(samples)]


def build_scenarios(spec: ExperimentSpec) -> list[Scenario]:
    """The scenarios of the experiment's design, in a fixed order with ids s1.. (zero-padded)."""
    design = spec.resolved_design
    factors: dict[str, list[Any] | Range] = dict(spec.factors)
    if isinstance(design, Scenarios):
        rows = [{k: v for k, v in row.items() if k != "id"} for row in design.scenarios]
        ids = _ids(len(rows))
        named = [str(row["id"]) if "id" in row else ids[i] for i, row in enumerate(design.scenarios)]
        return [Scenario(id=i, factors=row) for i, row in zip(named, rows, strict=True)]
    if not factors:
        return [Scenario(id="s1", factors={})]
    if isinstance(design, LatinHypercube):
        seed = spec.seed if design.seed is None else design.seed
        rows = _latin_hypercube(factors, design.samples, seed)
    else:
        assert isinstance(design, FullFactorial)
        paths = list(factors)
        grid = itertools.product(*(_factorial_levels(factors[path]) for path in paths))
        rows = [dict(zip(paths, values, strict=True)) for values in grid]
    return [Scenario(id=i, factors=row) for i, row in zip(_ids(len(rows)), rows, strict=True)]

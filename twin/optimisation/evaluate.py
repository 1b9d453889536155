"""Evaluating designs: each design's line, its replications with common random numbers, its objective values.

The line of a design is built the way an experiment builds a scenario's line
(`twin.experiments.Experiment.scenario_line`: the base line with its overrides,
the design's values written at their dotted paths, the whole line validated
again), and its runs go through the experiment runner (`twin.experiments.runner`:
in this process, local worker processes or Dask; the line's `engine`, `auto` by
default, runs serial lines on the flow engine). Replication r of every design in
the search runs with the same seed (the experiment's `replication_seed`), and
replication r of every candidate in the selection stage with a seed of a stream
of its own, so the selection's observations are fresh yet share common random
numbers across candidates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from twin.experiments.design import derived_seed, replication_seed
from twin.experiments.experiment import Experiment
from twin.experiments.runner import Executor, RunTask
from twin.line import Line
from twin.optimisation.space import Design, design_key
from twin.optimisation.spec import Objective, OptimisationSpec

SELECTION_STREAM = 2  # the seed stream of the selection stage (0: replications, 1: warm-up pilots)


def objective_value(objective: Objective, record: Mapping[str, Any], design: Mapping[str, Any]) -> float:
    """One run's value of an objective: its KPI, or the weighted sum of KPIs and variable values."""
    if objective.kpi is not None:
        value = record.get(objective.kpi)
        return math.nan if value is None else float(value)
    assert objective.terms is not None
    total = 0.0
    for key, weight in objective.terms.items():
        value = design[key] if key in design else record.get(key)
        if value is None:
            return math.nan
        total += weight * float(value)
    return total


class Evaluator:
    """Runs designs on an executor and remembers every run (one record per design x replication)."""

    def __init__(self, spec: OptimisationSpec, experiment: Experiment, executor: Executor) -> None:
        self.spec = spec
        self.experiment = experiment
        self.executor = executor
        self.ids: dict[str, str] = {}  # design key -> design id d1, d2, ...
        self.designs: dict[str, Design] = {}  # design id -> design
        self.runs: list[dict[str, Any]] = []  # every record, search and selection
        self._lines: dict[str, Line] = {}

    def identify(self, design: Design) -> tuple[str, bool]:
        """The design's id, and whether it is new."""
        key = design_key(design)
        if key in self.ids:
            return self.ids[key], False
        design_id = f"d{len(self.ids) + 1}"
        self.ids[key] = design_id
        self.designs[design_id] = dict(design)
        return design_id, True

    def line(self, design_id: str) -> Line:
        if design_id not in self._lines:
            self._lines[design_id] = self.experiment.scenario_line(self.designs[design_id], "variables")
        return self._lines[design_id]

    def run(self, design_ids: Sequence[str], replications: range, stage: str) -> list[dict[str, Any]]:
        """Run `replications` of every design (stage `search` or `selection`) and keep the records."""
        tasks = []
        for design_id in design_ids:
            for r in replications:
                seed = (
                    replication_seed(self.spec.seed, r)
                    if stage == "search"
                    else derived_seed(self.spec.seed, SELECTION_STREAM, r)
                )
                scenario = design_id if stage == "search" else f"{design_id}-kn"
                tasks.append(RunTask(scenario, r, seed, self.line(design_id)))
        records = []
        for record in self.executor.map_unordered(tasks):
            design_id = record["scenario"].removesuffix("-kn")
            record = {"stage": stage, "design": design_id, **record}
            del record["scenario"]
            for objective in self.spec.objectives:
                record[f"objective:{objective.label}"] = objective_value(
                    objective, record, self.designs[design_id]
                )
            records.append(record)
        order = {design_id: i for i, design_id in enumerate(design_ids)}
        records.sort(key=lambda rec: (order[rec["design"]], rec["replication"]))
        self.runs.extend(records)
        return records

    def values(self, design_id: str, objective: Objective, stage: str = "search") -> np.ndarray:
        """The objective's value in every replication of a design (in replication order)."""
        column = f"objective:{objective.label}"
        rows = [r for r in self.runs if r["design"] == design_id and r["stage"] == stage]
        rows.sort(key=lambda r: r["replication"])
        return np.asarray([r[column] for r in rows], dtype=float)

    def kpi_violations(self, design_id: str) -> dict[str, float]:
        """For each constraint on a KPI (`constraints[i]`): how far the design's search mean lies
        outside its bounds (0 or less: met; a KPI without value counts as broken)."""
        out = {}
        rows = [r for r in self.runs if r["design"] == design_id and r["stage"] == "search"]
        for index, constraint in enumerate(self.spec.constraints):
            if constraint.kpi is None:
                continue
            values = np.asarray([r.get(constraint.kpi) for r in rows], dtype=float)
            values = values[~np.isnan(values)]
            mean = float(values.mean()) if len(values) else math.nan
            out[f"constraints[{index}]"] = math.inf if math.isnan(mean) else constraint.violation(mean)
        return out

    def meets_kpi_constraints(self, design_id: str) -> bool:
        return all(v <= 0 for v in self.kpi_violations(design_id).values())

    def means(self, design_id: str) -> list[float]:
        """The search means of every objective (NaN-free means over the replications)."""
        out = []
        for objective in self.spec.objectives:
            values = self.values(design_id, objective)
            values = values[~np.isnan(values)]
            out.append(float(values.mean()) if len(values) else math.nan)
        return out

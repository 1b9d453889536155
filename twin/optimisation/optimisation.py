"""An optimisation ready to run: the validated spec and line, the search, then the selection stage.

`Optimisation.from_yaml` reads the file and the line it names, applies `horizon`,
`warmup` and the `overrides`, validates the line at the lowest and the highest
value of every variable (errors name `variables.PATH`) and refuses constraints
that no design meets. `run` searches (`twin.optimisation.search`), takes the best
designs found (the Pareto front with several objectives) as candidates, tests their
constraints on KPIs on fresh replications (`twin.optimisation.feasibility`), and runs
KN on the ones not shown to break one (`twin.optimisation.selection`).

    >>> result = Optimisation.from_yaml("simulations/optimisation/buffers.yaml").run(workers=2)
    >>> result.designs        # one row per design evaluated (pandas)
    >>> result.to_json()["best"]
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from foundation.errors import InputError
from twin.experiments.experiment import Experiment
from twin.experiments.runner import make_executor
from twin.experiments.spec import DEFAULT_KPIS
from twin.experiments.spec import spec_from_dict as experiment_spec
from twin.optimisation.constraints import Constraints
from twin.optimisation.evaluate import Evaluator
from twin.optimisation.feasibility import FeasibilityResult, Limits, check_feasibility
from twin.optimisation.results import OptimisationResult, build_result
from twin.optimisation.search import open_study, run_search
from twin.optimisation.selection import KNResult, kn
from twin.optimisation.spec import (
    ChoiceVariable,
    FloatVariable,
    OptimisationError,
    OptimisationSpec,
    load_spec,
    spec_from_dict,
)

Progress = Callable[[int, int], None]


def _corner(spec: OptimisationSpec, end: int) -> dict[str, Any]:
    design = {}
    for path, variable in spec.variables.items():
        if isinstance(variable, FloatVariable):
            design[path] = variable.bounds[end]
        elif isinstance(variable, ChoiceVariable):
            design[path] = variable.choice[end]
        else:
            design[path] = variable.values()[end]
    return design


class Optimisation:
    """A validated optimisation: its spec, its line (as an experiment's base) and its constraints."""

    def __init__(self, spec: OptimisationSpec, source: str, base_dir: Path) -> None:
        self.spec = spec
        self.source = source
        low, high = _corner(spec, 0), _corner(spec, -1)
        data = {
            "name": spec.name,
            "line": spec.line,
            "overrides": spec.overrides,
            "seed": spec.seed,
            "replications": spec.replications,
            "kpis": list(DEFAULT_KPIS),
            "design": {"scenarios": [{"id": "lowest", **low}, {"id": "highest", **high}]},
        }
        for field in ("horizon", "warmup"):
            if getattr(spec, field) is not None:
                data[field] = getattr(spec, field)
        try:
            self.experiment = Experiment(experiment_spec(data, source), source, base_dir, section="variables")
        except InputError as exc:  # the experiment's (or the line file's) one line, as ours
            raise OptimisationError(str(exc)) from None
        self.constraints = Constraints(spec)
        problem = self.constraints.infeasibility()
        if problem is not None:
            raise OptimisationError(f"{source}: {problem}")
        self.line_path = self.experiment.line_path

    @classmethod
    def from_yaml(cls, path: str | Path) -> Optimisation:
        """Load and validate an optimisation file (the line path is relative to it)."""
        file = Path(path)
        return cls(load_spec(file), str(file), file.parent)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base_dir: str | Path = ".", source: str = "<optimisation>"
    ) -> Optimisation:
        """An optimisation given as plain data; `line` is relative to `base_dir`."""
        return cls(spec_from_dict(dict(data), source), source, Path(base_dir))

    @property
    def name(self) -> str:
        return self.spec.name

    def run(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        progress: Progress | None = None,
        out: str | Path | None = None,
    ) -> OptimisationResult:
        """Search, select, and return the result (also written into `out` when given).

        With `out`, the study is kept in `out/study.journal`, so running again after an
        interruption resumes the search.
        """
        started = time.perf_counter()
        storage = None
        if out is not None:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            storage = os.path.abspath(folder / "study.journal")
        executor = make_executor(workers, scheduler)
        try:
            study = open_study(self.spec, storage)
            evaluator = Evaluator(self.spec, self.experiment, executor)
            log = run_search(self.spec, evaluator, study, progress)
            candidates = self.candidates(evaluator, log.order)
            selection, feasibility = self.select(evaluator, candidates)
        except BaseException:
            executor.close(cancel=True)
            raise
        executor.close()
        result = build_result(
            self,
            evaluator,
            log,
            candidates,
            selection,
            feasibility=feasibility,
            executor=executor.description,
            wall_s=time.perf_counter() - started,
        )
        if out is not None:
            result.write(out)
        return result

    def candidates(self, evaluator: Evaluator, order: list[str]) -> list[str]:
        """The designs the selection stage compares: the best found on the first objective, or the
        Pareto front with several objectives (best first on the first objective), among the
        designs whose search means meet the constraints on KPIs."""
        scored = scores(self.spec, evaluator, order)
        if len(self.spec.objectives) > 1:
            front = set(pareto_front(self.spec, evaluator, order))
            scored = [s for s in scored if s[0] in front]
        scored.sort(key=lambda s: -s[1][0])
        wanted = self.spec.selection.candidates if self.spec.selection is not None else 1
        return [design_id for design_id, _ in scored[:wanted]]

    def select(
        self, evaluator: Evaluator, candidates: list[str]
    ) -> tuple[KNResult | None, FeasibilityResult | None]:
        """The selection stage over the candidates, on fresh replications (common random numbers):
        with constraints on KPIs, first the feasibility check (`twin.optimisation.feasibility`),
        which drops the candidates shown to break one; then KN on the first objective over the
        rest. KN's indices are the candidates'; with every candidate dropped it does not run."""
        selection = self.spec.selection
        if selection is None or not candidates:
            return None, None
        runs = SelectionRuns(evaluator, candidates)
        settings = {
            "alpha": selection.alpha,
            "n0": selection.first,
            "max_replications": selection.max_replications,
        }
        constraints = self.spec.kpi_constraints
        feasibility = None
        alive = list(range(len(candidates)))
        if constraints:
            kpis = [str(c.kpi) for c in constraints]
            feasibility = check_feasibility(
                lambda indices, start, stop: runs.table(indices, start, stop, kpis),
                len(candidates),
                [Limits(c.min, c.max) for c in constraints],
                **settings,
            )
            alive = [i for i in alive if not feasibility.broken(i)]
            if not alive:
                return None, feasibility
        objective = self.spec.primary
        column = [f"objective:{objective.label}"]

        def draw(indices: Sequence[int], start: int, stop: int) -> np.ndarray:
            return objective.sign * runs.table([alive[i] for i in indices], start, stop, column)[:, :, 0]

        result = kn(draw, len(alive), delta=selection.delta, among=len(candidates), **settings)
        return _widen(result, alive, len(candidates)), feasibility


class SelectionRuns:
    """The selection stage's runs of the candidates: each replication runs once, whoever asks for it
    first (the feasibility check or KN), and is kept in the evaluator's records."""

    def __init__(self, evaluator: Evaluator, candidates: list[str]) -> None:
        self.evaluator = evaluator
        self.candidates = candidates
        self.records: dict[tuple[str, int], dict[str, Any]] = {}

    def table(self, indices: Sequence[int], start: int, stop: int, columns: Sequence[str]) -> np.ndarray:
        """Replications start..stop-1 of the candidates `indices`, shape (candidates, replications,
        columns); a column without a value in a run is NaN."""
        ids = [self.candidates[i] for i in indices]
        missing: dict[range, list[str]] = {}
        for design_id in ids:
            todo = [r for r in range(start, stop) if (design_id, r) not in self.records]
            if todo:
                span = range(todo[0], todo[-1] + 1)
                assert len(span) == len(todo), "replications are asked for in order"
                missing.setdefault(span, []).append(design_id)
        for span, group in missing.items():
            for record in self.evaluator.run(group, span, "selection"):
                self.records[record["design"], record["replication"]] = record
        table = np.full((len(ids), stop - start, len(columns)), np.nan)
        for row, design_id in enumerate(ids):
            for r in range(start, stop):
                record = self.records[design_id, r]
                table[row, r - start] = [
                    math.nan if record.get(c) is None else float(record[c]) for c in columns
                ]
        return table


def _widen(result: KNResult, alive: list[int], k: int) -> KNResult:
    """KN's result over the candidates `alive` (of k) in the candidates' indices; the others have no
    observations and were not eliminated by KN (the feasibility check dropped them)."""
    observations: list[list[float]] = [[] for _ in range(k)]
    eliminated: list[int | None] = [None] * k
    for position, i in enumerate(alive):
        observations[i] = result.observations[position]
        eliminated[i] = result.eliminated_at[position]
    return replace(result, chosen=alive[result.chosen], observations=observations, eliminated_at=eliminated)


def scores(spec: OptimisationSpec, evaluator: Evaluator, order: list[str]) -> list[tuple[str, np.ndarray]]:
    """The designs that may be chosen (every objective has a mean, the KPI constraints are met),
    with their search means signed so that larger is better."""
    signs = np.array([o.sign for o in spec.objectives])
    out = []
    for design_id in order:
        means = np.asarray(evaluator.means(design_id)) * signs
        if not np.isnan(means).any() and evaluator.meets_kpi_constraints(design_id):
            out.append((design_id, means))
    return out


def pareto_front(spec: OptimisationSpec, evaluator: Evaluator, order: list[str]) -> list[str]:
    """The designs no other eligible design dominates on the search means, in evaluation order."""
    scored = scores(spec, evaluator, order)
    return [d for d, m in scored if not any(_dominates(o, m) for _, o in scored)]


def _dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a is at least as good as b everywhere and better somewhere (larger is better)."""
    return bool(np.all(a >= b) and np.any(a > b))

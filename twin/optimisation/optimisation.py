"""An optimisation ready to run: the validated spec and line, the search, then the selection stage.

`Optimisation.from_yaml` reads the file and the line it names, applies `horizon`,
`warmup` and the `overrides`, validates the line at the lowest and the highest
value of every variable (errors name `variables.PATH`) and refuses constraints
that no design meets. `run` searches (`twin.optimisation.search`), takes the best
designs found (the Pareto front with several objectives) as candidates, and runs
KN on them with fresh replications (`twin.optimisation.selection`).

    >>> result = Optimisation.from_yaml("simulations/optimisation/buffers.yaml").run(workers=2)
    >>> result.designs        # one row per design evaluated (pandas)
    >>> result.to_json()["best"]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
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
            selection = self.select(evaluator, candidates)
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

    def select(self, evaluator: Evaluator, candidates: list[str]) -> KNResult | None:
        """KN on the first objective over the candidates, with fresh replications (common random numbers)."""
        selection = self.spec.selection
        if selection is None or not candidates:
            return None
        objective = self.spec.primary
        column = f"objective:{objective.label}"

        def draw(indices: Any, start: int, stop: int) -> np.ndarray:
            ids = [candidates[i] for i in indices]
            records = evaluator.run(ids, range(start, stop), "selection")
            table = np.full((len(ids), stop - start), np.nan)
            for record in records:
                table[ids.index(record["design"]), record["replication"] - start] = record[column]
            return objective.sign * table

        return kn(
            draw,
            len(candidates),
            delta=selection.delta,
            alpha=selection.alpha,
            n0=selection.first,
            max_replications=selection.max_replications,
        )


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

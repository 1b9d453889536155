"""The search: propose designs, evaluate them, tell the study, until the budget is spent.

Optuna's ask-and-tell interface drives TPE and NSGA-II; `exhaustive` walks every
feasible design of a discrete space. Designs are proposed in batches of
`search.batch` (the same batch whatever the number of workers, so the designs
proposed do not depend on where they run). A proposal that breaks a constraint is
never simulated: its trial is marked failed and the nearest feasible design is
evaluated and added to the study as a trial of its own, so the sampler learns only
from feasible designs. A design proposed again is not run again.

The study lives in Optuna's journal storage (`study.journal` in the output folder): every
finished trial carries its design and its runs, so the same command resumes an
interrupted search where it stopped (trials left running are marked failed).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.optimisation.constraints import Constraints
from twin.optimisation.evaluate import Evaluator
from twin.optimisation.space import Design, Space, design_key
from twin.optimisation.spec import OptimisationError, OptimisationSpec

# batches in a row that bring no new design before the search is taken as exhausted
STALE_BATCHES = 50

Progress = Callable[[int, int], None]


@dataclass
class SearchLog:
    """What the search did: the designs in the order first evaluated, trials, resumed ones, why it stopped."""

    order: list[str]
    trials: int
    repaired: int
    resumed: int
    stopped: str
    wall_s: float


# a discrete space up to this size is counted, so that a search that has seen it all stops
COUNTED_SPACE = 20_000


def _feasible_count(space: Space, constraints: Constraints) -> int | None:
    """How many feasible designs a small discrete space has (None: continuous or large)."""
    size = space.size()
    if size is None or size > COUNTED_SPACE:
        return None
    return sum(1 for design in space.grid() if constraints.feasible(design))


def _unseen(space: Space, constraints: Constraints, evaluator: Evaluator, seed: int) -> Design:
    """A feasible design not evaluated yet, drawn at random from a counted space."""
    left = [d for d in space.grid() if constraints.feasible(d) and design_key(d) not in evaluator.ids]
    return left[int(np.random.default_rng(seed).integers(len(left)))]


def spec_fingerprint(spec: OptimisationSpec) -> str:
    """What must not change for a study to be resumed: everything that decides designs and runs."""
    data = spec.model_dump(mode="json", by_alias=True, exclude={"budget", "selection", "description", "name"})
    return json.dumps(data, sort_keys=True, default=str)


def startup_trials(spec: OptimisationSpec) -> int:
    """TPE's random designs before its model: as given, else a quarter of the evaluations
    (at least 3, at most Optuna's default 10), so that a small budget is not all random."""
    if spec.search.startup is not None:
        return spec.search.startup
    evaluations = spec.budget.evaluations
    return 10 if evaluations is None else max(3, min(10, evaluations // 4))


def _sampler(spec: OptimisationSpec, offset: int) -> Any:
    import optuna

    seed = (spec.search.seed if spec.search.seed is not None else spec.seed) + 7919 * offset
    if spec.search.method == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=spec.search.population or 20)
    if spec.search.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(spec))
    return optuna.samplers.RandomSampler(seed=seed)


def journal(path: str) -> Any:
    """Optuna's journal storage in the file `path` (JSON lines, readable by
    `optuna.storages.JournalStorage(JournalFileBackend(path))`), appended without an fsync per
    operation: on this machine an fsync costs about 10 ms and a trial takes half a dozen operations.
    One process writes it; an interrupted run loses at most what the system had not yet written."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    class _Unsynced(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with open(path, "ab") as file:
                file.write(text.encode("utf-8"))

    return JournalStorage(_Unsynced(path))


def open_study(spec: OptimisationSpec, storage: str | None) -> Any:
    """The study (new, or the one in the journal file `storage` if the same spec made it)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = [objective.goal for objective in spec.objectives]
    study = optuna.create_study(
        study_name=spec.name,
        storage=journal(storage) if storage is not None else None,
        directions=directions,
        load_if_exists=True,
    )
    fingerprint = spec_fingerprint(spec)
    stored = study.user_attrs.get("spec")
    if stored is None:
        study.set_user_attr("spec", fingerprint)
    elif stored != fingerprint:
        raise OptimisationError(
            f"{storage}: holds study {spec.name!r} of a different optimisation file: "
            "use another --out folder, or delete it to start again"
        )
    return study


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[key] = value
    return out


def resume(study: Any, evaluator: Evaluator) -> int:
    """Take back the designs and runs of an earlier session; mark its unfinished trials failed."""
    from optuna.trial import TrialState

    resumed = 0
    finished = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
        elif trial.state == TrialState.COMPLETE and "runs" in trial.user_attrs:
            finished.append(trial)
    # in the order first evaluated, so that designs get their ids (d1, d2, ...) back
    for trial in sorted(finished, key=lambda t: (t.user_attrs.get("evaluation", 0), t.number)):
        design = dict(json.loads(trial.user_attrs["design"]))
        design_id, new = evaluator.identify(design)
        if new:
            records = [
                {
                    **{k: (math.nan if v is None else v) for k, v in r.items()},
                    "design": design_id,
                    "stage": "search",
                }
                for r in trial.user_attrs["runs"]
            ]
            evaluator.runs.extend(records)
            resumed += 1
    return resumed


def run_search(
    spec: OptimisationSpec,
    evaluator: Evaluator,
    study: Any,
    progress: Progress | None = None,
) -> SearchLog:
    """Search until the budget (evaluations, wall time) is spent or the space is exhausted."""
    from optuna.trial import TrialState, create_trial

    started = time.perf_counter()
    space = Space(spec)
    constraints = Constraints(spec)
    distributions = space.distributions()
    resumed = resume(study, evaluator)
    order = list(evaluator.designs)
    study.sampler = _sampler(spec, len(study.trials))
    budget = spec.budget
    reps = range(spec.replications)
    planned = (budget.evaluations or len(order) or 1) * spec.replications
    trials = repaired = 0

    def report() -> None:
        if progress is not None:
            progress(len(order) * spec.replications, max(planned, len(order) * spec.replications))

    def spent() -> str | None:
        if budget.evaluations is not None and len(order) >= budget.evaluations:
            return "evaluations"
        if budget.wall_time is not None and time.perf_counter() - started >= budget.wall_time:
            return "wall_time"
        return None

    def record(design_id: str, new: bool) -> tuple[list[float] | None, dict[str, Any]]:
        attrs: dict[str, Any] = {
            "design_id": design_id,
            "design": json.dumps(list(evaluator.designs[design_id].items()), default=str),
        }
        if new:
            attrs["evaluation"] = int(design_id.removeprefix("d"))
            attrs["runs"] = [
                _plain({k: v for k, v in r.items() if k not in ("design", "stage")})
                for r in evaluator.runs
                if r["design"] == design_id and r["stage"] == "search"
            ]
        values = evaluator.means(design_id)
        return (None if any(math.isnan(v) for v in values) else values), attrs

    def limits(design_id: str) -> dict[str, float] | None:
        """Constraints on KPIs for the sampler (finite: a KPI without value is far outside)."""
        if not spec.kpi_constraints:
            return None
        return {k: min(v, 1e12) for k, v in evaluator.kpi_violations(design_id).items()}

    def add(design: Design, design_id: str, new: bool) -> None:
        values, attrs = record(design_id, new)
        study.add_trial(
            create_trial(
                params=space.encode(design),
                distributions=distributions,
                values=values,
                state=TrialState.COMPLETE if values is not None else TrialState.FAIL,
                user_attrs=attrs,
                constraints=limits(design_id),
            )
        )

    report()
    stopped = spent()
    if spec.search.method == "exhaustive" and stopped is None:
        todo = [d for d in space.grid() if constraints.feasible(d)]
        chunk = max(spec.search.batch, 16)
        stopped = "exhausted"
        for start in range(0, len(todo), chunk):
            if (reason := spent()) is not None:
                stopped = reason
                break
            batch = todo[start : start + chunk]
            if budget.evaluations is not None:
                batch = batch[: budget.evaluations - len(order)]
            fresh = []
            for design in batch:
                design_id, new = evaluator.identify(design)
                if new:
                    fresh.append((design, design_id))
            planned = max(planned, (len(order) + len(todo) - start) * spec.replications)
            evaluator.run([i for _, i in fresh], reps, "search")
            for design, design_id in fresh:
                add(design, design_id, True)
                order.append(design_id)
                trials += 1
            report()
    stale = 0
    everything = _feasible_count(space, constraints)
    while stopped is None and spec.search.method != "exhaustive":
        if everything is not None and len(order) >= everything:
            stopped = "exhausted"
            break
        count = spec.search.batch
        if budget.evaluations is not None:
            count = min(count, budget.evaluations - len(order))
        asked = [study.ask(distributions) for _ in range(count)]
        plan: list[tuple[Any, Design, str, bool]] = []
        fresh: list[str] = []
        for trial in asked:
            proposal = space.decode(trial.params)
            design = constraints.repair(proposal)
            if design is None:  # cannot happen once the spec is known feasible
                study.tell(trial, state=TrialState.FAIL)
                continue
            design_id, new = evaluator.identify(design)
            if new:
                fresh.append(design_id)
            plan.append((trial, design, design_id, design != proposal))
        evaluator.run(fresh, reps, "search")
        told: set[str] = set()
        for trial, design, design_id, was_repaired in plan:
            new = design_id in fresh and design_id not in told
            told.add(design_id)
            trials += 1
            if was_repaired:
                trial.set_user_attr("repaired_to", design_id)
                study.tell(trial, state=TrialState.FAIL)
                add(design, design_id, new)
                repaired += 1
                continue
            values, attrs = record(design_id, new)
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            for key, value in (limits(design_id) or {}).items():
                trial.set_constraint(key, value)
            if values is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, values)
        order.extend(fresh)
        stale = 0 if fresh else stale + 1
        if stale and everything is not None and len(order) < everything:
            # the sampler keeps proposing what it has seen: take an unseen feasible design at random
            design = _unseen(space, constraints, evaluator, seed=spec.seed + len(order))
            design_id, _ = evaluator.identify(design)
            evaluator.run([design_id], reps, "search")
            add(design, design_id, True)
            order.append(design_id)
            trials += 1
            stale = 0
        report()
        stopped = spent() or ("exhausted" if stale >= STALE_BATCHES else None)
    return SearchLog(
        order=order,
        trials=trials,
        repaired=repaired,
        resumed=resumed,
        stopped=stopped or "exhausted",
        wall_s=time.perf_counter() - started,
    )

"""What an optimisation leaves behind: every run, every design, the selection stage and its provenance.

- `evaluations`: one row per run: `stage` (search or selection), `design`, `replication`,
  `seed`, one column per variable, `objective:LABEL` per objective, and every KPI
  (as in an experiment's runs.parquet);
- `designs`: one row per design evaluated in the search, in the order first evaluated:
  its values, each objective's mean and 95% half-width, and whether it was on the Pareto
  front, a candidate of the selection stage, the chosen one;
- `selection`: one row per candidate: its mean over the selection stage, the
  replications it got, the round it was eliminated, and the paired difference to the
  chosen design (common random numbers); with constraints on KPIs, the feasibility
  check's decision and each constraint's mean and one-sided bound;
- `metadata`: the `optimization.json` record.

`write(out)` puts them into `evaluations.parquet`, `designs.csv`, `selection.csv`,
`optimization.json`, `best_line.yaml` and `report.html` (the study itself is
`study.journal`, Optuna's journal storage, written as the search goes).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import platform
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from twin.experiments.paths import set_path
from twin.experiments.results import git_commit
from twin.experiments.spec import DEFAULT_KPIS
from twin.experiments.stats import estimate
from twin.optimisation.evaluate import Evaluator
from twin.optimisation.feasibility import Check, FeasibilityResult, Limits, describe, statement
from twin.optimisation.search import SearchLog
from twin.optimisation.selection import KNResult, guarantee

if TYPE_CHECKING:
    from twin.optimisation.optimisation import Optimisation
    from twin.optimisation.spec import Constraint, OptimisationSpec


@dataclass
class OptimisationResult:
    """Runs, designs, selection and metadata of one optimisation (pandas DataFrames)."""

    name: str
    evaluations: pd.DataFrame
    designs: pd.DataFrame
    selection: pd.DataFrame
    metadata: dict[str, Any]
    best_line: dict[str, Any]

    @property
    def best(self) -> dict[str, Any]:
        return self.metadata["best"]

    def to_json(self) -> dict[str, Any]:
        """The `fabbrica optimize --json` object."""
        meta = self.metadata
        best = meta["best"]
        out: dict[str, Any] = {
            "best": None if best is None else {"factors": best["factors"], "kpis": best["kpis"]},
            "evaluations": meta["search"]["evaluations"],
            "replications": meta["runs"],
            "selection": {
                key: meta["selection"][key] for key in ("procedure", "delta", "alpha", "candidates")
            },
        }
        if "kpi_constraints" in meta["selection"]:
            out["selection"]["kpi_constraints"] = meta["selection"]["kpi_constraints"]
        if len(meta["objectives"]) > 1:
            out["pareto"] = meta["pareto"]
        out["wall_s"] = float(meta["wall_s"])
        return out

    def write(self, out: str | Path) -> Path:
        """Write the result files into `out` (see the module docstring)."""
        from twin.optimisation.report import render_report

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        self.evaluations.to_parquet(folder / "evaluations.parquet", index=False)
        self.designs.to_csv(folder / "designs.csv", index=False)
        self.selection.to_csv(folder / "selection.csv", index=False)
        (folder / "optimization.json").write_text(
            json.dumps(self.metadata, indent=2, default=str) + "\n", encoding="utf-8"
        )
        (folder / "best_line.yaml").write_text(
            yaml.safe_dump(self.best_line, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        (folder / "report.html").write_text(render_report(self), encoding="utf-8")
        return folder


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, int | float | str) else json.dumps(value)


def _summary(values: np.ndarray) -> dict[str, float | None]:
    est = estimate(values)
    return {"mean": _num(est.mean), "ci95": _num(est.ci95)}


def build_result(
    optimisation: Optimisation,
    evaluator: Evaluator,
    log: SearchLog,
    candidates: list[str],
    selection: KNResult | None,
    *,
    feasibility: FeasibilityResult | None = None,
    executor: dict[str, Any],
    wall_s: float,
) -> OptimisationResult:
    """Assemble frames and metadata from the evaluator's runs (`selection` and `feasibility` as
    `Optimisation.select` returns them)."""
    spec = optimisation.spec
    paths = list(spec.variables)
    objectives = spec.objectives
    runs = evaluator.runs
    kpi_columns = set(runs[0]) if runs else set()
    column = {path: (f"factor:{path}" if path in kpi_columns else path) for path in paths}
    order = {design_id: i for i, design_id in enumerate(log.order)}
    stage_order = {"search": 0, "selection": 1}
    records = sorted(
        runs, key=lambda r: (stage_order[r["stage"]], order.get(r["design"], 10**9), r["replication"])
    )
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["stage", "design"])
    if records:
        for position, path in enumerate(paths):
            values = [_cell(evaluator.designs[r["design"]][path]) for r in records]
            frame.insert(4 + position, column[path], values)
        objective_columns = [f"objective:{o.label}" for o in objectives]
        rest = [c for c in frame.columns if c not in objective_columns]
        frame = frame[rest[: 4 + len(paths)] + objective_columns + rest[4 + len(paths) :]]

    if selection is not None:
        chosen: str | None = candidates[selection.chosen]
    elif feasibility is not None:
        chosen = None  # every candidate was shown to break a constraint on a KPI
    else:
        chosen = candidates[0] if candidates else None
    constraints = [(f"constraints[{i}]", c) for i, c in enumerate(spec.constraints) if c.kpi is not None]
    pareto = set(candidates) if len(objectives) > 1 else set()
    if len(objectives) > 1:
        from twin.optimisation.optimisation import pareto_front

        pareto = set(pareto_front(spec, evaluator, log.order))
    design_rows = []
    for design_id in log.order:
        row: dict[str, Any] = {"design": design_id, "evaluation": order[design_id] + 1}
        row.update({column[p]: _cell(evaluator.designs[design_id][p]) for p in paths})
        for objective in objectives:
            summary = _summary(evaluator.values(design_id, objective))
            row[objective.label] = summary["mean"]
            row[f"{objective.label}_ci95"] = summary["ci95"]
        row["replications"] = len(evaluator.values(design_id, objectives[0]))
        row["meets_kpi_constraints"] = evaluator.meets_kpi_constraints(design_id)
        row["pareto"] = design_id in pareto
        row["candidate"] = design_id in candidates
        row["chosen"] = design_id == chosen
        design_rows.append(row)
    designs = pd.DataFrame.from_records(design_rows)

    primary = spec.primary
    selection_rows = []
    chosen_values = evaluator.values(chosen, primary, "selection") if chosen is not None else np.array([])
    for index, design_id in enumerate(candidates):
        values = evaluator.values(design_id, primary, "selection")
        common = min(len(values), len(chosen_values))
        diff = (
            estimate(values[:common] - chosen_values[:common])
            if design_id != chosen and common
            else estimate([])
        )
        row = {"design": design_id, **{column[p]: _cell(evaluator.designs[design_id][p]) for p in paths}}
        row.update(
            mean=_summary(values)["mean"],
            ci95=_summary(values)["ci95"],
            replications=len(values),
            eliminated_at=(selection.eliminated_at[index] if selection is not None else None),
            chosen=design_id == chosen,
            diff_to_chosen=_num(diff.mean),
            diff_ci95=_num(diff.ci95),
        )
        if feasibility is not None:
            row["kpi_constraints"] = feasibility.decision(index)
            for (label, _), check in zip(constraints, feasibility.checks[index], strict=True):
                row.update(
                    {
                        f"{label}:mean": check.mean,
                        f"{label}:lower": check.lower,
                        f"{label}:upper": check.upper,
                        f"{label}:decision": check.decision,
                    }
                )
        selection_rows.append(row)
    selection_frame = pd.DataFrame.from_records(selection_rows)

    best = _best(optimisation, evaluator, chosen, selection is not None)
    pareto_list = [
        {"factors": evaluator.designs[d], "kpis": _kpis(optimisation, evaluator, d, "search")}
        for d in log.order
        if d in pareto
    ]
    best_line = copy.deepcopy(optimisation.experiment.base_data)
    if chosen is not None:
        for path, value in evaluator.designs[chosen].items():
            set_path(best_line, path, value)
    line = optimisation.experiment.base_line
    sel = spec.selection
    chosen_index = candidates.index(chosen) if chosen is not None else None
    selection_meta: dict[str, Any] = {
        "procedure": "KN" if sel is not None else "none",
        "delta": sel.delta if sel is not None else None,
        "alpha": sel.alpha if sel is not None else None,
        "candidates": len(candidates),
        "objective": primary.label,
        "first_stage": sel.first if sel is not None else None,
        "max_replications": sel.max_replications if sel is not None else None,
        "truncated": bool(selection.truncated) if selection is not None else False,
        "guarantee": _guarantee(spec, candidates, selection, feasibility, chosen_index),
    }
    if selection is not None:
        selection_meta.update(
            eta=selection.eta,
            h2=selection.h2,
            rounds=selection.rounds,
            replications={d: len(evaluator.values(d, primary, "selection")) for d in candidates},
            seeds="selection seed r = f(seed, stream 2, r): fresh, shared by all candidates",
        )
    if feasibility is not None:
        selection_meta.update(_feasibility_meta(feasibility, candidates, constraints, chosen_index))
    metadata = {
        "optimisation": spec.name,
        "description": spec.description,
        "file": optimisation.source,
        "line_file": str(optimisation.line_path),
        "line": line.name,
        "stations": [station.name for station in line.stations],
        "overrides": spec.overrides,
        "variables": {p: v.model_dump(mode="json", by_alias=True) for p, v in spec.variables.items()},
        "constraints": [c.model_dump(mode="json", exclude_none=True) for c in spec.constraints],
        "objectives": [o.model_dump(mode="json", exclude_none=True) for o in objectives],
        "horizon_s": line.horizon,
        "warmup_s": line.warmup,
        "replications": spec.replications,
        "seeds": {
            "seed": spec.seed,
            "scheme": "search replication r of every design runs with seed f(seed, r): common random numbers",
        },
        "search": {
            "method": spec.search.method,
            "budget": spec.budget.model_dump(mode="json", exclude_none=True),
            "batch": spec.search.batch,
            "evaluations": len(log.order),
            "trials": log.trials,
            "repaired": log.repaired,
            "resumed_evaluations": log.resumed,
            "stopped": log.stopped,
            "wall_s": log.wall_s,
        },
        "selection": selection_meta,
        "best": best,
        "pareto": pareto_list,
        "runs": len(frame),
        "executor": executor,
        "wall_s": wall_s,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(Path(optimisation.source).resolve().parent),
        "versions": _versions(),
    }
    return OptimisationResult(
        name=spec.name,
        evaluations=frame,
        designs=designs,
        selection=selection_frame,
        metadata=metadata,
        best_line=best_line,
    )


def _guarantee(
    spec: OptimisationSpec,
    candidates: list[str],
    selection: KNResult | None,
    feasibility: FeasibilityResult | None,
    chosen: int | None,
) -> str:
    """What the selection stage states, in words: KN's guarantee, and with constraints on KPIs the
    feasibility check's, the chosen design's constraints and what holds of both together."""
    sel = spec.selection
    if sel is None or not candidates:
        return "no selection stage: the best search mean, without a stated probability"
    if feasibility is None:
        assert selection is not None
        return guarantee(selection, len(candidates), sel.delta, sel.alpha)
    names = [describe(str(c.kpi), Limits(c.min, c.max)) for c in spec.kpi_constraints]
    words = statement(feasibility, names, chosen)
    if selection is None:
        return f"{words}; KN did not run"
    left = len(candidates) - sum(feasibility.broken(i) for i in range(len(candidates)))
    kn_words = guarantee(selection, left, sel.delta, sel.alpha)
    words += f"; KN over the {left} candidate{'s' if left > 1 else ''} left: {kn_words}"
    if left > 1 and not selection.truncated:
        words += f"; both statements hold together with probability >= {1 - 2 * sel.alpha:.0%}"
    return words


def _feasibility_meta(
    feasibility: FeasibilityResult,
    candidates: list[str],
    constraints: list[tuple[str, Constraint]],
    chosen: int | None,
) -> dict[str, Any]:
    """`kpi_constraints` (the chosen design's constraints on KPIs, as tested) and `feasibility` (the
    check and every candidate's constraints) of optimization.json's selection."""

    def checks(i: int) -> list[dict[str, Any]]:
        return [
            _check_record(label, constraint, check, feasibility.alpha)
            for (label, constraint), check in zip(constraints, feasibility.checks[i], strict=True)
        ]

    return {
        "kpi_constraints": checks(chosen) if chosen is not None else [],
        "feasibility": {
            "procedure": "one-sided Student-t bounds at looks, Bonferroni over candidates, limits and looks "
            "(a feasibility check after Batur & Kim 2010 and Andradóttir & Kim 2010, without a tolerance)",
            "confidence": 1 - feasibility.alpha,
            "looks": feasibility.looks,
            "limits": feasibility.sides,
            "level_per_bound": feasibility.level,
            "dropped": [d for i, d in enumerate(candidates) if feasibility.broken(i)],
            "candidates": {
                d: {
                    "decision": feasibility.decision(i),
                    "replications": feasibility.replications[i],
                    "constraints": checks(i),
                }
                for i, d in enumerate(candidates)
            },
        },
    }


def _check_record(label: str, constraint: Constraint, check: Check, alpha: float) -> dict[str, Any]:
    """One constraint on a KPI of one candidate: its limits, the mean, the one-sided bounds, the decision."""
    return {
        "constraint": label,
        "kpi": constraint.kpi,
        "min": constraint.min,
        "max": constraint.max,
        "mean": check.mean,
        "lower": check.lower,
        "upper": check.upper,
        "replications": check.replications,
        "decision": check.decision,
        "established": check.established,
        "confidence": 1 - alpha,
    }


def _kpis(
    optimisation: Optimisation, evaluator: Evaluator, design_id: str, stage: str
) -> dict[str, dict[str, float | None]]:
    """Mean and 95% half-width of the objectives and the usual KPIs of one design in one stage."""
    spec = optimisation.spec
    rows = [r for r in evaluator.runs if r["design"] == design_id and r["stage"] == stage]
    wanted: list[str] = []
    for objective in spec.objectives:
        if objective.kpi is not None:
            wanted.append(objective.kpi)
        else:
            wanted.extend(k for k in objective.terms or {} if k not in spec.variables)
    wanted.extend(DEFAULT_KPIS)
    out = {}
    for kpi in dict.fromkeys(wanted):
        out[kpi] = _summary(
            np.asarray([math.nan if r.get(kpi) is None else r[kpi] for r in rows], dtype=float)
        )
    for objective in spec.objectives:
        if objective.kpi is None:
            out[objective.label] = _summary(evaluator.values(design_id, objective, stage))
    return out


def _best(
    optimisation: Optimisation, evaluator: Evaluator, chosen: str | None, selected: bool
) -> dict[str, Any] | None:
    if chosen is None:
        return None
    has_selection_runs = any(r["design"] == chosen and r["stage"] == "selection" for r in evaluator.runs)
    stage = "selection" if selected and has_selection_runs else "search"
    return {
        "design": chosen,
        "factors": evaluator.designs[chosen],
        "kpis": _kpis(optimisation, evaluator, chosen, stage),
        "stage": stage,
    }


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("fabbrica-testbed", "simpy", "numpy", "scipy", "pandas", "pydantic", "optuna"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions

"""What an experiment leaves behind: every run, a summary per scenario and KPI, and its provenance.

- `runs`: one row per scenario x replication: scenario, replication, seed, the
  factor values (one column per dotted path), every line KPI, the bottleneck and
  every station KPI as `stations.NAME.METRIC`. Rows are sorted by scenario and
  replication, and nothing in them depends on where or when a run executed, so
  two executions of an experiment give identical frames;
- `summary`: per scenario and KPI: mean, standard deviation, 95% half-width
  (Student t) and the number of replications;
- `metadata`: versions, seeds, the resolved design, warm-up, executor, wall time
  and the git commit when the experiment lives in a git work tree.

`write(out)` puts them into `runs.parquet`, `summary.csv`, `experiment.json` and
`report.html`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from twin.experiments.spec import LatinHypercube, Range, Scenarios, Sequential
from twin.experiments.stats import estimate

if TYPE_CHECKING:
    from twin.experiments.experiment import Experiment

KEY_COLUMNS = ("scenario", "replication", "seed")


@dataclass
class ExperimentResult:
    """Runs, summary and metadata of one execution of an experiment (pandas DataFrames)."""

    name: str
    runs: pd.DataFrame
    summary: pd.DataFrame
    metadata: dict[str, Any]
    kpis: list[str]
    factors: dict[str, str] = field(default_factory=dict)  # dotted path -> column in `runs`

    @property
    def interrupted(self) -> bool:
        return bool(self.metadata.get("interrupted"))

    def scenario_factors(self) -> dict[str, dict[str, Any]]:
        return {s["id"]: s["factors"] for s in self.metadata["design"]["scenarios"]}

    def to_json(self) -> dict[str, Any]:
        """The `fabbrica experiment run --json` object."""
        scenarios = []
        counts = self.runs.groupby("scenario", sort=False).size() if len(self.runs) else pd.Series(dtype=int)
        for scenario_id, factors in self.scenario_factors().items():
            rows = self.summary[self.summary["scenario"] == scenario_id]
            kpis = {
                row.kpi: {"mean": _num(row.mean), "std": _num(row.std), "ci95": _num(row.ci95)}
                for row in rows.itertuples()
            }
            scenarios.append(
                {
                    "id": scenario_id,
                    "factors": factors,
                    "replications": int(counts.get(scenario_id, 0)),
                    "kpis": kpis,
                }
            )
        return {
            "experiment": self.name,
            "scenarios": scenarios,
            "runs": len(self.runs),
            "wall_s": float(self.metadata["wall_s"]),
        }

    def write(self, out: str | Path) -> Path:
        """Write runs.parquet, summary.csv, experiment.json and report.html into `out`."""
        from twin.experiments.report import render_report

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        self.runs.to_parquet(folder / "runs.parquet", index=False)
        self.summary.to_csv(folder / "summary.csv", index=False)
        (folder / "experiment.json").write_text(
            json.dumps(self.metadata, indent=2, default=str) + "\n", encoding="utf-8"
        )
        (folder / "report.html").write_text(render_report(self), encoding="utf-8")
        return folder


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _column_values(values: list[Any]) -> list[Any]:
    """Factor values as one parquet-friendly column: numbers stay numbers, anything else text."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return values
    return [None if v is None else (v if isinstance(v, str) else json.dumps(v)) for v in values]


def build_result(
    experiment: Experiment,
    records: list[dict[str, Any]],
    *,
    warmup: dict[str, Any] | None,
    executor: dict[str, Any],
    wall_s: float,
    interrupted: bool,
) -> ExperimentResult:
    """Assemble the frames and metadata from the runs' records (in any order)."""
    order = {s.id: i for i, s in enumerate(experiment.scenarios)}
    records = sorted(records, key=lambda r: (order[r["scenario"]], r["replication"]))
    paths: list[str] = []
    for scenario in experiment.scenarios:
        paths.extend(p for p in scenario.factors if p not in paths)
    kpi_columns = list(records[0]) if records else []
    columns = {path: (f"factor:{path}" if path in kpi_columns else path) for path in paths}
    factors_of = {s.id: s.factors for s in experiment.scenarios}
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(KEY_COLUMNS))
    if records:
        for position, path in enumerate(paths):
            values = _column_values([factors_of[r["scenario"]].get(path) for r in records])
            frame.insert(len(KEY_COLUMNS) + position, columns[path], values)
    summary = summarise(frame, experiment, columns)
    metadata = _metadata(experiment, frame, warmup, executor, wall_s, interrupted)
    return ExperimentResult(
        name=experiment.name,
        runs=frame,
        summary=summary,
        metadata=metadata,
        kpis=list(experiment.spec.kpis),
        factors=columns,
    )


def summarise(frame: pd.DataFrame, experiment: Experiment, columns: dict[str, str]) -> pd.DataFrame:
    """Mean, std, 95% half-width and replications per scenario and KPI (long format)."""
    rows = []
    for scenario in experiment.scenarios:
        runs = frame[frame["scenario"] == scenario.id] if len(frame) else frame
        for kpi in experiment.spec.kpis:
            values = runs[kpi].tolist() if kpi in runs else []
            est = estimate([math.nan if v is None else v for v in values])
            row: dict[str, Any] = {"scenario": scenario.id}
            for path, column in columns.items():
                value = scenario.factors.get(path)
                row[column] = (
                    value if value is None or isinstance(value, int | float | str) else json.dumps(value)
                )
            row.update(kpi=kpi, mean=est.mean, std=est.std, ci95=est.ci95, replications=len(runs))
            rows.append(row)
    return pd.DataFrame.from_records(rows)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "fabbrica-testbed",
        "simpy",
        "numpy",
        "scipy",
        "pandas",
        "pyarrow",
        "pydantic",
        "dask",
        "distributed",
        "matplotlib",
    ):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(folder: Path) -> str | None:
    """The commit checked out where the experiment file lives (None outside git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _factor_spec(factor: list[Any] | Range) -> Any:
    return factor if isinstance(factor, list) else factor.model_dump(exclude_none=True)


def _metadata(
    experiment: Experiment,
    frame: pd.DataFrame,
    warmup: dict[str, Any] | None,
    executor: dict[str, Any],
    wall_s: float,
    interrupted: bool,
) -> dict[str, Any]:
    spec = experiment.spec
    design = spec.resolved_design
    design_info: dict[str, Any] = {"type": design.type}
    if isinstance(design, LatinHypercube):
        design_info.update(samples=design.samples, seed=spec.seed if design.seed is None else design.seed)
    if not isinstance(design, Scenarios):
        design_info["factors"] = {path: _factor_spec(f) for path, f in spec.factors.items()}
    design_info["scenarios"] = [{"id": s.id, "factors": s.factors} for s in experiment.scenarios]
    reps = spec.replications
    if isinstance(reps, Sequential):
        rule: dict[str, Any] = {"rule": "sequential", **reps.until.model_dump(exclude_none=True)}
    else:
        rule = {"rule": "fixed", "replications": reps}
    counts = frame.groupby("scenario").size().to_dict() if len(frame) else {}
    rule["per_scenario"] = {s.id: int(counts.get(s.id, 0)) for s in experiment.scenarios}
    seeds_used = int(frame["replication"].max()) + 1 if len(frame) else 0
    if warmup is None:
        warmup = (
            {"mode": "auto", "warmup_s": None}
            if spec.warmup == "auto"
            else {"mode": "fixed", "warmup_s": experiment.base_line.warmup}
        )
    line = experiment.base_line
    return {
        "experiment": spec.name,
        "description": spec.description,
        "file": experiment.source,
        "line_file": str(experiment.line_path),
        "line": line.name,
        "stations": [station.name for station in line.stations],
        "overrides": spec.overrides,
        "design": design_info,
        "replications": rule,
        "kpis": list(spec.kpis),
        "horizon_s": line.horizon,
        "warmup": warmup,
        "seeds": {
            "experiment": spec.seed,
            "scheme": "run seed = f(experiment seed, replication index); all scenarios share it",
            "replications": experiment.replication_seeds(seeds_used) if seeds_used else [],
        },
        "runs": len(frame),
        "interrupted": interrupted,
        "executor": executor,
        "wall_s": wall_s,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(Path(experiment.source).resolve().parent),
        "versions": _versions(),
    }

"""An experiment ready to run: its line, its scenarios as validated lines, and the loop that runs them.

`Experiment.from_yaml` reads the experiment file, the line file it names,
applies `horizon`/`warmup`, the fixed `overrides` and each scenario's factor
values to the line's plain data and validates every scenario's line, so a bad
path or value fails before the first run, with the experiment file and field
in the message. `run` executes pilot runs for an `auto` warm-up, then rounds of
replications (one round for a fixed number, more under a precision target),
and returns an `ExperimentResult`.

    >>> result = Experiment.from_yaml("simulations/experiments/buffer_allocation.yaml").run(workers=2)
    >>> result.runs.groupby("scenario").throughput_per_hour.mean()
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from twin.experiments.design import Scenario, build_scenarios, pilot_seed, replication_seed
from twin.experiments.paths import PathError, named_location, set_path
from twin.experiments.results import ExperimentResult, build_result
from twin.experiments.runner import RunTask, make_executor
from twin.experiments.spec import (
    ExperimentError,
    ExperimentSpec,
    Scenarios,
    Sequential,
    load_spec,
    spec_from_dict,
)
from twin.experiments.stats import estimate, replications_needed
from twin.experiments.warmup import mser5_warmup, pilots_per_scenario
from twin.line import Line, format_error, line_from_dict, read_yaml

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _related(location: str, path: str) -> bool:
    """Whether an error at `location` is about the field at `path` (or one inside it: `routes.B[2]`)."""
    return (
        location == path or location.startswith((path + ".", path + "[")) or path.startswith(location + ".")
    )


class Experiment:
    """A validated experiment: the spec, the base line data and one validated line per scenario."""

    def __init__(
        self, spec: ExperimentSpec, source: str, base_dir: Path, *, section: str | None = None
    ) -> None:
        """`section`: the field that errors in the scenarios' values are reported under
        (default: `factors`, or `design.scenarios[i]` for explicit scenarios)."""
        self.spec = spec
        self.source = source
        self.line_path = Path(os.path.normpath(base_dir / spec.line))
        if not self.line_path.is_file():
            raise ExperimentError(f"{source}: line: file not found: {self.line_path}")
        raw = read_yaml(self.line_path)
        line_from_dict(raw, str(self.line_path))  # the line file on its own must be valid
        base = copy.deepcopy(raw)
        for field in ("horizon", "warmup"):
            value = getattr(spec, field)
            if value is not None:
                base[field] = 0.0 if value == "auto" else value
        self._validate(base, "", list(_given(spec)), None)
        for path, value in spec.overrides.items():
            self._set(base, path, value, f"overrides.{path}")
        self.scenarios: list[Scenario] = build_scenarios(spec)
        varied = [path for scenario in self.scenarios for path in scenario.factors]
        # the base may lack what every scenario supplies (a failure's mttr given only as a factor)
        base_line = self._validate(base, "overrides", list(spec.overrides), None, defer=varied)
        self.base_data = base
        self.lines: dict[str, Line] = {}
        explicit = isinstance(spec.resolved_design, Scenarios)
        for index, scenario in enumerate(self.scenarios):
            where = section or (f"design.scenarios[{index}]" if explicit else "factors")
            self.lines[scenario.id] = self.scenario_line(scenario.factors, where, scenario)
        self.base_line: Line = base_line or self.lines[self.scenarios[0].id]
        self._check_kpis()

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> Experiment:
        """Load and validate an experiment file (the line path is relative to it)."""
        file = Path(path)
        return cls(load_spec(file), str(file), file.parent)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], base_dir: str | Path = ".", source: str = "<experiment>"
    ) -> Experiment:
        """An experiment given as plain data (for notebooks); `line` is relative to `base_dir`."""
        return cls(spec_from_dict(dict(data), source), source, Path(base_dir))

    def scenario_line(
        self, factors: Mapping[str, Any], section: str = "factors", scenario: Scenario | None = None
    ) -> Line:
        """The base line (with its overrides) with `factors` applied, validated; errors name
        `section.PATH`."""
        data = copy.deepcopy(self.base_data)
        for path, value in factors.items():
            self._set(data, path, value, f"{section}.{path}")
        line = self._validate(data, section, list(factors), scenario)
        assert line is not None
        return line

    def _set(self, data: dict[str, Any], path: str, value: Any, field: str) -> None:
        try:
            set_path(data, path, value)
        except PathError as exc:
            raise ExperimentError(f"{self.source}: {field}: {exc}") from None

    def _validate(
        self,
        data: dict[str, Any],
        section: str,
        paths: list[str],
        scenario: Scenario | None,
        defer: list[str] | None = None,
    ) -> Line | None:
        """The validated line, or an ExperimentError naming the field of the experiment that broke it.

        Errors about a path in `defer` return None: the scenarios will set that field.
        """
        try:
            return Line.model_validate(data)
        except ValidationError as exc:
            location, message = format_error(exc.errors(include_url=False)[0])
        location = named_location(data, location)
        if defer and any(_related(location, path) for path in defer):
            return None
        where = f" (scenario {scenario.id})" if scenario is not None else ""
        for path in paths:
            if _related(location, path):
                field = f"{section}.{path}" if section else path
                detail = message if location == path else f"{location}: {message}"
                raise ExperimentError(f"{self.source}: {field}: {detail}{where}")
        field = section or (paths[0] if paths else "line")
        detail = f"{location}: {message}" if location else message
        raise ExperimentError(f"{self.source}: {field}: {detail}{where}")

    def _check_kpis(self) -> None:
        names = [station.name for station in self.base_line.stations]
        wanted = [(f"kpis[{i}]", kpi) for i, kpi in enumerate(self.spec.kpis)]
        if isinstance(self.spec.replications, Sequential):
            wanted.append(("replications.until.kpi", self.spec.replications.until.kpi))
        for field, kpi in wanted:
            if kpi.startswith("stations.") and kpi.split(".")[1] not in names:
                station = kpi.split(".")[1]
                raise ExperimentError(
                    f"{self.source}: {field}: unknown station {station!r} (stations: {', '.join(names)})"
                )

    # -- facts ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def max_replications(self) -> int:
        reps = self.spec.replications
        return reps.until.max if isinstance(reps, Sequential) else reps

    def replication_seeds(self, count: int | None = None) -> list[int]:
        """The run seed of each replication, shared by all scenarios."""
        return [replication_seed(self.spec.seed, r) for r in range(count or self.max_replications)]

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        workers: int | None = None,
        scheduler: str | None = None,
        progress: Progress | None = None,
        out: str | Path | None = None,
    ) -> ExperimentResult:
        """Run every scenario's replications (Ctrl-C keeps the finished runs) and return the results.

        `workers`: local processes (default: the machine's cores; 1 runs here);
        `scheduler`: a Dask scheduler address (`tcp://HOST:PORT`) instead;
        `progress`: called with (runs done, runs planned) as runs finish;
        `out`: also write the result files into this folder.
        """
        started = time.perf_counter()
        reps = self.spec.replications
        first = reps.until.min if isinstance(reps, Sequential) else reps
        auto = self.spec.warmup == "auto"
        per_scenario = pilots_per_scenario(len(self.scenarios)) if auto else 0
        planned = len(self.scenarios) * (first + per_scenario)
        executor = make_executor(workers, scheduler, tasks=len(self.scenarios) * self.max_replications)
        records: list[dict[str, Any]] = []
        pilots: list[dict[str, Any]] = []
        warmup_info: dict[str, Any] | None = None
        done = 0
        interrupted = False

        def collect(tasks: list[RunTask], into: list[dict[str, Any]]) -> None:
            nonlocal done
            for record in executor.map_unordered(tasks):
                into.append(record)
                done += 1
                if progress is not None:
                    progress(done, planned)

        try:
            if progress is not None:
                progress(0, planned)
            warmup: float | None = None
            if auto:
                collect(
                    [
                        RunTask(s.id, k, pilot_seed(self.spec.seed, k), self.lines[s.id], pilot=True)
                        for k in range(per_scenario)
                        for s in self.scenarios
                    ],
                    pilots,
                )
                warmup_info = self._estimate_warmup(pilots)
                warmup = warmup_info["warmup_s"]
            targets = {s.id: first for s in self.scenarios}
            have = dict.fromkeys(targets, 0)
            while True:
                tasks = [
                    RunTask(s.id, r, replication_seed(self.spec.seed, r), self.lines[s.id], warmup=warmup)
                    for r in range(max(targets.values()))
                    for s in self.scenarios
                    if have[s.id] <= r < targets[s.id]
                ]
                if not tasks:
                    break
                collect(tasks, records)
                have = dict(targets)
                if not isinstance(reps, Sequential):
                    break
                targets = self._next_targets(reps, records, have)
                planned += sum(targets.values()) - sum(have.values())
        except KeyboardInterrupt:
            interrupted = True
            executor.close(cancel=True)
        except BaseException:
            executor.close(cancel=True)
            raise
        else:
            executor.close()
        wall = time.perf_counter() - started
        result = build_result(
            self,
            records,
            warmup=warmup_info,
            executor=executor.description,
            wall_s=wall,
            interrupted=interrupted,
        )
        if out is not None:
            result.write(out)
        return result

    def _estimate_warmup(self, pilots: list[dict[str, Any]]) -> dict[str, Any]:
        """MSER-5 on the ensemble of all pilot runs, in a fixed order whatever order they finished in."""
        order = {s.id: i for i, s in enumerate(self.scenarios)}
        pilots.sort(key=lambda p: (order[p["scenario"]], p["replication"]))
        found = mser5_warmup([(p["lead_times"], p["exit_times"]) for p in pilots])
        if found.at_limit:
            log.warning(
                "%s: MSER-5 found no end of the warm-up in the first half of the pilot runs; "
                "a longer horizon gives a safer estimate",
                self.source,
            )
        return {
            "mode": "auto",
            "method": "MSER-5 on the lead times of the ensemble average of pilot runs",
            "warmup_s": found.warmup_s,
            "pilot_runs": len(pilots),
            "pilot_seeds": sorted({pilot_seed(self.spec.seed, p["replication"]) for p in pilots}),
            "truncated_parts": found.truncated,
            "observations": found.observations,
            "at_limit": found.at_limit,
        }

    def _next_targets(
        self, reps: Sequential, records: list[dict[str, Any]], have: dict[str, int]
    ) -> dict[str, int]:
        until = reps.until
        targets = {}
        for scenario_id, count in have.items():
            values = [r.get(until.kpi) for r in records if r["scenario"] == scenario_id]
            est = estimate([math.nan if v is None else v for v in values])
            targets[scenario_id] = replications_needed(
                est, count, relative=until.relative_half_width, absolute=until.half_width, maximum=until.max
            )
        return targets


def _given(spec: ExperimentSpec) -> list[str]:
    return [field for field in ("horizon", "warmup") if getattr(spec, field) is not None]

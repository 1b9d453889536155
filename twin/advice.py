"""The twin's advice: which setpoint to change now, judged against doing nothing.

From the line's state (`twin.state`), every candidate action (a set of setpoints,
`twin.setpoints`, written at the state's instant) is run over the horizon in R replications with
common random numbers: replication i of every candidate uses seed `seed + i`, and the first
candidate is always doing nothing. Each candidate gets the mean and 95 % half-width of every
numeric line KPI of its runs. The objective is one line KPI to minimise or maximise, subject to
constraints on line KPIs (`lead_time_mean_s <= 600`, `parts_out >= 330`), each met when its
mean meets it.

The gain of a candidate is the paired difference of the objective against doing nothing, run by
run, signed so that more is better, with its 95 % Student-t half-width. The advice is the
feasible candidate with the best mean objective, and it is given only when it is worth acting on:

- doing nothing is feasible: the best candidate's gain must be significant and worth it (its
  interval lies above the objective's `min_gain`, 0 by default: with common random numbers even a
  tiny real effect is significant), else the advice is no action;
- doing nothing is not feasible: the best feasible candidate is advised whatever its gain (it
  restores the constraints); if none is feasible, the candidate that comes closest (the least
  total relative violation) is advised when it violates significantly less than doing nothing.

    advice = advise(line, state, candidates=grid(line, {"release.conwip": [4, 6, 8]}),
                    objective=Objective("lead_time_mean_s", "minimize"), horizon=4 * 3600)
    advice.action  # {"release.conwip": 6} or None
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from twin.experiments.stats import estimate
from twin.kpi_catalogue import KPIS
from twin.line import Line
from twin.run import run_line
from twin.setpoints import Limits, SetpointError, parse
from twin.state import LineState, check_state

Action = dict[str, Any]  # setpoint path -> value
Sense = Literal["minimize", "maximize"]
# the numeric line KPIs a candidate is judged on
LINE_KPIS: tuple[str, ...] = tuple(
    kpi.name
    for kpi in KPIS
    if kpi.level == "line" and kpi.type in (int, float) and kpi.name != "planned_share"
)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Constraint:
    """A bound on a line KPI's mean: `kpi op value`, op `<=` or `>=`."""

    kpi: str
    op: Literal["<=", ">="]
    value: float

    def met(self, mean: float) -> bool:
        if math.isnan(mean):
            return False
        return mean <= self.value if self.op == "<=" else mean >= self.value

    def violation(self, mean: float) -> float:
        """How far `mean` is outside the bound, relative to the bound (0 when met)."""
        if math.isnan(mean):
            return math.inf
        excess = mean - self.value if self.op == "<=" else self.value - mean
        return max(0.0, excess) / max(abs(self.value), 1e-12)

    def __str__(self) -> str:
        return f"{self.kpi} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Objective:
    """What the advice optimises: a line KPI, its sense, and the constraints on others."""

    kpi: str
    sense: Sense = "minimize"
    constraints: tuple[Constraint, ...] = ()
    min_gain: float = 0.0  # the smallest gain worth acting on, in the KPI's units

    def __post_init__(self) -> None:
        for name in (self.kpi, *(constraint.kpi for constraint in self.constraints)):
            if name not in LINE_KPIS:
                raise ValueError(f"{name}: not a numeric line KPI (KPIs: {', '.join(LINE_KPIS)})")

    @property
    def sign(self) -> float:
        """+1 when more of the KPI is better, -1 when less is."""
        return 1.0 if self.sense == "maximize" else -1.0

    def describe(self) -> str:
        text = f"{self.sense} {self.kpi}"
        if self.constraints:
            text += " subject to " + ", ".join(str(constraint) for constraint in self.constraints)
        return text


@dataclass(frozen=True)
class Candidate:
    """One candidate action and what its replications gave: per KPI the values run by run."""

    action: Action
    values: dict[str, list[float]]  # KPI -> one value per replication (NaN: undefined in that run)

    def kpi(self, name: str) -> dict[str, float]:
        found = estimate(self.values[name])
        return {"mean": found.mean, "ci95": found.ci95}

    def mean(self, name: str) -> float:
        return estimate(self.values[name]).mean


@dataclass
class Advice:
    """The advice: the action (None: do nothing), its gain, and every candidate's KPIs."""

    state_time: str | None
    objective: Objective
    action: Action | None
    gain: dict[str, float]
    candidates: list[Candidate]
    horizon: float
    replications: int
    reason: str
    feasible: list[bool] = field(default_factory=list)

    @property
    def baseline(self) -> Candidate:
        return self.candidates[0]

    @property
    def chosen(self) -> Candidate:
        """The advised candidate (doing nothing when there is no action)."""
        if self.action is None:
            return self.baseline
        return next(candidate for candidate in self.candidates if candidate.action == self.action)

    def to_json(self, applied: bool = False) -> dict[str, Any]:
        """The object `fabbrica twin advise --json` prints."""
        return {
            "state_time": self.state_time,
            "objective": self.objective.describe(),
            "action": self.action,
            "gain": self.gain,
            "candidates": [
                {
                    "action": candidate.action,
                    "kpis": {name: _clean(candidate.kpi(name)) for name in LINE_KPIS},
                }
                for candidate in self.candidates
            ],
            "applied": applied,
            "reason": self.reason,
            "horizon_s": self.horizon,
            "replications": self.replications,
        }


def _clean(value: dict[str, float]) -> dict[str, float | None]:
    return {key: None if math.isnan(number) else number for key, number in value.items()}


# -- the candidates --------------------------------------------------------------------------------------
def grid(
    line: Line, axes: Mapping[str, Sequence[Any]], limits: Limits | None = None, current: Action | None = None
) -> list[Action]:
    """Doing nothing first, then every combination of the axes' values ({path: [values]}) that differs
    from the current setpoints; each value checked against the line and `limits`."""
    paths = list(axes)
    values = [[parse(line, path, value, limits) for value in axes[path]] for path in paths]
    current = current or {}
    actions: list[Action] = [{}]
    for combination in itertools.product(*values):
        action = dict(zip(paths, combination, strict=True))
        if all(current.get(path) == value for path, value in action.items()):
            continue  # the setpoints as they are: that is doing nothing
        if action not in actions:
            actions.append(action)
    return actions


# -- the evaluation --------------------------------------------------------------------------------------
def _one(args: tuple[Line, LineState, Action, int, float, Action]) -> dict[str, float]:
    line, state, action, seed, horizon, current = args
    setpoints = {**current, **action}
    record = run_line(
        line, engine="simpy", seed=seed, horizon=horizon, warmup=0.0, state=state, setpoints=setpoints or None
    )
    return {name: math.nan if record.kpis[name] is None else float(record.kpis[name]) for name in LINE_KPIS}


def evaluate(
    line: Line,
    state: LineState,
    actions: Sequence[Action],
    *,
    horizon: float,
    replications: int,
    seed: int,
    workers: int = 1,
    progress: Progress | None = None,
    current: Action | None = None,
) -> list[Candidate]:
    """Every action's replications from `state` (seed `seed + i` for replication i of each).

    `current`: the setpoints the line runs at now where they differ from the line file's, written at
    time 0 of every run before the candidate's own action (doing nothing keeps them)."""
    now = dict(current or {})
    jobs = [(line, state, action, seed + i, horizon, now) for action in actions for i in range(replications)]
    if workers <= 1:
        results = []
        for job in jobs:
            results.append(_one(job))
            if progress is not None:
                progress(1)
    else:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        results = []
        with context.Pool(workers) as pool:
            for result in pool.imap(_one, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
                results.append(result)
                if progress is not None:
                    progress(1)
    candidates = []
    for k, action in enumerate(actions):
        runs = results[k * replications : (k + 1) * replications]
        candidates.append(Candidate(dict(action), {name: [run[name] for run in runs] for name in LINE_KPIS}))
    return candidates


def _paired_gain(candidate: Candidate, baseline: Candidate, objective: Objective) -> dict[str, float]:
    differences = objective.sign * (
        np.asarray(candidate.values[objective.kpi]) - np.asarray(baseline.values[objective.kpi])
    )
    found = estimate(differences)
    return {"mean": found.mean, "ci95": found.ci95}


def _violations(candidate: Candidate, objective: Objective) -> np.ndarray:
    """Per replication, the total relative violation of the constraints."""
    total = np.zeros(len(next(iter(candidate.values.values()))))
    for constraint in objective.constraints:
        total += np.asarray([constraint.violation(value) for value in candidate.values[constraint.kpi]])
    return total


def choose(
    candidates: list[Candidate], objective: Objective, state_time: str | None, horizon: float
) -> Advice:
    """The advice from evaluated candidates (the first is doing nothing), by the rules above."""
    baseline = candidates[0]
    replications = len(baseline.values[objective.kpi])
    feasible = [all(c.met(candidate.mean(c.kpi)) for c in objective.constraints) for candidate in candidates]
    none_gain = {"mean": 0.0, "ci95": 0.0}

    def advice(action: Action | None, gain: dict[str, float], reason: str) -> Advice:
        return Advice(
            state_time, objective, action, gain, candidates, horizon, replications, reason, feasible
        )

    options = [k for k in range(1, len(candidates)) if feasible[k]]
    better = objective.sign
    if options:
        best = max(options, key=lambda k: better * candidates[k].mean(objective.kpi))
        gain = _paired_gain(candidates[best], baseline, objective)
        if not feasible[0]:
            return advice(
                candidates[best].action, gain, "doing nothing breaks the constraints; this meets them"
            )
        if feasible[0] and better * baseline.mean(objective.kpi) >= better * candidates[best].mean(
            objective.kpi
        ):
            return advice(None, none_gain, "no candidate does better than doing nothing")
        if gain["mean"] - gain["ci95"] > objective.min_gain:
            return advice(candidates[best].action, gain, "the gain is significant at 95 %")
        return advice(
            None,
            none_gain,
            f"the best candidate's gain is not above {objective.min_gain:g} with 95 % confidence",
        )
    if feasible[0]:
        return advice(None, none_gain, "no candidate meets the constraints; doing nothing does")
    # nothing is feasible: the candidate closest to the constraints, if significantly closer
    baseline_violation = _violations(baseline, objective)
    closest = min(
        range(1, len(candidates)), key=lambda k: float(_violations(candidates[k], objective).mean())
    )
    if len(candidates) > 1:
        less = estimate(baseline_violation - _violations(candidates[closest], objective))
        if less.mean - less.ci95 > 0:
            gain = _paired_gain(candidates[closest], baseline, objective)
            return advice(
                candidates[closest].action, gain, "no candidate meets the constraints; this comes closest"
            )
    return advice(None, none_gain, "no candidate meets the constraints or comes significantly closer")


def advise(
    line: Line,
    state: LineState,
    *,
    actions: Sequence[Action],
    objective: Objective,
    horizon: float,
    replications: int = 30,
    seed: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    source: str = "<state>",
    current: Action | None = None,
) -> Advice:
    """Evaluate `actions` (the first must be doing nothing, `{}`) from `state` and choose."""
    if horizon <= 0:
        raise ValueError(f"horizon must be > 0, got {horizon:g}s")
    if replications < 2:
        raise ValueError(f"replications must be >= 2, got {replications}")
    if not actions or actions[0]:
        raise ValueError("the first action must be doing nothing ({})")
    for action in (*actions, current or {}):
        for path, value in action.items():
            parse(line, path, value)
    check_state(line, state, source)
    candidates = evaluate(
        line,
        state,
        actions,
        horizon=horizon,
        replications=replications,
        seed=line.seed if seed is None else seed,
        workers=workers,
        progress=progress,
        current=current,
    )
    state_time = state.time.isoformat().replace("+00:00", "Z") if state.time is not None else None
    return choose(candidates, objective, state_time, horizon)


__all__ = [
    "Action",
    "Advice",
    "Candidate",
    "Constraint",
    "Objective",
    "SetpointError",
    "advise",
    "choose",
    "evaluate",
    "grid",
]

"""Linear constraints on the variables: which designs meet them, whether any does, the nearest one that does.

A constraint bounds a weighted sum of numeric variables (a total buffer budget, a cost
budget). No design that breaks one is ever simulated: a search proposal that breaks one
is repaired to the feasible design nearest to it (the sum over the constrained variables
of |change| / range, a small mixed-integer program solved by HiGHS through
`scipy.optimize.milp`), and the same program without an objective tells at load time
whether any design meets them all. Constraints on KPIs are judged after a design ran
(`evaluate.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from twin.optimisation.spec import ChoiceVariable, Constraint, FloatVariable, IntVariable, OptimisationSpec

TOLERANCE = 1e-9


def total(constraint: Constraint, design: Mapping[str, Any]) -> float:
    """The constrained sum for a design."""
    return float(
        sum(w * float(design[p]) for w, p in zip(constraint.coefficients, constraint.sum, strict=True))
    )


def meets(constraint: Constraint, design: Mapping[str, Any]) -> bool:
    """Whether a design meets a constraint on the variables (a KPI constraint: always)."""
    if constraint.kpi is not None:
        return True
    value = total(constraint, design)
    if constraint.max is not None and value > constraint.max + TOLERANCE * max(1.0, abs(constraint.max)):
        return False
    return not (
        constraint.min is not None and value < constraint.min - TOLERANCE * max(1.0, abs(constraint.min))
    )


@dataclass
class _Program:
    """Columns of a mixed-integer program whose solutions are designs; x_v = const + coef . columns."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[int] = field(default_factory=list)
    rows: list[tuple[dict[int, float], float, float]] = field(default_factory=list)
    value: dict[str, tuple[float, dict[int, float]]] = field(default_factory=dict)

    def column(self, low: float, high: float, integer: bool) -> int:
        self.lower.append(low)
        self.upper.append(high)
        self.integer.append(1 if integer else 0)
        return len(self.lower) - 1

    def add(self, path: str, variable: IntVariable | ChoiceVariable | FloatVariable) -> None:
        if isinstance(variable, ChoiceVariable):
            columns = {self.column(0, 1, True): float(c) for c in variable.choice}
            self.rows.append((dict.fromkeys(columns, 1.0), 1.0, 1.0))
            self.value[path] = (0.0, columns)
        elif isinstance(variable, FloatVariable) and variable.step is None:
            low, high = variable.bounds
            self.value[path] = (0.0, {self.column(low, high, False): 1.0})
        else:
            values = variable.values()
            step = float(variable.step)  # type: ignore[arg-type]
            self.value[path] = (float(values[0]), {self.column(0, len(values) - 1, True): step})

    def bound(self, constraint: Constraint) -> None:
        row: dict[int, float] = {}
        shift = 0.0
        for weight, path in zip(constraint.coefficients, constraint.paths, strict=True):
            const, columns = self.value[path]
            shift += weight * const
            for column, coef in columns.items():
                row[column] = row.get(column, 0.0) + weight * coef
        low = -np.inf if constraint.min is None else constraint.min - shift
        high = np.inf if constraint.max is None else constraint.max - shift
        self.rows.append((row, low, high))

    def solve(self, cost: list[float]) -> np.ndarray | None:
        n = len(self.lower)
        matrix = np.zeros((len(self.rows), n))
        for i, (row, _, _) in enumerate(self.rows):
            for column, coef in row.items():
                matrix[i, column] = coef
        constraints = (
            [LinearConstraint(matrix, [r[1] for r in self.rows], [r[2] for r in self.rows])]
            if self.rows
            else []
        )
        done = milp(
            np.asarray(cost, dtype=float),
            constraints=constraints,
            integrality=np.asarray(self.integer),
            bounds=Bounds(self.lower, self.upper),
        )
        return done.x if done.status == 0 and done.x is not None else None


class Constraints:
    """The constraints of a spec, over the variables they name."""

    def __init__(self, spec: OptimisationSpec) -> None:
        self.spec = spec
        self.items = [c for c in spec.constraints if c.sum is not None]  # on KPIs: see evaluate.py
        self.paths = list(dict.fromkeys(p for c in self.items for p in c.paths))

    def feasible(self, design: Mapping[str, Any]) -> bool:
        return all(meets(c, design) for c in self.items)

    def _program(self, which: list[Constraint]) -> _Program:
        program = _Program()
        for path in self.paths:
            program.add(path, self.spec.variables[path])
        for constraint in which:
            program.bound(constraint)
        return program

    def infeasibility(self) -> str | None:
        """None when some design meets every constraint, else why not (naming one that fails alone)."""
        if not self.items:
            return None
        for index, constraint in enumerate(self.spec.constraints):
            if constraint.sum is None:
                continue
            program = self._program([constraint])
            if program.solve([0.0] * len(program.lower)) is None:
                return f"constraints[{index}]: no design of the variables' ranges meets it"
        program = self._program(self.items)
        if program.solve([0.0] * len(program.lower)) is None:
            return "constraints: no design of the variables' ranges meets them all together"
        return None

    def repair(self, design: Mapping[str, Any]) -> dict[str, Any] | None:
        """The feasible design nearest to `design` (only constrained variables change), or None."""
        if self.feasible(design):
            return dict(design)
        program = self._program(self.items)
        columns = len(program.lower)
        for path in self.paths:
            const, coefs = program.value[path]
            gap = program.column(0.0, np.inf, False)
            target = float(design[path]) - const
            # |x - target| <= gap
            program.rows.append(({**coefs, gap: -1.0}, -np.inf, target))
            program.rows.append(({**coefs, gap: 1.0}, target, np.inf))
        cost = [0.0] * columns + [1.0 / _width(self.spec.variables[p]) for p in self.paths]
        x = program.solve(cost)
        if x is None:
            return None
        repaired = dict(design)
        for path in self.paths:
            repaired[path] = _value(self.spec.variables[path], program.value[path], x)
        return repaired if self.feasible(repaired) else None


def _width(variable: IntVariable | ChoiceVariable | FloatVariable) -> float:
    if isinstance(variable, FloatVariable):
        low, high = variable.bounds
    else:
        values = [float(v) for v in variable.values()]
        low, high = min(values), max(values)
    return max(high - low, 1e-12)


def _value(
    variable: IntVariable | ChoiceVariable | FloatVariable,
    form: tuple[float, dict[int, float]],
    x: np.ndarray,
) -> Any:
    _, columns = form
    if isinstance(variable, ChoiceVariable):
        chosen = max(columns, key=lambda c: x[c])
        return variable.choice[list(columns).index(chosen)]
    column = next(iter(columns))
    if isinstance(variable, FloatVariable) and variable.step is None:
        low, high = variable.bounds
        return float(min(max(x[column], low), high))
    values = variable.values()
    return values[round(float(x[column]))]

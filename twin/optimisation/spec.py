"""An optimisation file: which knobs of a line to turn, within which limits, towards which goal.

It names a line file (relative to the optimisation file), fixed `overrides`, the
decision `variables` by the dotted paths of experiment factors (integer ranges,
choices, continuous ranges), linear `constraints` on them, one or several
`objectives`, the search `budget`, the `replications` of every evaluation (common
random numbers across designs), the `search` method and the `selection` stage's
indifference zone and confidence. Every error is one line naming file and field:
`opt.yaml: constraints[0].sum[1]: stations.s9.buffer is not a variable`.

    name: buffers
    line: ../lines/demonstrator.yaml
    horizon: 500h
    warmup: 20h
    seed: 7
    replications: 5
    variables:
      stations.s1.buffer: {int: [0, 6]}
      stations.s1.capacity: {choice: [1, 2]}
      release.interarrival.mean: {float: [50, 80]}
    constraints:
      - {sum: [stations.s1.buffer, stations.s2.buffer], max: 6}
    objectives:
      - {kpi: throughput_per_hour, goal: maximize}
    budget: {evaluations: 60}
    search: {method: tpe}
    selection: {delta: 0.3, alpha: 0.05}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from foundation.durations import PositiveDuration, parse_duration
from foundation.errors import FieldError, InputError
from foundation.models import Strict
from foundation.yamlfile import read_mapping
from twin.experiments.paths import check_paths
from twin.experiments.spec import Number, check_kpi
from twin.line import format_error

# an exhaustive search beyond this many designs is a typo, not a study
MAX_GRID = 100_000


class OptimisationError(InputError):
    """An optimisation file (or its data) is invalid: one line naming file and field."""


class _Aliased(Strict):
    model_config = ConfigDict(populate_by_name=True)


class IntVariable(_Aliased):
    """Whole values low, low + step, ..., up to high: `{int: [0, 6]}`."""

    bounds: tuple[int, int] = Field(alias="int")
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntVariable:
        if self.bounds[1] < self.bounds[0]:
            raise FieldError("int", f"high ({self.bounds[1]}) must be >= low ({self.bounds[0]})")
        return self

    def values(self) -> list[int]:
        return list(range(self.bounds[0], self.bounds[1] + 1, self.step))


class ChoiceVariable(_Aliased):
    """One of the listed values (numbers, durations, whole mappings): `{choice: [1, 2]}`."""

    choice: list[Any] = Field(min_length=1)

    def values(self) -> list[Any]:
        return list(self.choice)


class FloatVariable(_Aliased):
    """A value in [low, high] (numbers or durations, in seconds); `step` makes it a grid."""

    bounds: tuple[Number, Number] = Field(alias="float")
    step: float | None = Field(default=None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatVariable:
        low, high = self.bounds
        if high < low:
            raise FieldError("float", f"high ({high:g}) must be >= low ({low:g})")
        if self.log and low <= 0:
            raise FieldError("log", "a log scale needs low > 0")
        if self.log and self.step is not None:
            raise FieldError("step", "give step or log, not both")
        return self

    def values(self) -> list[float]:
        """The grid low, low + step, ... <= high (only with a step)."""
        assert self.step is not None
        low, high = self.bounds
        count = math.floor((high - low) / self.step + 1e-9) + 1
        return [low + i * self.step for i in range(count)]


def _variable_tag(value: Any) -> str | None:
    for kind, model in (("int", IntVariable), ("choice", ChoiceVariable), ("float", FloatVariable)):
        if isinstance(value, model):
            return kind
    if isinstance(value, dict):
        for key in ("int", "choice", "float"):
            if key in value:
                return key
    return None


Variable = Annotated[
    Annotated[IntVariable, Tag("int")]
    | Annotated[ChoiceVariable, Tag("choice")]
    | Annotated[FloatVariable, Tag("float")],
    Discriminator(
        _variable_tag,
        custom_error_type="variable",
        custom_error_message="must be {int: [LOW, HIGH]}, {choice: [A, B, ...]} or {float: [LOW, HIGH]}",
    ),
]


def numeric(variable: IntVariable | ChoiceVariable | FloatVariable) -> bool:
    """Whether a variable's values are numbers (so that it may enter a constraint or a cost)."""
    if isinstance(variable, ChoiceVariable):
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in variable.choice)
    return True


class Constraint(Strict):
    """A linear constraint on the variables, min <= sum of weight x variable <= max (weights
    default to 1), or a bound on a KPI's mean over a design's replications (`kpi`: judged on the
    search mean, then tested in the selection stage at confidence 1 - alpha)."""

    sum: list[str] | None = Field(default=None, min_length=1)
    weights: list[float] | None = None
    kpi: str | None = None
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Constraint:
        if (self.sum is None) == (self.kpi is None):
            raise ValueError("give exactly one of sum (variables) or kpi")
        if self.max is None and self.min is None:
            raise ValueError("give max, min or both")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise FieldError("min", f"must be <= max ({self.max:g}), got {self.min:g}")
        if self.kpi is not None:
            if self.weights is not None:
                raise FieldError("weights", "weights go with sum, not with kpi")
            try:
                check_kpi(self.kpi)
            except ValueError as exc:
                raise FieldError("kpi", str(exc)) from None
            return self
        assert self.sum is not None
        if self.weights is not None and len(self.weights) != len(self.sum):
            raise FieldError("weights", f"needs one weight per path in sum ({len(self.sum)})")
        if len(set(self.sum)) != len(self.sum):
            raise FieldError("sum", "a path appears twice")
        return self

    @property
    def paths(self) -> list[str]:
        return list(self.sum or [])

    @property
    def coefficients(self) -> list[float]:
        return list(self.weights) if self.weights is not None else [1.0] * len(self.paths)

    def violation(self, value: float) -> float:
        """How far `value` lies outside the bounds (0 or less: inside)."""
        over = value - self.max if self.max is not None else -math.inf
        under = self.min - value if self.min is not None else -math.inf
        return max(over, under)


class Objective(Strict):
    """Maximise or minimise one KPI (`kpi`), or a weighted sum of KPIs and variable values (`terms`,
    e.g. a cost per machine: `{terms: {throughput_per_hour: 100, stations.mill.capacity: -900}}`)."""

    kpi: str | None = None
    terms: dict[str, float] | None = None
    name: str | None = Field(default=None, min_length=1)
    goal: Literal["maximize", "minimize"]

    @model_validator(mode="after")
    def _one(self) -> Objective:
        if (self.kpi is None) == (self.terms is None):
            raise ValueError("give exactly one of kpi or terms")
        if self.kpi is not None:
            try:
                check_kpi(self.kpi)
            except ValueError as exc:
                raise FieldError("kpi", str(exc)) from None
        if self.terms is not None and not self.terms:
            raise FieldError("terms", "must have at least 1 item(s)")
        if self.terms is not None and self.name is None:
            raise FieldError("name", "a weighted objective needs a name")
        return self

    @property
    def label(self) -> str:
        """The objective's column name: its name, else its KPI."""
        return self.name or str(self.kpi)

    @property
    def sign(self) -> float:
        """+1 when larger is better."""
        return 1.0 if self.goal == "maximize" else -1.0


class Budget(Strict):
    """When the search stops: after `evaluations` designs, or `wall_time` (whichever comes first)."""

    evaluations: int | None = Field(default=None, ge=1)
    wall_time: PositiveDuration | None = None


class Search(Strict):
    """How designs are proposed: Optuna's TPE or NSGA-II samplers, or every feasible design."""

    method: Literal["tpe", "nsga2", "exhaustive"] = "tpe"
    seed: int | None = Field(default=None, ge=0)
    batch: int = Field(default=4, ge=1)  # designs proposed before their results are told
    population: int | None = Field(default=None, ge=2)  # NSGA-II
    startup: int | None = Field(default=None, ge=1)  # TPE: random designs before the model


class Selection(Strict):
    """The ranking-and-selection stage (KN, Kim & Nelson 2001) over the best `candidates`.

    With probability >= 1 - alpha it picks a design within `delta` (the objective's unit) of the
    best candidate; `first` fresh replications each, then one more per round up to `max_replications`.
    Constraints on KPIs are tested first on the same replications, at confidence 1 - alpha
    (`twin.optimisation.feasibility`); a candidate shown to break one is dropped.
    """

    procedure: Literal["kn"] = "kn"
    delta: float = Field(gt=0)
    alpha: float = Field(gt=0, lt=1)
    candidates: int = Field(default=10, ge=1)
    first: int = Field(default=10, ge=2)
    max_replications: int = Field(default=1000, ge=2)

    @model_validator(mode="after")
    def _limits(self) -> Selection:
        if self.max_replications < self.first:
            raise FieldError(
                "max_replications", f"must be >= first ({self.first}), got {self.max_replications}"
            )
        return self


def _warmup(value: Any) -> Any:
    if value == "auto":
        raise ValueError("auto warm-up is for experiments: give a duration")
    return parse_duration(value)


class OptimisationSpec(Strict):
    """The validated optimisation file (paths still as written)."""

    name: str = Field(min_length=1)
    description: str | None = None
    line: str = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    horizon: PositiveDuration | None = None
    warmup: Annotated[float, BeforeValidator(_warmup)] | None = None
    seed: int = Field(default=1, ge=0)
    replications: int = Field(default=5, ge=1)
    variables: dict[str, Variable] = Field(min_length=1)
    constraints: list[Constraint] = Field(default_factory=list)
    objectives: list[Objective] = Field(min_length=1)
    budget: Budget = Field(default_factory=Budget)
    search: Search = Field(default_factory=Search)
    selection: Selection | None = None

    _paths = field_validator("overrides", "variables")(check_paths)

    @model_validator(mode="after")
    def _consistent(self) -> OptimisationSpec:
        for index, constraint in enumerate(self.constraints):
            for position, path in enumerate(constraint.paths):
                self._numeric_variable(path, f"constraints[{index}].sum[{position}]")
        labels = [objective.label for objective in self.objectives]
        for index, objective in enumerate(self.objectives):
            if labels.count(objective.label) > 1:
                raise FieldError(f"objectives[{index}]", f"objective {objective.label!r} appears twice")
            for key in objective.terms or {}:
                if key in self.variables:
                    self._numeric_variable(key, f"objectives[{index}].terms.{key}")
                    continue
                try:
                    check_kpi(key)
                except ValueError as exc:
                    raise FieldError(f"objectives[{index}].terms.{key}", f"not a variable; {exc}") from None
        if self.warmup is not None and self.horizon is not None and self.warmup >= self.horizon:
            raise FieldError("warmup", "must be shorter than horizon")
        if self.search.method == "exhaustive":
            size = 1
            for path, variable in self.variables.items():
                if isinstance(variable, FloatVariable) and variable.step is None:
                    raise FieldError(
                        f"variables.{path}", "an exhaustive search needs a step on a continuous range"
                    )
                size *= len(variable.values())
                if size > MAX_GRID:
                    raise FieldError(
                        "search.method",
                        f"exhaustive over more than {MAX_GRID:,} designs: use tpe or a coarser step",
                    )
        elif self.budget.evaluations is None and self.budget.wall_time is None:
            raise FieldError("budget", f"a {self.search.method} search needs evaluations or wall_time")
        return self

    def _numeric_variable(self, path: str, field: str) -> None:
        if path not in self.variables:
            raise FieldError(field, f"{path} is not a variable (variables: {', '.join(self.variables)})")
        if not numeric(self.variables[path]):
            raise FieldError(field, f"{path} has choices that are not numbers")

    @property
    def kpi_constraints(self) -> list[Constraint]:
        """The constraints on KPIs (judged on each design's mean after it ran)."""
        return [c for c in self.constraints if c.kpi is not None]

    @property
    def primary(self) -> Objective:
        """The objective the selection stage ranks on (the first)."""
        return self.objectives[0]


_TAGS = {"int", "choice", "float"}


def spec_from_dict(data: dict[str, Any], source: str) -> OptimisationSpec:
    """Validate optimisation data; errors name `source` and the field path."""
    data = dict(data)
    data.setdefault("name", Path(source).stem)
    try:
        return OptimisationSpec.model_validate(data)
    except ValidationError as exc:
        error = dict(exc.errors(include_url=False)[0])
        loc = list(error["loc"])
        # the discriminator's tag sits after the variable's path: leave it out
        if len(loc) >= 3 and loc[0] == "variables" and loc[2] in _TAGS:
            del loc[2]
        error["loc"] = tuple(loc)
        path, message = format_error(error)
        raise OptimisationError(f"{source}: {path}: {message}" if path else f"{source}: {message}") from None


def load_spec(path: str | Path) -> OptimisationSpec:
    """Read and validate an optimisation file."""
    data = read_mapping(path, OptimisationError, "a mapping of optimisation fields")
    return spec_from_dict(data, str(path))

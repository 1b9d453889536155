"""An experiment file: the what-if question asked of a line, validated like a line file.

An experiment names a line file (relative to the experiment file), fixed
`overrides` of line fields by dotted path, the `factors` to vary (levels or
ranges), the `design` that combines them into scenarios, how many
`replications` each scenario gets (a number, or a precision target), the run
length (`horizon`, `warmup` or `auto` for MSER-5), the experiment `seed` and the
`kpis` to summarise. Every error is one line naming the file and field:
`study.yaml: replications.until.max: must be >= 2, got 1`.

    name: buffer-study
    line: ../lines/demonstrator.yaml
    factors:
      stations.lathe.buffer: [1, 2, 4]
      stations.wash.failures.mttr: {low: 5min, high: 20min}
    design: {type: latin_hypercube, samples: 8, seed: 3}
    replications: 5
    horizon: 8h
    warmup: auto
    seed: 7
    kpis: [throughput_per_hour, lead_time_mean_s]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from foundation.durations import PositiveDuration, parse_duration
from foundation.errors import InputError
from foundation.models import Strict
from foundation.yamlfile import read_mapping
from twin.experiments.paths import check_paths
from twin.kpi_catalogue import names
from twin.line import format_error


class ExperimentError(InputError):
    """An experiment file (or experiment data) is invalid: one line naming file and field."""


def _number_or_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number or a duration, got {value!r}")
    if isinstance(value, int | float):
        return parse_duration(value, signed=True)  # finite: no inf, nan or integer beyond a float
    return parse_duration(value)


Number = Annotated[float, BeforeValidator(_number_or_duration)]


class Range(Strict):
    """A factor varied over an interval: sampled by latin hypercubes, low/high in a full factorial.

    `low`/`high` are numbers or durations (seconds); `integer: true` keeps whole values;
    `levels: N` makes a full factorial use N evenly spaced levels instead of the two ends.
    """

    low: Number
    high: Number
    integer: bool = False
    levels: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        if self.integer and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an integer range needs whole low and high")
        return self


def _factor_tag(value: Any) -> str:
    return "range" if isinstance(value, dict) else "levels"


Factor = Annotated[
    Annotated[list[Any], Field(min_length=1), Tag("levels")] | Annotated[Range, Tag("range")],
    Discriminator(_factor_tag),
]


class FullFactorial(Strict):
    """Every combination of every factor's levels."""

    type: Literal["full_factorial"] = "full_factorial"


class LatinHypercube(Strict):
    """`samples` scenarios spread evenly over every factor's range; `seed` defaults to the experiment's."""

    type: Literal["latin_hypercube"] = "latin_hypercube"
    samples: int = Field(ge=1)
    seed: int | None = Field(default=None, ge=0)


class Scenarios(Strict):
    """Scenarios spelled out one by one: each a mapping of dotted paths to values (and an optional id)."""

    type: Literal["scenarios"] = "scenarios"
    scenarios: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _ids(cls, scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [str(s["id"]) for s in scenarios if "id" in s]
        if len(set(ids)) != len(ids):
            raise ValueError("scenario ids must be unique")
        if any("\n" in id_ for id_ in ids):
            raise ValueError("a scenario id must be one line")
        return scenarios


def _design_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "scenarios" in value:
            return "scenarios"
        return str(value.get("type", "full_factorial"))
    return None


def _design_shorthand(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


Design = Annotated[
    Annotated[FullFactorial, Tag("full_factorial")]
    | Annotated[LatinHypercube, Tag("latin_hypercube")]
    | Annotated[Scenarios, Tag("scenarios")],
    Discriminator(
        _design_tag,
        custom_error_type="design",
        custom_error_message="must be full_factorial, {type: latin_hypercube, samples: N} "
        "or {scenarios: [...]}",
    ),
    BeforeValidator(_design_shorthand),
]


class Until(Strict):
    """Add replications until the 95% half-width of `kpi` is small enough (or `max` is reached)."""

    kpi: str
    relative_half_width: float | None = Field(default=None, gt=0)
    half_width: float | None = Field(default=None, gt=0)
    min: int = Field(default=5, ge=2)
    max: int = Field(default=100, ge=2)

    @model_validator(mode="after")
    def _one_target(self) -> Until:
        if (self.relative_half_width is None) == (self.half_width is None):
            raise ValueError("give exactly one of relative_half_width or half_width")
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        return self

    @field_validator("kpi")
    @classmethod
    def _known(cls, kpi: str) -> str:
        return check_kpi(kpi)


class Sequential(Strict):
    until: Until


def _replications_tag(value: Any) -> str:
    return "sequential" if isinstance(value, dict) else "fixed"


Replications = Annotated[
    Annotated[int, Field(ge=1), Tag("fixed")] | Annotated[Sequential, Tag("sequential")],
    Discriminator(_replications_tag),
]


# what an experiment may ask for: the numeric KPIs declared in twin.kpi_catalogue
LINE_KPIS = names("line", float, int)
STATION_KPIS = names("station", float, int)
DEFAULT_KPIS = ("throughput_per_hour", "wip_mean", "lead_time_mean_s")


def check_kpi(name: str) -> str:
    """A KPI is a line KPI (`wip_mean`) or a station's (`stations.mill.utilization`)."""
    if name in LINE_KPIS:
        return name
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "stations" and parts[2] in STATION_KPIS:
        return name
    raise ValueError(
        f"unknown KPI {name!r} (line KPIs: {', '.join(LINE_KPIS)}; "
        f"or stations.NAME.{{{','.join(STATION_KPIS)}}})"
    )


def _warmup(value: Any) -> Any:
    return value if value == "auto" else parse_duration(value)


class ExperimentSpec(Strict):
    """The validated experiment file (paths still as written)."""

    name: str = Field(min_length=1)
    description: str | None = None
    line: str = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    factors: dict[str, Factor] = Field(default_factory=dict)
    design: Design | None = None
    replications: Replications = 5
    horizon: PositiveDuration | None = None
    warmup: Annotated[Literal["auto"] | float, BeforeValidator(_warmup)] | None = None
    seed: int = Field(default=1, ge=0)
    kpis: list[Annotated[str, AfterValidator(check_kpi)]] = Field(
        default_factory=lambda: list(DEFAULT_KPIS), min_length=1
    )

    _paths = field_validator("overrides", "factors")(check_paths)

    @field_validator("kpis")
    @classmethod
    def _kpis(cls, kpis: list[str]) -> list[str]:
        if len(set(kpis)) != len(kpis):
            raise ValueError("KPIs must be unique")
        return kpis

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        if isinstance(self.design, LatinHypercube | FullFactorial) and not self.factors:
            raise ValueError(f"design {self.design.type} needs factors")
        if isinstance(self.design, Scenarios) and self.factors:
            raise ValueError("factors are not used with explicit scenarios: give the values in each scenario")
        if isinstance(self.warmup, float) and self.horizon is not None and self.warmup >= self.horizon:
            raise ValueError("warmup must be shorter than horizon")
        count = self.scenario_count
        if count > MAX_SCENARIOS:
            raise ValueError(
                f"the design has {count:,} scenarios (at most {MAX_SCENARIOS:,}): "
                "use fewer levels, or a latin_hypercube with fewer samples"
            )
        return self

    @property
    def scenario_count(self) -> int:
        """How many scenarios the design makes, counted without building them."""
        design = self.resolved_design
        if isinstance(design, LatinHypercube):
            return design.samples
        if isinstance(design, Scenarios):
            return len(design.scenarios)
        count = 1
        for factor in self.factors.values():
            count *= len(factor) if isinstance(factor, list) else (factor.levels or 2)
            if count > MAX_SCENARIOS:
                break
        return count

    @property
    def resolved_design(self) -> FullFactorial | LatinHypercube | Scenarios:
        if self.design is not None:
            return self.design
        return FullFactorial()


# a design beyond this is a typo (levels: 1000 on three factors), not a study: refused at load
MAX_SCENARIOS = 100_000

_TAGS = {"levels", "range", "fixed", "sequential", "full_factorial", "latin_hypercube", "scenarios"}


def spec_from_dict(data: dict[str, Any], source: str) -> ExperimentSpec:
    """Validate experiment data; errors name `source` and the field path."""
    data = dict(data)
    data.setdefault("name", Path(source).stem)
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        error = dict(exc.errors(include_url=False)[0])
        error["loc"] = tuple(part for part in error["loc"] if part not in _TAGS)
        if error["type"] == "int_parsing" and error["loc"] and error["loc"][0] == "replications":
            error["msg"] = "must be a number of replications or {until: {kpi, relative_half_width, max}}"
            error["type"] = "replications"
        path, message = format_error(error)
        raise ExperimentError(f"{source}: {path}: {message}" if path else f"{source}: {message}") from None


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment file."""
    data = read_mapping(path, ExperimentError, "a mapping of experiment fields")
    return spec_from_dict(data, str(path))

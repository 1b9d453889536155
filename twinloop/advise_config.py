"""What the twin may advise: the objective, the action space, the limits and the PLC to write to.

One model, `AdviceSpec`, is the advice's settings; `fabbrica twin advise CONFIG.yaml` reads it with
the line and where the history comes from (`AdviseConfig`, the `line`/`source`/`sink` keys read as
`fabbrica twin live` reads them: twinloop.live_config), and the live twin's config holds it as its
`advise:` block (`LiveAdvice`, with `mode` and `every`). `twinloop/advise-sample.yaml` is the
reference for every key. A bad file is one `AdviseConfigError` naming the file and the field;
`${ENV}` in `source`, `sink` and `apply` is replaced and the secrets hidden in logs.

An action axis is a list of values, `{relative: [-0.2, 0.2], steps: 5}` (that many values spread
from -20 % to +20 % of the setpoint's value now; those outside the limits are left out), or
`{from: 4, to: 12, step: 1}`. A value given outright outside the limits is an error here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from connectors.common.secrets import EnvError, hide_in_logs, substitute
from connectors.opcua.write import WriteTarget
from connectors.sinks.config import SinkSettings
from foundation.durations import PositiveDuration
from foundation.errors import FieldError, InputError, validation_message
from foundation.models import Strict
from foundation.yamlfile import read_mapping
from twin.advice import LINE_KPIS, Action, Constraint, Objective
from twin.line import Line, load_line
from twin.setpoints import SETPOINTS, Limits, SetpointError, available, parse
from twinloop.history import ReadsHistory

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "advise-sample.yaml"
CONSTRAINT = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")
SECRET_SECTIONS = ("source", "sink", "apply")


class AdviseConfigError(InputError):
    """The advice's configuration is invalid: one line naming the file and the field."""


class ObjectiveSpec(Strict):
    """`{minimize: KPI}` or `{maximize: KPI}`, constraints `"KPI <= value"`, the least gain worth it."""

    minimize: str | None = None
    maximize: str | None = None
    constraints: list[str] = Field(default_factory=list)
    min_gain: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kpi(self) -> ObjectiveSpec:
        if (self.minimize is None) == (self.maximize is None):
            raise ValueError("give one of minimize: KPI or maximize: KPI")
        kpi = self.minimize or self.maximize
        if kpi not in LINE_KPIS:
            key = "minimize" if self.minimize else "maximize"
            raise FieldError(key, f"{kpi!r} is not a numeric line KPI (KPIs: {', '.join(LINE_KPIS)})")
        for index, text in enumerate(self.constraints):
            _constraint(text, f"constraints[{index}]")
        return self

    def objective(self) -> Objective:
        kpi = self.minimize or self.maximize
        assert kpi is not None
        return Objective(
            kpi,
            "minimize" if self.minimize else "maximize",
            tuple(_constraint(text, "constraints") for text in self.constraints),
            self.min_gain,
        )


def _constraint(text: str, field: str) -> Constraint:
    found = CONSTRAINT.match(text)
    if found is None:
        raise FieldError(field, f'must read "KPI <= value" or "KPI >= value", got {text!r}')
    kpi, op, value = found.groups()
    if kpi not in LINE_KPIS:
        raise FieldError(field, f"{kpi!r} is not a numeric line KPI (KPIs: {', '.join(LINE_KPIS)})")
    try:
        number = float(value)
    except ValueError:
        raise FieldError(field, f"{value!r} is not a number") from None
    return Constraint(kpi, op, number)  # type: ignore[arg-type]


class RelativeAxis(Strict):
    """`steps` values from `relative[0]` to `relative[1]` times the setpoint now, added to it."""

    relative: tuple[float, float]
    steps: int = Field(default=5, ge=2, le=50)

    @field_validator("relative")
    @classmethod
    def _range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not -1 < low <= high:
            raise ValueError(f"must be [low, high] with -1 < low <= high, got {list(value)}")
        return value


class SpanAxis(Strict):
    """`from`, `from + step`, ... up to `to` (included)."""

    start: float = Field(alias="from", allow_inf_nan=False)
    to: float = Field(allow_inf_nan=False)
    step: float = Field(default=1.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _order(self) -> SpanAxis:
        if self.to < self.start:
            raise FieldError("to", f"must be >= from ({self.start:g}), got {self.to:g}")
        if (self.to - self.start) / self.step > 200:
            raise FieldError("step", "more than 200 values: a coarser step")
        return self

    def values(self) -> list[float]:
        count = int(np.floor((self.to - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + k * self.step, 10) for k in range(count)]


Axis = list[float | int | bool] | RelativeAxis | SpanAxis


class Bounds(Strict):
    """Engineering limits of one setpoint, both included (a side left out: the default's)."""

    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _order(self) -> Bounds:
        if self.low is not None and self.high is not None and self.high < self.low:
            raise FieldError("high", f"must be >= low ({self.low:g}), got {self.high:g}")
        return self


class ApplySpec(WriteTarget):
    """The PLC to write to: a secure session as an operator (connectors.opcua.write.WriteTarget), and
    the line's object on it (`Objects/<line_object>`, default the line's name)."""

    application_uri: str = Field(default="urn:fabbrica:advise", min_length=1)
    line_object: str | None = Field(default=None, min_length=1)


class AdviceSpec(Strict):
    """The advice's settings: see twinloop/advise-sample.yaml."""

    objective: ObjectiveSpec
    actions: dict[str, Axis] = Field(min_length=1)
    limits: dict[str, Bounds] = Field(default_factory=dict)
    horizon: PositiveDuration
    replications: int = Field(default=30, ge=2)
    seed: int | None = Field(default=None, ge=0)
    workers: int = Field(default=1, ge=1)
    apply: ApplySpec | None = None

    @field_validator("actions")
    @classmethod
    def _paths(cls, value: dict[str, Axis]) -> dict[str, Axis]:
        for path, axis in value.items():
            if path not in SETPOINTS:
                raise FieldError(path, f"unknown setpoint (setpoints: {', '.join(SETPOINTS)})")
            if isinstance(axis, list) and not axis:
                raise FieldError(path, "give at least one value")
        return value


class AdviseConfig(AdviceSpec):
    """`fabbrica twin advise CONFIG.yaml`: the advice's settings, the line and its history."""

    line: str = Field(min_length=1)
    line_name: str | None = Field(default=None, min_length=1)
    source: str | dict[str, Any]
    sink: str | dict[str, Any] | None = None
    at: datetime | None = None
    speed: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class LiveAdvice(AdviceSpec):
    """The live twin's `advise:` block: `approve` proposes on the PLC's Advice object and applies
    what an operator approves; `auto` applies at once, within `limits`, at most once per `every`."""

    mode: Literal["approve", "auto"] = "approve"
    every: PositiveDuration = 3600.0

    @model_validator(mode="after")
    def _needs_a_plc(self) -> LiveAdvice:
        if self.apply is None:
            raise FieldError(
                "apply", f"mode {self.mode} needs the PLC to write to (apply: {{endpoint, ...}})"
            )
        return self


# -- against the line ------------------------------------------------------------------------------


def limits_of(line: Line, spec: AdviceSpec) -> Limits:
    """The config's `limits`, each side not given taken from `Limits.default(line)`."""
    bounds = dict(Limits.default(line).bounds)
    for path, given in spec.limits.items():
        low, high = bounds.get(path, (None, None))
        bounds[path] = (
            given.low if given.low is not None else low,
            given.high if given.high is not None else high,
        )
    return Limits(bounds)


def check_against_line(line: Line, spec: AdviceSpec, prefix: str = "") -> None:
    """FieldError (naming `prefix` + the field) for an action or limit the line cannot take."""
    limits = limits_of(line, spec)
    for path in spec.limits:
        if path not in available(line):
            raise FieldError(f"{prefix}limits.{path}", _no_setpoint(line, path))
    for path, axis in spec.actions.items():
        field = f"{prefix}actions.{path}"
        if path not in available(line):
            raise FieldError(field, _no_setpoint(line, path))
        low, high = limits.bounds.get(path, (None, None))
        if low is not None and high is not None and low > high:
            raise FieldError(f"{prefix}limits.{path}", f"low ({low:g}) is above high ({high:g})")
        if isinstance(axis, RelativeAxis):
            if SETPOINTS[path].kind is bool:
                raise FieldError(field, "relative values of a true/false setpoint: give [true, false]")
            continue
        values = axis.values() if isinstance(axis, SpanAxis) else axis
        for value in values:
            try:
                parse(line, path, value, limits)
            except SetpointError as exc:
                raise FieldError(field, str(exc).removeprefix(f"{path}: ")) from None


def _no_setpoint(line: Line, path: str) -> str:
    return (
        f"the line {line.name!r} has no such setpoint (its setpoints: {', '.join(available(line)) or 'none'})"
    )


def axis_values(line: Line, path: str, axis: Axis, current: Mapping[str, Any], limits: Limits) -> list[Any]:
    """The values of one action axis now: a relative one from the setpoint's value in `current`,
    values outside the limits left out (a relative or span axis) and repeats dropped."""
    if isinstance(axis, RelativeAxis):
        now = float(current[path])
        raw: list[Any] = [now * (1 + r) for r in np.linspace(*axis.relative, axis.steps)]
        if SETPOINTS[path].kind is int:
            raw = [max(1, round(value)) for value in raw]
    elif isinstance(axis, SpanAxis):
        raw = axis.values()
    else:
        raw = list(axis)
    values: list[Any] = []
    for value in raw:
        try:
            parsed = parse(line, path, value, limits)
        except SetpointError:
            if not isinstance(axis, list):
                continue  # a computed value outside the limits: not a candidate
            raise
        if SETPOINTS[path].kind is float:
            parsed = round(parsed, 6)
        if parsed not in values:
            values.append(parsed)
    return values


def axes(line: Line, spec: AdviceSpec, current: Action, limits: Limits) -> dict[str, list[Any]]:
    """Every axis's values now ({path: [values]}), for `twin.advice.grid`."""
    return {path: axis_values(line, path, axis, current, limits) for path, axis in spec.actions.items()}


# -- reading the file ------------------------------------------------------------------------------


def substituted(
    data: dict[str, Any],
    environ: Mapping[str, str],
    file: Path,
    prefix: str = "",
    error: type[InputError] = AdviseConfigError,
) -> set[str]:
    """Replace `${ENV}` in the sections that may hold secrets (in place); the secrets used."""
    secrets: set[str] = set()
    for key in SECRET_SECTIONS:
        if isinstance(data.get(key), dict):
            try:
                data[key] = substitute(data[key], environ, secrets, f"{prefix}{key}")
            except EnvError as exc:
                raise error(f"{file}: {exc.path}: {exc.message}") from None
    return secrets


@dataclass(frozen=True)
class AdviseSetup(ReadsHistory):
    """A read `fabbrica twin advise` config: the settings, the line, where to read and to write."""

    config: AdviseConfig
    path: Path
    line: Line
    line_tag: str
    source_label: str
    source: str | SinkSettings
    sink: SinkSettings
    limits: Limits
    objective: Objective


def read_advise_config(path: str | Path, environ: Mapping[str, str] | None = None) -> AdviseSetup:
    """Read and validate CONFIG.yaml; AdviseConfigError (one line naming file and field) on any problem."""
    from twinloop.live_config import LiveConfigError, relative, sink_of, source_of

    file = Path(path)
    data = read_mapping(file, AdviseConfigError, "a mapping (line, source, objective, actions, ...)")
    environ = os.environ if environ is None else environ
    secrets = substituted(data, environ, file)
    try:
        config = AdviseConfig.model_validate(data)
    except ValidationError as exc:
        raise AdviseConfigError(validation_message(str(file), exc)) from None
    hide_in_logs(secrets)
    base = file.resolve().parent
    try:
        line = load_line(relative(config.line, base))
    except InputError as exc:
        raise AdviseConfigError(f"{file}: line: {exc}") from None
    try:
        check_against_line(line, config)
        source, label = source_of(config.source, base, file)
        sink = sink_of(config.sink, source, base, file, environ)
    except FieldError as exc:
        raise AdviseConfigError(f"{file}: {exc.path}: {exc.message}") from None
    except LiveConfigError as exc:
        raise AdviseConfigError(str(exc)) from None
    return AdviseSetup(
        config=config,
        path=file,
        line=line,
        line_tag=config.line_name or line.name,
        source_label=label,
        source=source,
        sink=sink,
        limits=limits_of(line, config),
        objective=config.objective.objective(),
    )

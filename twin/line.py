"""The pilot line as data: stations in flow order, their buffers, failures and set-ups.

A line file (YAML) is validated into a `Line` before any engine sees it. Unknown keys
are errors, and every error names the file and the field path, for example
`line.yaml: stations[2].failures.mttr: must be > 0`.

    >>> line = load_line("simulations/lines/demonstrator.yaml")
    >>> [station.name for station in line.stations]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from foundation import errors
from foundation.durations import Duration, PositiveDuration
from foundation.errors import FieldError, InputError
from foundation.models import Strict
from foundation.yamlfile import read_mapping
from twin.calendar import ShiftCalendar
from twin.distributions import DIST_NAMES, Distribution, _Dist


class LineError(InputError):
    """A line file (or line data) is invalid: the message is one line naming file and field."""


class _Strict(Strict):
    model_config = ConfigDict(populate_by_name=True)


def _cycle_time_tag(value: Any) -> str:
    if isinstance(value, Mapping) and "dist" not in value:
        return "per_product"
    return "single"


CycleTime = Annotated[
    Annotated[Distribution, Tag("single")] | Annotated[dict[str, Distribution], Tag("per_product")],
    Discriminator(_cycle_time_tag),
]


class Failures(_Strict):
    """Breakdowns of a machine: time to failure and time to repair.

    `mtbf`/`mttr` give exponential times; `ttf`/`ttr` take any distribution.
    With `basis: operating` (default) the failure clock runs only while the machine
    processes a part; with `basis: calendar` it runs all the time.
    """

    mtbf: PositiveDuration | None = None
    mttr: PositiveDuration | None = None
    ttf: Distribution | None = None
    ttr: Distribution | None = None
    basis: Literal["operating", "calendar"] = "operating"
    skill: str | None = Field(default=None, min_length=1)  # the trade that repairs it (`repair.skills`)

    @model_validator(mode="after")
    def _one_of_each(self) -> Failures:
        if (self.mtbf is None) == (self.ttf is None):
            raise ValueError("give exactly one of mtbf or ttf")
        if (self.mttr is None) == (self.ttr is None):
            raise ValueError("give exactly one of mttr or ttr")
        return self

    @property
    def time_to_failure(self) -> _Dist:
        if self.ttf is not None:
            return self.ttf
        return _exponential(self.mtbf)

    @property
    def time_to_repair(self) -> _Dist:
        if self.ttr is not None:
            return self.ttr
        return _exponential(self.mttr)


def _exponential(mean: float | None) -> _Dist:
    from twin.distributions import Exponential

    return Exponential(dist="exponential", mean=mean)


class InterarrivalRelease(_Strict):
    """Orders arrive at random: parts enter the line at intervals drawn from a distribution."""

    interarrival: Distribution


class ConwipRelease(_Strict):
    """Constant work in process: a new part enters only when one leaves the line."""

    conwip: int = Field(ge=1)


def _release_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "saturated"
    if isinstance(value, Mapping):
        if "interarrival" in value:
            return "interarrival"
        if "conwip" in value:
            return "conwip"
    return None


Release = Annotated[
    Annotated[Literal["saturated"], Tag("saturated")]
    | Annotated[InterarrivalRelease, Tag("interarrival")]
    | Annotated[ConwipRelease, Tag("conwip")],
    Discriminator(
        _release_tag,
        custom_error_type="release",
        custom_error_message="must be 'saturated', {interarrival: DIST} or {conwip: N}",
    ),
]


class Rework(_Strict):
    """A part that fails inspection goes back: with `probability`, into the buffer of station `to`."""

    probability: float = Field(gt=0.0, lt=1.0)
    to: str = Field(min_length=1)


class Transport(_Strict):
    """The move into a station: an AGV fleet or conveyor with `capacity` parts on the way at most.

    Every move from another station into this one takes `time`; a sender finds no free place on
    it and is blocked (blocking after service), and a part that arrived waits on the transport,
    holding its place, until the station's buffer takes it.
    """

    time: Distribution
    capacity: int = Field(default=1, ge=1)


class Repair(_Strict):
    """The line's repair crew (`twin.repair`): `technicians` repair one failed machine each at a time,
    the next one chosen by `priority` (`fifo`: the first to fail; `bottleneck`: the machine of the
    station with the most working time so far). With `skills` ({skill: technicians}, adding up to
    `technicians`) the crew is split by trade, and each station's `failures.skill` names the
    trade that repairs it."""

    technicians: int = Field(ge=1)
    priority: Literal["fifo", "bottleneck"] = "fifo"
    skills: dict[str, Annotated[int, Field(ge=1)]] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _skills_add_up(self) -> Repair:
        if self.skills is not None and sum(self.skills.values()) != self.technicians:
            raise FieldError(
                "skills",
                f"the technicians per skill add up to {sum(self.skills.values())}, "
                f"not technicians: {self.technicians}",
            )
        return self


class Maintenance(_Strict):
    """Preventive maintenance of each machine of a station (`twin.station`): after `every` of operating
    time (the time it works, the age a failure clock counts) or after `parts` parts, whichever is
    given, the machine is serviced for `duration`; the service renews the machine's age as a repair
    does. A service due by operating time interrupts the part in work (age replacement); one due by
    parts starts before the next part is loaded."""

    every: PositiveDuration | None = None
    parts: int | None = Field(default=None, ge=1)
    duration: Distribution

    @model_validator(mode="after")
    def _one_trigger(self) -> Maintenance:
        if (self.every is None) == (self.parts is None):
            raise ValueError("give exactly one of every (operating time) or parts")
        return self


class SwitchOff(_Strict):
    """Energy saving: a machine starved for `after` switches itself off (state `off`, `power.off`); the
    next part waits for the `restart` (booked as `setup`, at `power.setup`)."""

    after: Duration
    restart: Distribution


class Power(_Strict):
    """A machine's electrical power in kW, by state: `working`; `idle` when starved or blocked;
    `down` when broken, waiting for repair, in maintenance or stopped by an operator; `setup` when
    changing over or restarting; `off` when switched off (`switch_off`) and in planned stops."""

    working: float = Field(ge=0.0, allow_inf_nan=False)
    idle: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    down: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    setup: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    off: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)

    def by_state(self) -> tuple[float, ...]:
        """kW per state code (twin.station.STATE_NAMES)."""
        from twin.station import STATE_NAMES

        key = {
            "blocked": "idle",
            "starved": "idle",
            "stopped": "down",
            "waiting_repair": "down",
            "maintenance": "down",
            "planned_stop": "off",
        }
        return tuple(getattr(self, key.get(name, name)) for name in STATE_NAMES)


class Station(_Strict):
    """One work station: `capacity` identical machines fed from one buffer in front of them."""

    name: str = Field(min_length=1)
    cycle_time: CycleTime
    capacity: int = Field(default=1, ge=1)
    buffer: int | None = Field(default=None, ge=0)
    failures: Failures | None = None
    setup: Distribution | None = None
    scrap: float = Field(default=0.0, ge=0.0, lt=1.0)
    ideal_cycle_time: PositiveDuration | None = None
    power: Power | None = None  # kW per state, for the energy KPIs (None: no energy counted)
    maintenance: Maintenance | None = None
    switch_off: SwitchOff | None = None
    # lines as networks (docs/networks.md): none of these, and the line is a chain
    inputs: list[str] | None = Field(default=None, min_length=1)
    release: Release | None = None
    product: str | None = None
    rework: Rework | None = None
    transport: Transport | None = None

    @property
    def networked(self) -> bool:
        """True when the station uses a key of lines as networks."""
        return any(
            value is not None
            for value in (self.inputs, self.release, self.product, self.rework, self.transport)
        )

    def cycle_time_for(self, product: str) -> _Dist:
        if isinstance(self.cycle_time, dict):
            return self.cycle_time[product]
        return self.cycle_time

    def mean_cycle_time(self, mix: Mapping[str, float]) -> float:
        """The mean over the products of `mix` this station has a time for (in a network, some never come)."""
        if not isinstance(self.cycle_time, dict):
            return self.cycle_time.mean
        shares = {name: share for name, share in mix.items() if name in self.cycle_time}
        total = sum(shares.values())
        return sum(share * self.cycle_time[name].mean for name, share in shares.items()) / total


class Product(_Strict):
    """A product variant and its share of the releases."""

    name: str = Field(min_length=1)
    mix: float = Field(default=1.0, gt=0)


class Line(_Strict):
    """A flow line: parts visit `stations` in order; blocking after service between them."""

    name: str = Field(default="line", min_length=1)
    release: Release = "saturated"
    products: list[Product] = Field(default_factory=lambda: [Product(name="default")], min_length=1)
    horizon: PositiveDuration = 8 * 3600.0
    warmup: Duration = 0.0
    seed: int = Field(default=1, ge=0)
    engine: Literal["auto", "simpy", "event", "flow"] = "auto"
    stations: list[Station] = Field(min_length=1)
    routes: dict[str, list[str]] | None = None
    repair: Repair | None = None  # None: a repairer for every failed machine
    calendar: ShiftCalendar | None = None  # None: planned around the clock

    @model_validator(mode="after")
    def _consistent(self) -> Line:
        if self.warmup >= self.horizon:
            raise ValueError("warmup must be shorter than horizon")
        names = [product.name for product in self.products]
        if len(set(names)) != len(names):
            raise ValueError("product names must be unique")
        seen: set[str] = set()
        release = self.release
        if isinstance(release, InterarrivalRelease) and release.interarrival.mean <= 0:
            raise FieldError("release.interarrival", "mean must be > 0 (orders cannot all arrive at once)")
        for index, station in enumerate(self.stations):
            if station.name in seen:
                raise FieldError(f"stations[{index}].name", f"duplicate station name {station.name!r}")
            seen.add(station.name)
            if isinstance(station.release, InterarrivalRelease) and station.release.interarrival.mean <= 0:
                raise FieldError(
                    f"stations[{index}].release.interarrival",
                    "mean must be > 0 (orders cannot all arrive at once)",
                )
            if isinstance(station.cycle_time, dict):
                keys = set(station.cycle_time)
                missing = [name for name in names if name not in keys]
                unknown = sorted(keys - set(names))
                if unknown:
                    raise FieldError(
                        f"stations[{index}].cycle_time.{unknown[0]}",
                        f"unknown product (products: {', '.join(names)})",
                    )
                if missing and not self.is_network:  # a network line: the products processed here
                    raise FieldError(
                        f"stations[{index}].cycle_time", f"no cycle time for product {missing[0]!r}"
                    )
            for product in list(station.cycle_time) if isinstance(station.cycle_time, dict) else names[:1]:
                if station.cycle_time_for(product).mean <= 0:
                    where = f".{product}" if isinstance(station.cycle_time, dict) else ""
                    raise FieldError(
                        f"stations[{index}].cycle_time{where}",
                        "mean must be > 0 (a machine needs time to process a part)",
                    )
        skills = self.repair.skills if self.repair is not None else None
        for index, station in enumerate(self.stations):
            skill = station.failures.skill if station.failures is not None else None
            if skill is not None and skills is None:
                raise FieldError(f"stations[{index}].failures.skill", "needs repair.skills at the line level")
            if skills is not None and station.failures is not None:
                if skill is None:
                    raise FieldError(
                        f"stations[{index}].failures.skill",
                        f"the crew has skills: name the one that repairs it ({', '.join(skills)})",
                    )
                if skill not in skills:
                    raise FieldError(
                        f"stations[{index}].failures.skill",
                        f"unknown skill {skill!r} (repair.skills: {', '.join(skills)})",
                    )
            if (
                station.maintenance is not None
                and station.failures is not None
                and station.failures.basis == "calendar"
            ):
                raise FieldError(
                    f"stations[{index}].maintenance",
                    "preventive maintenance renews an operating age: it needs failures.basis: operating",
                )
        if self.calendar is not None:
            self.calendar.check_horizon(self.warmup, self.horizon)
        if self.is_network:
            from twin.topology import check_network

            check_network(self)
        return self

    @property
    def is_network(self) -> bool:
        """True when the line is more than one chain (routes, rework, assembly, branches, transport)."""
        return self.routes is not None or any(station.networked for station in self.stations)

    @property
    def product_mix(self) -> dict[str, float]:
        total = sum(product.mix for product in self.products)
        return {product.name: product.mix / total for product in self.products}

    def station(self, name: str) -> Station:
        for station in self.stations:
            if station.name == name:
                return station
        raise KeyError(name)


_SKIPPED_LOC = frozenset(DIST_NAMES) | {"single", "per_product", "saturated", "interarrival", "conwip"}


def _describe(error: Mapping[str, Any]) -> str | None:
    """The twin's own wording: distributions chosen by `dist`, and the release's custom message."""
    kind = error["type"]
    if kind == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        return f"unknown distribution {ctx.get('tag')!r} (allowed: {', '.join(DIST_NAMES)})"
    if kind == "union_tag_not_found":
        return f"a distribution needs 'dist' (one of: {', '.join(DIST_NAMES)})"
    if kind == "release":
        return str(error["msg"])
    return None


def format_location(loc: tuple[Any, ...]) -> str:
    """('stations', 2, 'failures', 'mttr') -> 'stations[2].failures.mttr' (distribution tags left out)."""
    return errors.format_location(loc, _SKIPPED_LOC)


def format_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """One pydantic error about a line (or a part of one) as (field path, message in plain words)."""
    return errors.format_error(error, _SKIPPED_LOC, _describe)


def validation_message(source: str, error: ValidationError) -> str:
    return errors.validation_message(source, error, _SKIPPED_LOC, _describe)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a line file's YAML mapping; every read or syntax problem is a one-line LineError."""
    return read_mapping(path, LineError, "a mapping of line fields")


def line_from_dict(data: Mapping[str, Any], source: str = "<line>") -> Line:
    """Validate a line given as plain data; errors name `source` and the field path."""
    try:
        return Line.model_validate(dict(data))
    except ValidationError as exc:
        raise LineError(validation_message(source, exc)) from None


def load_line(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Line:
    """Load and validate a line file; `overrides` replace top-level fields before validation."""
    data = read_yaml(path)
    if overrides:
        data.update(overrides)
    return line_from_dict(data, str(path))

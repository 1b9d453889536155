"""The line's state at one instant: parts in each buffer, what each machine is doing and for how long.

A live twin starts from where the line is now, not from an empty line. The state file
(JSON, format `fabbrica-state/1`, see docs/live-twin.md) says per station how many parts
wait in the buffer in front of it and, per machine, its state (`working`, `blocked`,
`starved`, `down`, `setup`), the time already spent in it (`elapsed_s`), the product of
the part it holds and, optionally, its operating time since the last repair (`age_s`):

    {"format": "fabbrica-state/1", "time": "2026-12-02T10:40:00Z",
     "stations": {"lathe": {"buffer": 3, "machines": [{"state": "down", "elapsed_s": 360}],
                            "produced": 212}},
     "released": 230}

`check_state` refuses a state the line cannot hold (one line naming the file and field).
`start_plan` turns a checked state into what the engines start from: per machine the
remaining time of what it is doing, drawn from the distribution conditioned on having
lasted `elapsed_s` already (`twin.distributions._Dist.residual`), and per buffer the
products of the parts in it. Both engines start from the same plan, so they give the
same run from the same state and seed.

What a machine does from its state:

- `working`: finishes its part after the residual cycle time; with operation-based
  failures its failure clock is a fresh time to failure, or the residual given `age_s`;
- `down`: holds a part; after the residual repair time it processes that part for a
  fresh cycle time (the work done before the breakdown is not known) with a fresh clock;
- `setup`: finishes the change-over after the residual set-up time, then processes the part;
- `blocked`: holds a finished part and hands it on as soon as there is room;
- `starved`: empty, waits for a part.

Products not given are drawn from the product mix, from streams of their own (one per
machine, one per buffer), so the parts released later are the same whatever the state,
and a state that differs at one machine leaves the others' draws alone (common random numbers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from foundation import errors
from foundation.errors import InputError
from foundation.models import Strict
from twin.line import ConwipRelease, Line
from twin.station import BLOCKED, DOWN, SETUP, STARVED, STATE_NAMES, WORKING
from twin.streams import stream

FORMAT = "fabbrica-state/1"
StartState = Literal["working", "blocked", "starved", "down", "setup"]
START_STATES: tuple[str, ...] = ("working", "blocked", "starved", "down", "setup")
HOLDS_A_PART = frozenset({"working", "blocked", "down", "setup"})


class StateError(InputError):
    """A state file (or state data) is invalid, or the line cannot hold it: one line naming file and field."""


class MachineState(Strict):
    """One machine: what it is doing, for how long already, on which product."""

    state: StartState
    elapsed_s: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    product: str | None = None
    age_s: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)


class StationState(Strict):
    """One station: the parts in its buffer, its machines (all starved if left out), its count."""

    buffer: int = Field(default=0, ge=0)
    machines: list[MachineState] | None = None
    produced: int | None = Field(default=None, ge=0)


class LineState(Strict):
    """The whole line at `time`: the stations by name (a station left out is empty)."""

    format: Literal["fabbrica-state/1"]
    time: datetime | None = None
    stations: dict[str, StationState] = Field(default_factory=dict)
    released: int | None = Field(default=None, ge=0)

    def produced(self, line: Line) -> int:
        """Good parts the last station has made so far (0 when the state does not say)."""
        last = self.stations.get(line.stations[-1].name)
        return last.produced or 0 if last is not None else 0

    def parts_in_line(self) -> int:
        """Parts in the buffers and on the machines."""
        total = 0
        for station in self.stations.values():
            total += station.buffer
            for machine in station.machines or []:
                total += machine.state in HOLDS_A_PART
        return total

    def to_json(self) -> dict[str, Any]:
        """The state as the plain data of its file."""
        return self.model_dump(mode="json", exclude_none=True)


def empty_state(line: Line) -> LineState:
    """The line with nothing in it: every buffer empty, every machine starved."""
    return LineState(format=FORMAT)


def state_from_dict(data: Any, source: str = "<state>") -> LineState:
    """Validate state data; errors name `source` and the field path."""
    if not isinstance(data, dict):
        raise StateError(f"{source}: must be a JSON object with format {FORMAT!r}")
    if "format" not in data:
        raise StateError(f"{source}: format: required field missing (expected {FORMAT!r})")
    if data["format"] != FORMAT:
        raise StateError(f"{source}: format: unknown format {data['format']!r} (expected {FORMAT!r})")
    try:
        return LineState.model_validate(data)
    except ValidationError as exc:
        raise StateError(errors.validation_message(source, exc)) from None


def read_state(path: str | Path) -> LineState:
    """Read and validate a state file (JSON); every problem is a one-line StateError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StateError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StateError(f"{path}: not a UTF-8 text file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateError(
            f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    return state_from_dict(data, str(path))


def check_state(line: Line, state: LineState, source: str = "<state>") -> None:
    """Refuse, with one line naming `source` and the field, a state that `line` cannot hold."""
    if line.is_network:
        raise StateError(
            f"{source}: a run from a state needs a chain line; {line.name!r} has routes, rework,"
            " an assembly, a branch or a transport (docs/networks.md)"
        )
    products = list(line.product_mix)
    names = {station.name: index for index, station in enumerate(line.stations)}
    last = len(line.stations) - 1
    for name, station_state in state.stations.items():
        where = f"{source}: stations.{name}"
        if name not in names:
            raise StateError(f"{where}: unknown station (stations: {', '.join(names)})")
        index = names[name]
        station = line.stations[index]
        raw_material = index == 0 and line.release == "saturated"  # unlimited: nothing to count
        if not raw_material and station.buffer is not None and station_state.buffer > station.buffer:
            raise StateError(
                f"{where}.buffer: {station_state.buffer} parts, but the buffer holds {station.buffer}"
            )
        machines = station_state.machines
        if machines is None:
            continue
        if len(machines) != station.capacity:
            raise StateError(
                f"{where}.machines: {len(machines)} machine(s) given, but the station has {station.capacity}"
            )
        for m, machine in enumerate(machines):
            at = f"{where}.machines[{m}]"
            if machine.product is not None and machine.product not in products:
                raise StateError(
                    f"{at}.product: unknown product {machine.product!r} (products: {', '.join(products)})"
                )
            if machine.state == "blocked" and index == last:
                raise StateError(f"{at}.state: the last station is never blocked (its parts leave the line)")
            if machine.state == "setup" and station.setup is None:
                raise StateError(f"{at}.state: the station has no set-up")
            if machine.state == "down" and station.failures is None:
                raise StateError(f"{at}.state: the station has no failures")
            if machine.age_s is not None and station.failures is None:
                raise StateError(f"{at}.age_s: the station has no failures")
    if isinstance(line.release, ConwipRelease) and state.parts_in_line() > line.release.conwip:
        raise StateError(
            f"{source}: stations: {state.parts_in_line()} parts in the line, "
            f"but release.conwip allows {line.release.conwip}"
        )


@dataclass(frozen=True)
class MachineStart:
    """What one machine starts from: its state code, the product it holds and the time still to run.

    `remaining` is the residual cycle, repair or set-up time (0 for blocked and starved);
    `ttf_left` the failure clock when `age_s` was given (None: the engine draws a fresh one).
    """

    state: int
    product: str | None
    remaining: float
    ttf_left: float | None


@dataclass(frozen=True)
class StartPlan:
    """Per station: its machines' starts and the products of the parts in its buffer, front first."""

    machines: list[list[MachineStart]]
    buffers: list[list[str]]

    @property
    def parts(self) -> int:
        held = sum(start.product is not None for starts in self.machines for start in starts)
        return held + sum(len(parts) for parts in self.buffers)


def start_plan(line: Line, state: LineState, seed: int) -> StartPlan:
    """Draw what the engines start from (the state must have passed `check_state`).

    Each machine draws its residual times from its own stream (`initial`), and the
    product of its part, when not given, from another stream of its own; the parts in
    each buffer draw theirs from the station's. So a state that differs at one machine
    (or buffer) changes only that machine's (or buffer's) draws.
    """
    mix = line.product_mix
    products = list(mix)
    shares = list(mix.values())

    def products_of(count: int, owner: str, index: int, variant: str) -> list[str]:
        if len(products) == 1 or count == 0:
            return [products[0]] * count
        rng = stream(seed, owner, "initial", index, variant)
        return [products[int(k)] for k in rng.choice(len(products), size=count, p=shares)]

    machines: list[list[MachineStart]] = [[] for _ in line.stations]
    buffers: list[list[str]] = [[] for _ in line.stations]
    for index in reversed(range(len(line.stations))):
        station = line.stations[index]
        station_state = state.stations.get(station.name)
        raw_material = index == 0 and line.release == "saturated"
        count = 0 if station_state is None or raw_material else station_state.buffer
        given = station_state.machines if station_state is not None and station_state.machines else None
        starts = []
        for m in range(station.capacity):
            machine = given[m] if given is not None else MachineState(state="starved")
            code = STATE_NAMES.index(machine.state)
            rng = stream(seed, station.name, "initial", m)
            product = None
            if machine.state in HOLDS_A_PART:
                product = machine.product or products_of(1, station.name, m, "product")[0]
            remaining = 0.0
            if code == WORKING:
                remaining = station.cycle_time_for(product).residual(rng, machine.elapsed_s)  # type: ignore[arg-type]
            elif code == DOWN:
                remaining = station.failures.time_to_repair.residual(rng, machine.elapsed_s)  # type: ignore[union-attr]
            elif code == SETUP:
                remaining = station.setup.residual(rng, machine.elapsed_s)  # type: ignore[union-attr]
            ttf_left = None
            if machine.age_s is not None and code != DOWN:
                ttf_left = station.failures.time_to_failure.residual(rng, machine.age_s)  # type: ignore[union-attr]
            starts.append(MachineStart(code, product, remaining, ttf_left))
        machines[index] = starts
        buffers[index] = products_of(count, station.name, 0, "buffer")
    return StartPlan(machines, buffers)


STATE_CODES = {"working": WORKING, "blocked": BLOCKED, "starved": STARVED, "down": DOWN, "setup": SETUP}

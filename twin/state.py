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

A line that is a network (docs/networks.md) may also give per station the parts in each
input's buffer of an assembly (`buffers: {UPSTREAM: n}`, in place of `buffer`), in its rework
queue (`returns`) and on the transport into it (`transport: [{remaining_s | elapsed_s,
product}]`); `twin.network_state` checks and places those.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import Field, ValidationError, model_validator

from foundation import errors
from foundation.errors import InputError
from foundation.models import Strict
from twin.line import ConwipRelease, Line, Station
from twin.station import DOWN, MAINTENANCE, SETUP, STATE_NAMES, WORKING
from twin.streams import stream

if TYPE_CHECKING:
    from twin.network_state import NetworkStart

FORMAT = "fabbrica-state/1"
StartState = Literal["working", "blocked", "starved", "down", "setup", "off", "maintenance"]
START_STATES: tuple[str, ...] = get_args(StartState)
HOLDS_A_PART = frozenset({"working", "blocked", "down", "setup"})  # and `maintenance` with a product


class StateError(InputError):
    """A state file (or state data) is invalid, or the line cannot hold it: one line naming file and field."""


class MachineState(Strict):
    """One machine: what it is doing, for how long already, on which product."""

    state: StartState
    elapsed_s: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    product: str | None = None
    age_s: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    restart: bool | None = None  # true: a `setup` that is the restart after a switch-off, not a changeover

    @property
    def holds_a_part(self) -> bool:
        """A service holds the part it interrupted (`product` given); between parts it holds none."""
        return self.state in HOLDS_A_PART or (self.state == "maintenance" and self.product is not None)


class TransportPart(Strict):
    """A part on the transport into a station: the time it still travels (0: it has arrived and
    waits for the station's buffer), or the time it has travelled already, and its product."""

    remaining_s: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    elapsed_s: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    product: str | None = None

    @model_validator(mode="after")
    def _one_time(self) -> TransportPart:
        if (self.remaining_s is None) == (self.elapsed_s is None):
            raise ValueError("give exactly one of remaining_s or elapsed_s")
        return self


class StationState(Strict):
    """One station: the parts in its buffer, its machines (all starved if left out), its count.

    A line that is a network (docs/networks.md) may also say, for an assembly, the parts in
    the buffer of each input (`buffers`, by the upstream station's name, in place of
    `buffer`), the parts sent back for rework and waiting at the station (`returns`) and the
    parts on the transport into it (`transport`).
    """

    buffer: int | None = Field(default=None, ge=0)  # None: 0 (left out, or an assembly's `buffers`)
    buffers: dict[str, Annotated[int, Field(ge=0)]] | None = None
    returns: int | None = Field(default=None, ge=0)
    transport: list[TransportPart] | None = None
    machines: list[MachineState] | None = None
    produced: int | None = Field(default=None, ge=0)

    def parts(self) -> int:
        """Parts at the station: in its buffers, its rework queue, on its transport and machines."""
        total = (self.buffer or 0) + sum((self.buffers or {}).values()) + (self.returns or 0)
        total += len(self.transport or ())
        return total + sum(machine.holds_a_part for machine in self.machines or ())


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
        """Parts in the buffers, rework queues, on transports and on the machines."""
        return sum(station.parts() for station in self.stations.values())

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
    if line.is_network:  # routes, rework, assembly, transport: where each part can be
        from twin.network_state import check_network_state

        check_network_state(line, state, source)
        return
    products = list(line.product_mix)
    last = len(line.stations) - 1
    for name, station_state in state.stations.items():
        where = f"{source}: stations.{name}"
        index = station_index(line, name, where)
        station = line.stations[index]
        refuse_network_keys(where, station, station_state, assembly=False, transport=False, returns=False)
        raw_material = index == 0 and line.release == "saturated"  # unlimited: nothing to count
        if not raw_material:
            check_count(f"{where}.buffer", station_state.buffer, station.buffer, "the buffer")
        for m, machine in check_machines(where, station, station_state.machines, products):
            if machine.state == "blocked" and index == last:
                raise StateError(
                    f"{where}.machines[{m}].state: the last station is never blocked"
                    " (its parts leave the line)"
                )
    check_conwip(line, state, source)


def station_index(line: Line, name: str, where: str) -> int:
    """The index of station `name`, or a StateError listing the line's stations."""
    for index, station in enumerate(line.stations):
        if station.name == name:
            return index
    raise StateError(f"{where}: unknown station (stations: {', '.join(s.name for s in line.stations)})")


def check_count(where: str, count: int | None, capacity: int | None, what: str) -> None:
    """Refuse more parts than a buffer (`capacity`, None: unlimited) holds."""
    if count is not None and capacity is not None and count > capacity:
        raise StateError(f"{where}: {count} parts, but {what} holds {capacity}")


def refuse_network_keys(
    where: str, station: Station, state: StationState, *, assembly: bool, transport: bool, returns: bool
) -> None:
    """Refuse the keys of a station that it has no place for: `buffer` at an assembly, `buffers`
    at a station with one buffer, `transport` without a transport, `returns` without rework."""
    name = station.name
    if assembly and state.buffer is not None:
        inputs = ", ".join(f"{upstream}: n" for upstream in station.inputs or ())
        raise StateError(
            f"{where}.buffer: {name!r} is an assembly with a buffer per input: give buffers: {{{inputs}}}"
        )
    if not assembly and state.buffers is not None:
        raise StateError(
            f"{where}.buffers: only an assembly (a station with several inputs) has a buffer per input;"
            f" {name!r} has one: give buffer: n"
        )
    if not transport and state.transport is not None:
        raise StateError(f"{where}.transport: {name!r} has no transport (docs/networks.md)")
    if not returns and state.returns is not None:
        raise StateError(f"{where}.returns: no station sends parts back to {name!r} for rework")


def check_machines(
    where: str, station: Station, machines: list[MachineState] | None, products: list[str]
) -> list[tuple[int, MachineState]]:
    """Refuse machines the station cannot have; the (index, machine) pairs given (none if left out)."""
    if machines is None:
        return []
    if len(machines) != station.capacity:
        raise StateError(
            f"{where}.machines: {len(machines)} machine(s) given, but the station has {station.capacity}"
        )
    for m, machine in enumerate(machines):
        at = f"{where}.machines[{m}]"
        check_product(f"{at}.product", machine.product, products)
        if machine.restart and (machine.state != "setup" or station.switch_off is None):
            raise StateError(f"{at}.restart: only a set-up of a station that switches off can be its restart")
        if machine.state == "setup" and station.setup is None and not machine.restart:
            raise StateError(f"{at}.state: the station has no set-up")
        if machine.state == "down" and station.failures is None:
            raise StateError(f"{at}.state: the station has no failures")
        if machine.state == "maintenance" and station.maintenance is None:
            raise StateError(f"{at}.state: the station has no preventive maintenance")
        if machine.state == "off" and station.switch_off is None:
            raise StateError(f"{at}.state: the station does not switch off (no switch_off)")
        if machine.age_s is not None and station.failures is None:
            raise StateError(f"{at}.age_s: the station has no failures")
    return list(enumerate(machines))


def check_product(where: str, product: str | None, products: list[str]) -> None:
    if product is not None and product not in products:
        raise StateError(f"{where}: unknown product {product!r} (products: {', '.join(products)})")


def check_conwip(line: Line, state: LineState, source: str) -> None:
    """Refuse more parts in a CONWIP line than its limit."""
    if isinstance(line.release, ConwipRelease) and state.parts_in_line() > line.release.conwip:
        raise StateError(
            f"{source}: stations: {state.parts_in_line()} parts in the line, "
            f"but release.conwip allows {line.release.conwip}"
        )


@dataclass(frozen=True)
class MachineStart:
    """What one machine starts from: its state code, the product it holds and the time still to run.

    `remaining` is the residual cycle, repair, set-up or service time (0 for blocked and starved);
    `ttf_left` the failure clock when `age_s` was given (None: the engine draws a fresh one);
    `age` the operating time since the last renewal (`age_s`; None: not known, taken as new),
    from which the next preventive service by operating time falls due.
    """

    state: int
    product: str | None
    remaining: float
    ttf_left: float | None
    age: float | None = None


@dataclass(frozen=True)
class StartPlan:
    """Per station: its machines' starts and the products of the parts in its buffer, front first.

    A line that is a network also has `network` (`twin.network_state.NetworkStart`): where each
    of its parts is, with its place in its route and the components it carries.
    """

    machines: list[list[MachineStart]]
    buffers: list[list[str]]
    network: NetworkStart | None = None

    @property
    def parts(self) -> int:
        if self.network is not None:
            return self.network.parts
        held = sum(start.product is not None for starts in self.machines for start in starts)
        return held + sum(len(parts) for parts in self.buffers)


def start_plan(line: Line, state: LineState, seed: int) -> StartPlan:
    """Draw what the engines start from (the state must have passed `check_state`).

    Each machine draws its residual times from its own stream (`initial`), and the
    product of its part, when not given, from another stream of its own; the parts in
    each buffer draw theirs from the station's. So a state that differs at one machine
    (or buffer) changes only that machine's (or buffer's) draws. A network line's parts
    are placed by `twin.network_state.network_plan`.
    """
    if line.is_network:
        from twin.network_state import network_plan

        return network_plan(line, state, seed)
    mix = line.product_mix
    products = list(mix)

    def drawn(count: int, owner: str, index: int, variant: str) -> list[str]:
        return draw_products(mix, products, count, lambda: stream(seed, owner, "initial", index, variant))

    machines: list[list[MachineStart]] = [[] for _ in line.stations]
    buffers: list[list[str]] = [[] for _ in line.stations]
    for index in reversed(range(len(line.stations))):
        station = line.stations[index]
        station_state = state.stations.get(station.name)
        raw_material = index == 0 and line.release == "saturated"
        count = 0 if station_state is None or raw_material else station_state.buffer or 0
        given = station_state.machines if station_state is not None else None
        machines[index] = machine_starts(
            station, given, seed, lambda m, name=station.name: drawn(1, name, m, "product")[0]
        )
        buffers[index] = drawn(count, station.name, 0, "buffer")
    return StartPlan(machines, buffers)


def draw_products(
    mix: dict[str, float], candidates: list[str], count: int, rng: Callable[[], Any]
) -> list[str]:
    """`count` products drawn from `candidates` by their shares in `mix`, from the stream `rng()`
    (not made when only one product can be there)."""
    if len(candidates) == 1 or count == 0:
        return [candidates[0]] * count
    shares = [mix[name] for name in candidates]
    if len(candidates) < len(mix):
        total = sum(shares)
        shares = [share / total for share in shares]
    return [candidates[int(k)] for k in rng().choice(len(candidates), size=count, p=shares)]


def machine_starts(
    station: Station, given: list[MachineState] | None, seed: int, product_of: Callable[[int], str]
) -> list[MachineStart]:
    """The starts of a station's machines: residual times drawn from each machine's stream
    (`initial`), the product of a part not given from `product_of(machine index)`."""
    starts = []
    for m in range(station.capacity):
        machine = given[m] if given else MachineState(state="starved")
        code = STATE_NAMES.index(machine.state)
        rng = stream(seed, station.name, "initial", m)
        product = None
        if machine.state in HOLDS_A_PART:
            product = machine.product or product_of(m)
        elif machine.holds_a_part:
            product = machine.product
        remaining = 0.0
        if code == WORKING:
            remaining = station.cycle_time_for(product).residual(rng, machine.elapsed_s)  # type: ignore[arg-type]
        elif code == DOWN:
            remaining = station.failures.time_to_repair.residual(rng, machine.elapsed_s)  # type: ignore[union-attr]
        elif code == SETUP:
            setup = station.switch_off.restart if machine.restart else station.setup  # type: ignore[union-attr]
            remaining = setup.residual(rng, machine.elapsed_s)  # type: ignore[union-attr]
        elif code == MAINTENANCE:
            remaining = station.maintenance.duration.residual(rng, machine.elapsed_s)  # type: ignore[union-attr]
        ttf_left = None
        if machine.age_s is not None and code != DOWN:
            ttf_left = station.failures.time_to_failure.residual(rng, machine.age_s)  # type: ignore[union-attr]
        starts.append(MachineStart(code, product, remaining, ttf_left, machine.age_s))
    return starts


STATE_CODES = {name: STATE_NAMES.index(name) for name in START_STATES}

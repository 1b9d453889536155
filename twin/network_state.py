"""Where the parts of a network line's state are, and what each of them is.

A state file (`twin.state`, `fabbrica-state/1`) counts the parts at each place of the line. A
line that is a network (docs/networks.md) needs more of each part than a chain does before it
can carry on from there: its product, its place in the product's route, and the components an
assembled part carries. This module reads the line's graph and routes once (`Places`): which
products can be on a station's machines, in each of its buffers (an assembly has one per
input), in its rework queue and on the transport into it. From that:

- `check_network_state` refuses a state that puts a part where none can be, or more parts
  than a place holds (one line naming the file and field);
- `network_plan` places every part: a routed part is at the **first visit** of the station it
  is at in its route (the first at which a part can be in that place: a saturated head makes
  its parts on its machine, so a part in its buffer has come back); a part whose product the
  state does not give gets one drawn from the products that can be there, by their shares of
  the mix; an assembled part (on an assembly's machine, or downstream of an assembly) carries
  one component per other input of each assembly it has passed, drawn in the same way from the
  products that can wait in that input's buffer. Every draw comes from a stream of its own
  (purpose `initial`, per machine and per place), as in a chain.

A blocked machine's part is finished: it goes on to the next station of its route (it is not
sent back for rework). The trade-off: a state file says how many parts are where, not which
visit of a re-entrant route each is on, nor what a part carries; both are taken as above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twin.line import Line
from twin.state import (
    LineState,
    StartPlan,
    StateError,
    StationState,
    check_conwip,
    check_count,
    check_machines,
    check_product,
    draw_products,
    machine_starts,
    refuse_network_keys,
    station_index,
)
from twin.streams import stream
from twin.topology import Topology


@dataclass(frozen=True)
class Walk:
    """The stations a part of `product` visits in turn, and the input (slot) it enters each by.

    A routed product has one walk (its route); any other one walk per head that releases it,
    down the flow graph to an exit or into an assembly as a component (its last step).
    `made_on_machine`: its head is saturated and makes the part on a machine (not in its buffer).
    """

    product: str
    stations: tuple[int, ...]
    slots: tuple[int, ...]
    made_on_machine: bool


@dataclass(frozen=True)
class Spot:
    """Where on its walk a part at a place is: the step of its first visit there."""

    walk: Walk
    step: int

    @property
    def last(self) -> bool:
        return self.step == len(self.walk.stations) - 1


Spots = dict[str, Spot]  # product -> its first spot at a place


@dataclass(frozen=True)
class PlacedPart:
    """A part in the line at the start: its product, its position in its route (-1: no route),
    the products of the components it carries and the station that passed it in (None: none)."""

    product: str
    position: int
    components: tuple[str, ...]
    came_from: int | None


@dataclass(frozen=True)
class NetworkStart:
    """Per station the parts of a network line at the start, as `network_plan` placed them.

    `held`: the part on each machine (None: it holds none); `inputs`: per buffer (one per input
    of an assembly) its parts, front first; `returns`: the rework queue's parts; `transports`:
    (time still to travel, part) of each part on the transport into the station.
    """

    held: list[list[PlacedPart | None]]
    inputs: list[list[list[PlacedPart]]]
    returns: list[list[PlacedPart]]
    transports: list[list[tuple[float, PlacedPart]]]

    @property
    def parts(self) -> int:
        count = sum(part is not None for parts in self.held for part in parts)
        count += sum(len(parts) for buffers in self.inputs for parts in buffers)
        return count + sum(map(len, self.returns)) + sum(map(len, self.transports))


class Places:
    """Which products can be where in `line`: on machines, in buffers, rework queues and transports."""

    def __init__(self, line: Line) -> None:
        self.line = line
        self.topology = topology = Topology(line)
        count = len(line.stations)
        self.machine: list[Spots] = [{} for _ in range(count)]
        self.buffer: list[list[Spots]] = [[{} for _ in range(topology.buffers_of(i))] for i in range(count)]
        self.returns: list[Spots] = [{} for _ in range(count)]
        self.transport: list[Spots] = [{} for _ in range(count)]
        self.sent_back_from: dict[tuple[str, int], int] = {}  # (product, station) -> who sends it back
        rework_to = topology.rework_to
        for walk in self._walks():
            stations = walk.stations
            for step, (station, slot) in enumerate(zip(stations, walk.slots, strict=True)):
                product = walk.product
                if slot == 0:
                    self.machine[station].setdefault(product, Spot(walk, step))
                if step > 0 or not walk.made_on_machine:
                    self.buffer[station][slot].setdefault(product, Spot(walk, step))
                if step > 0 and line.stations[station].transport is not None:
                    self.transport[station].setdefault(product, Spot(walk, step))
                later = [s for s in stations[step:] if rework_to[s] == station]  # itself, or on
                if slot == 0 and later and product not in self.returns[station]:
                    self.returns[station][product] = Spot(walk, step)
                    self.sent_back_from[(product, station)] = later[0]

    def _walks(self) -> list[Walk]:
        line, topology = self.line, self.topology
        saturated = [
            (line.release if i == 0 else line.stations[i].release) == "saturated"
            for i in range(len(line.stations))
        ]
        walks = []
        for product in line.product_mix:
            route = topology.routes.get(product)
            if route is not None:
                slots = [0] + [topology.input_slot(route[k], route[k - 1]) for k in range(1, len(route))]
                head = next((h for h, pinned in topology.pinned.items() if pinned == product), 0)
                made = saturated[head] and route[0] == head
                walks.append(Walk(product, tuple(route), tuple(slots), made))
                continue
            heads = [h for h, pinned in topology.pinned.items() if pinned == product]
            if not heads:  # the line's release, and every branch head that makes no product of its own
                heads = [h for h in topology.heads if h not in topology.pinned]
            for head in heads:
                stations, slots = [head], [0]
                while slots[-1] == 0 and topology.downstream[stations[-1]] >= 0:
                    station = topology.downstream[stations[-1]]
                    slots.append(topology.input_slot(station, stations[-1]))
                    stations.append(station)
                walks.append(Walk(product, tuple(stations), tuple(slots), saturated[head]))
        return walks

    # -- what a part at a place is ------------------------------------------------------------
    def machine_spots(self, station: int, state: str) -> Spots:
        """The products a machine in `state` can hold: a blocked one's part does not leave the line."""
        spots = self.machine[station]
        if state == "blocked":
            return {product: spot for product, spot in spots.items() if not spot.last}
        return spots

    def placed(
        self,
        product: str,
        spot: Spot,
        on_machine: bool,
        draw: Callable[[list[str]], str],
        *,
        back_from: int | None = None,
    ) -> PlacedPart:
        """A part of `product` at `spot` (`on_machine`: on a machine, an assembly's part joined);
        `draw(candidates)` picks each component's product; `back_from`: sent back by that station."""
        walk = spot.walk
        position = spot.step if product in self.topology.routes else -1
        came_from = (
            back_from if back_from is not None else walk.stations[spot.step - 1] if spot.step else None
        )
        return PlacedPart(product, position, tuple(self._components(spot, on_machine, draw)), came_from)

    def _components(self, spot: Spot, on_machine: bool, draw: Callable[[list[str]], str]) -> list[str]:
        """The products of the components a part at `spot` carries, flat, in the order joined."""
        topology = self.topology
        walk = spot.walk
        found: list[str] = []
        for step in range(spot.step + 1 if on_machine else spot.step):
            station = walk.stations[step]
            if not topology.assembly[station]:
                continue
            for slot in range(1, len(topology.inputs[station])):
                spots = self.buffer[station][slot]
                if not spots:
                    continue
                component = draw(list(spots))
                found.append(component)
                found.extend(self._components(spots[component], False, draw))
        return found


def check_network_state(line: Line, state: LineState, source: str) -> None:
    """Refuse, with one line naming `source` and the field, a state that the network `line` cannot hold."""
    places = Places(line)
    topology = places.topology
    products = list(line.product_mix)
    for name, station_state in state.stations.items():
        where = f"{source}: stations.{name}"
        i = station_index(line, name, where)
        station = line.stations[i]
        transport = station.transport
        refuse_network_keys(
            where,
            station,
            station_state,
            assembly=topology.assembly[i],
            transport=transport is not None,
            returns=topology.rework_to.count(i) > 0,
        )
        for slot, field, count in _buffer_counts(line, topology, i, station_state, where):
            check_count(field, count, station.buffer, "the buffer")
            if count and not places.buffer[i][slot]:
                raise StateError(
                    f"{field}: no part ever waits in this buffer (no product's route comes to it)"
                )
        if station_state.returns and not places.returns[i]:
            raise StateError(f"{where}.returns: no part is ever sent back to {name!r}")
        if transport is not None and station_state.transport is not None:
            check_count(
                f"{where}.transport", len(station_state.transport), transport.capacity, "the transport"
            )
            for k, part in enumerate(station_state.transport):
                check_product(f"{where}.transport[{k}].product", part.product, products)
                _check_there(
                    f"{where}.transport[{k}]",
                    part.product,
                    places.transport[i],
                    f"on the transport into {name!r}",
                )
        for m, machine in check_machines(where, station, station_state.machines, products):
            if not machine.holds_a_part:
                continue
            at = f"{where}.machines[{m}]"
            spots = places.machine_spots(i, machine.state)
            if (
                machine.state == "blocked"
                and machine.product in places.machine[i]
                and machine.product not in spots
            ):
                raise StateError(
                    f"{at}.state: a part of {machine.product!r} leaves the line at {name!r}:"
                    " it is never blocked there"
                )
            if machine.state == "blocked" and not spots:
                raise StateError(
                    f"{at}.state: a machine of {name!r} is never blocked: its parts leave the line"
                )
            _check_there(at, machine.product, spots, f"on a machine of {name!r}")
    if topology.heads == [0]:  # (branches make parts of their own, beyond the line's CONWIP limit)
        check_conwip(line, state, source)


def _buffer_counts(
    line: Line, topology: Topology, i: int, state: StationState, where: str
) -> list[tuple[int, str, int]]:
    """(slot, field, parts) of each of a station's buffers that the state counts.

    The buffer of a saturated head that nothing comes back to is raw material, as the first
    buffer of a saturated chain: its count is not used."""
    if topology.assembly[i]:
        inputs = [topology.names[source] for source in topology.inputs[i]]
        counts = []
        for upstream, count in (state.buffers or {}).items():
            if upstream not in inputs:
                raise StateError(
                    f"{where}.buffers.{upstream}: not an input of {topology.names[i]!r}"
                    f" (inputs: {', '.join(inputs)})"
                )
            counts.append((inputs.index(upstream), f"{where}.buffers.{upstream}", count))
        return counts
    if not state.buffer or raw_material(line, topology, i):
        return []
    return [(0, f"{where}.buffer", state.buffer)]


def raw_material(line: Line, topology: Topology, i: int) -> bool:
    """Whether the buffer of station `i` is raw material: a saturated head's that no route comes back to."""
    release = line.release if i == 0 else line.stations[i].release
    fed = bool(topology.inputs[i]) or any(i in route[1:] for route in topology.routes.values())
    return release == "saturated" and not fed


def _check_there(where: str, product: str | None, spots: Spots, there: str) -> None:
    if product is not None and product not in spots:
        shown = ", ".join(spots) or "none"
        raise StateError(f"{where}.product: no part of {product!r} is ever {there} (products there: {shown})")


def network_plan(line: Line, state: LineState, seed: int) -> StartPlan:
    """Draw what a network line starts from (the state must have passed `check_state`)."""
    places = Places(line)
    starts = [
        _station_start(places, i, state.stations.get(station.name) or StationState(), seed)
        for i, station in enumerate(line.stations)
    ]
    network = NetworkStart(*(list(column) for column in zip(*(start[1:] for start in starts), strict=True)))
    return StartPlan([start[0] for start in starts], [[] for _ in starts], network)


def _lazy_stream(seed: int, owner: str, index: int, variant: str) -> Callable[[], Any]:
    """The stream (`initial`) of one place, made when first drawn from."""
    made: list[Any] = []

    def rng() -> Any:
        if not made:
            made.append(stream(seed, owner, "initial", index, variant))
        return made[0]

    return rng


def _station_start(places: Places, i: int, state: StationState, seed: int) -> tuple[Any, ...]:
    """One station's machine starts, held parts, buffers, rework queue and transport."""
    line = places.line
    mix = line.product_mix
    station = line.stations[i]
    name = station.name
    given = state.machines

    def one(owner_index: int, variant: str) -> Callable[[list[str]], str]:
        rng = _lazy_stream(seed, name, owner_index, variant)
        return lambda candidates: draw_products(mix, candidates, 1, rng)[0]

    def machine_state(m: int) -> str:
        return given[m].state if given else "starved"

    def product_of(m: int) -> str:
        return one(m, "product")(list(places.machine_spots(i, machine_state(m))))

    starts = machine_starts(station, given, seed, product_of)
    held: list[PlacedPart | None] = []
    for m, start in enumerate(starts):
        if start.product is None:
            held.append(None)
            continue
        spot = places.machine_spots(i, machine_state(m))[start.product]
        held.append(places.placed(start.product, spot, True, one(m, "components")))

    buffers: list[list[PlacedPart]] = [[] for _ in places.buffer[i]]
    for slot, _, waiting in _buffer_counts(line, places.topology, i, state, name):
        spots = places.buffer[i][slot]
        chosen = draw_products(mix, list(spots), waiting, _lazy_stream(seed, name, slot, "buffer"))
        draw = one(slot, "buffer-components")
        buffers[slot] = [places.placed(product, spots[product], False, draw) for product in chosen]

    returns: list[PlacedPart] = []
    if state.returns:
        spots = places.returns[i]
        chosen = draw_products(mix, list(spots), state.returns, _lazy_stream(seed, name, 0, "returns"))
        draw = one(0, "returns-components")
        for product in chosen:
            back_from = places.sent_back_from[(product, i)]
            returns.append(places.placed(product, spots[product], False, draw, back_from=back_from))

    travelling: list[tuple[float, PlacedPart]] = []
    if state.transport:
        assert station.transport is not None
        spots = places.transport[i]
        unnamed = sum(entry.product is None for entry in state.transport)
        drawn = draw_products(mix, list(spots), unnamed, _lazy_stream(seed, name, 0, "transport"))[::-1]
        travel = _lazy_stream(seed, name, 0, "travel")
        draw = one(0, "transport-components")
        for entry in state.transport:
            product = entry.product or drawn.pop()
            if entry.remaining_s is not None:
                remaining = entry.remaining_s
            else:  # travelled `elapsed_s` already: the rest of a travel time that has lasted that long
                remaining = station.transport.time.residual(travel(), entry.elapsed_s)  # type: ignore[arg-type]
            travelling.append((remaining, places.placed(product, spots[product], False, draw)))
    return starts, held, buffers, returns, travelling

"""The SimPy engine's line as a network: product routes, rework loops, assembly from branches, transport.

A chain line never comes here (`twin.engine.LineModel` builds it as before, to the bit). A line
with any key of docs/networks.md is built by `build_network` on the same `LineModel`
bookkeeping (WIP, exits, lead times, per-product counts) and the same `Machine` accounts, with
these parts of a real line:

- every station has one buffer per input (an assembly) or one; a saturated head makes raw
  parts itself, and takes a part sent back to it (rework, a route) first;
- a machine's finished part goes to the next station of its product's route (or down the flow
  graph), back to the rework station with the rework probability, or out of the line;
- an assembly machine starts only when every input buffer has a part for it, and takes them
  together: the first input's part carries the others as components;
- a transport into a station has `capacity` places: the sender waits for a free place (blocked),
  the part travels, then waits on the transport until the buffer takes it.

An observer may also define `part_routed(machine, part, came_from, to, reworked, now)`: each
machine calls it for every part it finished, just before `part_finished`, with the station the
part came from (its index; None for a part made or released at this station's branch), where it
goes (a station's index, EXIT when it leaves the line, None when scrapped) and whether it goes
back for rework. The simulated PLCs publish these on each part event.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy
from simpy.resources.store import StorePut

from twin.buffer import HandOver
from twin.line import InterarrivalRelease, Line
from twin.release import ReleaseControl, arrivals
from twin.station import BLOCKED, DOWN, SETUP, STARVED, STOPPED, WORKING, Machine
from twin.streams import RELEASE_OWNER, stream
from twin.topology import EXIT, Topology

if TYPE_CHECKING:
    from twin.engine import LineModel
    from twin.network_state import NetworkStart, PlacedPart
    from twin.state import MachineStart, StartPlan

# a network part: [product, release time, position in its route (-1: no route), components,
# the station that passed it in (None: made or released into the line and not yet passed on)]
PRODUCT, RELEASED, POSITION, COMPONENTS, CAME_FROM = range(5)


class WatchedStore(simpy.Store):
    """A buffer in front of an assembly: it wakes the assembly's machines whenever a part comes."""

    def __init__(self, env: simpy.Environment, capacity: float) -> None:
        super().__init__(env, capacity=capacity)
        self.waiters: list[simpy.Event] = []

    def _do_put(self, event: StorePut) -> bool | None:
        result = super()._do_put(event)
        wake(self)
        return result


class WatchedHandOver(HandOver):
    """A hand-over in front of an assembly: a part is there while its sender waits to pass it."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env)
        self.waiters: list[simpy.Event] = []

    def _do_put(self, event: StorePut) -> bool:
        result = super()._do_put(event)
        wake(self)
        return result


def has_part(buffer: simpy.Store) -> bool:
    """Whether a part waits in `buffer` now (in a hand-over: whether a sender waits to pass one)."""
    if isinstance(buffer, HandOver):
        return any(not put.triggered for put in buffer.put_queue)
    return bool(buffer.items)


def wake(buffer: WatchedStore | WatchedHandOver) -> None:
    waiters, buffer.waiters = buffer.waiters, []
    for waiter in waiters:
        if not waiter.triggered:
            waiter.succeed()


def make_input(env: simpy.Environment, capacity: int | None, watched: bool) -> simpy.Store:
    """One buffer in front of a station (`watched`: in front of an assembly)."""
    if not watched:
        if capacity == 0:
            return HandOver(env)
        return simpy.Store(env, capacity=float("inf") if capacity is None else capacity)
    if capacity == 0:
        return WatchedHandOver(env)
    return WatchedStore(env, float("inf") if capacity is None else capacity)


class Transport:
    """The move into a station: `capacity` places, each part travelling a drawn time."""

    def __init__(self, env: simpy.Environment, capacity: int, travel: Callable[[], float]) -> None:
        self.env = env
        self.places = simpy.Resource(env, capacity=capacity)
        self.travel = travel
        self.on_the_way: list[list[Any]] = []  # parts travelling or waiting for the buffer
        self.due: list[float] = []  # when each of them arrives (arrived: in the past)
        # told +1 or -1 just before a part comes onto the transport or leaves it (the simulated PLCs
        # count the parts on it); None: nobody watches
        self.watch: Callable[[int], None] | None = None

    def carry(
        self, part: list[Any], place: simpy.Event, into: simpy.Store
    ) -> Generator[simpy.Event, Any, None]:
        if self.watch is not None:
            self.watch(+1)
        travel = self.travel()
        self._board(part, travel)
        yield from self._deliver(part, place, into, travel)

    def carry_from_start(self, part: list[Any], remaining: float, into: simpy.Store) -> None:
        """A part on the transport at the start of a run from a state, `remaining` from arriving."""
        place = self.places.request()  # granted at once: the state holds no more than the places
        self._board(part, remaining)
        self.env.process(self._deliver(part, place, into, remaining))

    def _board(self, part: list[Any], travel: float) -> None:
        self.on_the_way.append(part)
        self.due.append(self.env._now + travel)

    def _deliver(
        self, part: list[Any], place: simpy.Event, into: simpy.Store, travel: float
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(travel)
        yield into.put(part)
        if self.watch is not None:
            self.watch(-1)
        # this part, not another with the same contents
        k = next(k for k, other in enumerate(self.on_the_way) if other is part)
        del self.on_the_way[k]
        del self.due[k]
        self.places.release(place)  # type: ignore[arg-type]


class ProductDraw:
    """The product of each new part: fixed, or drawn by the mix from a stream of its own."""

    def __init__(self, mix: dict[str, float], products: list[str], rng: Any) -> None:
        total = sum(mix[name] for name in products)
        self.names = products
        self.shares = [mix[name] / total for name in products]
        self.rng = rng
        self.draws: list[str] = []

    def __call__(self) -> str:
        if len(self.names) == 1:
            return self.names[0]
        if not self.draws:
            picks = self.rng.choice(len(self.names), size=256, p=self.shares)
            self.draws = [self.names[i] for i in picks][::-1]
        return self.draws.pop()


class Network:
    """A network line built on a `LineModel`: its buffers, transports, releases and routing.

    `start` (a run from a state, `twin.state.start_plan`): the parts of the state are put where
    the plan placed them at time 0, before the releases start, and each machine resumes what it
    was doing (`Machine.resume`).
    """

    def __init__(self, model: LineModel, start: StartPlan | None = None) -> None:
        line: Line = model.line
        env = model.env
        seed = model.seed
        self.model = model
        self.line = line
        self.topology = topology = Topology(line)
        stations = line.stations
        self.routes = topology.routes
        mix = line.product_mix

        # -- buffers: one per input of an assembly, one otherwise --------------------------------
        # a part sent back for rework goes straight (no transport) into a queue of its own at `to`,
        # served first and never full, so that rework cannot deadlock the line (a rework cart)
        self.returns: list[WatchedStore | None] = [
            WatchedStore(env, float("inf")) if i in topology.rework_to else None for i in range(len(stations))
        ]
        self.inputs: list[list[simpy.Store]] = []
        for i, station in enumerate(stations):
            watched = topology.assembly[i] or self.returns[i] is not None
            self.inputs.append(
                [make_input(env, station.buffer, watched) for _ in range(topology.buffers_of(i))]
            )
        self.transports: list[Transport | None] = [
            Transport(
                env,
                station.transport.capacity,
                station.transport.time.sampler(stream(seed, station.name, "transport")),
            )
            if station.transport is not None
            else None
            for station in stations
        ]
        held = self._place(start.network) if start is not None and start.network is not None else None

        # -- who makes what: the line's release at the first station, each branch head's own ------
        self.saturated_heads: dict[int, ProductDraw] = {}
        line_draw = ProductDraw(mix, topology.line_products, stream(seed, RELEASE_OWNER, "product"))
        if line.release == "saturated":
            self.saturated_heads[0] = line_draw
        else:
            self._release(0, line.release, line_draw, RELEASE_OWNER)
        for head in topology.heads:
            if head == 0:
                continue
            station = stations[head]
            pinned = topology.pinned.get(head)
            draw = ProductDraw(
                mix, [pinned] if pinned else topology.line_products, stream(seed, station.name, "product")
            )
            if station.release == "saturated":
                self.saturated_heads[head] = draw
            else:
                self._release(head, station.release, draw, station.name)

        # -- the machines' processes -----------------------------------------------------------
        for i, machines in enumerate(model.machines):
            station = stations[i]
            for m, machine in enumerate(machines):
                rework = (
                    stream(seed, station.name, "rework", m).random if station.rework is not None else None
                )
                first = start.machines[i][m] if start is not None else None
                part = held[i][m] if held is not None else None
                machine.part = part  # in the line from the start (`Machine.resume` takes it up)
                machine.process = env.process(self.run(machine, i, rework, first, part))
                if machine.calendar_failures:
                    down = first is not None and first.state == DOWN
                    env.process(machine.calendar_breakdowns(first.remaining if down else None))  # type: ignore[union-attr]

    def _place(self, start: NetworkStart) -> list[list[list[Any] | None]]:
        """Put the parts of a run from a state into the buffers, rework queues and transports;
        the parts on the machines, per station and machine (None: it holds none)."""
        model = self.model

        def part_of(placed: PlacedPart) -> list[Any]:
            components = [[product, 0.0, -1, None, None] for product in placed.components]
            part = [placed.product, 0.0, placed.position, components or None, placed.came_from]
            model.part_in_line_at_start(part)
            return part

        held = [[None if placed is None else part_of(placed) for placed in parts] for parts in start.held]
        for i, buffers in enumerate(start.inputs):
            for buffer, parts in zip(self.inputs[i], buffers, strict=True):
                buffer.items.extend(part_of(placed) for placed in parts)
        for returns, parts in zip(self.returns, start.returns, strict=True):
            if parts:
                returns.items.extend(part_of(placed) for placed in parts)  # type: ignore[union-attr]
        for i, parts in enumerate(start.transports):
            for remaining, placed in parts:
                self.transports[i].carry_from_start(part_of(placed), remaining, self.inputs[i][0])  # type: ignore[union-attr]
        return held

    # -- releases ------------------------------------------------------------------------------
    def _release(self, head: int, release: Any, draw: ProductDraw, owner: str) -> None:
        model = self.model
        env = model.env
        backlogs: dict[int, simpy.Store] = {}
        on_release = getattr(model.observer, "part_released", None) if head == 0 else None

        def release_one() -> None:
            product = draw()
            part = [product, env._now, 0 if product in self.routes else -1, None, None]
            if on_release is not None:
                on_release(env._now)
            target = self.routes[product][0] if product in self.routes else head
            buffer = self.inputs[target][0]
            if self.line.stations[target].buffer is None:
                model.part_entered(part)
                buffer.put(part)
                return
            if target not in backlogs:
                backlogs[target] = simpy.Store(env)
                env.process(load_from_backlog(backlogs[target], buffer))
            backlogs[target].put(part)

        def load_from_backlog(backlog: simpy.Store, buffer: simpy.Store) -> Generator[simpy.Event, Any, None]:
            while True:
                part = yield backlog.get()
                yield buffer.put(part)
                part[RELEASED] = env._now
                model.part_entered(part)

        if isinstance(release, InterarrivalRelease):
            sampler = release.interarrival.sampler(stream(model.seed, owner, "arrival"))
            # the line's release takes the setpoints; a branch's own release runs as drawn
            control = model.release_control if head == 0 else ReleaseControl(env, None)
            env.process(arrivals(env, sampler, control, release_one))
        else:  # the line's CONWIP release: a new part whenever one leaves
            model.conwip = True
            model.conwip_limit = release.conwip
            model.release = _ConwipRelease(release_one)  # type: ignore[assignment]
            model._fill_to_limit()

    # -- where a finished part goes --------------------------------------------------------------
    def destination(self, station: int, part: list[Any], reworked: bool) -> int:
        """The next station of `part`, finished at `station` (EXIT: it leaves the line)."""
        topology = self.topology
        route = self.routes.get(part[PRODUCT])
        if reworked:
            to = topology.rework_to[station]
            assert to is not None
            if route is not None:
                position = part[POSITION]
                while route[position] != to:  # the last visit of `to` on the way here
                    position -= 1
                part[POSITION] = position
            return to
        if route is None:
            return topology.downstream[station]
        position = part[POSITION] + 1
        if position == len(route):
            return EXIT
        part[POSITION] = position
        return route[position]

    def parts_in_line(self) -> list[list[Any]]:
        """Every part in the line now (buffers, machines, transports), for the conservation check."""
        parts: list[list[Any]] = []
        for buffers in self.inputs:
            for buffer in buffers:
                parts.extend(buffer.items)
        for returns in self.returns:
            if returns is not None:
                parts.extend(returns.items)
        for transport in self.transports:
            if transport is not None:
                parts.extend(transport.on_the_way)
        for machines in self.model.machines:
            for machine in machines:
                if machine.part is not None:
                    parts.append(machine.part)
        return parts

    def places_of(self, station: int) -> dict[str, Any]:
        """The parts waiting at `station` now, as a state file gives them (`twin.state.StationState`):
        `buffer`, or an assembly's `buffers` by input; `returns` where parts are sent back to it;
        `transport` where it has one, each part with its time still to travel (0: arrived), in the
        order they arrive (the order arrived parts wait for the buffer in)."""
        topology = self.topology
        buffers = self.inputs[station]
        places: dict[str, Any] = {}
        if topology.assembly[station]:
            names = (topology.names[source] for source in topology.inputs[station])
            places["buffers"] = {name: len(buffer.items) for name, buffer in zip(names, buffers, strict=True)}
        else:
            places["buffer"] = len(buffers[0].items)
        returns = self.returns[station]
        if returns is not None:
            places["returns"] = len(returns.items)
        transport = self.transports[station]
        if transport is not None:
            now = self.model.env._now
            order = sorted(range(len(transport.due)), key=transport.due.__getitem__)
            places["transport"] = [
                {"remaining_s": max(0.0, transport.due[k] - now), "product": transport.on_the_way[k][PRODUCT]}
                for k in order
            ]
        return places

    # -- a machine's process ----------------------------------------------------------------------
    def run(
        self,
        machine: Machine,
        station: int,
        rework: Callable[[], float] | None,
        start: MachineStart | None = None,
        held: list[Any] | None = None,
    ) -> Generator[simpy.Event, Any, None]:
        """Take (or join), set up, process and pass on parts for ever, as `Machine.run` does in a chain.

        `start` (a run from a state): what the machine is doing at the start, with the part it
        holds (`held`); it finishes that first (a blocked machine's part goes on), then goes on.
        """
        env = machine.env
        model = self.model
        topology = self.topology
        inputs = self.inputs[station]
        assembly = topology.assembly[station]
        head_draw = self.saturated_heads.get(station)
        returns = self.returns[station]
        rework_probability = self.line.stations[station].rework.probability if rework is not None else 0.0  # type: ignore[union-attr]
        cycle, setup, scrap = machine.cycle, machine.setup, machine.scrap
        operating_failures = machine.ttf is not None and not machine.calendar_failures
        calendar_failures = machine.calendar_failures
        ttf, ttr = machine.ttf, machine.ttr
        ttf_left = machine.first_failure_clock(start)
        resume = machine.resumed_start(start, held)
        timeout = env.timeout
        set_state = machine.set_state if calendar_failures else machine._enter
        observer = machine.observer
        routed = getattr(observer, "part_routed", None)
        crew = machine.crew
        serviced, starve = yield from machine.begin_plant(start, resume)

        while True:
            finished = False
            if resume is None:
                if machine.stop_requested:
                    set_state(STOPPED)
                    machine.resumed = env.event()
                    yield machine.resumed
                if (
                    serviced
                    and machine.service_parts is not None
                    and machine.parts_since_service >= machine.service_parts
                ):
                    yield from machine.serve(set_state)
                since = env._now
                # -- take a part (or one from each input of an assembly) --
                if assembly:
                    while True:
                        missing = [buffer for buffer in inputs if not has_part(buffer)]
                        if not missing:
                            break
                        waiter = env.event()
                        missing[0].waiters.append(waiter)  # type: ignore[attr-defined]
                        if starve is None:
                            set_state(STARVED)
                            yield waiter
                        else:
                            yield from starve(waiter, since)
                    taken = [buffer.get() for buffer in inputs]
                    part = taken[0].value
                    carried = part[COMPONENTS] or []
                    for other in taken[1:]:
                        component = other.value
                        carried.append(component)
                        carried.extend(component[COMPONENTS] or ())
                        component[COMPONENTS] = None
                    part[COMPONENTS] = carried
                    model.parts_joined(len(taken) - 1)
                elif returns is None and head_draw is None:
                    request = inputs[0].get()
                    if not request.triggered:
                        if starve is None:
                            set_state(STARVED)
                            yield request
                        else:
                            yield from starve(request, since)
                    part = request.value
                else:  # parts sent back first, then the buffer, then (a saturated head) raw material
                    while True:
                        if returns is not None and returns.items:
                            part = returns.get().value
                            break
                        if has_part(inputs[0]):
                            part = inputs[0].get().value
                            break
                        if head_draw is not None:
                            product = head_draw()
                            part = [product, env._now, 0 if product in self.routes else -1, None, None]
                            model.part_entered(part)
                            break
                        waiter = env.event()
                        inputs[0].waiters.append(waiter)  # type: ignore[attr-defined]
                        returns.waiters.append(waiter)  # type: ignore[union-attr]
                        if starve is None:
                            set_state(STARVED)
                            yield waiter
                        else:
                            yield from starve(waiter, since)
                machine.part = part
                if starve is not None and machine.is_off:
                    yield from machine.restart_after_off(set_state)
                product = part[PRODUCT]
                if setup is not None and product != machine.last_product and machine.last_product is not None:
                    set_state(SETUP)
                    if calendar_failures:
                        yield from machine._occupy(setup())
                    else:
                        yield timeout(setup())
                machine.last_product = product
                set_state(WORKING)
                duration = cycle[product]()
            else:  # the first part of a run from a state: finish what the machine was doing
                first, resume = resume, None
                part = held  # type: ignore[assignment]
                left = yield from machine.resume(first, part)
                if first.state == DOWN and operating_failures:
                    ttf_left = ttf()  # type: ignore[misc]
                finished = left is None
                duration = 0.0 if left is None else left
            if not finished:
                # -- process it --
                if serviced:
                    yield from machine.work_serviced(duration, set_state)
                elif operating_failures:
                    remaining = duration
                    while remaining > ttf_left:
                        if ttf_left > 0:
                            yield timeout(ttf_left)
                        remaining -= ttf_left
                        if crew is None:
                            set_state(DOWN)
                            machine.failures += 1
                            yield timeout(ttr())  # type: ignore[misc]
                        else:
                            machine.failures += 1
                            yield from machine.repair(set_state)
                        set_state(WORKING)
                        ttf_left = ttf()  # type: ignore[misc]
                    ttf_left -= remaining
                    yield timeout(remaining)
                elif calendar_failures:
                    yield from machine._occupy(duration)
                else:
                    yield timeout(duration)
                machine.processed += 1
                if serviced:
                    machine.parts_since_service += 1
                machine.last_cycle_time = duration
                if scrap is not None and scrap() < machine.scrap_probability:
                    machine.scrapped += 1
                    machine.part = None
                    model.part_scrapped(machine, part)
                    if routed is not None:
                        routed(machine, part, part[CAME_FROM], None, False, env._now)
                    if observer is not None:
                        observer.part_finished(machine, part, duration, True, env._now)
                    continue
                # -- where it goes: on, back for rework, or out --
                reworked = rework is not None and rework() < rework_probability
                target = self.destination(station, part, reworked)
                if routed is not None:
                    routed(machine, part, part[CAME_FROM], target, reworked, env._now)
                if observer is not None:
                    observer.part_finished(machine, part, duration, False, env._now)
            else:  # a blocked machine's part: finished, it goes on (it is not reworked)
                reworked = False
                target = self.destination(station, part, False)
            # -- pass it on --
            if target == EXIT:
                machine.part = None
                model.part_exited(part)
            else:
                part[CAME_FROM] = station
                back = self.returns[target] if reworked else None
                into = back if back is not None else self.inputs[target][topology.input_slot(target, station)]
                transport = self.transports[target] if back is None else None  # the rework cart: no transport
                if transport is not None:
                    place = transport.places.request()
                    if not place.triggered:
                        set_state(BLOCKED)
                        yield place
                    machine.part = None
                    env.process(transport.carry(part, place, into))
                else:
                    delivery = into.put(part)
                    if not delivery.triggered:
                        set_state(BLOCKED)
                        yield delivery
                    machine.part = None
            machine.parts_out += 1


class _ConwipRelease:
    """What `LineModel` calls when a part leaves a CONWIP line: release the next one."""

    def __init__(self, release_one: Callable[[], None]) -> None:
        self.release = release_one

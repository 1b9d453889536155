"""The compiled event engine: the SimPy engine's line, run by a compiled event list, with its KPIs.

For every line the line files describe (`twin.event_kernel` names what it runs: parallel
machines, saturated, interarrival and CONWIP release, operation- and calendar-time failures,
repair crews, maintenance, switch-off, set-ups, products and scrap, shift calendars, and lines as
networks: routes, rework, assembly from feeder branches, branch releases, transport) the
kernel runs the SimPy engine's processes and stores event for event, fed the same random
streams (`twin.streams`, drawn ahead as arrays by `twin.flow_samples`). Every instant, and so
every KPI computed by the same `twin.kpis`, is the SimPy engine's, many times sooner.
`replicate` runs one line for many seeds. `engine: auto` takes it for the lines the flow engine
cannot run (`twin.run`); `event_obstacle` is where a line feature the kernel does not mirror
names itself, so that `auto` falls back to SimPy (none does today). See docs/PERFORMANCE.md.

    >>> line = load_line("simulations/lines/demonstrator.yaml")
    >>> simulate_event(line, seed=3).kpis["engine"]
    'event'
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin import event_kernel as kernel
from twin import kpis as kpi_module
from twin.distributions import _Dist
from twin.engine import RunResult
from twin.flow_samples import PRODUCT_BLOCK, Draws, choices, pack, product_draws, streams
from twin.line import ConwipRelease, InterarrivalRelease, Line, LineError
from twin.network_state import PlacedPart
from twin.state import LineState, check_state, start_plan
from twin.station import STATE_NAMES
from twin.streams import RELEASE_OWNER
from twin.topology import EXIT, Topology

MAX_SAMPLES = 50_000_000  # per stream: a line that needs more is stuck at zero durations
PILOT_FROM = 100_000  # parts: longer runs are sized on a pilot run of PILOT_SHARE of them
PILOT_SHARE = 0.02


def event_obstacle(line: Line) -> str | None:
    """Why the event engine cannot run `line`, as 'field: reason', or None when it can (it runs
    every line the line files describe)."""
    return None


def check_event(line: Line, source: str | None = None) -> None:
    """Raise a one-line LineError (prefixed with `source`, the line file) if `line` needs SimPy."""
    obstacle = event_obstacle(line)
    if obstacle is not None:
        prefix = f"{source}: " if source else ""
        raise LineError(f"{prefix}engine: event cannot run this line: {obstacle}")


class _Samples:
    """Every stream a run of `line` draws from, one `Draws` each, in the kernel's numbering."""

    def __init__(self, line: Line) -> None:
        self.line = line
        products = list(line.product_mix)
        self.keys: list[tuple[str, str, int, str]] = []
        self.draws: list[Draws] = []
        self.rate: list[float] = []  # samples a second, judged from the means, to draw ahead

        def add(draws: Draws, key: tuple[str, str, int, str], rate: float) -> int:
            self.keys.append(key)
            self.draws.append(draws)
            self.rate.append(rate)
            return len(self.draws) - 1

        machines = sum(station.capacity for station in line.stations)
        first = line.stations[0]
        line_rate = first.capacity / first.mean_cycle_time(line.product_mix)
        if isinstance(line.release, InterarrivalRelease):
            line_rate = min(line_rate, 1.0 / line.release.interarrival.mean)
        mix = line.product_mix
        self.topology = topology = Topology(line) if line.is_network else None
        line_draws = product_draws(line) if topology is None else _head_draws(line, topology.line_products)
        self.product = add(line_draws, (RELEASE_OWNER, "product", 0, ""), line_rate)
        self.products = [self.product]  # every stream a new part's product is drawn from
        self.arrival = -1
        if isinstance(line.release, InterarrivalRelease):
            dist = line.release.interarrival
            self.arrival = add(Draws.of(dist, None), (RELEASE_OWNER, "arrival", 0, ""), 1.0 / dist.mean)
        # a network's branch heads: each draws its products, and its arrivals, from streams of its own
        self.head_product: dict[int, int] = {0: self.product}
        self.head_arrival: dict[int, int] = {}
        for head in topology.heads if topology is not None else ():
            if head == 0:
                continue
            station = line.stations[head]
            pinned = topology.pinned.get(head)  # type: ignore[union-attr]
            names = [pinned] if pinned else topology.line_products  # type: ignore[union-attr]
            rate = station.capacity / station.mean_cycle_time(mix)
            if isinstance(station.release, InterarrivalRelease):
                dist = station.release.interarrival
                rate = min(rate, 1.0 / dist.mean)
                key = (station.name, "arrival", 0, "")
                self.head_arrival[head] = add(Draws.of(dist, None), key, 1.0 / dist.mean)
            self.head_product[head] = add(_head_draws(line, names), (station.name, "product", 0, ""), rate)
            self.products.append(self.head_product[head])
        self.cycle = np.full((machines, len(products)), -1, dtype=np.int64)
        self.setup = np.full(machines, -1, dtype=np.int64)
        self.scrap = np.full(machines, -1, dtype=np.int64)
        self.ttf = np.full(machines, -1, dtype=np.int64)
        self.ttr = np.full(machines, -1, dtype=np.int64)
        self.service = np.full(machines, -1, dtype=np.int64)
        self.restart = np.full(machines, -1, dtype=np.int64)
        self.rework = np.full(machines, -1, dtype=np.int64)
        self.transport = np.full(len(line.stations), -1, dtype=np.int64)
        m = 0
        for position, station in enumerate(line.stations):
            name = station.name
            per_machine = min(line_rate, station.capacity / station.mean_cycle_time(mix)) / station.capacity
            failures = station.failures
            for index in range(station.capacity):
                for p, product in enumerate(products):
                    if isinstance(station.cycle_time, dict) and product not in station.cycle_time:
                        continue
                    dist: _Dist = station.cycle_time_for(product)
                    self.cycle[m, p] = add(
                        Draws.of(dist, None), (name, "cycle", index, product), per_machine * mix[product]
                    )
                if station.setup is not None:
                    self.setup[m] = add(
                        Draws.of(station.setup, None), (name, "setup", index, ""), per_machine
                    )
                if station.scrap > 0:
                    scrap = Draws(lambda rng, size: rng.random(size), 1)
                    self.scrap[m] = add(scrap, (name, "scrap", index, ""), per_machine)
                if failures is not None:
                    ttf, ttr = failures.time_to_failure, failures.time_to_repair
                    rate = 1.0 / ttf.mean
                    self.ttf[m] = add(Draws.of(ttf, None), (name, "ttf", index, ""), rate)
                    self.ttr[m] = add(Draws.of(ttr, None), (name, "ttr", index, ""), rate)
                maintenance = station.maintenance
                if maintenance is not None:
                    every = maintenance.every or maintenance.parts / per_machine  # type: ignore[operator]
                    key = (name, "maintenance", index, "")
                    self.service[m] = add(Draws.of(maintenance.duration, None), key, 1.0 / every)
                if station.switch_off is not None:
                    key = (name, "restart", index, "")
                    self.restart[m] = add(Draws.of(station.switch_off.restart, None), key, per_machine)
                if station.rework is not None:
                    rework = Draws(lambda rng, size: rng.random(size), 1)
                    self.rework[m] = add(rework, (name, "rework", index, ""), per_machine)
                m += 1
            if station.transport is not None:
                key = (name, "transport", 0, "")
                rate = per_machine * station.capacity
                self.transport[position] = add(Draws.of(station.transport.time, None), key, rate)

    def reseed(self, seed: int) -> None:
        for draws, rng in zip(self.draws, streams(seed, self.keys), strict=True):
            draws.restart(rng)

    def draw_for(self, end: float) -> None:
        """Draw ahead what a run to `end` likely needs, from the means (the kernel asks for more)."""
        for draws, rate in zip(self.draws, self.rate, strict=True):
            draws.ensure(_bounded(end * rate))

    def draw_like(self, used: np.ndarray, scale: float = 1.0, margin: float = 1.1) -> None:
        """Draw ahead `margin` times `scale` times what an earlier run used of each stream, and five
        Poisson standard deviations more: rare streams (breakdowns, repairs) vary the most."""
        for draws, count in zip(self.draws, used.tolist(), strict=True):
            expected = count * scale
            draws.ensure(int(expected * margin + 5.0 * math.sqrt(expected)) + 256)


def _head_draws(line: Line, names: list[str]) -> Draws:
    """A network release's or branch head's product draws, as `twin.network.ProductDraw` makes
    them (its products' indices in the line's; none drawn for one product)."""
    products = list(line.product_mix)
    codes = np.array([products.index(name) for name in names], dtype=float)
    if len(names) == 1:
        return Draws(lambda rng, size: np.full(size, codes[0]), 1)
    mix = line.product_mix
    total = sum(mix[name] for name in names)
    shares = [mix[name] / total for name in names]
    return Draws(lambda rng, size: codes[choices(rng, shares, size)], PRODUCT_BLOCK)


def _bounded(count: float) -> int:
    return int(count * 1.2) + 256 if math.isfinite(count) else 4096


@dataclass
class _Layout:
    """The line as the kernel takes it: machines, stores, crews."""

    station_of: np.ndarray
    station_first: np.ndarray
    station_machines: np.ndarray
    inbound: np.ndarray
    outbound: np.ndarray
    has_setup: np.ndarray
    scrap_probability: np.ndarray
    failure_mode: np.ndarray
    crew_of: np.ndarray
    store_capacity: np.ndarray
    release_mode: int
    first_store: int
    backlog_store: int
    conwip_limit: int
    crews: np.ndarray
    crew_bottleneck: np.ndarray
    service_every: np.ndarray
    service_parts: np.ndarray
    switch_off_after: np.ndarray
    net: _Network

    @classmethod
    def of(cls, line: Line, samples: _Samples) -> _Layout:
        stations = line.stations
        capacities = [station.capacity for station in stations]
        station_of = np.repeat(np.arange(len(stations)), capacities).astype(np.int64)
        first = np.concatenate([[0], np.cumsum(capacities)[:-1]]).astype(np.int64)
        saturated = line.release == "saturated"
        store_capacity: list[int] = []
        inbound = np.full(len(stations), -1, dtype=np.int64)
        outbound = np.full(len(stations), -1, dtype=np.int64)
        backlog = -1
        if samples.topology is not None:
            net = _Network.of(line, samples.topology, samples, store_capacity)
            inbound[:] = net.input_store[:, 0]
        else:
            net = _Network.chain(len(capacities), len(line.product_mix))
            for index, station in enumerate(stations):
                if index == 0 and saturated:
                    continue
                inbound[index] = len(store_capacity)
                store_capacity.append(-1 if station.buffer is None else station.buffer)
            outbound[:-1] = inbound[1:]
            if not saturated and stations[0].buffer is not None:
                backlog = len(store_capacity)
                store_capacity.append(-1)
        release_mode = kernel.SATURATED
        conwip = 0
        if isinstance(line.release, InterarrivalRelease):
            release_mode = kernel.INTERARRIVAL
        elif isinstance(line.release, ConwipRelease):
            release_mode = kernel.CONWIP
            conwip = line.release.conwip
        crews: list[int] = []
        skills: dict[str | None, int] = {}
        repair = line.repair
        if repair is not None:
            for skill, technicians in (repair.skills or {None: repair.technicians}).items():
                skills[skill] = len(crews)
                crews.append(technicians)
        crew_of = np.array(
            [
                skills.get(station.failures.skill, -1) if station.failures is not None else -1
                for station in stations
            ],
            dtype=np.int64,
        )
        modes = {None: kernel.NO_FAILURES, "operating": kernel.OPERATING, "calendar": kernel.CALENDAR}
        return cls(
            station_of=station_of,
            station_first=first,
            station_machines=np.array(capacities, dtype=np.int64),
            inbound=inbound,
            outbound=outbound,
            has_setup=np.array([station.setup is not None for station in stations]),
            scrap_probability=np.array([station.scrap for station in stations], dtype=float),
            failure_mode=np.array(
                [modes[station.failures.basis if station.failures else None] for station in stations],
                dtype=np.int64,
            ),
            crew_of=crew_of,
            store_capacity=np.array(store_capacity, dtype=np.int64),
            release_mode=release_mode,
            first_store=int(inbound[0]),
            backlog_store=backlog,
            conwip_limit=conwip,
            crews=np.array(crews, dtype=np.int64),
            crew_bottleneck=np.array(
                [repair is not None and repair.priority == "bottleneck"] * len(crews), dtype=np.bool_
            ),
            service_every=np.array(
                [(s.maintenance.every or 0.0) if s.maintenance else 0.0 for s in stations], dtype=float
            ),
            service_parts=np.array(
                [(s.maintenance.parts or 0) if s.maintenance else 0 for s in stations], dtype=np.int64
            ),
            switch_off_after=np.array(
                [s.switch_off.after if s.switch_off else -1.0 for s in stations], dtype=float
            ),
            net=net,
        )


def _capacity(buffer: int | None) -> int:
    return -1 if buffer is None else buffer


@dataclass
class _Network:
    """A network line (`twin.network.Network`) as the kernel takes it; empty arrays for a chain."""

    networked: bool
    store_watched: np.ndarray
    net_ints: np.ndarray
    input_store: np.ndarray
    slot_of: np.ndarray
    rework_probability: np.ndarray
    rework_sid: np.ndarray
    route: np.ndarray
    route_len: np.ndarray
    transports: np.ndarray
    releases: np.ndarray
    backlog_of: np.ndarray
    loaders: np.ndarray

    @classmethod
    def chain(cls, stations: int, products: int) -> _Network:
        ints = np.zeros((0, 4), dtype=np.int64)
        return cls(
            networked=False,
            store_watched=np.zeros(0, dtype=np.bool_),
            net_ints=np.zeros((stations, 9), dtype=np.int64),
            input_store=np.zeros((stations, 1), dtype=np.int64),
            slot_of=np.zeros((stations, stations), dtype=np.int64),
            rework_probability=np.zeros(stations),
            rework_sid=np.zeros(0, dtype=np.int64),
            route=np.zeros((products, 1), dtype=np.int64),
            route_len=np.zeros(products, dtype=np.int64),
            transports=np.zeros((0, 5), dtype=np.int64),
            releases=ints,
            backlog_of=np.zeros((0, stations), dtype=np.int64),
            loaders=ints,
        )

    @classmethod
    def of(cls, line: Line, topology: Topology, samples: _Samples, capacity: list[int]) -> _Network:
        """The network's arrays; its stores are appended to `capacity` (the stores' places)."""
        stations = line.stations
        count = len(stations)
        watched: list[bool] = []

        def store(places: int, watch: bool) -> int:
            capacity.append(places)
            watched.append(watch)
            return len(capacity) - 1

        inputs = max(topology.buffers_of(i) for i in range(count))
        input_store = np.full((count, inputs), -1, dtype=np.int64)
        net_ints = np.full((count, 9), -1, dtype=np.int64)
        targets = {to for to in topology.rework_to if to is not None}
        saturated_heads = {0: samples.product} if line.release == "saturated" else {}
        for head in topology.heads:
            if head != 0 and stations[head].release == "saturated":
                saturated_heads[head] = samples.head_product[head]
        for i, station in enumerate(stations):
            watch = topology.assembly[i] or i in targets
            for slot in range(topology.buffers_of(i)):
                input_store[i, slot] = store(_capacity(station.buffer), watch)
        transports: list[list[int]] = []
        for i, station in enumerate(stations):
            row = net_ints[i]
            row[kernel._N_ASSEMBLY] = topology.assembly[i]
            row[kernel._N_INPUTS] = topology.buffers_of(i)
            row[kernel._N_RETURNS] = store(-1, True) if i in targets else -1
            row[kernel._N_HEAD_SID] = saturated_heads.get(i, -1)
            row[kernel._N_NET] = topology.assembly[i] or i in targets or i in saturated_heads
            row[kernel._N_DOWN] = topology.downstream[i] if topology.downstream[i] != EXIT else -1
            row[kernel._N_REWORK_TO] = -1 if topology.rework_to[i] is None else topology.rework_to[i]
            row[kernel._N_BUFFER] = _capacity(station.buffer)
            if station.transport is not None:
                row[kernel._N_TRANSPORT] = len(transports)
                transports.append([station.transport.capacity, int(samples.transport[i]), 0, 0, 0])
        slot_of = np.zeros((count, count), dtype=np.int64)
        for target in range(count):
            for source in range(count):
                if topology.assembly[target] and any(
                    source in topology.upstream[s] for s in topology.inputs[target]
                ):
                    slot_of[target, source] = topology.input_slot(target, source)
        products = list(line.product_mix)
        longest = max([len(route) for route in topology.routes.values()] + [1])
        route = np.zeros((len(products), longest), dtype=np.int64)
        route_len = np.zeros(len(products), dtype=np.int64)
        for name, stops in topology.routes.items():
            p = products.index(name)
            route[p, : len(stops)] = stops
            route_len[p] = len(stops)
        # the releases: the line's (first), then each branch head's own interarrival release
        modes = {InterarrivalRelease: kernel.INTERARRIVAL, ConwipRelease: kernel.CONWIP}
        releases = [[modes.get(type(line.release), kernel.SATURATED), 0, samples.product, samples.arrival]]
        made = [topology.line_products]
        for head in topology.heads:
            if head != 0 and isinstance(stations[head].release, InterarrivalRelease):
                releases.append(
                    [kernel.INTERARRIVAL, head, samples.head_product[head], samples.head_arrival[head]]
                )
                pinned = topology.pinned.get(head)
                made.append([pinned] if pinned else topology.line_products)
        # a backlog (and its loader) per release and station its parts enter through a finite buffer
        backlog_of = np.full((len(releases), count), -1, dtype=np.int64)
        loaders: list[list[int]] = []
        for r, (release, names) in enumerate(zip(releases, made, strict=True)):
            if release[0] == kernel.SATURATED:
                continue
            for name in names:
                target = topology.routes[name][0] if name in topology.routes else release[1]
                if stations[target].buffer is not None and backlog_of[r, target] < 0:
                    backlog_of[r, target] = len(loaders)
                    loaders.append([store(-1, False), int(input_store[target, 0]), 0, -1])
        return cls(
            networked=True,
            store_watched=np.array(watched, dtype=np.bool_),
            net_ints=net_ints,
            input_store=input_store,
            slot_of=slot_of,
            rework_probability=np.array(
                [station.rework.probability if station.rework else 0.0 for station in stations]
            ),
            rework_sid=samples.rework,
            route=route,
            route_len=route_len,
            transports=np.array(transports, dtype=np.int64).reshape(-1, 5),
            releases=np.array(releases, dtype=np.int64),
            backlog_of=backlog_of,
            loaders=np.array(loaders, dtype=np.int64).reshape(-1, 4),
        )


@dataclass(frozen=True)
class _Start:
    """What the kernel starts from: per machine its state (NO_START: an empty line), its part's
    product, residual time, failure clock and age; the parts in the buffers, station by station."""

    ints: np.ndarray
    floats: np.ndarray
    buffer_station: np.ndarray
    buffer_product: np.ndarray
    # a network's: each of those parts' place (0: buffer, 1: rework queue, 2: transport), input
    # and position in its route, its time still to travel on a transport; the held parts' positions
    placed: np.ndarray
    placed_remaining: np.ndarray
    held_position: np.ndarray

    @property
    def parts(self) -> int:
        return int((self.ints[:, 1] >= 0).sum()) + len(self.buffer_station)

    @classmethod
    def of(cls, line: Line, state: LineState | None, seed: int) -> _Start:
        machines = sum(station.capacity for station in line.stations)
        ints = np.full((machines, 2), -1, dtype=np.int64)
        floats = np.full((machines, 3), np.nan)
        held_position = np.full(machines, -1, dtype=np.int64)
        if state is None:
            empty = np.zeros(0, dtype=np.int64)
            return cls(
                ints, floats, empty, empty, np.zeros((0, 3), dtype=np.int64), np.zeros(0), held_position
            )
        plan = start_plan(line, state, seed)
        products = {name: index for index, name in enumerate(line.product_mix)}
        network = plan.network
        stations: list[int] = []
        buffered: list[int] = []
        m = 0
        for index, starts in enumerate(plan.machines):
            for start in starts:
                ints[m, 0] = start.state
                ints[m, 1] = -1 if start.product is None else products[start.product]
                floats[m, 0] = start.remaining
                floats[m, 1] = np.nan if start.ttf_left is None else start.ttf_left
                floats[m, 2] = np.nan if start.age is None else start.age
                m += 1
            if network is None:
                for name in plan.buffers[index]:
                    stations.append(index)
                    buffered.append(products[name])
        placed: list[tuple[int, int, int]] = []
        remaining: list[float] = []
        if network is not None:
            m = 0
            for held in network.held:
                for part in held:
                    held_position[m] = -1 if part is None else part.position
                    m += 1

            def place(station: int, part: PlacedPart, where: int, slot: int, left: float = 0.0) -> None:
                stations.append(station)
                buffered.append(products[part.product])
                placed.append((where, slot, part.position))
                remaining.append(left)

            for index, buffers in enumerate(network.inputs):
                for slot, parts in enumerate(buffers):
                    for part in parts:
                        place(index, part, 0, slot)
            for index, parts in enumerate(network.returns):
                for part in parts:
                    place(index, part, 1, 0)
            for index, carried in enumerate(network.transports):
                for left, part in carried:
                    place(index, part, 2, 0, left)
        return cls(
            ints,
            floats,
            np.array(stations, dtype=np.int64),
            np.array(buffered, dtype=np.int64),
            np.array(placed, dtype=np.int64).reshape(-1, 3),
            np.array(remaining, dtype=float),
            held_position,
        )


class _Run:
    """One run of the kernel, given more samples and room until it runs to its end."""

    def __init__(
        self, line: Line, layout: _Layout, samples: _Samples, warmup: float, end: float, start: _Start
    ) -> None:
        self.line = line
        self.end = end
        net = layout.net
        machines = len(layout.station_of)
        finite = [c for c in layout.store_capacity.tolist() if c > 0]
        items_room = max([1024, *finite])
        event_room = 8 * (2 * machines + 2) + 64
        change_room = 0
        while True:
            values, starts, counts = pack(samples.draws)
            parts = int(counts[samples.products].sum()) + start.parts
            if change_room == 0:
                per_machine = np.zeros(machines, dtype=np.int64)
                for sids in (samples.cycle, samples.ttf[:, None]):
                    per_machine += np.where(sids >= 0, counts[np.maximum(sids, 0)], 0).sum(axis=1)
                change_room = 2 * int(per_machine.max()) + 16
            self.time_in = np.zeros((machines, kernel.N_STATES))
            self.counts = np.zeros((machines, 5), dtype=np.int64)
            # written in order up to their counts and read only up to them: left unset (zeroing
            # the changes, tens of MB for a long run, took 5 % of a run of ten stations)
            self.changes = np.empty((machines, change_room))
            self.n_changes = np.zeros(machines, dtype=np.int64)
            self.entries = np.empty(parts)
            self.leaves = np.empty(parts)
            self.exit_times = np.empty(parts)
            self.lead_times = np.empty(parts)
            self.totals = np.zeros(6, dtype=np.int64)
            self.line_floats = np.zeros(2)
            self.used = np.zeros(len(counts), dtype=np.int64)
            need = np.zeros(1, dtype=np.int64)
            status = kernel.run_line(
                layout.station_of,
                layout.station_first,
                layout.station_machines,
                layout.inbound,
                layout.outbound,
                layout.has_setup,
                layout.scrap_probability,
                layout.failure_mode,
                layout.crew_of,
                layout.store_capacity,
                layout.release_mode,
                layout.first_store,
                layout.backlog_store,
                layout.conwip_limit,
                layout.crews.copy(),
                layout.crew_bottleneck,
                layout.service_every,
                layout.service_parts,
                layout.switch_off_after,
                values,
                starts,
                counts,
                samples.cycle,
                samples.setup,
                samples.scrap,
                samples.ttf,
                samples.ttr,
                samples.service,
                samples.restart,
                start.ints,
                start.floats,
                start.buffer_station,
                start.buffer_product,
                start.placed,
                start.placed_remaining,
                start.held_position,
                samples.arrival,
                samples.product,
                warmup,
                end,
                self.time_in,
                self.counts,
                self.changes,
                self.n_changes,
                self.entries,
                self.leaves,
                self.exit_times,
                self.lead_times,
                self.totals,
                self.line_floats,
                self.used,
                need,
                items_room,
                event_room,
                net.networked,
                net.store_watched,
                net.net_ints,
                net.input_store,
                net.slot_of,
                net.rework_probability,
                net.rework_sid,
                net.route,
                net.route_len,
                net.transports.copy(),
                net.releases,
                net.backlog_of,
                net.loaders.copy(),
            )
            if status == kernel.OK:
                break
            if status == kernel.MORE_CHANGES:
                change_room *= 2
            elif status == kernel.MORE_EVENTS:
                event_room *= 2
            elif status == kernel.MORE_ITEMS:
                items_room *= 2
            else:
                draws = samples.draws[int(need[0])]
                more = max(2 * draws.count, draws.count + 1024)
                if more > MAX_SAMPLES:
                    raise LineError(
                        f"{line.name}: the run would need over {MAX_SAMPLES:,} samples of one stream "
                        "(durations of zero?)"
                    )
                draws.ensure(more)
                # every stream drawn ahead for the whole run at the pace it was used so far: the
                # means misjudge some streams of a network (a branch's pace, rework), and a run
                # that stopped for each of them in turn would be run again as many times
                # (at most a hundred times what a run that stopped early used)
                reached = float(self.line_floats[1])
                if reached > 0.0:
                    samples.draw_like(self.used, scale=min(end / reached, 100.0))
        totals = self.totals
        self.entries = self.entries[: totals[kernel.ENTRIES]]
        self.leaves = self.leaves[: totals[kernel.LEAVES]]
        self.exit_times = self.exit_times[: totals[kernel.EXITS]]
        self.lead_times = self.lead_times[: totals[kernel.EXITS]]

    def result(self, layout: _Layout, seed: int, horizon: float, warmup: float, started: float) -> RunResult:
        """The run's record (made by `twin.kpis` as for the SimPy engine) and its times."""
        line = self.line
        machines = [
            [
                _MachineAccount(
                    self.time_in[m], self.counts[m], self.changes[m, : self.n_changes[m]].reshape(-1, 2)
                )
                for m in range(first, first + count)
            ]
            for first, count in zip(
                layout.station_first.tolist(), layout.station_machines.tolist(), strict=True
            )
        ]
        accounts = _LineAccounts(
            line=line,
            machines=machines,
            exits=int(self.totals[kernel.EXITS]),
            scrapped=int(self.totals[kernel.SCRAPS]),
            wip_area=float(self.line_floats[0]),
            lead_times=self.lead_times,
        )
        record = kpi_module.line_kpis(accounts, horizon=horizon, warmup=warmup)
        record.update(
            horizon_s=float(horizon),
            warmup_s=float(warmup),
            seed=seed,
            engine="event",
            engine_fallback=None,
            events=int(self.totals[kernel.EVENTS]),
        )
        record["wall_s"] = time.perf_counter() - started
        return RunResult(
            kpis=record,
            lead_times=self.lead_times,
            exit_times=self.exit_times,
            active_periods={
                station.name: [machine.periods for machine in station_machines]
                for station, station_machines in zip(line.stations, machines, strict=True)
            },
        )


class _MachineAccount:
    """A machine's `twin.kpis.MachineAccounts`, from the kernel's accounts."""

    def __init__(self, time_in: np.ndarray, counts: np.ndarray, periods: np.ndarray) -> None:
        self.time_in = time_in.tolist()
        assert len(self.time_in) == len(STATE_NAMES)
        self.processed = int(counts[kernel.PROCESSED])
        self.parts_out = int(counts[kernel.PARTS_OUT])
        self.scrapped = int(counts[kernel.SCRAPPED])
        self.failures = int(counts[kernel.FAILURES])
        self.services = int(counts[kernel.SERVICES])
        self.periods = periods

    def active_periods(self, start: float) -> np.ndarray:
        return self.periods


@dataclass
class _LineAccounts:
    """The run's `twin.kpis.LineAccounts`, from the kernel's accounts."""

    line: Line
    machines: list[list[_MachineAccount]]
    exits: int
    scrapped: int
    wip_area: float
    lead_times: np.ndarray


def simulate_event(
    line: Line,
    *,
    seed: int | None = None,
    horizon: float | None = None,
    warmup: float | None = None,
    state: LineState | None = None,
) -> RunResult:
    """Run `line` once with the event engine; arguments given here override the line's own.

    `state`: start from it (`twin.state`, checked here) instead of from an empty line; time 0 is
    its instant. With a shift calendar the run goes in planned time and is put back on the
    calendar (`twin.on_calendar`), as in the SimPy engine.
    """
    return next(
        runs(line, [line.seed if seed is None else seed], horizon=horizon, warmup=warmup, state=state)
    )


def replicate(
    line: Line,
    seeds: Iterable[int],
    *,
    horizon: float | None = None,
    warmup: float | None = None,
) -> list[dict[str, Any]]:
    """Run `line` once per seed with the event engine: one flat KPI record per seed."""
    return [result.kpis for result in runs(line, seeds, horizon=horizon, warmup=warmup)]


def runs(
    line: Line,
    seeds: Iterable[int],
    *,
    horizon: float | None = None,
    warmup: float | None = None,
    state: LineState | None = None,
) -> Iterator[RunResult]:
    """`replicate`, giving each run's whole result; each run draws ahead what the runs before it used."""
    from twin.flow import _on_calendar, _planned, _run_arguments

    check_event(line)
    if state is not None:
        check_state(line, state)
    _, horizon, warmup = _run_arguments(line, None, horizon, warmup)
    plan = _planned(line, horizon, warmup, state)
    if plan is not None:
        horizon, warmup = plan.horizon, plan.warmup
    end = warmup + (horizon - warmup)
    samples = _Samples(line)
    layout = _Layout.of(line, samples)
    used: np.ndarray | None = None
    for seed in seeds:
        started = time.perf_counter()
        samples.reseed(seed)
        start = _Start.of(line, state, seed)
        if used is None:
            estimate = _bounded(end * samples.rate[samples.product])
            if estimate > PILOT_FROM:  # size a long run on a pilot run of a few percent of it
                pilot = end * PILOT_SHARE
                samples.draw_for(pilot)
                pilot_used = _Run(line, layout, samples, 0.0, pilot, start).used
                # a tenth more: the pilot starts from an empty line, so it undercounts the streams
                # of working machines (failures on operating time); with 5 % more, 4 of 24 runs
                # of 2,000 h of the demonstrator ran short near their end and were run again
                samples.draw_like(pilot_used, scale=end / pilot, margin=1.1)
            else:
                samples.draw_for(end)
        else:
            samples.draw_like(used)
        run = _Run(line, layout, samples, warmup, end, start)
        used = run.used if used is None else np.maximum(used, run.used)
        result = run.result(layout, seed, horizon, warmup, started)
        yield _on_calendar(run, result, plan)  # type: ignore[arg-type]

"""The event engine against the SimPy engine and minimal hand-written SimPy models, in one run.

Three lines the flow engine cannot run (parallel machines; calendar-time failures; CONWIP; a
network), parts 1, 2 and 5:

1. The demonstrator (simulations/lines/demonstrator.yaml): products A and B (0.7/0.3),
   set-ups on a change of product, scrap, operating-time failures on mill, lathe, assembly
   and test, calendar-time failures on wash, two parallel machines at assembly, saturated.
2. Ten stations with 1, 2, 3, 1, 2, 3, ... parallel machines (mean cycle 60 s times the
   machines, exponential and lognormal), buffers of 3, operating-time failures on every
   third station, CONWIP release of 30 parts.

For each, one long run (`--hours`) with the minimal SimPy model (Store buffers, one process
per machine, numpy draws in blocks, nothing counted but the parts out), fabbrica's SimPy
engine and the event engine, taken in turn; wall times and medians over the repeats.
Goal: the event engine at least 30 times faster than the minimal model. The throughputs of
the minimal model and the SimPy engine should agree within a few percent: the evidence that
the minimal model is the same line.

3. The one-off load cost: in a fresh interpreter, `import twin.event`, numba's start-up (the
   first call of any compiled function sets up numba's compiler target, whatever the function;
   timed on a small one, `twin.flow_samples.streams`) and the first run of a small line, against
   a warm run (numba loads the engine's cached compiled code on its first call); the same for
   the flow engine.
4. 1,000 replications of a simulated week of the demonstrator with `twin.event.replicate`,
   one chunk of seeds per worker process (spawned), wall time including the workers' start-up
   (part 1 has run the engine once, so the compiled code is cached on disk).
   Goal: under 20 s. For comparison: the SimPy engine's median time per replication, times 1,000.
5. The assembly line (simulations/lines/assembly.yaml, docs/networks.md), a network: two feeder
   branches saturated at mill (products A and B, 0.7/0.3, routes A and B: B skips the wash) and
   at press (covers), the assembly station's 2 machines each joining one base and one cover from
   its two input buffers, rework of 5 % from test back to screw into a queue served first, a
   transport of 2 places (lognormal travel times) into pack; the demonstrator's failures
   (operating and calendar), set-ups on a change of product and scrap. Its minimal SimPy model
   takes the assembly's parts once both buffers have one, the rework queue before the screw's
   buffer, and holds a simpy.Resource place from the test until pack's buffer takes the part.
   Taken after part 4.

    .venv/bin/python benchmarks/bench_event.py [--hours 2000] [--repeats 3] [--replications 1000]
        [--workers 2] [--start-method spawn] [--load-repeats 3] [--lines demonstrator,ten,assembly]

`--lines` chooses the long runs (parts 1, 2 and 5; all three by default); `--load-repeats 0` and
`--replications 0` leave parts 3 and 4 out. For one line only, e.g.:

    .venv/bin/python benchmarks/bench_event.py --lines assembly --load-repeats 0 --replications 0

The parts with the event engine are left out, saying so, while twin/event.py does not exist; on a
line it cannot run (`twin.event.event_obstacle` gives a reason), its column is left out with the
reason.
Other work on the machine slows every figure; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simpy
from bench_flow import Clock, load
from simpy.resources.store import StorePut

from twin.engine import simulate
from twin.line import Line, line_from_dict, load_line

ROOT = Path(__file__).resolve().parent.parent
DEMONSTRATOR = ROOT / "simulations" / "lines" / "demonstrator.yaml"
WEEK = 7 * 86400.0
WEEK_WARMUP = 3600.0  # the demonstrator's own warm-up
BLOCK = 256

Dist = Callable[[np.random.Generator, int], np.ndarray]  # draws `size` samples from a generator
Draw = Callable[[], float]


# -- the distributions, written out in numpy (twin/distributions.py gives the same parameters) --------
def constant(value: float) -> Dist:
    return lambda rng, size: np.full(size, value)


def exponential(mean: float) -> Dist:
    return lambda rng, size: rng.exponential(mean, size)


def lognormal(mean: float, cv: float) -> Dist:
    """Given by its mean and coefficient of variation."""
    sigma2 = math.log1p(cv * cv)
    mu, sigma = math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
    return lambda rng, size: rng.lognormal(mu, sigma, size)


def gamma(mean: float, cv: float) -> Dist:
    shape = 1.0 / (cv * cv)
    return lambda rng, size: rng.gamma(shape, mean / shape, size)


def normal(mean: float, sd: float) -> Dist:
    """Truncated at zero: negative draws are drawn again."""

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        values = rng.normal(mean, sd, size)
        while (negative := values < 0).any():
            values[negative] = rng.normal(mean, sd, int(negative.sum()))
        return values

    return draw


def uniform(low: float, high: float) -> Dist:
    return lambda rng, size: rng.uniform(low, high, size)


def triangular(low: float, mode: float, high: float) -> Dist:
    return lambda rng, size: rng.triangular(low, mode, high, size)


def sampler(dist: Dist, rng: np.random.Generator) -> Draw:
    """One sample at a time, from blocks drawn ahead."""

    def samples() -> Iterator[float]:
        while True:
            yield from dist(rng, BLOCK).tolist()

    return samples().__next__


# -- the minimal SimPy model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Station:
    """A station of a minimal model: `capacity` machines fed from a buffer of `buffer` places."""

    name: str
    cycle: tuple[Dist, ...]  # one per product
    capacity: int = 1
    buffer: int | None = None  # None: the first station of a saturated line (no buffer)
    setup: Dist | None = None  # on a change of product
    scrap: float = 0.0
    ttf: Dist | None = None
    ttr: Dist | None = None
    calendar: bool = False  # failures on calendar time (else on operating time)


class Breakdowns:
    """Calendar-time failures of a machine: it breaks down whatever it does; its work waits for the repair."""

    def __init__(self, env: simpy.Environment, ttf: Draw, ttr: Draw) -> None:
        self.env = env
        self.ttf = ttf
        self.ttr = ttr
        self.down = False
        self.repaired = env.event()
        self.occupied = False
        self.machine: simpy.Process | None = None

    def run(self) -> Generator[simpy.Event, Any, None]:
        timeout = self.env.timeout
        while True:
            yield timeout(self.ttf())
            self.down, self.repaired = True, self.env.event()
            if self.occupied:
                self.machine.interrupt()  # type: ignore[union-attr]
            yield timeout(self.ttr())
            self.down = False
            self.repaired.succeed()

    def occupy(self, duration: float) -> Generator[simpy.Event, Any, None]:
        """Spend `duration` of machine time, paused by the breakdowns."""
        env = self.env
        while duration > 0:
            if self.down:
                yield self.repaired
            start = env.now
            self.occupied = True
            try:
                yield env.timeout(duration)
                duration = 0.0
            except simpy.Interrupt:
                duration -= env.now - start
            finally:
                self.occupied = False


def minimal_model(
    stations: list[Station], mix: tuple[float, ...], conwip: int | None, horizon: float, seed: int
) -> int:
    """Good parts out of the line by `horizon`: saturated release, or CONWIP with that many parts."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    product = sampler(lambda rng, size: rng.choice(len(mix), size, p=mix), rng)
    buffers = [
        None
        if index == 0 and conwip is None
        else simpy.Store(env, capacity=math.inf if station.buffer is None else station.buffer)
        for index, station in enumerate(stations)
    ]
    first = buffers[0]
    out = [0]

    def part_left() -> None:
        if first is not None:  # CONWIP: a new part for the one that left (it waits while the buffer is full)
            first.put(product())

    def machine(index: int, breakdowns: Breakdowns | None) -> Generator[simpy.Event, Any, None]:
        station = stations[index]
        inbound = buffers[index]
        outbound = buffers[index + 1] if index + 1 < len(stations) else None
        timeout = env.timeout
        cycle = [sampler(dist, rng) for dist in station.cycle]
        setup = sampler(station.setup, rng) if station.setup is not None else None
        scrap = rng.random if station.scrap > 0 else None
        operating = station.ttf is not None and not station.calendar
        ttf = sampler(station.ttf, rng) if operating else None  # type: ignore[arg-type]
        ttr = sampler(station.ttr, rng) if operating else None  # type: ignore[arg-type]
        ttf_left = ttf() if ttf is not None else 0.0
        last = -1
        while True:
            part = product() if inbound is None else (yield inbound.get())
            if setup is not None and last >= 0 and part != last:
                if breakdowns is not None:
                    yield from breakdowns.occupy(setup())
                else:
                    yield timeout(setup())
            last = part
            remaining = cycle[part]()
            if ttf is not None:  # the failure clock runs while the machine processes
                while remaining > ttf_left:
                    if ttf_left > 0:
                        yield timeout(ttf_left)
                    remaining -= ttf_left
                    yield timeout(ttr())  # type: ignore[misc]
                    ttf_left = ttf()
                ttf_left -= remaining
                yield timeout(remaining)
            elif breakdowns is not None:
                yield from breakdowns.occupy(remaining)
            else:
                yield timeout(remaining)
            if scrap is not None and scrap() < station.scrap:
                part_left()
            elif outbound is None:
                out[0] += 1
                part_left()
            else:
                yield outbound.put(part)

    if first is not None:
        for _ in range(conwip or 0):
            first.put(product())
    for index, station in enumerate(stations):
        for _ in range(station.capacity):
            breakdowns = None
            if station.calendar:
                breakdowns = Breakdowns(env, sampler(station.ttf, rng), sampler(station.ttr, rng))  # type: ignore[arg-type]
                env.process(breakdowns.run())
            process = env.process(machine(index, breakdowns))
            if breakdowns is not None:
                breakdowns.machine = process
    env.run(until=horizon)
    return out[0]


# -- the two lines -------------------------------------------------------------------------------------
# the demonstrator as simulations/lines/demonstrator.yaml gives it (products A, B)
DEMONSTRATOR_MIX = (0.7, 0.3)
DEMONSTRATOR_STATIONS = [
    Station(
        "mill",
        (lognormal(55, 0.2), lognormal(70, 0.2)),
        setup=constant(40),
        scrap=0.01,
        ttf=exponential(360),
        ttr=exponential(30),
    ),
    Station(
        "lathe",
        (gamma(50, 0.3),) * 2,
        buffer=4,
        setup=triangular(10, 20, 45),
        scrap=0.005,
        ttf=exponential(480),
        ttr=exponential(40),
    ),
    Station(
        "wash",
        (constant(40),) * 2,
        buffer=2,
        ttf=exponential(600),
        ttr=lognormal(30, 0.5),
        calendar=True,
    ),
    Station(
        "assembly",
        (normal(100, 15), normal(120, 20)),
        capacity=2,
        buffer=6,
        scrap=0.01,
        ttf=exponential(600),
        ttr=exponential(60),
    ),
    Station("test", (uniform(35, 50),) * 2, buffer=3, scrap=0.02, ttf=exponential(300), ttr=exponential(20)),
]

# the ten-station CONWIP line: (machines, cycle-time distribution, failures) per station
TEN = [(1 + index % 3, ("exponential", "lognormal")[index % 2], index % 3 == 0) for index in range(10)]
MEAN_CYCLE = 60.0  # per machine: a station of n machines takes n times as long, so they balance
CV = 0.5
MTBF, MTTR = 3600.0, 180.0
BUFFER = 3
CONWIP = 30


def ten_line(horizon: float) -> Line:
    stations = []
    for index, (machines, dist, fails) in enumerate(TEN):
        mean = MEAN_CYCLE * machines
        cycle: dict[str, Any] = {"dist": dist, "mean": mean}
        if dist == "lognormal":
            cycle["cv"] = CV
        station: dict[str, Any] = {"name": f"s{index}", "cycle_time": cycle, "capacity": machines}
        station["buffer"] = BUFFER
        if fails:
            station["failures"] = {"mtbf": MTBF, "mttr": MTTR}
        stations.append(station)
    data = {"name": "ten", "horizon": horizon, "release": {"conwip": CONWIP}, "stations": stations}
    return line_from_dict(data, "bench_event")


def ten_cycle(machines: int, dist: str) -> tuple[Dist]:
    mean = MEAN_CYCLE * machines
    return (exponential(mean) if dist == "exponential" else lognormal(mean, CV),)


TEN_STATIONS = [
    Station(
        f"s{index}",
        ten_cycle(machines, dist),
        capacity=machines,
        buffer=BUFFER,
        ttf=exponential(MTBF) if fails else None,
        ttr=exponential(MTTR) if fails else None,
    )
    for index, (machines, dist, fails) in enumerate(TEN)
]


def differences(line: Line, stations: list[Station]) -> list[str]:
    """Where a minimal model's stations differ from the line's in what can be compared without drawing."""
    found = []
    for index, (station, mine) in enumerate(zip(line.stations, stations, strict=True)):
        basis = station.failures.basis if station.failures is not None else None
        ours = ("calendar" if mine.calendar else "operating") if mine.ttf is not None else None
        theirs = (station.name, station.capacity, station.scrap, basis, station.setup is not None)
        if theirs != (mine.name, mine.capacity, mine.scrap, ours, mine.setup is not None):
            found.append(f"stations[{index}] {theirs} against {mine}")
        if index > 0 and station.buffer != mine.buffer:
            found.append(f"stations[{index}].buffer {station.buffer} against {mine.buffer}")
    return found


# -- the assembly line, a network (simulations/lines/assembly.yaml) ------------------------------------
ASSEMBLY = ROOT / "simulations" / "lines" / "assembly.yaml"
A, B, COVER = range(3)  # the products: A and B released at the mill (0.7 : 0.3), covers at the press
ASSEMBLY_MIX = (0.7, 0.3)
ASSEMBLY_STATIONS = [  # in the file's order; one cycle time for every product at each station
    Station(
        "mill",
        (lognormal(50, 0.2),),
        setup=constant(25),
        scrap=0.01,
        ttf=exponential(360),
        ttr=exponential(30),
    ),
    Station(
        "lathe",
        (gamma(45, 0.3),),
        buffer=4,
        setup=triangular(10, 20, 45),
        scrap=0.005,
        ttf=exponential(480),
        ttr=exponential(40),
    ),
    Station(
        "wash",
        (constant(40),),
        buffer=2,
        ttf=exponential(600),
        ttr=lognormal(30, 0.5),
        calendar=True,
    ),
    Station("press", (gamma(40, 0.15),), scrap=0.01, ttf=exponential(900), ttr=exponential(60)),
    Station("deburr", (uniform(30, 45),), buffer=3),
    Station(
        "assembly",
        (normal(100, 15),),
        capacity=2,
        buffer=4,  # each of its two inputs
        scrap=0.01,
        ttf=exponential(600),
        ttr=exponential(60),
    ),
    Station("screw", (lognormal(38, 0.1),), buffer=2, ttf=exponential(1200), ttr=exponential(45)),
    Station("test", (uniform(35, 50),), buffer=3, scrap=0.02, ttf=exponential(300), ttr=exponential(20)),
    Station("pack", (normal(30, 4),), buffer=4),
]
REWORK = 0.05  # from test back to screw, into a queue of its own served first
AGVS = 2  # the transport into pack: its places
TRAVEL = lognormal(75, 0.25)
ASSEMBLY_NETWORK = {  # what the stations above do not say, as twin.line gives it
    "routes": {"A": [s.name for s in ASSEMBLY_STATIONS if s.name not in ("press", "deburr")]}
    | {"B": [s.name for s in ASSEMBLY_STATIONS if s.name not in ("press", "deburr", "wash")]},
    "assembly inputs": ["wash", "deburr"],
    "press": ("saturated", "cover"),
    "test rework": (REWORK, "screw"),
    "pack transport": (AGVS, "lognormal", 75.0, 0.25),
}

Take = Callable[[], Generator[simpy.Event, Any, int]]  # a machine's next part
Send = Callable[[int], Generator[simpy.Event, Any, None]]  # where a machine's good part goes


class Watched(simpy.Store):
    """A buffer that wakes its waiters whenever a part comes in: for a machine that waits for both of
    two buffers (the assembly) or for either of two (the screw's rework queue and buffer)."""

    def __init__(self, env: simpy.Environment, capacity: float = math.inf) -> None:
        super().__init__(env, capacity=capacity)
        self.waiters: list[simpy.Event] = []

    def _do_put(self, event: StorePut) -> bool | None:
        result = super()._do_put(event)
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.triggered:
                waiter.succeed()
        return result


def network_machine(
    env: simpy.Environment,
    rng: np.random.Generator,
    station: Station,
    take: Take,
    send: Send,
    breakdowns: Breakdowns | None,
) -> Generator[simpy.Event, Any, None]:
    """A machine of the minimal assembly line: `minimal_model`'s machine with its part taken and passed on
    by `take` and `send`."""
    timeout = env.timeout
    cycle = sampler(station.cycle[0], rng)
    setup = sampler(station.setup, rng) if station.setup is not None else None
    scrap = rng.random if station.scrap > 0 else None
    operating = station.ttf is not None and not station.calendar
    ttf = sampler(station.ttf, rng) if operating else None  # type: ignore[arg-type]
    ttr = sampler(station.ttr, rng) if operating else None  # type: ignore[arg-type]
    ttf_left = ttf() if ttf is not None else 0.0
    last = -1
    while True:
        part = yield from take()
        if setup is not None and last >= 0 and part != last:
            if breakdowns is not None:
                yield from breakdowns.occupy(setup())
            else:
                yield timeout(setup())
        last = part
        remaining = cycle()
        if ttf is not None:  # the failure clock runs while the machine processes
            while remaining > ttf_left:
                if ttf_left > 0:
                    yield timeout(ttf_left)
                remaining -= ttf_left
                yield timeout(ttr())  # type: ignore[misc]
                ttf_left = ttf()
            ttf_left -= remaining
            yield timeout(remaining)
        elif breakdowns is not None:
            yield from breakdowns.occupy(remaining)
        else:
            yield timeout(remaining)
        if scrap is None or scrap() >= station.scrap:
            yield from send(part)


def minimal_assembly(horizon: float, seed: int) -> int:
    """Good parts out of the assembly line by `horizon` (a part is its product; assembled, its base's)."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    mill, lathe, wash, press, deburr, assembly, screw, test, pack = ASSEMBLY_STATIONS
    to_lathe = simpy.Store(env, capacity=lathe.buffer)  # type: ignore[arg-type]
    to_wash = simpy.Store(env, capacity=wash.buffer)  # type: ignore[arg-type]
    to_deburr = simpy.Store(env, capacity=deburr.buffer)  # type: ignore[arg-type]
    bases = Watched(env, assembly.buffer)  # type: ignore[arg-type]
    covers = Watched(env, assembly.buffer)  # type: ignore[arg-type]
    to_screw = Watched(env, screw.buffer)  # type: ignore[arg-type]
    returns = Watched(env)  # the rework queue: never full
    to_test = simpy.Store(env, capacity=test.buffer)  # type: ignore[arg-type]
    to_pack = simpy.Store(env, capacity=pack.buffer)  # type: ignore[arg-type]
    agvs = simpy.Resource(env, capacity=AGVS)
    product = sampler(lambda rng, size: rng.choice(len(ASSEMBLY_MIX), size, p=ASSEMBLY_MIX), rng)
    rework = sampler(lambda rng, size: rng.random(size), rng)
    travel = sampler(TRAVEL, rng)
    timeout = env.timeout
    out = [0]

    def raw(draw: Callable[[], int]) -> Take:  # a saturated head: raw material always waits
        def take() -> Generator[simpy.Event, Any, int]:
            yield from ()
            return draw()

        return take

    def one(buffer: simpy.Store) -> Take:
        def take() -> Generator[simpy.Event, Any, int]:
            return (yield buffer.get())

        return take

    def pair() -> Generator[simpy.Event, Any, int]:  # the assembly: a base and a cover, once both are there
        while not (bases.items and covers.items):
            waiter = env.event()
            (covers if bases.items else bases).waiters.append(waiter)
            yield waiter
        covers.get()
        return bases.get().value

    def rework_first() -> Generator[simpy.Event, Any, int]:  # the screw: parts sent back first
        while not (returns.items or to_screw.items):
            waiter = env.event()
            returns.waiters.append(waiter)
            to_screw.waiters.append(waiter)
            yield waiter
        return (returns if returns.items else to_screw).get().value

    def into(buffer: simpy.Store) -> Send:
        def send(part: int) -> Generator[simpy.Event, Any, None]:
            yield buffer.put(part)

        return send

    def route(part: int) -> Generator[simpy.Event, Any, None]:  # from the lathe: B needs no wash
        yield (to_wash if part == A else bases).put(part)

    def rework_or_agv(part: int) -> Generator[simpy.Event, Any, None]:  # from the test
        if rework() < REWORK:
            returns.put(part)  # straight back, no transport
        else:
            place = agvs.request()
            yield place  # blocked while both AGVs are out
            env.process(carry(part, place))

    def carry(part: int, place: simpy.Event) -> Generator[simpy.Event, Any, None]:
        yield timeout(travel())
        yield to_pack.put(part)  # the part waits on its AGV until the buffer takes it
        agvs.release(place)  # type: ignore[arg-type]

    def leave(part: int) -> Generator[simpy.Event, Any, None]:
        yield from ()
        out[0] += 1

    plan: list[tuple[Station, Take, Send]] = [
        (mill, raw(product), into(to_lathe)),  # type: ignore[arg-type]
        (lathe, one(to_lathe), route),
        (wash, one(to_wash), into(bases)),
        (press, raw(lambda: COVER), into(to_deburr)),
        (deburr, one(to_deburr), into(covers)),
        (assembly, pair, into(to_screw)),
        (screw, rework_first, into(to_test)),
        (test, one(to_test), rework_or_agv),
        (pack, one(to_pack), leave),
    ]
    for station, take, send in plan:
        for _ in range(station.capacity):
            breakdowns = None
            if station.calendar:
                breakdowns = Breakdowns(env, sampler(station.ttf, rng), sampler(station.ttr, rng))  # type: ignore[arg-type]
                env.process(breakdowns.run())
            process = env.process(network_machine(env, rng, station, take, send, breakdowns))
            if breakdowns is not None:
                breakdowns.machine = process
    env.run(until=horizon)
    return out[0]


def assembly_differences(line: Line) -> list[str]:
    """Where the minimal assembly line differs from `line` in what can be compared without drawing."""
    found = differences(line, ASSEMBLY_STATIONS)
    theirs = network_of(line)
    found += [
        f"{key} {theirs[key]} against {ours}" for key, ours in ASSEMBLY_NETWORK.items() if theirs[key] != ours
    ]
    return found


def network_of(line: Line) -> dict[str, Any]:
    """The network keys of `line`, as ASSEMBLY_NETWORK gives them for the assembly line."""
    stations = {station.name: station for station in line.stations}
    press, test, transport = stations["press"], stations["test"], stations["pack"].transport
    time = transport.time if transport is not None else None
    return {
        "routes": line.routes,
        "assembly inputs": stations["assembly"].inputs,
        "press": (press.release, press.product),
        "test rework": (test.rework.probability, test.rework.to) if test.rework is not None else None,
        "pack transport": (transport.capacity, time.dist, time.mean, time.cv) if time is not None else None,  # type: ignore[union-attr]
    }


# -- the event engine, once it exists ------------------------------------------------------------------
def event_engine_present() -> bool:
    return importlib.util.find_spec("twin.event") is not None


def event_left_out(line: Line) -> str | None:
    """Why the event engine's figures on `line` are left out (None: they are not)."""
    if not event_engine_present():
        return "twin/event.py does not exist (yet)"
    from twin.event import event_obstacle

    obstacle = event_obstacle(line)
    return None if obstacle is None else f"the event engine cannot run this line (yet): {obstacle}"


def replicate_chunk(seeds: list[int]) -> tuple[list[dict[str, Any]], float]:
    """A worker's share of the replications: the records and the seconds from the worker's import of the
    engine to its last record."""
    started = time.perf_counter()
    from twin.event import replicate

    records = replicate(load_line(DEMONSTRATOR), seeds, horizon=WEEK, warmup=WEEK_WARMUP)
    return records, time.perf_counter() - started


def in_workers(
    context: multiprocessing.context.BaseContext, chunks: list[list[int]]
) -> list[tuple[list[dict[str, Any]], float]]:
    """Each chunk of seeds in a worker process of its own, started here."""
    with context.Pool(len(chunks)) as pool:  # type: ignore[attr-defined]
        return pool.map(replicate_chunk, chunks)


LOAD_PROBE = """
import json, sys, time
started = time.perf_counter()
import {module}
imported = time.perf_counter()
from twin.flow_samples import streams
streams(0, [("probe", "cycle", 0, "")])  # numba's first call: its own start-up, and a few lines' code
numba_start = time.perf_counter() - imported
from twin.line import line_from_dict
line = line_from_dict(json.loads(sys.argv[1]), "small")
calls = []
for seed in range(4):
    start = time.perf_counter()
    {module}.{function}(line, seed=seed)
    calls.append(time.perf_counter() - start)
print(json.dumps({{"import": imported - started, "numba": numba_start, "calls": calls}}))
"""

SMALL_LINE = {
    "name": "small",
    "horizon": 8 * 3600.0,
    "stations": [
        {"name": f"s{index}", "cycle_time": {"dist": "exponential", "mean": 60.0}, "buffer": 3}
        for index in range(3)
    ],
}


def load_cost(module: str, function: str) -> tuple[float, float, float, float, float]:
    """In a fresh interpreter: its whole wall time, the import, numba's start-up (the first call of a
    small compiled function, before the engine's), the engine's first call and its median warm call."""
    code = LOAD_PROBE.format(module=module, function=function)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(SMALL_LINE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    total = time.perf_counter() - started
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    calls = probe["calls"]
    return total, probe["import"], probe["numba"], calls[0], statistics.median(calls[1:])


# -- the benchmark -------------------------------------------------------------------------------------
def long_runs(
    title: str,
    line: Line,
    minimal: Callable[[float, int], int],
    hours: float,
    repeats: int,
    left_out: str | None,
) -> None:
    """Part 1, 2 or 5: the minimal model, the SimPy engine and the event engine (unless `left_out` says
    why not) in turn."""
    horizon = hours * 3600
    print(f"\n{title}: one run of {hours:g} simulated hours")
    simulate(line, horizon=3600.0, warmup=0.0)  # the first run imports what the engine needs
    simulate_event = None
    if left_out is not None:
        print(f"   event engine left out: {left_out}")
    else:
        from twin.event import simulate_event

        simulate_event(line, seed=0, horizon=3600.0, warmup=0.0)  # load the compiled code before timing
    mine, engine, fast = Clock(), Clock(), Clock()
    rates: dict[str, list[float]] = {"minimal": [], "simpy": [], "event": []}
    for repeat in range(repeats):
        parts = mine(minimal, horizon, repeat)
        rates["minimal"].append(parts / hours)
        print(f"   repeat {repeat}: minimal SimPy model {mine.last} ({parts} parts, {parts / hours:.2f}/h)")
        result = engine(simulate, line, seed=repeat, horizon=horizon, warmup=0.0)
        kpis = result.kpis
        rates["simpy"].append(kpis["throughput_per_hour"])
        print(
            f"             SimPy engine        {engine.last} "
            f"({kpis['parts_out']} parts, {kpis['throughput_per_hour']:.2f}/h)"
        )
        if simulate_event is not None:
            kpis = fast(simulate_event, line, seed=repeat, horizon=horizon, warmup=0.0).kpis
            rates["event"].append(kpis["throughput_per_hour"])
            print(
                f"             event engine        {fast.last} "
                f"({kpis['parts_out']} parts, {kpis['throughput_per_hour']:.2f}/h, engine {kpis['engine']!r})"
            )
    (m, m_cpu), (e, e_cpu) = mine.median, engine.median
    if simulate_event is None:
        print(f"   median wall: minimal {m:.3f} s, SimPy engine {e:.3f} s (no event engine, above)")
        print(f"   median cpu:  minimal {m_cpu:.3f} s, SimPy engine {e_cpu:.3f} s")
    else:
        f, f_cpu = fast.median
        print(f"   median wall: minimal {m:.3f} s, SimPy engine {e:.3f} s, event {f:.3f} s")
        print(f"   median cpu:  minimal {m_cpu:.3f} s, SimPy engine {e_cpu:.3f} s, event {f_cpu:.3f} s")
        print(
            f"   event is {m / f:.0f}x (wall) / {m_cpu / f_cpu:.0f}x (cpu) faster than the minimal model "
            f"(goal >= 30x), {e / f:.0f}x / {e_cpu / f_cpu:.0f}x faster than the SimPy engine"
        )
    means = {name: statistics.mean(values) for name, values in rates.items() if values}
    gap = means["minimal"] / means["simpy"] - 1
    verdict = "agree" if abs(gap) <= 0.03 else "DO NOT agree"
    spread = statistics.stdev(rates["simpy"]) if repeats > 1 else math.nan
    event = f"event {means['event']:.3f}/h" if "event" in means else "no event engine"
    print(
        f"   mean throughput: minimal {means['minimal']:.3f}/h, SimPy engine {means['simpy']:.3f}/h "
        f"(sd over repeats {spread:.3f}), {event}; "
        f"minimal/SimPy {gap:+.2%}: they {verdict} within 3 %"
    )


LINES = ("demonstrator", "ten", "assembly")  # the long runs of parts 1, 2 and 5


def line_names(text: str) -> list[str]:
    """--lines: names from LINES, comma-separated."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in LINES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give some of {','.join(LINES)}, comma-separated")
    return names


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--hours", type=float, default=2000.0, help="simulated hours of the long runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--lines",
        type=line_names,
        default=list(LINES),
        help=f"the long runs to take, comma-separated (default {','.join(LINES)})",
    )
    parser.add_argument("--replications", type=int, default=1000, help="simulated weeks of part 4 (0: none)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the replications")
    parser.add_argument("--start-method", choices=("spawn", "forkserver", "fork"), default="spawn")
    parser.add_argument(
        "--load-repeats", type=int, default=3, help="fresh interpreters per engine in part 3 (0: none)"
    )
    args = parser.parse_args()
    print(f"load average (1, 5, 15 min) before: {load()} on {os.cpu_count()} cores")
    event = event_engine_present()
    if not event:
        print("twin/event.py does not exist (yet): the event engine's figures are left out")

    demonstrator = load_line(DEMONSTRATOR)
    for problem in differences(demonstrator, DEMONSTRATOR_STATIONS):
        print(f"the minimal demonstrator differs from {DEMONSTRATOR.name}: {problem}")

    def minimal_demonstrator(horizon: float, seed: int) -> int:
        return minimal_model(DEMONSTRATOR_STATIONS, DEMONSTRATOR_MIX, None, horizon, seed)

    def minimal_ten(horizon: float, seed: int) -> int:
        return minimal_model(TEN_STATIONS, (1.0,), CONWIP, horizon, seed)

    if "demonstrator" in args.lines:
        title = "1. the demonstrator"
        long_runs(
            title, demonstrator, minimal_demonstrator, args.hours, args.repeats, event_left_out(demonstrator)
        )
    if "ten" in args.lines:
        ten = ten_line(args.hours * 3600)
        title = "2. ten stations of 1, 2, 3 machines, CONWIP 30"
        long_runs(title, ten, minimal_ten, args.hours, args.repeats, event_left_out(ten))
    if args.load_repeats > 0:
        load_costs(args.load_repeats, event)
    if args.replications > 0:
        replications(demonstrator, args, event)
    if "assembly" in args.lines:
        assembly = load_line(ASSEMBLY)
        for problem in assembly_differences(assembly):
            print(f"the minimal assembly line differs from {ASSEMBLY.name}: {problem}")
        title = "5. the assembly line, a network (simulations/lines/assembly.yaml)"
        long_runs(title, assembly, minimal_assembly, args.hours, args.repeats, event_left_out(assembly))
    print(f"\nload average after: {load()}")


def load_costs(repeats: int, event: bool) -> None:
    """Part 3: the one-off load cost of the compiled engines."""
    print(f"\n3. one-off load cost: a 3-station line of 8 h in {repeats} fresh interpreters each")
    engines = [("twin.flow", "simulate_flow")]
    if event:
        engines.insert(0, ("twin.event", "simulate_event"))
    for module, function in engines:
        probes = [load_cost(module, function) for _ in range(repeats)]
        columns = (statistics.median(column) for column in zip(*probes, strict=True))
        total, imported, numba_start, first, warm = columns
        print(
            f"   {module}: interpreter {total:.2f} s wall in all, import {imported:.2f} s, "
            f"numba's start-up {numba_start:.2f} s, first {function} {first:.3f} s, "
            f"a warm one {warm * 1000:.1f} ms: one-off load cost {numba_start + first - warm:.2f} s "
            f"(numba's start-up, then the engine's compiled code {first - warm:.2f} s)"
        )


def replications(demonstrator: Line, args: argparse.Namespace, event: bool) -> None:
    """Part 4: a simulated week of the demonstrator, many times, on the event engine and the SimPy engine."""
    print(f"\n4. {args.replications} replications of one simulated week of the demonstrator")
    if event:
        context = multiprocessing.get_context(args.start_method)
        runs = Clock()
        for repeat in range(args.repeats):
            seeds = list(range(repeat * args.replications, (repeat + 1) * args.replications))
            chunks = [seeds[worker :: args.workers] for worker in range(args.workers)]
            shares = runs(in_workers, context, chunks)
            records = [record for chunk, _ in shares for record in chunk]
            throughput = statistics.mean(record["throughput_per_hour"] for record in records)
            inside = max(seconds for _, seconds in shares)
            print(
                f"   repeat {repeat}: event engine on {args.workers} {args.start_method} workers "
                f"{runs.wall[-1]:8.3f} s wall "
                f"(the slowest worker {inside:.2f} s from its import of twin.event; "
                f"{len(records)} records, mean throughput {throughput:.2f}/h)"
            )
        print(f"   median: {runs.median[0]:.2f} s wall including the workers' start-up (goal < 20 s)")
    else:
        print("   event engine: twin/event.py missing")
    single = Clock()
    throughputs = []
    for seed in range(3):
        result = single(simulate, demonstrator, seed=seed, horizon=WEEK, warmup=WEEK_WARMUP)
        throughputs.append(result.kpis["throughput_per_hour"])
    one, one_cpu = single.median
    print(
        f"   SimPy engine: {one:.3f} s wall, {one_cpu:.3f} s cpu a run (median of 3, "
        f"mean throughput {statistics.mean(throughputs):.2f}/h), "
        f"so {one * args.replications:.0f} s wall for {args.replications} in one process"
    )


if __name__ == "__main__":
    main()

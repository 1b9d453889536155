"""The SimPy engine: runs a validated `Line` and returns its KPIs as a flat record.

The engine builds one process per machine, one buffer per station and the release,
runs the warm-up, restarts every statistic, runs to the horizon and hands the
machines' accounts to `twin.kpis`. Observers (the simulated PLCs, a recorder in the
tests) are passed in and are told each state change and each finished part.

    >>> result = simulate(load_line("simulations/lines/demonstrator.yaml"), seed=3)
    >>> result.kpis["throughput_per_hour"]
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import simpy

from twin import kpis as kpi_module
from twin.buffer import make_buffer
from twin.line import InterarrivalRelease, Line
from twin.network import Network
from twin.release import Release, ReleaseControl
from twin.repair import Crew
from twin.state import FORMAT as STATE_FORMAT
from twin.state import LineState, MachineState, StartPlan, StationState, check_state, start_plan
from twin.station import (
    BLOCKED,
    DOWN,
    MAINTENANCE,
    OFF,
    SETUP,
    STARVED,
    STATE_NAMES,
    STOPPED,
    WAITING_REPAIR,
    WORKING,
    Machine,
    Part,
)
from twin.streams import RELEASE_OWNER, stream


class Observer(Protocol):
    """What the engine tells an observer while it runs."""

    def machine_state(self, machine: Machine, state: int, now: float) -> None: ...

    def part_finished(
        self, machine: Machine, part: Part, cycle_time: float, scrapped: bool, now: float
    ) -> None: ...

    # optional: `part_released(now)` is called for every order released into the line
    # (interarrival or conwip release), as a line-entry counter would count it
    # optional, lines as networks only: `part_routed(machine, part, came_from, to, reworked, now)`
    # is called just before `part_finished` with where the part came from and where it goes
    # (twin.network; a chain's parts come from the station before and go to the one after)


@dataclass
class RunResult:
    """One run's KPIs (the CLI's JSON record) and the per-part lead times behind them.

    The per-part times are lists, or float arrays from the compiled event engine (a list of
    every part's time took 2 % of its run); the active periods, (start, end) pairs or an
    (n, 2) array. Read them as sequences.
    """

    kpis: dict[str, Any]
    lead_times: Sequence[float] = field(repr=False)
    exit_times: Sequence[float] = field(repr=False)
    active_periods: dict[str, list[Sequence[tuple[float, float]]]] = field(repr=False)


class LineModel:
    """A line built in a SimPy environment: machines, buffers, release and line-level counters."""

    def __init__(
        self,
        line: Line,
        seed: int,
        env: simpy.Environment | None = None,
        observer: Observer | None = None,
        start: StartPlan | None = None,
    ) -> None:
        self.line = line
        self.seed = seed
        self.env = env if env is not None else simpy.Environment()
        self.observer = observer
        self.wip = 0
        self.wip_area = 0.0
        self.wip_since = 0.0
        self.exits = 0
        self.scrapped = 0
        self.lead_times: list[float] = []
        self.exit_times: list[float] = []
        self.conwip = False

        mix = line.product_mix
        self.products = list(mix)
        if len(self.products) > 1:
            shares = list(mix.values())
            product_rng = stream(seed, RELEASE_OWNER, "product")
            names = self.products
            self._product_draws = iter(())

            def next_product() -> str:
                try:
                    return next(self._product_draws)
                except StopIteration:
                    picks = product_rng.choice(len(names), size=256, p=shares)
                    self._product_draws = iter([names[i] for i in picks])
                    return next(self._product_draws)

            self.next_product = next_product
        else:
            only = self.products[0]
            self.next_product = lambda: only

        # per product since the start (not reset by the warm-up): released, out, scrapped
        self.product_counts: dict[str, list[int]] = {name: [0, 0, 0] for name in line.product_mix}
        # the repair crew (twin.repair), one per skill when the crew has skills
        base_mean = line.release.interarrival.mean if isinstance(line.release, InterarrivalRelease) else None
        self.release_control = ReleaseControl(self.env, base_mean)  # the release's setpoints
        self.crews: dict[str | None, Crew] = {}
        if line.repair is not None:
            repair = line.repair
            for skill, technicians in (repair.skills or {None: repair.technicians}).items():
                self.crews[skill] = Crew(self.env, technicians, repair.priority)
        self.network: Network | None = None
        self.machines: list[list[Machine]] = []
        self.buffers: list[simpy.Store | None] = []
        if line.is_network:  # routes, rework, assembly, branches, transport: twin.network
            self.machines = [
                [self._machine(index, m) for m in range(station.capacity)]
                for index, station in enumerate(line.stations)
            ]
            self.release = None
            self.network = Network(self, start)
            return
        for index, station in enumerate(line.stations):
            self.buffers.append(
                None if index == 0 and line.release == "saturated" else make_buffer(self.env, station.buffer)
            )
            self.machines.append([self._machine(index, m) for m in range(station.capacity)])

        # a run from a state (twin.state): its parts are in the line from the start
        held: list[list[Part | None]] = [[None] * station.capacity for station in line.stations]
        if start is not None:
            for index, starts in enumerate(start.machines):
                for m, machine_start in enumerate(starts):
                    if machine_start.product is not None:
                        part = [machine_start.product, 0.0]
                        self.part_entered(part)
                        held[index][m] = part
                buffer = self.buffers[index]
                for product in start.buffers[index]:
                    part = [product, 0.0]
                    self.part_entered(part)
                    buffer.items.append(part)  # type: ignore[union-attr]

        saturated = line.release == "saturated"
        self.release: Release | None = None
        if not saturated:
            first = line.stations[0]
            self.release = Release(self, self.buffers[0], finite=first.buffer is not None)  # type: ignore[arg-type]
            if hasattr(line.release, "interarrival"):
                sampler = line.release.interarrival.sampler(stream(seed, RELEASE_OWNER, "arrival"))  # type: ignore[union-attr]
                self.env.process(self.release.arrivals(sampler))
            else:
                self.conwip = True
                self.conwip_limit = line.release.conwip  # type: ignore[union-attr]
                self._fill_to_limit()

        last = len(line.stations) - 1
        for index, machines in enumerate(self.machines):
            inbound = self.buffers[index]
            outbound = None if index == last else self.buffers[index + 1]
            for m, machine in enumerate(machines):
                machine_start = start.machines[index][m] if start is not None else None
                machine.process = self.env.process(
                    machine.run(inbound, outbound, self._saturated_part, machine_start, held[index][m])
                )
                if machine.calendar_failures:
                    down = machine_start is not None and machine_start.state == DOWN
                    self.env.process(machine.calendar_breakdowns(machine_start.remaining if down else None))  # type: ignore[union-attr]

    def _machine(self, station_index: int, machine_index: int) -> Machine:
        station = self.line.stations[station_index]
        name, seed = station.name, self.seed
        cycle = {
            product: station.cycle_time_for(product).sampler(
                stream(seed, name, "cycle", machine_index, product)
            )
            for product in self.products
            if not isinstance(station.cycle_time, dict) or product in station.cycle_time
        }
        failures = station.failures
        maintenance = station.maintenance
        switch_off = station.switch_off
        crew = self.crews.get(failures.skill if failures is not None else None)
        return Machine(
            self,
            station_index,
            machine_index,
            cycle=cycle,
            setup=station.setup.sampler(stream(seed, name, "setup", machine_index))
            if station.setup
            else None,
            scrap=stream(seed, name, "scrap", machine_index).random if station.scrap > 0 else None,
            scrap_probability=station.scrap,
            ttf=failures.time_to_failure.sampler(stream(seed, name, "ttf", machine_index))
            if failures
            else None,
            ttr=failures.time_to_repair.sampler(stream(seed, name, "ttr", machine_index))
            if failures
            else None,
            calendar_failures=failures is not None and failures.basis == "calendar",
            crew=crew,
            service=maintenance.duration.sampler(stream(seed, name, "maintenance", machine_index))
            if maintenance
            else None,
            service_every=maintenance.every if maintenance else None,
            service_parts=maintenance.parts if maintenance else None,
            switch_off_after=switch_off.after if switch_off else None,
            restart=switch_off.restart.sampler(stream(seed, name, "restart", machine_index))
            if switch_off
            else None,
        )

    # -- line-level bookkeeping, called by machines and the release -------------------------
    def _saturated_part(self) -> Part:
        part = [self.next_product(), self.env._now]
        self.part_entered(part)
        return part

    def part_entered(self, part: Part) -> None:
        now = self.env._now
        self.wip_area += self.wip * (now - self.wip_since)
        self.wip_since = now
        self.wip += 1
        self.product_counts[part[0]][0] += 1

    def part_in_line_at_start(self, part: Part) -> None:
        """A part of a run from a state: in the line from time 0, with the components it carries
        (each counted released in its own product, as when it was joined)."""
        self.part_entered(part)
        if len(part) > 3 and part[3]:
            for component in part[3]:
                self.product_counts[component[0]][0] += 1

    def _count(self, part: Part, column: int) -> None:
        """Count `part` out (1) or scrapped (2) in its product, with the components it carries."""
        counts = self.product_counts
        counts[part[0]][column] += 1
        if len(part) > 3 and part[3]:
            for component in part[3]:
                counts[component[0]][column] += 1

    def parts_joined(self, joined: int) -> None:
        """An assembly joined `joined` + 1 parts into one: `joined` fewer parts in the line."""
        for _ in range(joined):
            self._part_left()

    def _part_left(self) -> None:
        now = self.env._now
        self.wip_area += self.wip * (now - self.wip_since)
        self.wip_since = now
        self.wip -= 1
        if self.conwip and self.wip < self.conwip_limit and not self.release_control.held:
            self.release.release()  # type: ignore[union-attr]

    # -- setpoints of the release (the virtual PLC's Release object) --------------------------------
    def set_interarrival_mean(self, mean: float) -> None:
        """Orders from now on arrive `mean` seconds apart on average (an interarrival release)."""
        self.release_control.set_interarrival_mean(mean)

    def set_conwip_limit(self, limit: int) -> None:
        """A CONWIP line's limit from now on: parts are released at once up to a higher one; a lower
        one releases nothing until the parts in the line are fewer."""
        if not self.conwip:
            raise ValueError("the line's release is not conwip")
        if limit < 1:
            raise ValueError(f"the CONWIP limit must be >= 1, got {limit!r}")
        self.conwip_limit = limit
        self._fill_to_limit()

    def hold_release(self, held: bool) -> None:
        """Hold the release (no order enters) or resume it."""
        self.release_control.hold(held)
        if not held and self.conwip:
            self._fill_to_limit()

    def _fill_to_limit(self) -> None:
        """Release parts up to the CONWIP limit (those waiting in the release's backlog count)."""
        if self.release_control.held:
            return
        backlog = getattr(self.release, "backlog", None)
        waiting = len(backlog.items) if backlog is not None else 0
        for _ in range(self.conwip_limit - self.wip - waiting):
            self.release.release()  # type: ignore[union-attr]

    def part_exited(self, part: Part) -> None:
        self._count(part, 1)
        self.exits += 1
        now = self.env._now
        self.exit_times.append(now)
        self.lead_times.append(now - part[1])
        self._part_left()

    def part_scrapped(self, machine: Machine, part: Part) -> None:
        self._count(part, 2)
        self.scrapped += 1
        self._part_left()

    def restart_statistics(self) -> None:
        now = self.env._now
        self.wip_area = 0.0
        self.wip_since = now
        self.exits = self.scrapped = 0
        self.lead_times = []
        self.exit_times = []
        for machines in self.machines:
            for machine in machines:
                machine.restart_statistics(now)

    def parts_in_line(self) -> list[Part]:
        """Every part in the line now: in buffers, on machines (and on transports)."""
        if self.network is not None:
            return self.network.parts_in_line()
        parts = [part for buffer in self.buffers if buffer is not None for part in buffer.items]
        parts.extend(
            machine.part for machines in self.machines for machine in machines if machine.part is not None
        )
        return parts

    def conservation(self) -> dict[str, dict[str, int]]:
        """Per product since the start: parts released, out, scrapped, and found in the line now.

        Components ride in the part that carries them and count in their own product, so
        `released == out + scrapped + wip` holds for every product of every line.
        """
        found = dict.fromkeys(self.product_counts, 0)
        for part in self.parts_in_line():
            found[part[0]] += 1
            for component in (part[3] or ()) if len(part) > 3 else ():
                found[component[0]] += 1
        return {
            product: {"released": released, "out": out, "scrapped": scrapped, "wip": found[product]}
            for product, (released, out, scrapped) in self.product_counts.items()
        }

    def snapshot(self) -> LineState:
        """The line's state now, as a state file holds it (`produced`: since the statistics' restart).

        A state file's `down` machine holds a part in work; a machine waiting for a technician
        is given as `down` with its repair not begun (`elapsed_s` 0). A machine down by the calendar
        while it is starved or blocked is given in that state: the rest of its repair is lost.
        A network line also gives its assemblies' buffers per input, its rework queues and the
        parts on its transports with the time each still travels.
        """
        now = self.env._now
        network = self.network
        stations = {}
        for index, (station, machines) in enumerate(zip(self.line.stations, self.machines, strict=True)):
            if network is None:
                buffer = self.buffers[index]
                places: dict[str, Any] = {"buffer": len(buffer.items) if buffer is not None else 0}
            else:
                places = network.places_of(index)
            stations[station.name] = StationState(
                **places,
                machines=[self._machine_state(machine, now) for machine in machines],
                produced=sum(machine.parts_out for machine in machines),
            )
        return LineState(format=STATE_FORMAT, stations=stations)

    @staticmethod
    def _machine_state(machine: Machine, now: float) -> MachineState:
        code = machine.state
        waiting = code == WAITING_REPAIR
        if waiting:  # a state file has no `waiting_repair`: given as down, its repair not begun
            code = DOWN
        # down by the calendar while idle (only calendar breakdowns keep a `logical_state`)
        if (
            code == DOWN
            and machine.calendar_failures
            and machine.logical_state in (BLOCKED, STARVED, STOPPED)
        ):
            code = machine.logical_state
        if code == STOPPED or (code not in (DOWN, OFF, MAINTENANCE) and machine.part is None):
            code = STARVED  # stopped before loading, or about to take a part at this instant
        elif code in (STARVED, OFF) and machine.part is not None:
            code = WORKING  # took its part at this instant
        return MachineState(
            state=STATE_NAMES[code],  # type: ignore[arg-type]
            elapsed_s=now - machine.state_since if code == machine.state else 0.0,
            product=machine.part[0] if machine.part is not None and code not in (STARVED, OFF) else None,
            restart=True if code == SETUP and machine.restarting else None,
        )

    def close(self) -> None:
        now = self.env._now
        self.wip_area += self.wip * (now - self.wip_since)
        self.wip_since = now
        for machines in self.machines:
            for machine in machines:
                machine.close(now)


def simulate(
    line: Line,
    *,
    seed: int | None = None,
    horizon: float | None = None,
    warmup: float | None = None,
    observer: Observer | None = None,
    state: LineState | None = None,
    setpoints: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run `line` once with the SimPy engine; arguments given here override the line's own.

    `state`: start from it (`twin.state`) instead of from an empty line; time 0 is its instant.
    `setpoints`: written at time 0 (`twin.setpoints`: an action of the twin's advice).
    With a shift calendar the run goes in planned time and is put back on the calendar
    (`twin.on_calendar`); an observer then sees planned time.
    """
    seed = line.seed if seed is None else seed
    horizon = line.horizon if horizon is None else horizon
    warmup = line.warmup if warmup is None else warmup
    if not 0 <= warmup < horizon:
        raise ValueError(f"warmup ({warmup:g}s) must be shorter than horizon ({horizon:g}s)")
    if line.calendar is None:
        return _simulate(line, seed, horizon, warmup, observer, state, setpoints=setpoints)[0]
    from twin.on_calendar import on_calendar, planned_run

    plan = planned_run(line, horizon, warmup, state.time if state is not None else None)
    if plan.horizon <= plan.warmup:
        raise ValueError("the shift calendar has no planned time between the warm-up and the horizon")
    result, wips = _simulate(
        line, seed, plan.horizon, plan.warmup, observer, state, plan.stop_instants, setpoints=setpoints
    )
    return on_calendar(result, line, plan, wips)


def _simulate(
    line: Line,
    seed: int,
    horizon: float,
    warmup: float,
    observer: Observer | None,
    state: LineState | None,
    wip_instants: list[float] | None = None,
    *,
    setpoints: Mapping[str, Any] | None = None,
) -> tuple[RunResult, list[int]]:
    """The run, and the parts in the line just after each of `wip_instants` (after all events there)."""
    started = time.perf_counter()
    plan = None
    if state is not None:
        check_state(line, state)
        plan = start_plan(line, state, seed)
    model = LineModel(line, seed, observer=observer, start=plan)
    if setpoints:
        from twin import setpoints as setpoint_module

        setpoint_module.apply(model, setpoints)
    wips: list[int] = []
    if wip_instants:
        model.env.process(_count_wip(model, [t for t in wip_instants if t < horizon], wips))
    if warmup > 0:
        model.env.run(until=warmup)
        model.restart_statistics()
    model.env.run(until=horizon)
    model.close()
    if wip_instants:
        wips.extend(model.wip for t in wip_instants if t >= horizon)  # the line as the run ends
    wall = time.perf_counter() - started
    events = next(model.env._eid)  # type: ignore[attr-defined]
    record = kpi_module.line_kpis(model, horizon=horizon, warmup=warmup)
    record.update(
        horizon_s=float(horizon),
        warmup_s=float(warmup),
        seed=seed,
        engine="simpy",
        engine_fallback=None,
        events=events,
    )
    record["wall_s"] = time.perf_counter() - started if wall else wall
    periods = {
        station.name: [machine.active_periods(warmup) for machine in machines]
        for station, machines in zip(line.stations, model.machines, strict=True)
    }
    result = RunResult(
        kpis=record, lead_times=model.lead_times, exit_times=model.exit_times, active_periods=periods
    )
    return result, wips


_AFTER_ALL = 2  # a priority below SimPy's NORMAL: served after every other event of its instant


def _count_wip(model: LineModel, instants: list[float], into: list[int]) -> Any:
    """Count the parts in the line at each instant, after everything that happens at it."""
    env = model.env
    for instant in instants:
        mark = simpy.Event(env)
        mark._ok = True  # type: ignore[attr-defined]
        mark._value = None  # type: ignore[attr-defined]
        env.schedule(mark, _AFTER_ALL, max(0.0, instant - env.now))
        yield mark
        into.append(model.wip)

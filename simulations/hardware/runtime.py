"""The live line as its PLCs and sensors see it: per station the state, counters and signals.

`LineRuntime` is the engine's observer. It turns machine states into station states,
counts parts, samples the process signals on their own clocks (SimPy processes, so
the values are the same whatever the load of the computer) and keeps, per station,
the timeline of every value its PLC showed. The PLC and MQTT publishers read that
timeline and the outboxes after every step of the clock; the truth file is written
from it. Nothing here knows a protocol.

What a live twin needs to rebuild the line's state (twinloop.state) is published on
every change: the parts in each buffer (`BufferLevel`, seen through the buffer's two
SimPy hooks), and per machine its state, the product of the part it holds (`Product`)
and the parts it has loaded (`PartsStarted`: a new part restarts the machine's cycle
even when its state stays `working`).

Every finished part is an event with where it came from (`from`: the station that passed it
in, or `release` for a new part) and where it goes (`to`: the next station, `exit`, or None
when scrapped; `reworked`: sent back for rework). On a line that is a network (twin.network)
the engine says so (`part_routed`); a chain's parts come from the station before and go to
the one after. A network line also shows, per station, each of its buffers (an assembly has
one per input: `BufferLevel.<UPSTREAM>`), the parts sent back to it for rework
(`ReworkLevel`) and the parts on the transport into it (`TransportLevel`).

Operators change the line through it (the PLC's Release object and station methods, who may
do so being the PLC's business): a setpoint (`twin.setpoints`) is applied to the line model at
the line's current instant and kept with the user, as is every refused attempt and every step of
the approval of the twin's advice (`approval.Approvals`), for the truth file.

Two changes of the same value at the same simulated instant are one change: a
station that is starved and gets its part at once was never seen starved, and a
historian keyed by timestamp could not store both anyway.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from simulations.hardware.approval import Approvals
from simulations.hardware.config import HardwareConfig, SignalSpec, setpoint_limits
from simulations.hardware.planned import CalendarTime
from simulations.hardware.signals import SignalBank, station_generator
from simulations.hardware.states import station_state
from twin.calendar import PlannedClock
from twin.calibration.records import FROM_RELEASE, TO_EXIT
from twin.engine import LineModel
from twin.line import Line
from twin.network import Network, Transport
from twin.setpoints import apply as apply_setpoints
from twin.setpoints import initial as initial_setpoints
from twin.station import (
    BLOCKED,
    DOWN,
    MAINTENANCE,
    PLANNED_STOP,
    REPORTED_STATES,
    SETUP,
    STATE_NAMES,
    STOPPED,
    WAITING_REPAIR,
    WORKING,
    Machine,
    Part,
)
from twin.topology import EXIT

COMMANDS = ("Start", "Stop", "Reset")


def counter_variable(state: str) -> str:
    """The PLC's time counter of a reported state: `TimeWorking`, `TimeWaitingRepair`, ..."""
    return "Time" + "".join(part.capitalize() for part in state.split("_"))


# cumulative machine-seconds per reported state (summed over the station's machines), as a PLC's
# operating-hours counters; stopped time counts as down, as in the twin's KPIs
TIME_COUNTERS: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
    (counter_variable(name), (code, STOPPED) if code == DOWN else (code,))
    for name, code in ((name, STATE_NAMES.index(name)) for name in REPORTED_STATES)
)
VALUE_VARIABLES = (
    "PartsProduced",
    "PartsScrapped",
    "LastCycleTime",
    *(variable for variable, _ in TIME_COUNTERS),
    "Occupancy",
    "OccupancySeconds",
    "IdealCycleTime",
)
# a machine in maintenance holds a part when the service interrupted it (due by operating time)
HOLDS_A_PART = (WORKING, SETUP, BLOCKED, DOWN, WAITING_REPAIR)
# orders released into a line that is not saturated, counted at its first station
RELEASE_COUNTER = "PartsReleased"
# parts waiting in the buffer in front of a station, on every change (not for a saturated first station)
BUFFER_LEVEL = "BufferLevel"
# a network line: parts sent back to a station for rework and waiting there, and parts on the
# transport into a station (travelling, or waiting for its buffer), on every change
REWORK_LEVEL = "ReworkLevel"
TRANSPORT_LEVEL = "TransportLevel"


def input_level_variable(upstream: str) -> str:
    """The variable of the buffer in front of an assembly that takes the parts from `upstream`."""
    return f"{BUFFER_LEVEL}.{upstream}"


def machine_state_variable(machine_index: int) -> str:
    """The PLC variable holding the state of one machine of a station with several (`Machine1State`, ...)."""
    return f"Machine{machine_index + 1}State"


def machine_variable(name: str, machine_index: int, machines: int) -> str:
    """A per-machine PLC variable: `name` on a station with one machine, `Machine<k><name>` with several."""
    return name if machines == 1 else f"Machine{machine_index + 1}{name}"


@dataclass
class Timeline:
    """(simulated time, value) pairs; entries before `committed` have been published and stay."""

    entries: list[tuple[float, Any]] = field(default_factory=list)
    committed: int = 0

    def record(self, t: float, value: Any) -> None:
        entries = self.entries
        if len(entries) > self.committed and entries[-1][0] == t:
            entries.pop()
        if entries and entries[-1][1] == value:
            return
        entries.append((t, value))

    def take(self) -> list[tuple[float, Any]]:
        """The entries not yet published, now marked as published."""
        new = self.entries[self.committed :]
        self.committed = len(self.entries)
        return new


@dataclass
class Sample:
    """Values of a group of signals of one station at one simulated instant."""

    station: StationRuntime
    names: list[str]
    specs: list[SignalSpec]
    values: np.ndarray
    t: float


class StationRuntime:
    """One station: its machines, aggregate state, counters, signals and their timelines."""

    def __init__(
        self, index: int, name: str, machines: list[Machine], power: tuple[float, ...] | None = None
    ) -> None:
        self.index = index
        self.name = name
        self.machines = machines
        self.machine_states = [machine.state for machine in machines]
        self.state = station_state(self.machine_states)
        # the line file's kW per state code (`power:`), and the station's power now: the sum over its
        # machines of the power in the state each shows (None: the hardware file's levels apply)
        self.power_table = power
        self.power = 0.0 if power is None else sum(power[state] for state in self.machine_states)
        self.states = Timeline()
        self.states.record(0.0, self.state)
        self.parts_produced = 0
        self.parts_scrapped = 0
        self.last_cycle_time = 0.0
        self.values = {name: Timeline() for name in VALUE_VARIABLES}
        # the item lists of the places in front of the station that hold parts for it (its buffers,
        # its rework queue, the transport into it), and the variables that show how many each holds
        self.holds: list[list[Part]] = []
        self.levels: list[str] = []
        # a chain's part events: where its parts come from and go (a network's engine says it per part)
        self.came_from = FROM_RELEASE
        self.goes_to = TO_EXIT
        # a station with parallel machines also shows each machine's own state, as a real cell's
        # PLC shows each machine's: an aggregate state cannot tell one machine's breakdown from two
        self.machine_variables = (
            [machine_state_variable(index) for index in range(len(machines))] if len(machines) > 1 else []
        )
        for variable, state in zip(self.machine_variables, self.machine_states, strict=False):
            self.values[variable] = Timeline()
            self.values[variable].record(0.0, state)
        # per machine: the product of the part it holds ("" when none) and the parts it has loaded
        count = len(machines)
        self.product_variables = [machine_variable("Product", k, count) for k in range(count)]
        self.started_variables = [machine_variable("PartsStarted", k, count) for k in range(count)]
        for product, started in zip(self.product_variables, self.started_variables, strict=True):
            self.values[product] = Timeline()
            self.values[product].record(0.0, "")
            self.values[started] = Timeline()
            self.values[started].record(0.0, 0)
        self.held: list[Part | None] = [None] * count  # the part each machine was last seen holding
        self.parts_started = [0] * count
        self.parts: list[dict[str, Any]] = []
        self.commands: list[tuple[float, str]] = []
        self.command_users: list[str | None] = []  # who called each command (None: anonymous or internal)
        self.banks: list[SignalBank] = []
        self.time_in = [0.0] * len(STATE_NAMES)  # machine-seconds per state code, summed over the machines
        self.machine_since = [0.0] * len(machines)
        self.occupancy_seconds = 0.0  # part-seconds held, exact up to the runtime's `occupancy_since`

    def totals(self, now: float, planned_stop: bool = False) -> list[float]:
        """Machine-seconds per state code up to `now` (in a planned stop, since its start in it)."""
        totals = list(self.time_in)
        for state, since in zip(self.machine_states, self.machine_since, strict=True):
            totals[PLANNED_STOP if planned_stop else state] += now - since
        return totals

    def shown_power(self, planned_stop: bool) -> float:
        """The station's power in the states its machines show (all in `planned_stop` during one)."""
        table = self.power_table
        if table is None:
            return 0.0
        if planned_stop:
            return table[PLANNED_STOP] * len(self.machine_states)
        return sum(table[state] for state in self.machine_states)


def occupancy(machines: list[Machine], buffer: simpy.Store | None) -> int:
    """Parts a station holds now: on its machines and in the buffer in front of it."""
    return sum(1 for m in machines if _holds_a_part(m)) + (len(buffer.items) if buffer is not None else 0)


def station_occupancy(station: StationRuntime) -> int:
    """Parts a station holds now: on its machines and in every place in front of it (`holds`)."""
    return sum(1 for m in station.machines if _holds_a_part(m)) + sum(len(items) for items in station.holds)


def _watch_level(
    buffer: simpy.Store, now: Callable[[], float], before: Callable[[float], None] | None = None
) -> Timeline:
    """The timeline of the parts in `buffer`, recorded by its two hooks whenever a put or get acts.

    A part enters or leaves a buffer only inside `_do_put` / `_do_get` (SimPy's Store, and the
    zero-capacity hand-over, which holds none), so wrapping them sees every change, however
    the engine interleaves the machines at one instant. `now()` is the line's time of the change;
    `before(t)` is called before each.
    """
    timeline = Timeline()
    timeline.record(0.0, len(buffer.items))  # a conwip release filled the first buffer while building
    do_put, do_get = buffer._do_put, buffer._do_get

    def put(event: Any) -> bool | None:
        t = now()
        if before is not None:
            before(t)
        proceed = do_put(event)
        timeline.record(t, len(buffer.items))
        return proceed

    def get(event: Any) -> bool | None:
        t = now()
        if before is not None:
            before(t)
        proceed = do_get(event)
        timeline.record(t, len(buffer.items))
        return proceed

    buffer._do_put = put  # type: ignore[method-assign]
    buffer._do_get = get  # type: ignore[method-assign]
    return timeline


def _holds_a_part(machine: Machine) -> bool:
    """Whether the machine holds a part: what it does, behind a calendar breakdown's `down`
    (only machines with calendar breakdowns keep that `logical_state`; the others' is their state)."""
    doing = machine.logical_state if machine.calendar_failures else machine.state
    return doing in HOLDS_A_PART or (doing == MAINTENANCE and machine.part is not None)


class LineRuntime:
    """The engine's observer, and the model it observes, built in `env`.

    Everything it keeps is stamped in the line's time. Without a shift calendar that is the engine's
    time, and the runtime's own processes (counters, signals) run in `env` beside the machines. With
    one (`line.calendar`) the engine runs in planned time and the line's time is the calendar's:
    each engine instant is mapped onto it (`planned_clock.line_time`), the runtime's processes run
    in an environment of their own on the calendar (`line_env`, where the signals go on sampling
    while the line stands), and `timebase` (simulations.hardware.planned.CalendarTime) steps the two
    together. In a planned stop every machine shows `planned_stop`, its time is booked there, and
    at the stop's end the machines show again the states they stood in.
    """

    def __init__(
        self,
        line: Line,
        config: HardwareConfig,
        *,
        seed: int,
        env: simpy.Environment | None = None,
        events: bool = True,
    ) -> None:
        self.line = line
        self.config = config
        self.seed = seed
        self.env = env if env is not None else simpy.Environment()
        self.speed = config.speed
        self.planned_clock: PlannedClock | None = None
        self.line_env = self.env
        self.timebase: simpy.Environment | CalendarTime = self.env
        self.in_stop = False
        self.shift = Timeline()  # True in planned production time (a line with a calendar)
        self.stops: list[list[float]] = []  # [start, end] of each planned stop begun, in line time
        if line.calendar is not None:
            self.planned_clock = line.calendar.clock()
            self.line_env = simpy.Environment()
            self.timebase = CalendarTime(self.env, self.line_env, self.planned_clock)
        self.signal_samples: list[Sample] = []  # drained by the PLC publisher
        self.sensor_samples: list[Sample] = []  # drained by the MQTT publisher
        self.part_events: list[tuple[StationRuntime, dict[str, Any]]] = []  # drained by the MQTT publisher
        self.keep_signals = config.opcua.enabled and bool(config.opcua.signals)
        self.keep_sensors = config.mqtt.enabled and bool(config.mqtt.sensors)
        self.keep_events = config.mqtt.enabled and events
        self.occupancy_since = 0.0
        # a conwip release puts its parts into the line while the model is built: count them at 0
        self.parts_released = 0
        self.released = Timeline()
        self.released.record(0.0, 0)
        self._building = True  # what the engine does while it is built happens at the line's time 0
        self.model = LineModel(line, seed, env=self.env, observer=self)
        self._building = False
        # the release's setpoints now, their limits, every change and every refused attempt to change
        # the line (a setpoint or a method), and the approval of the twin's advice
        self.limits = setpoint_limits(line, config.opcua)
        self.setpoints: dict[str, Any] = initial_setpoints(line)
        self.setpoint_changes: list[dict[str, Any]] = []
        self.refusals: list[dict[str, Any]] = []
        self.approvals = Approvals(line, self.limits)
        self.stations = [
            StationRuntime(index, station.name, machines, station.power.by_state() if station.power else None)
            for index, (station, machines) in enumerate(zip(line.stations, self.model.machines, strict=True))
        ]
        self.by_name = {station.name: station for station in self.stations}
        mix = line.product_mix
        for station, spec in zip(self.stations, line.stations, strict=True):
            station.values["IdealCycleTime"].record(0.0, spec.ideal_cycle_time or spec.mean_cycle_time(mix))
        if line.release != "saturated":  # orders are counted where they enter: at the first station
            self.stations[0].values[RELEASE_COUNTER] = self.released
        network = self.model.network
        if network is None:
            names = [station.name for station in self.stations]
            for station in self.stations:
                index = station.index
                station.came_from = names[index - 1] if index > 0 else FROM_RELEASE
                station.goes_to = names[index + 1] if index + 1 < len(names) else TO_EXIT
                buffer = self.model.buffers[index]
                if buffer is not None:
                    station.values[BUFFER_LEVEL] = _watch_level(buffer, self.line_now)
                    station.holds.append(buffer.items)
                    station.levels.append(BUFFER_LEVEL)
        else:
            self._watch_network(network)
        self._routing: tuple[int | None, int | None, bool] | None = None
        if self.planned_clock is not None:
            planned = self.planned_clock.is_planned(0.0)
            self.shift.record(0.0, planned)
            if not planned:
                self._begin_stop(0.0)
            self.line_env.process(self._calendar(self.planned_clock))
        # the counters are refreshed every 10 simulated seconds, and at most twice a wall second
        self.line_env.process(self._counters(max(10.0, self.speed / 2)))
        if self.keep_signals:
            self._start_sampling("signals", config.opcua.signals, self.signal_samples)
        if self.keep_sensors:
            self._start_sampling("sensors", config.mqtt.sensors, self.sensor_samples)

    def _watch_network(self, network: Network) -> None:
        """Show each station's buffers (one per input of an assembly), rework queue and transport.

        A part moves into or out of them at instants the engine need not tell the observer of (a
        branch's release, a transport's arrival), so each change first closes the occupancy integral.
        """
        topology = network.topology
        before = self._integrate_occupancy
        for station in self.stations:
            index = station.index
            buffers = network.inputs[index]
            if topology.assembly[index]:
                names = [input_level_variable(topology.names[source]) for source in topology.inputs[index]]
            else:
                names = [BUFFER_LEVEL]
            shown = not self._never_fed(network, index)
            for name, buffer in zip(names, buffers, strict=True):
                station.holds.append(buffer.items)
                if shown:
                    station.values[name] = _watch_level(buffer, self.line_now, before)
                    station.levels.append(name)
            returns = network.returns[index]
            if returns is not None:
                station.values[REWORK_LEVEL] = _watch_level(returns, self.line_now, before)
                station.holds.append(returns.items)
                station.levels.append(REWORK_LEVEL)
            transport = network.transports[index]
            if transport is not None:
                timeline = Timeline()
                timeline.record(0.0, 0)
                station.values[TRANSPORT_LEVEL] = timeline
                station.holds.append(transport.on_the_way)
                station.levels.append(TRANSPORT_LEVEL)
                transport.watch = self._transport_watch(transport, timeline)

    def _never_fed(self, network: Network, index: int) -> bool:
        """Whether nothing ever enters the buffer of station `index`: a saturated branch head (or the
        first station of a saturated line) that no route comes back to."""
        topology = network.topology
        if topology.inputs[index] or index not in network.saturated_heads:
            return False
        return not any(index in route[1:] for route in topology.routes.values())

    def _transport_watch(self, transport: Transport, timeline: Timeline) -> Callable[[int], None]:
        def changed(step: int) -> None:
            t = self.line_now()
            self._integrate_occupancy(t)
            timeline.record(t, len(transport.on_the_way) + step)

        return changed

    # -- the occupancy integral ----------------------------------------------------------
    def _integrate_occupancy(self, now: float) -> None:
        """Add each station's occupancy since `occupancy_since` to its `occupancy_seconds`.

        Called first by every observer call and counter refresh. A station's occupancy changes
        only at an instant at which the engine has already told the observer something: a part
        finishes before it is handed on, a release is counted before the part enters, a machine
        shows it holds a part by entering a state, and a blocked machine is freed by a hand-over
        downstream that began the same way. So the occupancy found at the first call of an
        instant is the one held since the previous instant, and the integral is exact at every
        call; tests/hardware/test_model.py checks it against one computed after every engine event.
        """
        since = self.occupancy_since
        if now <= since:
            return
        for station in self.stations:
            station.occupancy_seconds += station_occupancy(station) * (now - since)
        self.occupancy_since = now

    # -- the engine's Observer protocol ----------------------------------------------------
    def machine_state(self, machine: Machine, state: int, now: float) -> None:
        if self.planned_clock is not None:
            now = self._on_calendar(now)
        if now > self.occupancy_since:
            self._integrate_occupancy(now)
        station = self.stations[machine.station_index]
        index = machine.machine_index
        in_stop = self.in_stop
        station.time_in[PLANNED_STOP if in_stop else station.machine_states[index]] += (
            now - station.machine_since[index]
        )
        station.machine_since[index] = now
        station.machine_states[index] = state
        if station.machine_variables and not in_stop:
            station.values[station.machine_variables[index]].record(now, state)
        part = machine.part
        if part is not station.held[index]:  # loaded a new part, or handed its part on
            station.held[index] = part
            station.values[station.product_variables[index]].record(now, "" if part is None else part[0])
            if part is not None:
                station.parts_started[index] += 1
                station.values[station.started_variables[index]].record(now, station.parts_started[index])
        self._show(station, now)

    def _show(self, station: StationRuntime, now: float) -> None:
        """Show the station's state and power for its machines' states (all `planned_stop` in a stop)."""
        in_stop = self.in_stop
        new = PLANNED_STOP if in_stop else station_state(station.machine_states)
        power = station.power
        if station.power_table is not None:
            power = station.shown_power(in_stop)
        if new == station.state and power == station.power:
            return
        for bank in station.banks:
            bank.advance(now, station.state)  # under the state and power that held until now
            bank.power = power
        station.power = power
        if new != station.state:
            station.state = new
            station.states.record(now, new)

    def line_now(self) -> float:
        """The line's time now (the engine's, mapped onto the calendar if the line has one)."""
        if self.planned_clock is None:
            return self.env._now
        return self._on_calendar(self.env._now)

    @property
    def now(self) -> float:
        """The line's time the runtime has reached (on the calendar if the line has one)."""
        return self.line_env.now

    def _on_calendar(self, planned: float) -> float:
        """The line's time of the engine's (planned) instant: the calendar instant by which that much
        planned time has passed, or now if later (what an operator's call makes happen in a stop)."""
        assert self.planned_clock is not None
        now = self.line_env._now
        if self._building:
            return now
        t = self.planned_clock.line_time(planned)
        return t if t > now else now

    # -- the shift calendar ---------------------------------------------------------------
    def _calendar(self, clock: PlannedClock) -> Generator[simpy.Event, Any, None]:
        """Begin and end the planned stops at the calendar's instants (in `line_env`)."""
        env = self.line_env
        while True:
            now = env._now
            change, starts = clock.next_change(now)
            yield env.timeout(change - now)
            if starts:
                self._end_stop(change)
            else:
                self._begin_stop(change)

    def _begin_stop(self, t: float) -> None:
        """A planned stop begins at `t`: every machine shows `planned_stop` and books its time there."""
        self._integrate_occupancy(t)
        for station in self.stations:
            for index, state in enumerate(station.machine_states):
                station.time_in[state] += t - station.machine_since[index]
                station.machine_since[index] = t
        self.in_stop = True
        for station in self.stations:
            for variable in station.machine_variables:
                station.values[variable].record(t, PLANNED_STOP)
            self._show(station, t)
        self.shift.record(t, False)
        self.stops.append([t, math.inf])

    def _end_stop(self, t: float) -> None:
        """The planned stop ends at `t`: the machines show again the states they stood in."""
        self._integrate_occupancy(t)
        for station in self.stations:
            for index in range(len(station.machine_states)):
                station.time_in[PLANNED_STOP] += t - station.machine_since[index]
                station.machine_since[index] = t
        self.in_stop = False
        for station in self.stations:
            for variable, state in zip(station.machine_variables, station.machine_states, strict=False):
                station.values[variable].record(t, state)
            self._show(station, t)
        self.shift.record(t, True)
        if self.stops:
            self.stops[-1][1] = t

    def part_released(self, now: float) -> None:
        if self.planned_clock is not None:
            now = self._on_calendar(now)
        self._integrate_occupancy(now)
        self.parts_released += 1
        self.released.record(now, self.parts_released)

    def part_routed(
        self, machine: Machine, part: Part, came_from: int | None, to: int | None, reworked: bool, now: float
    ) -> None:
        """A network line's machine says where the part it finished came from and where it goes."""
        self._routing = (came_from, to, reworked)

    def part_finished(
        self, machine: Machine, part: Part, cycle_time: float, scrapped: bool, now: float
    ) -> None:
        if self.planned_clock is not None:
            now = self._on_calendar(now)
        if now > self.occupancy_since:
            self._integrate_occupancy(now)
        station = self.stations[machine.station_index]
        if self._routing is not None:
            index_from, index_to, reworked = self._routing
            self._routing = None
            came_from = FROM_RELEASE if index_from is None else self.stations[index_from].name
            if index_to is None:
                goes_to = None
            else:
                goes_to = TO_EXIT if index_to == EXIT else self.stations[index_to].name
        else:
            came_from, goes_to, reworked = station.came_from, None if scrapped else station.goes_to, False
        if scrapped:
            station.parts_scrapped += 1
            station.values["PartsScrapped"].record(now, station.parts_scrapped)
        else:
            station.parts_produced += 1
            station.values["PartsProduced"].record(now, station.parts_produced)
        station.last_cycle_time = cycle_time
        station.values["LastCycleTime"].record(now, cycle_time)
        event = {
            "t": now,
            "product": part[0],
            "cycle_time_s": cycle_time,
            "scrapped": scrapped,
            "parts_produced": station.parts_produced,
            "parts_scrapped": station.parts_scrapped,
            "from": came_from,
            "to": goes_to,
            "reworked": reworked,
        }
        station.parts.append(event)
        if self.keep_events:
            self.part_events.append((station, event))

    def _counters(self, period: float) -> Generator[simpy.Event, Any, None]:
        """Refresh each station's time-in-state counters, its occupancy and its occupancy integral
        every `period`."""
        env = self.line_env
        while True:
            now = env._now
            self._integrate_occupancy(now)
            for station in self.stations:
                totals = station.totals(now, self.in_stop)
                for variable, codes in TIME_COUNTERS:
                    station.values[variable].record(now, sum(totals[code] for code in codes))
                station.values["Occupancy"].record(now, station_occupancy(station))
                station.values["OccupancySeconds"].record(now, station.occupancy_seconds)
            yield env.timeout(period)

    # -- operator commands (the PLC methods) ---------------------------------------------
    def command(self, station_name: str, command: str, user: str | None = None) -> None:
        """Start, Stop or Reset a station: act on its simulated machines now."""
        if command not in COMMANDS:
            raise ValueError(f"unknown command {command!r} (allowed: {', '.join(COMMANDS)})")
        station = self.by_name[station_name]
        station.commands.append((self.line_env.now, command))
        station.command_users.append(user)
        for machine in station.machines:
            if command == "Stop":
                machine.stop()
            else:
                machine.start()

    # -- setpoints (the PLC's Release object) --------------------------------------------
    def change_setpoint(self, path: str, value: Any, user: str | None) -> float:
        """Apply a setpoint (checked by `twin.setpoints.parse`) to the line model now, and keep it;
        the line's time of the change. It completes an approved advice when it was the last of it."""
        apply_setpoints(self.model, {path: value})
        t = self.line_env.now
        self.setpoints[path] = value
        self.setpoint_changes.append({"t": t, "path": path, "value": value, "user": user})
        self.approvals.written(path, value, user, t)
        return t

    def refuse(self, target: str, value: Any, user: str | None, status: str, reason: str) -> float:
        """Keep an attempt to change the line that was refused (`target`: a setpoint path or a method)."""
        t = self.line_env.now
        self.refusals.append(
            {"t": t, "target": target, "value": value, "user": user, "status": status, "reason": reason}
        )
        return t

    # -- signals ------------------------------------------------------------------------
    def _start_sampling(self, group: str, specs: list[SignalSpec], outbox: list[Sample]) -> None:
        by_rate: dict[float, list[SignalSpec]] = {}
        for spec in specs:
            by_rate.setdefault(spec.rate, []).append(spec)
        for station in self.stations:
            rng = station_generator(self.seed, station.name, group)
            for rate, members in by_rate.items():
                power = None if station.power_table is None else station.power
                bank = SignalBank(members, rng, station.state, power=power)
                station.banks.append(bank)
                self.line_env.process(self._sampler(station, bank, self.speed / rate, outbox))

    def _sampler(
        self, station: StationRuntime, bank: SignalBank, period: float, outbox: list[Sample]
    ) -> Generator[simpy.Event, Any, None]:
        env = self.line_env
        names = bank.names
        specs = bank.specs
        k = 0
        while True:
            now = env._now
            outbox.append(Sample(station, names, specs, bank.sample(now, station.state), now))
            k += 1
            yield env.timeout(k * period - now)

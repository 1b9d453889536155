"""Machines of a work station, each a SimPy process that loads, sets up, processes and unloads parts.

A machine cycles through the states of a production machine:

- `starved`: empty, waiting for a part from the buffer in front of the station;
- `setup`: changing over because the part's product differs from the last one;
- `working`: processing the part (only here does an operation-based failure clock run);
- `down`: broken and under repair;
- `blocked`: holding a finished part because there is no room downstream
  (blocking after service; the last station is never blocked);
- `stopped`: stopped by an operator (the PLC's Stop method) before loading the next
  part, until started again; booked as down time in the KPIs;
- `waiting_repair`: broken, waiting for a technician of the line's repair crew
  (`twin.repair`; a line without a crew repairs every failed machine at once);
- `planned_stop`: outside the planned production time of the line's shift calendar (no shift,
  a break, a holiday; `twin.calendar`): the whole line stands still with its parts in place;
- `off`: switched off after being starved for the station's `switch_off.after`; the next
  part finds it off and waits for the restart (booked as `setup`);
- `maintenance`: preventive maintenance, every `maintenance.every` of operating time or
  `maintenance.parts` parts; it renews the machine's age like a repair.

Time in each state is accumulated as it passes, and the instants at which the
machine turns active (working, setup, down) or inactive (starved, blocked) are kept
for the active-period bottleneck analysis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal, get_args

import simpy

from twin.distributions import Sampler

if TYPE_CHECKING:
    from twin.engine import LineModel
    from twin.repair import Crew
    from twin.state import MachineStart

StateName = Literal[
    "working",
    "blocked",
    "starved",
    "down",
    "setup",
    "stopped",
    "waiting_repair",
    "planned_stop",
    "off",
    "maintenance",
]
# the one list of state names, in state-code order (the codes the PLCs publish: a new state is
# appended): every other list of states is derived from it
STATE_NAMES: tuple[StateName, ...] = get_args(StateName)
WORKING, BLOCKED, STARVED, DOWN, SETUP, STOPPED, WAITING_REPAIR, PLANNED_STOP, OFF, MAINTENANCE = range(
    len(STATE_NAMES)
)
# the states a machine's time is reported in (KPI shares, time counters, dashboards):
# an operator's stop is booked as down
REPORTED_STATES: tuple[StateName, ...] = tuple(name for name in STATE_NAMES if name != "stopped")
# the states in which a machine is busy, for the active-period bottleneck analysis
ACTIVE = tuple(name in ("working", "down", "setup", "waiting_repair", "maintenance") for name in STATE_NAMES)

Part = list  # [product name, release time]


class Machine:
    """One machine of a station: its process, its random streams and its time accounts."""

    def __init__(
        self,
        model: LineModel,
        station_index: int,
        machine_index: int,
        *,
        cycle: dict[str, Sampler],
        setup: Sampler | None,
        scrap: Sampler | None,
        scrap_probability: float,
        ttf: Sampler | None,
        ttr: Sampler | None,
        calendar_failures: bool,
        crew: Crew | None = None,
        service: Sampler | None = None,
        service_every: float | None = None,
        service_parts: int | None = None,
        switch_off_after: float | None = None,
        restart: Sampler | None = None,
    ) -> None:
        self.model = model
        self.env = model.env
        self.station_index = station_index
        self.machine_index = machine_index
        self.cycle = cycle
        self.setup = setup
        self.scrap = scrap
        self.scrap_probability = scrap_probability
        self.ttf = ttf
        self.ttr = ttr
        self.calendar_failures = calendar_failures
        self.crew = crew  # the technicians who repair it (None: a repairer at once)
        self.service = service  # preventive maintenance: its duration, and when it is due
        self.service_every = service_every
        self.service_parts = service_parts
        self.switch_off_after = switch_off_after  # energy saving: off after starving this long
        self.restart = restart
        self.observer = model.observer

        self.state = STARVED
        self.since = 0.0
        self.time_in = [0.0] * len(STATE_NAMES)
        self.activity_changes: list[float] = []
        self.processed = 0
        self.parts_out = 0
        self.scrapped = 0
        self.failures = 0
        self.last_product: str | None = None
        self.last_cycle_time = 0.0

        self.down = False
        self.logical_state = STARVED
        self.occupied = False
        self.repaired: simpy.Event | None = None
        self.process: simpy.Process | None = None
        self.stop_requested = False
        self.resumed: simpy.Event | None = None
        self.part: Part | None = None  # the part on the machine (loaded, not yet handed on)
        self.state_since = 0.0  # when the machine entered its state (the warm-up does not reset it)
        # the machine's age since its last renewal (repair or service): the operating time to its
        # next failure and to its next service, and the parts made since (`work_serviced`)
        self.ttf_left = math.inf
        self.service_left = math.inf
        self.parts_since_service = 0
        self.services = 0
        self.is_off = False
        self.restarting = False  # in `setup` for the restart after a switch-off

    # -- operator commands (the virtual PLC's Start and Stop methods) ------------------------
    def stop(self) -> None:
        """Stop before loading the next part (the part in work is finished first)."""
        self.stop_requested = True

    def start(self) -> None:
        """Start again after `stop`."""
        self.stop_requested = False
        if self.resumed is not None and not self.resumed.triggered:
            self.resumed.succeed()

    # -- accounting -----------------------------------------------------------------
    def set_state(self, state: int) -> None:
        """Enter `state` now (the effective state stays `down` while a calendar failure lasts)."""
        self.logical_state = state
        if self.down:
            return
        self._enter(state)

    def _enter(self, state: int) -> None:
        now = self.env._now
        previous = self.state
        self.time_in[previous] += now - self.since
        self.since = self.state_since = now
        self.state = state
        if ACTIVE[state] is not ACTIVE[previous]:
            changes = self.activity_changes
            if changes and changes[-1] == now:
                changes.pop()  # a zero-length wait (same-instant hand-over) does not split an active period
            else:
                changes.append(now)
        if self.observer is not None:
            self.observer.machine_state(self, state, now)

    def restart_statistics(self, now: float) -> None:
        """Forget everything before `now` (the end of the warm-up)."""
        self.time_in = [0.0] * len(STATE_NAMES)
        self.since = now
        self.activity_changes = [now] if ACTIVE[self.state] else []
        self.processed = self.parts_out = self.scrapped = self.failures = self.services = 0

    def close(self, now: float) -> None:
        """Book the time of the running state up to `now` (the end of the run)."""
        self.time_in[self.state] += now - self.since
        self.since = now
        if ACTIVE[self.state]:
            changes = self.activity_changes
            if changes and changes[-1] == now:
                changes.pop()
            else:
                changes.append(now)

    def active_periods(self, start: float) -> list[tuple[float, float]]:
        """(start, end) pairs of the active periods since `start`, after `close`."""
        changes = self.activity_changes
        return list(zip(changes[0::2], changes[1::2], strict=False))

    # -- the machine's process --------------------------------------------------------
    def run(
        self,
        inbound: simpy.Store | None,
        outbound: simpy.Store | None,
        new_part: Callable[[], Part],
        start: MachineStart | None = None,
        held: Part | None = None,
    ) -> Generator[simpy.Event, Any, None]:
        """Load, set up, process and unload parts for ever (`inbound` None: raw material always there).

        `start` (a run from a state, `twin.state`): what the machine is doing at the start,
        with the part it holds (`held`); it finishes that first, then goes on as usual.
        """
        env = self.env
        model = self.model
        cycle = self.cycle
        setup = self.setup
        scrap = self.scrap
        scrap_probability = self.scrap_probability
        operating_failures = self.ttf is not None and not self.calendar_failures
        calendar_failures = self.calendar_failures
        resume = self.resumed_start(start, held)
        ttf_left = self.first_failure_clock(start)
        ttf = self.ttf
        ttr = self.ttr
        timeout = env.timeout
        # without calendar breakdowns no down-override is needed: enter states directly
        set_state = self.set_state if calendar_failures else self._enter
        observer = self.observer
        is_last = outbound is None
        crew = self.crew
        serviced, starve = yield from self.begin_plant(start, resume)

        while True:
            finished = False
            if resume is None:
                if self.stop_requested:
                    set_state(STOPPED)
                    self.resumed = env.event()
                    yield self.resumed
                if (
                    serviced
                    and self.service_parts is not None
                    and self.parts_since_service >= self.service_parts
                ):
                    yield from self.serve(set_state)
                if inbound is None:
                    part = new_part()
                else:
                    request = inbound.get()
                    if not request.triggered:
                        if starve is None:
                            set_state(STARVED)
                            yield request
                        else:
                            yield from starve(request)
                    part = request.value
                self.part = part
                if starve is not None and self.is_off:
                    yield from self.restart_after_off(set_state)
                product = part[0]
                if setup is not None and product != self.last_product and self.last_product is not None:
                    set_state(SETUP)
                    if calendar_failures:
                        yield from self._occupy(setup())
                    else:
                        yield timeout(setup())
                self.last_product = product
                set_state(WORKING)
                duration = cycle[product]()
            else:  # the first part of a run from a state: finish what the machine was doing
                first, resume = resume, None
                part = held  # type: ignore[assignment]
                left = yield from self.resume(first, part)
                if left is None:
                    finished = True
                else:
                    duration = left
                    if first.state == DOWN and operating_failures:
                        ttf_left = ttf()  # type: ignore[misc]
            if finished:
                pass
            elif serviced:
                yield from self.work_serviced(duration, set_state)
            elif operating_failures:
                remaining = duration
                while remaining > ttf_left:
                    if ttf_left > 0:
                        yield timeout(ttf_left)
                    remaining -= ttf_left
                    if crew is None:
                        set_state(DOWN)
                        self.failures += 1
                        yield timeout(ttr())  # type: ignore[misc]
                    else:
                        self.failures += 1
                        yield from self.repair(set_state)
                    set_state(WORKING)
                    ttf_left = ttf()  # type: ignore[misc]
                ttf_left -= remaining
                yield timeout(remaining)
            elif calendar_failures:
                yield from self._occupy(duration)
            else:
                yield timeout(duration)
            if not finished:
                self.processed += 1
                if serviced:
                    self.parts_since_service += 1
                self.last_cycle_time = duration
                if scrap is not None and scrap() < scrap_probability:
                    self.scrapped += 1
                    self.part = None
                    model.part_scrapped(self, part)
                    if observer is not None:
                        observer.part_finished(self, part, duration, True, env._now)
                    continue
                if observer is not None:
                    observer.part_finished(self, part, duration, False, env._now)
            if is_last:
                self.part = None
                model.part_exited(part)
            else:
                delivery = outbound.put(part)  # type: ignore[union-attr]
                if not delivery.triggered:
                    set_state(BLOCKED)
                    yield delivery
                self.part = None
            self.parts_out += 1

    # -- a run from a state (twin.state): the hooks the chain's and the network's loops share --------
    def first_failure_clock(self, start: MachineStart | None) -> float:
        """The operating time to the first failure (0 without operation-based failures)."""
        if self.ttf is None or self.calendar_failures:
            return 0.0
        if start is not None and start.ttf_left is not None:
            return start.ttf_left  # the residual time to failure, given the machine's age
        if start is not None and start.state == DOWN:
            return 0.0  # a fresh clock is drawn after the repair
        return self.ttf()

    @staticmethod
    def resumed_start(start: MachineStart | None, held: Part | None) -> MachineStart | None:
        """The start the machine finishes first with its part (None: it starts by taking a part)."""
        if start is None or start.state in (STARVED, OFF):
            return None
        if start.state == MAINTENANCE and held is None:
            return None  # a service between parts: `begin_empty`
        return start

    def begin_plant(
        self, start: MachineStart | None, resume: MachineStart | None
    ) -> Generator[simpy.Event, Any, tuple[bool, Callable[..., Any] | None]]:
        """Before a work loop's first part: the service clocks, and an empty machine's start (off, or
        in a service between parts). Returns (serviced, the starve wait with switch-off or None)."""
        serviced = self.service is not None
        if serviced:
            self.start_service_clocks(start)
        starve = self.starve if self.switch_off_after is not None else None
        if start is not None and start.state in (OFF, MAINTENANCE) and resume is None:
            yield from self.begin_empty(start)
        return serviced, starve

    def begin_empty(self, start: MachineStart) -> Generator[simpy.Event, Any, None]:
        """An empty machine's start: switched off (the next part waits for the restart), or in a
        service between two parts (it renews the machine)."""
        if start.state == OFF:
            self._enter(OFF)
            self.is_off = True
            return
        (self.set_state if self.calendar_failures else self._enter)(MAINTENANCE)
        yield self.env.timeout(start.remaining)
        self.renew()

    def resume(self, first: MachineStart, part: Part) -> Generator[simpy.Event, Any, float | None]:
        """Finish what the machine was doing at the start with `part`: the processing time still
        to run, or None when the part is finished (a blocked machine). After a repair (`down`)
        with operation-based failures the caller draws a fresh failure clock."""
        self.part = part
        product = part[0]
        self.last_product = product
        set_state = self.set_state if self.calendar_failures else self._enter
        if first.state == BLOCKED:
            return None
        if first.state == SETUP:
            set_state(SETUP)
            if self.calendar_failures:
                yield from self._occupy(first.remaining)
            else:
                yield self.env.timeout(first.remaining)
        elif first.state == MAINTENANCE:  # a service that interrupted the part in work
            set_state(MAINTENANCE)
            yield self.env.timeout(first.remaining)
            self.renew()
        elif first.state == DOWN:
            if not self.calendar_failures:  # (a calendar breakdown is `calendar_breakdowns`' to end)
                if self.crew is None:
                    set_state(DOWN)
                    yield self.env.timeout(first.remaining)
                else:
                    yield from self.repair(set_state, first.remaining)
        else:
            set_state(WORKING)
            return first.remaining
        set_state(WORKING)
        return self.cycle[product]()

    def _occupy(self, duration: float) -> Generator[simpy.Event, Any, None]:
        """Spend `duration` of machine time, paused by calendar-time breakdowns."""
        env = self.env
        while duration > 0:
            if self.down:
                yield self.repaired  # type: ignore[misc]
            start = env._now
            self.occupied = True
            try:
                yield env.timeout(duration)
                duration = 0.0
            except simpy.Interrupt:
                duration -= env._now - start
            finally:
                self.occupied = False

    def calendar_breakdowns(self, repair_left: float | None = None) -> Generator[simpy.Event, Any, None]:
        """Breakdowns on calendar time: the machine fails whatever it is doing.

        `repair_left` (a run from a state): the machine is down at the start, for that long.
        """
        env = self.env
        ttf, ttr = self.ttf, self.ttr
        assert ttf is not None and ttr is not None
        crew = self.crew
        if repair_left is not None:
            self.repaired = env.event()
            self.down = True
            if self.occupied and self.process is not None:
                self.process.interrupt("breakdown")
            if crew is None:
                self._enter(DOWN)
                yield env.timeout(repair_left)
            else:
                yield from self.repair(self._enter, repair_left)
            self.down = False
            self._enter(self.logical_state)
            self.repaired.succeed()
        while True:
            yield env.timeout(ttf())
            self.repaired = env.event()
            self.down = True
            self.failures += 1
            if crew is None:
                self._enter(DOWN)
                if self.occupied and self.process is not None:
                    self.process.interrupt("breakdown")
                yield env.timeout(ttr())
            else:
                if self.occupied and self.process is not None:
                    self.process.interrupt("breakdown")
                yield from self.repair(self._enter)
            self.down = False
            self._enter(self.logical_state)
            self.repaired.succeed()

    def repair(
        self, enter: Callable[[int], None], duration: float | None = None
    ) -> Generator[simpy.Event, Any, None]:
        """A repair by the line's crew: wait for a technician (`waiting_repair`) unless one is free,
        then be `down` for `duration` (None: a time to repair drawn when the repair starts)."""
        crew = self.crew
        assert crew is not None
        granted = crew.call(self)
        if granted is not None:
            enter(WAITING_REPAIR)
            yield granted
        enter(DOWN)
        yield self.env.timeout(self.ttr() if duration is None else duration)  # type: ignore[misc]
        crew.release()

    # -- preventive maintenance (`maintenance:`) and switch-off (`switch_off:`) --------------------
    def start_service_clocks(self, start: MachineStart | None) -> None:
        """The operating time to the first failure and to the first service, at the run's start."""
        self.ttf_left = self.first_failure_clock(start) if self.ttf is not None else math.inf
        if start is not None and start.state == DOWN and self.ttf is not None:
            self.ttf_left = math.inf  # drawn when the repair in progress ends (`renew`)
        if self.service_every is not None:
            age = start.age if start is not None and start.age is not None else 0.0
            self.service_left = max(0.0, self.service_every - age)
        self.parts_since_service = 0

    def renew(self) -> None:
        """A repair or a service: the machine is as good as new, its clocks start again."""
        self.ttf_left = self.ttf() if self.ttf is not None else math.inf
        if self.service_every is not None:
            self.service_left = self.service_every
        self.parts_since_service = 0

    def work_serviced(
        self, duration: float, set_state: Callable[[int], None]
    ) -> Generator[simpy.Event, Any, None]:
        """Process for `duration` with the machine's age counted: it fails when its time to failure is
        spent, and is serviced, the part waiting on it, when its operating time reaches
        `maintenance.every` (age replacement: whichever comes first renews it)."""
        timeout = self.env.timeout
        if self.ttf_left == math.inf and self.ttf is not None:
            self.renew()  # after a repair in progress at a run's start
        remaining = duration
        while True:
            step = min(self.ttf_left, self.service_left)
            if remaining <= step:
                yield timeout(remaining)
                self.ttf_left -= remaining
                self.service_left -= remaining
                return
            if step > 0:
                yield timeout(step)
            remaining -= step
            failed = self.ttf_left <= self.service_left
            self.ttf_left -= step
            self.service_left -= step
            if failed:
                self.failures += 1
                if self.crew is None:
                    set_state(DOWN)
                    yield timeout(self.ttr())  # type: ignore[misc]
                else:
                    yield from self.repair(set_state)
                self.renew()
            else:
                yield from self.serve(set_state)
            set_state(WORKING)

    def serve(self, set_state: Callable[[int], None]) -> Generator[simpy.Event, Any, None]:
        """A preventive service for its drawn duration; it renews the machine."""
        set_state(MAINTENANCE)
        self.services += 1
        yield self.env.timeout(self.service())  # type: ignore[misc]
        self.renew()

    def starve(self, request: simpy.Event, since: float | None = None) -> Generator[simpy.Event, Any, None]:
        """Wait for `request` (a part, or a sign that one came), switching off once the machine has
        waited `switch_off.after` since `since` (default: now) for its next part."""
        env = self.env
        if self.is_off:
            yield request
            return
        (self.set_state if self.calendar_failures else self._enter)(STARVED)
        waited = 0.0 if since is None else env._now - since
        left = self.switch_off_after - waited  # type: ignore[operator]
        if left > 0:
            yield request | env.timeout(left)
            if request.triggered:
                return
        (self.set_state if self.calendar_failures else self._enter)(OFF)
        self.is_off = True
        yield request

    def restart_after_off(self, set_state: Callable[[int], None]) -> Generator[simpy.Event, Any, None]:
        """The part found the machine off: it waits for the restart (booked as set-up)."""
        self.is_off = False
        self.restarting = True
        set_state(SETUP)
        if self.calendar_failures:
            yield from self._occupy(self.restart())  # type: ignore[misc]
        else:
            yield self.env.timeout(self.restart())  # type: ignore[misc]
        self.restarting = False

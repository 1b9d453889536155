"""What a line recorded, per station: its state changes, its finished parts and its energy.

This is the neutral form calibration and validation work on, whatever the source: the
embedded historian, InfluxDB, or a recorder attached to a simulated run. Times are seconds
from the start of the observation window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.station import REPORTED_STATES, STATE_NAMES, Machine

# what a part event names as the origin of a part new to the line, and the destination of one leaving it
FROM_RELEASE = "release"
TO_EXIT = "exit"


@dataclass
class StationRecord:
    """One station's recorded history inside the window [0, window_s]."""

    name: str
    state_times: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    part_times: list[float] = field(default_factory=list)
    cycle_times: list[float] = field(default_factory=list)
    scrapped: list[bool] = field(default_factory=list)
    products: list[str] = field(default_factory=list)
    # per finished part, where it came from (a station, or `release`), where it went (a station,
    # `exit`, or None when scrapped) and whether it went back for rework; empty when not recorded
    came_from: list[str] = field(default_factory=list)
    goes_to: list[str | None] = field(default_factory=list)
    reworked: list[bool] = field(default_factory=list)
    # per-machine state histories of a station with parallel machines (only states are used)
    machines: list[StationRecord] = field(default_factory=list)
    # the first station of a line with a release: when orders entered the line
    release_times: list[float] = field(default_factory=list)
    # parts held by the station's machines and buffer (the PLC's Occupancy), a step function
    occupancy_times: list[float] = field(default_factory=list)
    occupancy: list[float] = field(default_factory=list)
    # part-seconds held since the PLC started (its OccupancySeconds), a monotonic counter
    occupancy_seconds_times: list[float] = field(default_factory=list)
    occupancy_seconds: list[float] = field(default_factory=list)
    # the station's energy meter (kWh, a running integral: the MQTT `energy` sensor) and its power
    # signal (kW, instantaneous: the PLC's `Power`), as read; empty when not recorded
    energy_times: list[float] = field(default_factory=list)
    energy_kwh: list[float] = field(default_factory=list)
    power_times: list[float] = field(default_factory=list)
    power_kw: list[float] = field(default_factory=list)

    def state_histories(self) -> list[StationRecord]:
        """The records whose states are one machine's each: the machines', or the station's own."""
        return self.machines or [self]

    def intervals(self, window_s: float) -> list[tuple[str, float, float]]:
        """(state, start, end) intervals clipped to the window, with consecutive equal states merged."""
        out: list[tuple[str, float, float]] = []
        times = self.state_times
        for i, (state, start) in enumerate(zip(self.states, times, strict=True)):
            end = times[i + 1] if i + 1 < len(times) else window_s
            start, end = max(0.0, start), min(window_s, end)
            if end <= start:
                continue
            if out and out[-1][0] == state and out[-1][2] == start:
                out[-1] = (state, out[-1][1], end)
            else:
                out.append((state, start, end))
        return out

    def state_shares(self, window_s: float) -> dict[str, float]:
        """Fractions of the window spent in each state (stopped counts as down), averaged over
        the machines when their own states were recorded, as the twin's KPIs are."""
        if self.machines:
            per_machine = [machine.state_shares(window_s) for machine in self.machines]
            return {state: float(np.mean([s[state] for s in per_machine])) for state in per_machine[0]}
        totals = dict.fromkeys(REPORTED_STATES, 0.0)
        covered = 0.0
        for state, start, end in self.intervals(window_s):
            key = "down" if state == "stopped" else state
            if key in totals:
                totals[key] += end - start
                covered += end - start
        return {state: (value / covered if covered else 0.0) for state, value in totals.items()}

    def durations(self, state: str, window_s: float) -> np.ndarray:
        """Durations of the complete intervals in `state` (those cut by the window edges are left out)."""
        return np.array(
            [
                end - start
                for s, start, end in self.intervals(window_s)
                if s == state and start > 0 and end < window_s
            ]
        )


def line_wip(records: list[StationRecord], window_s: float) -> float | None:
    """Time-average of the parts in the line over [0, window_s]: the stations' occupancies summed,
    each held from one recorded value to the next (None unless every station recorded it)."""
    if not records or any(not record.occupancy for record in records):
        return None
    area = 0.0
    for record in records:
        times = np.clip(np.append(np.asarray(record.occupancy_times, dtype=float), window_s), 0.0, window_s)
        values = np.asarray(record.occupancy, dtype=float)
        covered = np.diff(times)
        area += float(np.dot(values, covered))
        if times[0] > 0:  # before the first value in the window: the first value seen
            area += float(values[0]) * float(times[0])
    return area / window_s


def counted_wip(records: list[StationRecord], window_s: float) -> float | None:
    """Time-average of the parts in the line from the stations' occupancy counters: their summed
    growth from the first instant inside [0, window_s] by which every station had sent one to the
    last instant one was sent, over that span (None unless every station sent its counter).

    A PLC sends a station's counter at each refresh at which it grew, exact at that instant;
    one that did not grow is not sent again. So at an instant at which one station's counter
    came, every station's latest value is its counter then, and the growth between two such
    instants is exact, however rarely the PLCs refresh. A drop (a PLC restart) counts from 0.
    """
    spans = []
    for record in records:
        times = np.asarray(record.occupancy_seconds_times, dtype=float)
        inside = (times >= 0.0) & (times <= window_s)
        if not inside.any():
            return None
        spans.append((times[inside], np.asarray(record.occupancy_seconds, dtype=float)[inside]))
    if not spans:
        return None
    start = max(float(times[0]) for times, _ in spans)
    end = max(float(times[-1]) for times, _ in spans)
    if end <= start:
        return None
    area = 0.0
    for times, values in spans:
        counted = values[int(np.searchsorted(times, start, side="right")) - 1 :]  # from its value at start
        steps = np.diff(counted)
        area += float(np.where(steps < 0, counted[1:], steps).sum())
    return area / (end - start)


class Recorder:
    """An engine observer that records a run as StationRecords.

    A station with several machines (`capacities` > 1) gets one state history per machine,
    as its PLC's `MachineNState` variables show them; a single machine's states are the station's.
    On a line that is a network, each part's origin and destination are recorded too (the
    engine's `part_routed`), named as the PLCs' part events name them.
    """

    def __init__(
        self, station_names: list[str], start: float = 0.0, capacities: list[int] | None = None
    ) -> None:
        self.start = start
        self.records = {name: StationRecord(name) for name in station_names}
        self._names = station_names
        for name, capacity in zip(station_names, capacities or [1] * len(station_names), strict=True):
            if capacity > 1:
                self.records[name].machines = [StationRecord(f"{name}[{k}]") for k in range(capacity)]

    def machine_state(self, machine: Machine, state: int, now: float) -> None:
        record = self.records[self._names[machine.station_index]]
        if record.machines:
            record = record.machines[machine.machine_index]
        record.state_times.append(now - self.start)
        record.states.append(STATE_NAMES[state])

    def part_released(self, now: float) -> None:
        self.records[self._names[0]].release_times.append(now - self.start)

    def part_routed(
        self, machine: Machine, part: list, came_from: int | None, to: int | None, reworked: bool, now: float
    ) -> None:
        record = self.records[self._names[machine.station_index]]
        record.came_from.append(FROM_RELEASE if came_from is None else self._names[came_from])
        record.goes_to.append(None if to is None else TO_EXIT if to < 0 else self._names[to])
        record.reworked.append(reworked)

    def part_finished(
        self, machine: Machine, part: list, cycle_time: float, scrapped: bool, now: float
    ) -> None:
        record = self.records[self._names[machine.station_index]]
        record.part_times.append(now - self.start)
        record.cycle_times.append(cycle_time)
        record.scrapped.append(scrapped)
        record.products.append(part[0])

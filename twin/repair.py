"""The repair crew: the line's maintenance technicians, each repairing one failed machine at a time.

A line without `repair:` has a repairer for every failed machine: each repair starts at the
breakdown. With `repair: {technicians: c}` a failed machine calls the crew; while every
technician is busy it waits (state `waiting_repair`), then it is `down` for its repair time,
drawn when the repair starts. When a technician comes free, the next machine is chosen by
the crew's `priority`:

- `fifo`: the machine that failed first;
- `bottleneck`: the machine of the station with the most working time so far (machine-seconds
  working since the statistics started, that is since the warm-up's end, summed over the
  station's machines): the station that has been the busiest is repaired first; ties go
  to the machine that failed first.

A technician is not pre-empted: a repair, once started, runs to its end. With `skills` the crew
is split into one `Crew` per trade, and a station's `failures.skill` names the trade that repairs
it: a technician of one trade never repairs another's machines (nobody has two trades).
Technicians have no travel time and no shifts of their own (a shift calendar stops them with the
line), and preventive maintenance does not take them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import simpy

if TYPE_CHECKING:
    from twin.station import Machine

Priority = Literal["fifo", "bottleneck"]


class Crew:
    """`technicians` technicians and the queue of failed machines waiting for one."""

    def __init__(self, env: simpy.Environment, technicians: int, priority: Priority = "fifo") -> None:
        if technicians < 1:
            raise ValueError(f"technicians must be >= 1, got {technicians}")
        self.env = env
        self.free = technicians
        self.priority = priority
        self.waiting: list[tuple[Machine, simpy.Event]] = []

    def call(self, machine: Machine) -> simpy.Event | None:
        """A technician for `machine`: None when one is free (he starts now), else the event that
        fires when one is assigned."""
        if self.free:
            self.free -= 1
            return None
        granted = self.env.event()
        self.waiting.append((machine, granted))
        return granted

    def release(self) -> None:
        """A technician has finished a repair: he takes the next machine, or becomes free."""
        if not self.waiting:
            self.free += 1
            return
        index = 0 if self.priority == "fifo" else self._busiest_station_first()
        _, granted = self.waiting.pop(index)
        granted.succeed()

    def _busiest_station_first(self) -> int:
        now = self.env._now
        worked: dict[int, float] = {}

        def working_time(machine: Machine) -> float:
            station = machine.station_index
            if station not in worked:
                from twin.station import WORKING

                worked[station] = sum(
                    other.time_in[WORKING] + (now - other.since if other.state == WORKING else 0.0)
                    for other in machine.model.machines[station]
                )
            return worked[station]

        # max keeps the first of equal keys: the machine that failed first
        return max(range(len(self.waiting)), key=lambda i: working_time(self.waiting[i][0]))

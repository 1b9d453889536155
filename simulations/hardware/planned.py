"""The served line on its shift calendar: the engine in planned time, the PLCs on the calendar.

With a shift calendar (`twin.calendar`) the engine runs in planned time: during a planned stop the
line stands still and nothing in the engine happens, so the stop is cut out of its time. The
PLCs and sensors live on the calendar: their values are stamped with calendar instants, and the
signals go on sampling through a stop (an energy meter counts the stop's power). So the runtime
keeps two SimPy environments: the engine's (`env`, planned time) and its own (`line_env`, the
line's time on the calendar: counters, signal samplers, the stops' beginnings and ends).

`CalendarTime` steps the two together in the order of the line's time, as one environment would:
each event of the engine happens at the calendar instant by which its planned time has passed
(`PlannedClock.line_time`; an event at the instant a planned period ends happens before the stop),
and at one instant the engine goes first. The wall clock (simulations.hardware.clock) steps it as
it steps a plain environment: `now` and `run(until=...)` in the line's time.
"""

from __future__ import annotations

import simpy

from twin.calendar import PlannedClock


class CalendarTime:
    """The engine's environment (planned time) and the runtime's (calendar time), stepped together."""

    def __init__(self, env: simpy.Environment, line_env: simpy.Environment, clock: PlannedClock) -> None:
        self.env = env
        self.line_env = line_env
        self.clock = clock

    @property
    def now(self) -> float:
        """The line's time (seconds on the calendar from its origin) reached so far."""
        return self.line_env.now

    @property
    def planned(self) -> float:
        """The planned time the engine has reached."""
        return self.env.now

    def run(self, until: float) -> None:
        """Run everything that happens before the line's time `until` (as `simpy.Environment.run`)."""
        line_env = self.line_env
        while line_env.peek() < until:
            at = line_env.peek()
            self._engine_to(at, inclusive=True)
            line_env.step()
        self._engine_to(until, inclusive=False)
        if until > line_env.now:
            line_env.run(until=until)

    def _engine_to(self, t: float, *, inclusive: bool) -> None:
        """Run the engine's events whose calendar instant is before `t` (`inclusive`: or at it)."""
        env, clock = self.env, self.clock
        planned = clock.planned(t)
        if planned > env.now:
            env.run(until=planned)
        # events at that planned instant happen at the calendar instant at which it is first reached:
        # at `t` itself, or before it if `t` lies in a stop (they happened as the stop began)
        if inclusive and clock.line_time(planned) <= t:
            while env.peek() == planned:
                env.step()

"""Order release: how raw parts enter the line.

- `saturated`: raw material is always waiting at the first station, which is never starved;
- `interarrival`: orders arrive at random intervals and enter the first buffer;
- `conwip`: a fixed number of parts circulates; a new one enters whenever one leaves.

When the first buffer is full, released orders wait in an unlimited backlog in front
of the line, in arrival order. A part counts as in the line (WIP, lead time) from the
moment it enters the first buffer.

The line's release takes setpoints while it runs (`ReleaseControl`, written by an operator or
the twin's advice through the virtual PLC's `Release` object): the mean time between orders
(each drawn interval is scaled by the new mean over the line file's, so the stream and the
shape of the distribution stay), the CONWIP limit, and `Hold`: while held no order enters;
the arrival clock stands and starts a fresh interval at the resume, and a CONWIP line
releases up to its limit then.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from twin.distributions import Sampler

if TYPE_CHECKING:
    from twin.engine import LineModel


class ReleaseControl:
    """The setpoints of the line's release: interarrival scale, CONWIP limit, hold."""

    def __init__(self, env: simpy.Environment, base_mean: float | None) -> None:
        self.env = env
        self.base_mean = base_mean  # the line file's mean interarrival time (None: not interarrival)
        self.scale = 1.0
        self.held = False
        self.resumed: simpy.Event | None = None

    @property
    def interarrival_mean(self) -> float | None:
        return None if self.base_mean is None else self.base_mean * self.scale

    def set_interarrival_mean(self, mean: float) -> None:
        """From the next order on, intervals have mean `mean` (the one drawn now runs out as it is)."""
        if self.base_mean is None:
            raise ValueError("the line's release is not interarrival")
        if not mean > 0:
            raise ValueError(f"the mean time between orders must be > 0, got {mean!r}")
        self.scale = mean / self.base_mean

    def hold(self, held: bool) -> None:
        """Hold (True) or resume (False) the release."""
        if held == self.held:
            return
        self.held = held
        if held:
            self.resumed = self.env.event()
        elif self.resumed is not None:
            resumed, self.resumed = self.resumed, None
            resumed.succeed()

    def wait_while_held(self) -> Generator[simpy.Event, Any, None]:
        while self.held:
            yield self.resumed  # type: ignore[misc]


class Release:
    """Puts new parts into the first buffer, through a backlog when that buffer is finite."""

    def __init__(self, model: LineModel, first_buffer: simpy.Store, finite: bool) -> None:
        self.model = model
        self.env = model.env
        self.first_buffer = first_buffer
        self.backlog: simpy.Store | None = None
        # an observer that counts released orders (a line-entry light barrier on a real line)
        self.on_release = getattr(model.observer, "part_released", None)
        if finite:
            self.backlog = simpy.Store(self.env)
            self.env.process(self._load_from_backlog())

    def release(self) -> None:
        """Release one new part now."""
        part = [self.model.next_product(), self.env._now]
        if self.on_release is not None:
            self.on_release(self.env._now)
        if self.backlog is None:
            self.model.part_entered(part)
            self.first_buffer.put(part)
        else:
            self.backlog.put(part)

    def _load_from_backlog(self) -> Generator[simpy.Event, Any, None]:
        while True:
            part = yield self.backlog.get()  # type: ignore[union-attr]
            yield self.first_buffer.put(part)
            part[1] = self.env._now
            self.model.part_entered(part)

    def arrivals(self, interarrival: Sampler) -> Generator[simpy.Event, Any, None]:
        """Release a part after each interarrival time (scaled and held by the setpoints)."""
        yield from arrivals(self.env, interarrival, self.model.release_control, self.release)


def arrivals(
    env: simpy.Environment, interarrival: Sampler, control: ReleaseControl, release: Callable[[], None]
) -> Generator[simpy.Event, Any, None]:
    """Orders at the intervals drawn, times the setpoint's scale; none while the release is held."""
    timeout = env.timeout
    while True:
        if control.held:
            yield from control.wait_while_held()
        yield timeout(interarrival() * control.scale)
        if control.held:  # held while the interval ran: the order waits for the resume
            yield from control.wait_while_held()
            continue
        release()

"""Order release: how raw parts enter the line.

- `saturated`: raw material is always waiting at the first station, which is never starved;
- `interarrival`: orders arrive at random intervals and enter the first buffer;
- `conwip`: a fixed number of parts circulates; a new one enters whenever one leaves.

When the first buffer is full, released orders wait in an unlimited backlog in front
of the line, in arrival order. A part counts as in the line (WIP, lead time) from the
moment it enters the first buffer.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from twin.distributions import Sampler

if TYPE_CHECKING:
    from twin.engine import LineModel


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
        """Release a part after each interarrival time."""
        timeout = self.env.timeout
        while True:
            yield timeout(interarrival())
            self.release()

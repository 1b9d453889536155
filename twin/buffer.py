"""Buffers between stations: the conveyor or rack a part waits on before the next machine.

A buffer of capacity `n >= 1` is a FIFO store holding up to `n` parts. A buffer of
capacity 0 is a direct hand-over: the upstream machine keeps its finished part (it is
blocked) until a downstream machine is free to take it, the way a robot passes a part
from one cell to the next without a rack in between. Both extend SimPy's Store
through its two hooks, `_do_put` and `_do_get`.
"""

from __future__ import annotations

import simpy
from simpy.resources.store import StoreGet, StorePut


def make_buffer(env: simpy.Environment, capacity: int | None) -> simpy.Store:
    """A buffer of `capacity` places (None: unlimited, 0: hand-over)."""
    if capacity == 0:
        return HandOver(env)
    return simpy.Store(env, capacity=float("inf") if capacity is None else capacity)


class HandOver(simpy.Store):
    """A zero-capacity buffer: a put completes only when a get takes the part at once."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env, capacity=1)

    def _do_put(self, event: StorePut) -> bool:
        if event.triggered:
            return True
        for get in self.get_queue:
            if not get.triggered:
                get.succeed(event.item)
                event.succeed()
                break
        return True

    def _do_get(self, event: StoreGet) -> bool:
        if event.triggered:
            return True
        for put in self.put_queue:
            if not put.triggered:
                event.succeed(put.item)
                put.succeed()
                break
        return True

"""The wall clock of the simulated line: SimPy's simulated seconds mapped onto real time, scaled.

At `speed` 60 one simulated minute passes per wall second. The clock steps the SimPy
environment from inside asyncio: every `tick` it runs the model up to the simulated
instant that corresponds to now, then lets the servers publish what happened. A step
that covers more than one tick of simulated time is cut into slices, with the event
loop served between them, so the servers keep answering while the model catches up.

If the machine is loaded and the model falls behind, the clock does not raise and
does not drop simulated time: the next step runs everything that is due, and the lag
(how long after its wall instant an event was published) is measured, kept and
logged. Timestamps come from the simulated clock, mapped onto wall time from the
start instant: `wall = start + simulated / speed`, so they stay exact under lag.

The clock steps a `Timebase`: the engine's SimPy environment, or for a line with a shift
calendar the engine and the runtime on the calendar together (simulations.hardware.planned);
either way its time is the line's, and the engine's planned time stands still in a planned stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

logger = logging.getLogger(__name__)


@dataclass
class LagStats:
    """How far behind wall time the published values were."""

    steps: int = 0
    late_steps: int = 0
    max_s: float = 0.0
    total_s: float = 0.0
    last_s: float = 0.0

    @property
    def mean_s(self) -> float:
        return self.total_s / self.steps if self.steps else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "steps": self.steps,
            "late_steps": self.late_steps,
            "max_s": round(self.max_s, 6),
            "mean_s": round(self.mean_s, 6),
            "last_s": round(self.last_s, 6),
        }


class Timebase(Protocol):
    """What the clock steps: a SimPy environment, or anything with its `now` and `run(until=...)`."""

    @property
    def now(self) -> float: ...

    def run(self, until: float) -> Any: ...


class ScaledClock:
    """Maps simulated time onto wall time and steps `env` in real time, scaled by `speed`."""

    def __init__(self, env: Timebase, speed: float, *, tick: float = 0.02, lag_warning: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        if tick <= 0:
            raise ValueError(f"tick must be > 0, got {tick!r}")
        self.env = env
        self.speed = float(speed)
        self.tick = float(tick)
        self.lag_warning = float(lag_warning)
        self.start_epoch = time.time()
        self._start_mono = time.monotonic()
        self.lag = LagStats()
        self._last_warning = float("-inf")

    def restart(self) -> None:
        """Make now the wall instant of simulated time `env.now` (call just before `run`)."""
        now_epoch, now_mono = time.time(), time.monotonic()
        offset = self.env.now / self.speed
        self.start_epoch = now_epoch - offset
        self._start_mono = now_mono - offset

    # -- mapping ------------------------------------------------------------------------
    def epoch(self, simulated: float) -> float:
        """The wall instant (POSIX seconds, UTC) of simulated time `simulated`."""
        return self.start_epoch + simulated / self.speed

    def utc(self, simulated: float) -> datetime:
        """The wall instant of `simulated` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.start_epoch + simulated / self.speed, tz=UTC)

    def due(self) -> float:
        """The simulated time that corresponds to the wall clock now."""
        return (time.monotonic() - self._start_mono) * self.speed

    def behind(self) -> float:
        """Wall seconds between now and the wall instant of the model's current time."""
        return time.monotonic() - self._start_mono - self.env.now / self.speed

    # -- running ------------------------------------------------------------------------
    async def run(
        self,
        stop: asyncio.Event,
        publish: Callable[[], Awaitable[None]],
        *,
        until: float | None = None,
    ) -> None:
        """Step the model in real time until `stop` is set or the wall time `until` (seconds) passed.

        After every slice of simulated time `publish` is awaited: it sends what the
        model produced. The lag of a step is the wall time from the instant its oldest
        value was due to the moment everything due is out.
        """
        env = self.env
        slice_sim = self.tick * self.speed
        end_sim = None if until is None else until * self.speed
        next_tick = time.monotonic()
        while not stop.is_set():
            oldest = env.now
            target = self.due()
            if end_sim is not None:
                target = min(target, end_sim)
            while env.now < target and not stop.is_set():
                step_end = min(target, env.now + slice_sim)
                env.run(until=step_end)
                await publish()
                if step_end < target:
                    await asyncio.sleep(0)
            self._measure(oldest)
            if end_sim is not None and env.now >= end_sim:
                break
            next_tick += self.tick
            delay = next_tick - time.monotonic()
            if delay < 0:
                # behind: do not try to make up for missed ticks, carry on from now
                next_tick = time.monotonic()
                delay = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay) if delay > 0 else await asyncio.sleep(0)

    def _measure(self, oldest: float) -> None:
        # the oldest value of the step was due at the wall instant of `oldest`
        lag = max(0.0, time.monotonic() - self._start_mono - oldest / self.speed)
        stats = self.lag
        stats.steps += 1
        stats.total_s += lag
        stats.last_s = lag
        stats.max_s = max(stats.max_s, lag)
        if lag > self.lag_warning:
            stats.late_steps += 1
            now = time.monotonic()
            if now - self._last_warning > 10.0:
                self._last_warning = now
                logger.warning(
                    "simulation %.2fs behind wall time at simulated %.1fs (speed %g): catching up",
                    lag,
                    self.env.now,
                    self.speed,
                )

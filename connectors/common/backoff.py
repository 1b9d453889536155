"""Exponential backoff with jitter, and the one reconnect loop every source runs in.

backoff = Backoff(initial=0.5, maximum=30)
await keep_running("opcua plc1", session, backoff, stop, on_reconnect=health.count_reconnect)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from connectors.common.ratelog import RateLimitedLog

log = logging.getLogger(__name__)


@dataclass
class Backoff:
    """Delays that double from `initial` up to `maximum`, each spread by +-`jitter` (a fraction)."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    _attempt: int = field(default=0, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self._attempt)
        self._attempt += 1
        return max(0.0, base * (1.0 + self._rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        self._attempt = 0


async def sleep_or_stop(delay: float, stop: asyncio.Event) -> bool:
    """Sleep `delay` seconds; return True at once if `stop` is set meanwhile."""
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=delay)
    except TimeoutError:
        return False
    return True


async def keep_running(
    name: str,
    session: Callable[[], Awaitable[None]],
    backoff: Backoff,
    stop: asyncio.Event,
    on_reconnect: Callable[[], None] | None = None,
    healthy_after: float = 10.0,
) -> None:
    """Run `session` until `stop` is set; whenever it fails, wait with backoff and start it again.

    A session that ran for `healthy_after` seconds before failing resets the backoff, so a
    line that drops once a day reconnects quickly every time.
    """
    errors = RateLimitedLog(log, interval=30.0)
    loop = asyncio.get_running_loop()
    first = True
    while not stop.is_set():
        if not first and on_reconnect is not None:
            on_reconnect()
        first = False
        started = loop.time()
        try:
            await session()
            if stop.is_set():
                return
            errors.warning(name, "%s: session ended; reconnecting", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors.warning(name, "%s: %s: %s", name, type(exc).__name__, exc or "connection failed")
        if loop.time() - started > healthy_after:
            backoff.reset()
        if await sleep_or_stop(backoff.next_delay(), stop):
            return

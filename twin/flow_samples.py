"""The random numbers of one run drawn ahead as arrays: the SimPy engine's streams, value for value.

The SimPy engine's samplers hand out one value at a time from blocks of 256 drawn
from each named stream (`twin.streams`): cycle times per machine and product, set-up
times, scrap draws, times to failure and to repair per machine, interarrival times
and the product mix of the releases. The flow engine needs the same values as
arrays. A `Draws` keeps one stream's generator and the values drawn so far, and draws
more exactly as the sampler would: in blocks of 256 where the block size matters
(truncated normal, empirical), in one call where numpy draws value by value.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from twin import flow_kernel as kernel
from twin.distributions import BLOCK, Constant, Exponential, Gamma, Lognormal, Triangular, Uniform, _Dist
from twin.line import InterarrivalRelease, Line
from twin.streams import RELEASE_OWNER, stream

# numpy draws these value by value: one call of n values equals n/256 calls of 256
VALUE_BY_VALUE = (Exponential, Lognormal, Gamma, Uniform, Triangular)
PRODUCT_BLOCK = 256  # `LineModel.next_product` draws the product mix 256 parts at a time


class Draws:
    """The values of one stream drawn so far; `ensure(n)` draws until there are at least n."""

    def __init__(self, draw: Callable[[int], np.ndarray], block: int) -> None:
        self._draw = draw
        self._block = block
        self._chunks: list[np.ndarray] = []
        self.count = 0

    @classmethod
    def of(cls, dist: _Dist, rng: np.random.Generator) -> Draws:
        if isinstance(dist, Constant):
            return cls(lambda size: np.full(size, dist.value, dtype=float), 1)
        if isinstance(dist, VALUE_BY_VALUE):
            return cls(lambda size: dist.draw(rng, size), BLOCK)
        return cls(lambda size: np.concatenate([dist.draw(rng, BLOCK) for _ in range(size // BLOCK)]), BLOCK)

    def ensure(self, n: int) -> None:
        if n <= self.count:
            return
        size = -(-(n - self.count) // self._block) * self._block
        self._chunks.append(np.asarray(self._draw(size), dtype=float))
        self.count += size

    @property
    def values(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0)


def _product_draws(line: Line, seed: int) -> Draws:
    mix = line.product_mix
    if len(mix) == 1:
        return Draws(lambda size: np.zeros(size), 1)
    rng = stream(seed, RELEASE_OWNER, "product")
    shares = list(mix.values())
    count = len(shares)
    return Draws(
        lambda size: np.concatenate(
            [rng.choice(count, size=PRODUCT_BLOCK, p=shares) for _ in range(size // PRODUCT_BLOCK)]
        ).astype(float),
        PRODUCT_BLOCK,
    )


class RunSamples:
    """Every stream one run of `line` with `seed` draws from, keyed (kind, station, product)."""

    def __init__(self, line: Line, seed: int) -> None:
        self.line = line
        products = list(line.product_mix)
        self.products = _product_draws(line, seed)
        self.arrivals: Draws | None = None
        if isinstance(line.release, InterarrivalRelease):
            self.arrivals = Draws.of(line.release.interarrival, stream(seed, RELEASE_OWNER, "arrival"))
        self.cycle: list[list[Draws]] = []
        self.setup: list[Draws | None] = []
        self.scrap: list[Draws | None] = []
        self.ttf: list[Draws | None] = []
        self.ttr: list[Draws | None] = []
        for station in line.stations:
            name = station.name
            self.cycle.append(
                [
                    Draws.of(station.cycle_time_for(product), stream(seed, name, "cycle", 0, product))
                    for product in products
                ]
            )
            setup, failures = station.setup, station.failures
            self.setup.append(Draws.of(setup, stream(seed, name, "setup", 0)) if setup else None)
            self.scrap.append(Draws(stream(seed, name, "scrap", 0).random, 1) if station.scrap > 0 else None)
            if failures is None:
                self.ttf.append(None)
                self.ttr.append(None)
            else:
                self.ttf.append(Draws.of(failures.time_to_failure, stream(seed, name, "ttf", 0)))
                self.ttr.append(Draws.of(failures.time_to_repair, stream(seed, name, "ttr", 0)))

    def stream_of(self, kind: int, station: int, product: int) -> Draws:
        k = kernel
        found = {
            k.PRODUCT: self.products,
            k.ARRIVAL: self.arrivals,
            k.CYCLE: self.cycle[station][product],
            k.SETUP_TIME: self.setup[station],
            k.SCRAP: self.scrap[station],
            k.TTF: self.ttf[station],
            k.TTR: self.ttr[station],
        }[kind]
        assert found is not None
        return found

    def parts_for(self, end: float) -> int:
        """At most how many parts a run to `end` can release, judged from the means."""
        line = self.line
        released = math.inf
        if self.arrivals is not None:
            released = _count(end, line.release.interarrival.mean)  # type: ignore[union-attr]
        first = _count(end, line.stations[0].mean_cycle_time(line.product_mix))
        return _bounded(min(released, first))

    def draw_for(self, end: float, initial: int = 0) -> None:
        """Draw ahead what a run to `end` likely needs, guessed from the means (the kernel asks for more).

        `initial`: parts in the line at the start (a run from a state), which may pass every station.
        """
        line = self.line
        mix = line.product_mix
        released = math.inf
        if self.arrivals is not None:
            released = _count(end, line.release.interarrival.mean)  # type: ignore[union-attr]
        reach = released
        for index, station in enumerate(line.stations):
            reach = min(reach, _count(end, station.mean_cycle_time(mix)) + initial)
            parts = _bounded(reach)
            if index == 0:
                self.products.ensure(parts)
                if self.arrivals is not None:
                    self.arrivals.ensure(_bounded(released))
            for share, draws in zip(mix.values(), self.cycle[index], strict=True):
                draws.ensure(int(parts * share * 1.1) + 256)
            for draws in (self.setup[index], self.scrap[index]):
                if draws is not None:
                    draws.ensure(parts)
            failures = station.failures
            if failures is not None:
                failures_count = _bounded(_count(end, failures.time_to_failure.mean)) + 1
                self.ttf[index].ensure(failures_count)  # type: ignore[union-attr]
                self.ttr[index].ensure(failures_count)  # type: ignore[union-attr]

    def draw_like(self, used: np.ndarray, scale: float = 1.0, margin: float = 1.1) -> None:
        """Draw ahead `margin` times `scale` times what an earlier run used (`used` from the kernel).

        Rare streams (breakdowns, repairs) get a wider margin: their counts vary more.
        """
        k = kernel

        def ahead(kind: int, station: int, product: int, wider: float = 1.0) -> int:
            return int(used[kind, station, product] * scale * margin * wider) + 256

        self.products.ensure(ahead(k.PRODUCT, 0, 0))
        if self.arrivals is not None:
            self.arrivals.ensure(ahead(k.ARRIVAL, 0, 0))
        for index in range(len(self.line.stations)):
            for product, draws in enumerate(self.cycle[index]):
                draws.ensure(ahead(k.CYCLE, index, product))
            for kind, draws, wider in (
                (k.SETUP_TIME, self.setup[index], 1.0),
                (k.SCRAP, self.scrap[index], 1.0),
                (k.TTF, self.ttf[index], 1.2),
                (k.TTR, self.ttr[index], 1.2),
            ):
                if draws is not None:
                    draws.ensure(ahead(kind, index, 0, wider))


def _count(end: float, mean: float) -> float:
    return end / mean if mean > 0 else math.inf


def _bounded(count: float) -> int:
    return int(count * 1.2) + 256 if math.isfinite(count) else 4096

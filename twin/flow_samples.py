"""The random numbers of one run drawn ahead as arrays: the SimPy engine's streams, value for value.

The SimPy engine's samplers hand out one value at a time from blocks of 256 drawn
from each named stream (`twin.streams`): cycle times per machine and product, set-up
times, scrap draws, times to failure and to repair per machine, interarrival times
and the product mix of the releases. The flow engine needs the same values as
arrays. A `Draws` keeps one stream's generator and the values drawn so far, and draws
more exactly as the sampler would: in blocks of 256 where the block size matters
(truncated normal, empirical), in one call where numpy draws value by value.

The generators are seeded as `twin.streams.stream` seeds them, but all of a run's at
once (`streams`): numpy's SeedSequence takes about 0.1 ms a stream, as long as a short
run's recursion, so `seed_states` computes its words for every stream in one compiled call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
from numba import njit
from numpy.random.bit_generator import ISeedSequence

from twin import flow_kernel as kernel
from twin.distributions import (
    BLOCK,
    Constant,
    Exponential,
    Gamma,
    Lognormal,
    Normal,
    Triangular,
    Uniform,
    Weibull,
    _Dist,
)
from twin.line import InterarrivalRelease, Line
from twin.streams import RELEASE_OWNER, spawn_key

# numpy draws these value by value: one call of n values equals n/256 calls of 256
VALUE_BY_VALUE = (Exponential, Lognormal, Gamma, Uniform, Triangular, Weibull)
PRODUCT_BLOCK = 256  # `LineModel.next_product` draws the product mix 256 parts at a time


# numpy's SeedSequence (numpy/random/bit_generator.pyx): its constants, on 32-bit words
_M32 = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(16)
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_L = np.uint64(0xCA01F9DD)
_MIX_R = np.uint64(0x4973F715)
_POOL = 4  # SeedSequence's default pool size


@njit(cache=True, inline="always")
def _hashmix(value, hash_const):
    value ^= hash_const
    hash_const = (hash_const * _MULT_A) & _M32
    value = (value * hash_const) & _M32
    return value ^ (value >> _SHIFT), hash_const


@njit(cache=True, inline="always")
def _mix(x, y):
    result = (_MIX_L * x - _MIX_R * y) & _M32
    return result ^ (result >> _SHIFT)


@njit(cache=True)
def seed_states(entropy, lengths, out):
    """`SeedSequence(...).generate_state(4, uint64)` for each row of `entropy` (its first `lengths` words).

    A row holds the 32-bit words SeedSequence assembles from its entropy and spawn key
    (`_entropy`), one word per uint64; `out` gets the four 64-bit words PCG64 is seeded with.
    """
    pool = np.zeros(_POOL, dtype=np.uint64)
    words = np.zeros(2 * _POOL, dtype=np.uint64)
    for r in range(entropy.shape[0]):
        n = lengths[r]
        hash_const = _INIT_A
        for i in range(_POOL):
            value = entropy[r, i] if i < n else np.uint64(0)
            pool[i], hash_const = _hashmix(value, hash_const)
        for i_src in range(_POOL):
            for i_dst in range(_POOL):
                if i_src != i_dst:
                    value, hash_const = _hashmix(pool[i_src], hash_const)
                    pool[i_dst] = _mix(pool[i_dst], value)
        for i_src in range(_POOL, n):
            for i_dst in range(_POOL):
                value, hash_const = _hashmix(entropy[r, i_src], hash_const)
                pool[i_dst] = _mix(pool[i_dst], value)
        hash_const = _INIT_B
        for i in range(2 * _POOL):
            value = pool[i % _POOL] ^ hash_const
            hash_const = (hash_const * _MULT_B) & _M32
            value = (value * hash_const) & _M32
            words[i] = value ^ (value >> _SHIFT)
        for i in range(_POOL):
            out[r, i] = words[2 * i] | (words[2 * i + 1] << np.uint64(32))


def _words(value: int) -> list[int]:
    """An integer as SeedSequence takes it: 32-bit words, least significant first (0: one word)."""
    words = [value & 0xFFFFFFFF]
    value >>= 32
    while value:
        words.append(value & 0xFFFFFFFF)
        value >>= 32
    return words


@functools.lru_cache(maxsize=64)
def _spawn_entropy(keys: tuple[tuple[str, str, int, str], ...]) -> tuple[np.ndarray, np.ndarray]:
    """The words of each stream's spawn key, after room for the seed's (at least `_POOL` words)."""
    rows = [[word for part in spawn_key(*key) for word in _words(part)] for key in keys]
    width = max((len(row) for row in rows), default=0)
    entropy = np.zeros((len(rows), _POOL + width), dtype=np.uint64)
    for r, row in enumerate(rows):
        entropy[r, _POOL : _POOL + len(row)] = row
    return entropy, np.array([_POOL + len(row) for row in rows], dtype=np.int64)


class _Seeded(ISeedSequence):
    """A seed sequence whose state words were computed ahead, for numpy's PCG64."""

    def __init__(self, words: np.ndarray) -> None:
        self.words = words

    def generate_state(self, n_words: int, dtype: type = np.uint32) -> np.ndarray:
        assert n_words == _POOL and dtype is np.uint64, "only PCG64's request is known"
        return self.words


def streams(seed: int, keys: Sequence[tuple[str, str, int, str]]) -> list[np.random.Generator]:
    """`[twin.streams.stream(seed, *key) for key in keys]`, the same generators many times sooner."""
    spawn, lengths = _spawn_entropy(tuple(keys))
    run = _words(seed)
    if len(run) > _POOL:  # a seed of more than 128 bits: its words push the spawn key's along
        extra = len(run) - _POOL
        entropy = np.zeros((spawn.shape[0], spawn.shape[1] + extra), dtype=np.uint64)
        entropy[:, len(run) :] = spawn[:, _POOL:]
        lengths = lengths + extra
    else:  # SeedSequence pads the seed's words to the pool's size when there is a spawn key
        entropy = spawn.copy()
    entropy[:, : len(run)] = run
    out = np.zeros((len(keys), _POOL), dtype=np.uint64)
    seed_states(entropy, lengths, out)
    return [np.random.Generator(np.random.PCG64(_Seeded(words))) for words in out]


class Draws:
    """The values of one stream drawn so far; `ensure(n)` draws until there are at least n.

    `draw(rng, size)` draws `size` values from the stream's generator `rng`; `restart`
    begins again with another generator (the same stream in another replication).
    """

    def __init__(
        self,
        draw: Callable[[np.random.Generator, int], np.ndarray],
        block: int,
        rng: np.random.Generator | None = None,
    ) -> None:
        self._draw = draw
        self._block = block
        self.restart(rng)

    @classmethod
    def of(cls, dist: _Dist, rng: np.random.Generator | None) -> Draws:
        if isinstance(dist, Constant):
            return cls(lambda rng, size: np.full(size, dist.value, dtype=float), 1, rng)
        if isinstance(dist, VALUE_BY_VALUE):
            return cls(dist.draw, BLOCK, rng)
        return cls(lambda rng, size: _in_blocks(dist, rng, size), BLOCK, rng)

    def restart(self, rng: np.random.Generator | None) -> None:
        """Forget the values drawn; draw from `rng` from now on."""
        self._rng = rng
        self._chunks: list[np.ndarray] = []
        self.count = 0

    def ensure(self, n: int) -> None:
        if n <= self.count:
            return
        size = -(-(n - self.count) // self._block) * self._block
        self._chunks.append(np.asarray(self._draw(self._rng, size), dtype=float))  # type: ignore[arg-type]
        self.count += size

    @property
    def chunks(self) -> list[np.ndarray]:
        """The values drawn so far, in the pieces they were drawn in (`values` joins them)."""
        return list(self._chunks)

    @property
    def values(self) -> np.ndarray:
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0] if self._chunks else np.zeros(0)


def pack(streams: Sequence[Draws | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Streams (None: none there) as the kernels take them: every value drawn, one stream after
    the other, joined in one copy; each stream's start in it and its count."""
    count = np.array([0 if draws is None else draws.count for draws in streams], dtype=np.int64)
    start = np.zeros(len(count), dtype=np.int64)
    if len(count) > 1:
        start[1:] = np.cumsum(count)[:-1]
    chunks = [chunk for draws in streams if draws is not None for chunk in draws.chunks]
    return (np.concatenate(chunks) if chunks else np.zeros(0)), start, count


def _in_blocks(dist: _Dist, rng: np.random.Generator, size: int) -> np.ndarray:
    """`size // BLOCK` blocks of `dist.draw(rng, BLOCK)`, as the SimPy engine draws them.

    A truncated normal redraws its negative values within each block, so its blocks cannot be
    drawn in one call in general; but when one call of `size` normals has no negative value,
    no block would have redrawn anything, and the call gives the blocks' values (numpy draws
    them one after the other). Otherwise the generator is put back and the blocks are drawn.
    """
    if isinstance(dist, Normal):
        state = rng.bit_generator.state
        values = rng.normal(dist.mean_, dist.sd, size)
        if not (values < 0).any():
            return values
        rng.bit_generator.state = state
    return np.concatenate([dist.draw(rng, BLOCK) for _ in range(size // BLOCK)])


def product_draws(line: Line) -> Draws:
    """The release's product draws, as `LineModel.next_product` makes them (zeros for one product)."""
    mix = line.product_mix
    if len(mix) == 1:
        return Draws(lambda rng, size: np.zeros(size), 1)
    shares = list(mix.values())
    return Draws(lambda rng, size: choices(rng, shares, size).astype(float), PRODUCT_BLOCK)


def choices(rng: np.random.Generator, shares: list[float], size: int) -> np.ndarray:
    """`size` indices drawn by `shares`: the values `rng.choice(len(shares), size=n, p=shares)` gives
    in blocks of any n (it draws one uniform value per index and looks it up in the cumulative
    shares), in one call; the exact tests against the SimPy engine check that they stay equal."""
    cdf = np.asarray(shares, dtype=float).cumsum()
    cdf /= cdf[-1]
    return cdf.searchsorted(rng.random(size), side="right")


class RunSamples:
    """Every stream one run of `line` with `seed` draws from, keyed (kind, station, product).

    `reseed` starts over for another seed: replications of one line keep its streams' set-up.
    """

    def __init__(self, line: Line, seed: int) -> None:
        self.line = line
        products = list(line.product_mix)
        self._keys: list[tuple[str, str, int, str]] = []  # the streams of the run, in the order of `_draws`
        self._draws: list[Draws] = []

        def add(draws: Draws, owner: str, purpose: str, variant: str = "") -> Draws:
            self._keys.append((owner, purpose, 0, variant))
            self._draws.append(draws)
            return draws

        self.products = product_draws(line)
        if len(products) > 1:
            add(self.products, RELEASE_OWNER, "product")
        self.arrivals: Draws | None = None
        if isinstance(line.release, InterarrivalRelease):
            self.arrivals = add(Draws.of(line.release.interarrival, None), RELEASE_OWNER, "arrival")
        self.cycle: list[list[Draws]] = []
        self.setup: list[Draws | None] = []
        self.scrap: list[Draws | None] = []
        self.ttf: list[Draws | None] = []
        self.ttr: list[Draws | None] = []
        for station in line.stations:
            name = station.name
            self.cycle.append(
                [
                    add(Draws.of(station.cycle_time_for(product), None), name, "cycle", product)
                    for product in products
                ]
            )
            setup, failures = station.setup, station.failures
            self.setup.append(add(Draws.of(setup, None), name, "setup") if setup else None)
            scrap = Draws(lambda rng, size: rng.random(size), 1)
            self.scrap.append(add(scrap, name, "scrap") if station.scrap > 0 else None)
            if failures is None:
                self.ttf.append(None)
                self.ttr.append(None)
            else:
                self.ttf.append(add(Draws.of(failures.time_to_failure, None), name, "ttf"))
                self.ttr.append(add(Draws.of(failures.time_to_repair, None), name, "ttr"))
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Start over with the streams of the run seeded with `seed`: nothing drawn yet."""
        for draws, rng in zip(self._draws, streams(seed, self._keys), strict=True):
            draws.restart(rng)

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
        counts = used.tolist()  # (numpy's scalars are slow to index one by one)

        def ahead(kind: int, station: int, product: int, wider: float = 1.0) -> int:
            return int(counts[kind][station][product] * scale * margin * wider) + 256

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

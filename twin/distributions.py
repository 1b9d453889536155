"""Random durations of the shop floor: cycle times, times to failure, repair and set-up times.

Each distribution is a small validated model (`{dist: lognormal, mean: 55, cv: 0.2}`)
that knows its mean and draws samples in blocks from a numpy Generator. A bare number
or duration string stands for a constant.

Samplers hand out one float at a time from blocks drawn ahead, so that a long run
costs one numpy call per few hundred parts. Drawing in blocks does not change the
stream: the n-th sample is the same whatever the block size.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from foundation.durations import Duration, PositiveDuration
from foundation.models import Strict

Sampler = Callable[[], float]

BLOCK = 256


class _Dist(Strict):
    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def sampler(self, rng: np.random.Generator, block: int = BLOCK) -> Sampler:
        """A zero-argument callable returning the next sample of this stream."""
        return _blocks(self, rng, block).__next__

    def frozen(self) -> Any:
        """This distribution as a frozen scipy.stats distribution (for the residual life)."""
        raise NotImplementedError  # pragma: no cover - every continuous subclass overrides

    def residual(self, rng: np.random.Generator, elapsed: float) -> float:
        """The time still to run of a duration that has lasted `elapsed` already.

        Drawn from the distribution conditioned on X > elapsed, minus `elapsed`: by the
        inverse survival function at a uniform draw below S(elapsed), which keeps its
        precision far in the tail. A duration that cannot have lasted that long (past
        the upper bound of its support) ends now: 0.
        """
        if elapsed <= 0:
            return float(self.draw(rng, 1)[0])
        survival = _survival(self, elapsed)
        if survival <= 0.0:
            return 0.0
        u = rng.random()
        value = float(_frozen(self).isf(u * survival))
        return max(value - elapsed, 0.0)


@functools.lru_cache(maxsize=1024)
def _frozen(dist: _Dist) -> Any:
    """`dist.frozen()`, built once per distribution: scipy takes about a millisecond to build one,
    and a forecast draws residual lives from the same few distributions in every replication."""
    return dist.frozen()


@functools.lru_cache(maxsize=4096)
def _survival(dist: _Dist, elapsed: float) -> float:
    """S(elapsed) of `dist`, computed once: every replication of a forecast from one state asks for
    the same (about half of a residual life's time in scipy)."""
    return float(_frozen(dist).sf(elapsed))


def _blocks(dist: _Dist, rng: np.random.Generator, block: int) -> Iterator[float]:
    while True:
        yield from dist.draw(rng, block).tolist()


class Constant(_Dist):
    """The same duration every time: a cam-driven press, a fixed robot program."""

    dist: Literal["constant"] = "constant"
    value: Duration

    @property
    def mean(self) -> float:
        return self.value

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    def sampler(self, rng: np.random.Generator, block: int = BLOCK) -> Sampler:
        return itertools.repeat(self.value).__next__

    def residual(self, rng: np.random.Generator, elapsed: float) -> float:
        return max(self.value - max(elapsed, 0.0), 0.0)


class Exponential(_Dist):
    """Memoryless durations: times between random failures, manual repairs."""

    dist: Literal["exponential"]
    mean_: PositiveDuration = Field(alias="mean")

    @property
    def mean(self) -> float:
        return self.mean_

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self.mean_, size)

    def residual(self, rng: np.random.Generator, elapsed: float) -> float:
        return float(rng.exponential(self.mean_))  # memoryless: what has passed changes nothing


class Normal(_Dist):
    """A normal duration truncated at zero (negative draws are drawn again)."""

    dist: Literal["normal"]
    mean_: Duration = Field(alias="mean")
    sd: Duration

    @property
    def mean(self) -> float:
        if self.sd == 0:
            return self.mean_
        alpha = -self.mean_ / self.sd
        phi = math.exp(-0.5 * alpha * alpha) / math.sqrt(2 * math.pi)
        tail = 0.5 * math.erfc(alpha / math.sqrt(2))
        return self.mean_ + self.sd * phi / tail

    @model_validator(mode="after")
    def _reachable(self) -> Normal:
        if self.sd > 0 and self.mean_ < -6 * self.sd:
            raise ValueError("mean is so far below 0 that truncation leaves almost nothing")
        if self.sd == 0 and self.mean_ < 0:
            raise ValueError("mean must be >= 0 when sd is 0")
        return self

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        values = rng.normal(self.mean_, self.sd, size)
        negative = values < 0
        while negative.any():
            values[negative] = rng.normal(self.mean_, self.sd, int(negative.sum()))
            negative = values < 0
        return values

    def frozen(self) -> Any:
        if self.sd == 0:
            return _Point(self.mean_)
        from scipy import stats  # slow to import: only for a residual life

        return stats.truncnorm(-self.mean_ / self.sd, math.inf, loc=self.mean_, scale=self.sd)


class Lognormal(_Dist):
    """Right-skewed manual and machining times, given by mean and coefficient of variation."""

    dist: Literal["lognormal"]
    mean_: PositiveDuration = Field(alias="mean")
    cv: float = Field(ge=0)

    @property
    def mean(self) -> float:
        return self.mean_

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        sigma2 = math.log1p(self.cv * self.cv)
        mu = math.log(self.mean_) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), size)

    def frozen(self) -> Any:
        if self.cv == 0:
            return _Point(self.mean_)
        sigma2 = math.log1p(self.cv * self.cv)
        from scipy import stats  # slow to import: only for a residual life

        return stats.lognorm(math.sqrt(sigma2), scale=math.exp(math.log(self.mean_) - sigma2 / 2))


class Gamma(_Dist):
    """Sums of small delays (Erlang-like process steps), given by mean and cv."""

    dist: Literal["gamma"]
    mean_: PositiveDuration = Field(alias="mean")
    cv: float = Field(gt=0)

    @property
    def mean(self) -> float:
        return self.mean_

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        shape = 1.0 / (self.cv * self.cv)
        return rng.gamma(shape, self.mean_ / shape, size)

    def frozen(self) -> Any:
        shape = 1.0 / (self.cv * self.cv)
        from scipy import stats  # slow to import: only for a residual life

        return stats.gamma(shape, scale=self.mean_ / shape)


class Uniform(_Dist):
    """Any duration between two bounds, equally likely."""

    dist: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def frozen(self) -> Any:
        if self.high == self.low:
            return _Point(self.low)
        from scipy import stats  # slow to import: only for a residual life

        return stats.uniform(self.low, self.high - self.low)


class Triangular(_Dist):
    """Expert estimates: shortest, most likely and longest duration."""

    dist: Literal["triangular"]
    low: Duration
    mode: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> Triangular:
        if not self.low <= self.mode <= self.high:
            raise ValueError("needs low <= mode <= high")
        if self.low == self.high:
            raise ValueError("needs low < high")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.mode + self.high) / 3

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.triangular(self.low, self.mode, self.high, size)

    def frozen(self) -> Any:
        width = self.high - self.low
        from scipy import stats  # slow to import: only for a residual life

        return stats.triang((self.mode - self.low) / width, loc=self.low, scale=width)


class Weibull(_Dist):
    """Times to failure that depend on the machine's age: shape > 1 wears out (a bearing, a tool,
    a seal: the older, the likelier to fail), shape < 1 fails early (infant mortality), shape 1 is
    the exponential. Given by `shape` and `scale`, or by `shape` and `mean`
    (scale = mean / Γ(1 + 1/shape)). S(t) = exp(-(t/scale)^shape).
    """

    dist: Literal["weibull"]
    shape: float = Field(gt=0)
    scale_: PositiveDuration | None = Field(default=None, alias="scale")
    mean_: PositiveDuration | None = Field(default=None, alias="mean")

    @model_validator(mode="after")
    def _scale_or_mean(self) -> Weibull:
        if (self.scale_ is None) == (self.mean_ is None):
            raise ValueError("give exactly one of scale or mean")
        if math.lgamma(1 + 2 / self.shape) > 700:  # Γ(1 + 2/k) overflows a float below k ≈ 0.012
            raise ValueError(f"shape {self.shape:g} is too small: its mean and variance overflow a float")
        return self

    @property
    def scale(self) -> float:
        if self.scale_ is not None:
            return self.scale_
        return self.mean_ / math.gamma(1 + 1 / self.shape)  # type: ignore[operator]

    @property
    def mean(self) -> float:
        if self.mean_ is not None:
            return self.mean_
        return self.scale * math.gamma(1 + 1 / self.shape)

    @property
    def variance(self) -> float:
        k = self.shape
        return self.scale**2 * (math.gamma(1 + 2 / k) - math.gamma(1 + 1 / k) ** 2)

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return self.scale * rng.weibull(self.shape, size)

    def frozen(self) -> Any:
        from scipy import stats  # slow to import: only for a residual life

        return stats.weibull_min(self.shape, scale=self.scale)

    def residual(self, rng: np.random.Generator, elapsed: float) -> float:
        """The conditional inverse survival function in closed form: with a = (elapsed/scale)^shape,
        S(elapsed + r) / S(elapsed) = exp(-E) for a standard exponential E gives
        r = elapsed ((1 + E/a)^(1/shape) - 1), written with log1p and expm1 so that neither a
        long-lived machine (a large) nor a short rest loses precision. Shape 1: r = scale E."""
        if elapsed <= 0:
            return float(self.draw(rng, 1)[0])
        a = (elapsed / self.scale) ** self.shape
        e = -math.log1p(-rng.random())  # a standard exponential by inversion of one uniform
        if a == 0.0:  # elapsed is negligible against the scale
            return self.scale * e ** (1 / self.shape)
        return elapsed * math.expm1(math.log1p(e / a) / self.shape)


class Empirical(_Dist):
    """Recorded durations, resampled with replacement (bootstrap)."""

    dist: Literal["empirical"]
    samples: list[Duration] = Field(min_length=1)

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples))

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(np.asarray(self.samples, dtype=float), size)

    def residual(self, rng: np.random.Generator, elapsed: float) -> float:
        """A recorded duration longer than `elapsed`, picked at random, minus `elapsed` (0: none is)."""
        if elapsed <= 0:
            return float(self.draw(rng, 1)[0])
        longer = np.asarray([value for value in self.samples if value > elapsed], dtype=float)
        if not len(longer):
            return 0.0
        return float(rng.choice(longer)) - elapsed


class _Point:
    """A degenerate distribution (all mass at one value) with the two methods `residual` uses."""

    def __init__(self, value: float) -> None:
        self.value = value

    def sf(self, x: float) -> float:
        return 1.0 if x < self.value else 0.0

    def isf(self, q: float) -> float:
        return self.value


def _constant_shorthand(value: Any) -> Any:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


Distribution = Annotated[
    Constant | Exponential | Normal | Lognormal | Gamma | Uniform | Triangular | Weibull | Empirical,
    Field(discriminator="dist"),
    BeforeValidator(_constant_shorthand),
]

# the `dist` tags of the union's members, in its order: the union is the one list of distributions
DIST_NAMES: tuple[str, ...] = tuple(
    get_args(member.model_fields["dist"].annotation)[0] for member in get_args(get_args(Distribution)[0])
)

"""Output analysis of replications: sample mean, standard deviation, Student-t 95% half-width.

Replications of a terminating (or warmed-up) simulation are independent and
identically distributed, so the classic interval applies:
mean ± t(0.975, n-1) · s / √n. The sequential rule adds replications until the
half-width is small enough (Law, *Simulation Modeling and Analysis*, §9.4.1):
after each round, a scenario that misses the target gets the number of
replications its current variance estimate says it needs, n·(h/h*)², at least
one more and at most `max`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import stdtrit


@dataclass(frozen=True)
class Estimate:
    """Mean, sample standard deviation and 95% half-width of n observations (NaN where undefined)."""

    mean: float
    std: float
    ci95: float
    n: int


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided Student-t quantile for `df` degrees of freedom."""
    return float(stdtrit(df, 0.5 + level / 2))


def estimate(values: Sequence[float] | np.ndarray) -> Estimate:
    """Summarise observations; missing values (None, NaN) are left out."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    data = data[~np.isnan(data)]
    n = len(data)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(data.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1)
    std = float(data.std(ddof=1))
    return Estimate(mean, std, t_quantile(n - 1) * std / math.sqrt(n), n)


def precise_enough(est: Estimate, *, relative: float | None, absolute: float | None) -> bool:
    """True when the half-width meets the target (relative to |mean|, or absolute)."""
    if est.n < 2 or math.isnan(est.ci95):
        return False
    if absolute is not None:
        return est.ci95 <= absolute
    assert relative is not None
    return est.ci95 <= relative * abs(est.mean)


def replications_needed(
    est: Estimate, done: int, *, relative: float | None, absolute: float | None, maximum: int
) -> int:
    """How many replications in total a scenario should have after this round."""
    if precise_enough(est, relative=relative, absolute=absolute) or done >= maximum:
        return done
    target = absolute if absolute is not None else (relative or 0.0) * abs(est.mean)
    if target <= 0 or math.isnan(est.ci95):
        return maximum
    needed = math.ceil(done * (est.ci95 / target) ** 2)
    return min(maximum, max(done + 1, needed))

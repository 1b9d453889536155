"""Fitting duration distributions to recorded samples: cycle times, times to failure, repair times.

Candidate families are fitted by maximum likelihood (scipy.stats, location fixed at 0 for the
positive families) and ranked by Akaike's information criterion; the winner is returned as a
line-file distribution (`{dist: lognormal, mean, cv}`) with its Kolmogorov-Smirnov statistic and
p-value as the goodness of fit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

CANDIDATES = ("exponential", "gamma", "lognormal", "normal")


@dataclass(frozen=True)
class Fit:
    """One fitted family: the line-file distribution, its log-likelihood, AIC and KS statistic."""

    family: str
    spec: dict[str, Any]
    log_likelihood: float
    aic: float
    ks_statistic: float
    ks_pvalue: float


@dataclass(frozen=True)
class FitReport:
    """The chosen fit, every candidate tried, and the sample it was fitted to."""

    best: Fit
    candidates: list[Fit] = field(default_factory=list)
    n: int = 0
    mean: float = 0.0
    cv: float = 0.0

    @property
    def report_mean(self) -> float:
        """The fitted distribution's mean."""
        spec = self.best.spec
        return float(spec["mean"] if "mean" in spec else spec["value"])


def _fit_family(family: str, data: np.ndarray) -> Fit | None:
    mean = float(data.mean())
    sd = float(data.std(ddof=1)) if len(data) > 1 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if family == "exponential":
            _, scale = stats.expon.fit(data, floc=0)
            frozen, params = stats.expon(scale=scale), 1
            spec = {"dist": "exponential", "mean": float(scale)}
        elif family == "gamma":
            shape, _, scale = stats.gamma.fit(data, floc=0)
            frozen, params = stats.gamma(shape, scale=scale), 2
            spec = {"dist": "gamma", "mean": float(shape * scale), "cv": float(1 / math.sqrt(shape))}
        elif family == "lognormal":
            sigma, _, scale = stats.lognorm.fit(data, floc=0)
            frozen, params = stats.lognorm(sigma, scale=scale), 2
            fitted_mean = float(scale * math.exp(sigma * sigma / 2))
            cv = float(math.sqrt(math.expm1(sigma * sigma)))
            spec = {"dist": "lognormal", "mean": fitted_mean, "cv": cv}
        elif family == "normal":
            frozen, params = stats.norm(mean, sd), 2
            spec = {"dist": "normal", "mean": mean, "sd": sd}
        else:  # pragma: no cover - guarded by CANDIDATES
            raise ValueError(family)
        log_likelihood = float(np.sum(frozen.logpdf(data)))
    if not math.isfinite(log_likelihood):
        return None
    ks = stats.kstest(data, frozen.cdf)
    return Fit(
        family=family,
        spec=spec,
        log_likelihood=log_likelihood,
        aic=2 * params - 2 * log_likelihood,
        ks_statistic=float(ks.statistic),
        ks_pvalue=float(ks.pvalue),
    )


def fit_durations(samples: Any, families: tuple[str, ...] = CANDIDATES) -> FitReport:
    """Fit every candidate family to `samples` (seconds, > 0) and pick the lowest AIC."""
    data = np.asarray(samples, dtype=float)
    data = data[np.isfinite(data) & (data > 0)]
    if len(data) < 2:
        raise ValueError(f"need at least 2 positive samples, got {len(data)}")
    mean = float(data.mean())
    sd = float(data.std(ddof=1))
    if sd <= 1e-9 * mean:
        constant = Fit("constant", {"dist": "constant", "value": mean}, math.inf, -math.inf, 0.0, 1.0)
        return FitReport(best=constant, candidates=[constant], n=len(data), mean=mean, cv=0.0)
    fits = [fit for family in families if (fit := _fit_family(family, data)) is not None]
    if not fits:
        raise ValueError("no candidate distribution could be fitted")
    best = min(fits, key=lambda fit: fit.aic)
    return FitReport(best=best, candidates=fits, n=len(data), mean=mean, cv=sd / mean)

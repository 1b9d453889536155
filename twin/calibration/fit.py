"""Fitting duration distributions to recorded samples: cycle times, times to failure, repair times.

Candidate families are fitted by maximum likelihood (scipy.stats, location fixed at 0 for the
positive families) and ranked by Akaike's information criterion; the winner is returned as a
line-file distribution (`{dist: lognormal, mean, cv}`) with its Kolmogorov-Smirnov statistic and
p-value as the goodness of fit.

Times to failure are different twice over: the last one of each machine is cut off by the end of
the window (right-censored), and the exponential is the Weibull with shape 1. `fit_times_to_failure`
maximises the censored likelihood and keeps the exponential unless the likelihood-ratio test
rejects shape 1 at 5 % (its 95 % profile-likelihood interval of the shape leaves out 1): AIC's
penalty of 2 would call memoryless machines aging in one calibration of six.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

CANDIDATES = ("exponential", "gamma", "lognormal", "normal")
TTF_CANDIDATES = ("exponential", "weibull")
CHI2_1_95 = 3.841458820694124  # the chi-square's 95 % quantile with one degree of freedom
SHAPE_BOUNDS = (0.02, 50.0)  # the Weibull shapes the censored fit searches


@dataclass(frozen=True)
class Fit:
    """One fitted family: the line-file distribution, its log-likelihood, AIC and KS statistic."""

    family: str
    spec: dict[str, Any]
    log_likelihood: float
    aic: float
    ks_statistic: float
    ks_pvalue: float
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)  # per parameter, where known


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
        elif family == "weibull":
            shape, _, scale = stats.weibull_min.fit(data, floc=0)
            frozen, params = stats.weibull_min(shape, scale=scale), 2
            spec = {
                "dist": "weibull",
                "shape": float(shape),
                "mean": float(scale * math.gamma(1 + 1 / shape)),
            }
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


def fit_times_to_failure(complete: Any, censored: Any = ()) -> FitReport:
    """Exponential or Weibull times to failure, by maximum likelihood with right-censoring.

    `complete`: failure-clock times from a renewal (a repair's end) to the next failure;
    `censored`: failure-clock times from a renewal to the end of the window, without a failure.
    The likelihood is prod f(complete) * prod S(censored). The exponential's estimate is the
    exposure over the failures; the Weibull's scale has the closed form scale^k = sum t^k / r
    (r failures), so the shape maximises a profile likelihood of one variable, and its 95 %
    interval is where twice the profile stays within 3.84 of its maximum. The Weibull wins when
    that interval leaves out 1 (written `{dist: weibull, shape, mean}`); both fits' AIC and the
    KS statistic of the complete times are reported.
    """
    from scipy import optimize, special

    done = np.asarray(complete, dtype=float)
    cut = np.asarray(censored, dtype=float)
    done, cut = done[np.isfinite(done) & (done > 0)], cut[np.isfinite(cut) & (cut > 0)]
    r = len(done)
    if r < 2:
        raise ValueError(f"need at least 2 complete times to failure, got {r}")
    unit = float(np.exp(np.log(done).mean()))  # fit in units of the geometric mean: t^k stays finite
    logs = np.log(np.concatenate([done, cut]) / unit)
    sum_log_done = float(logs[:r].sum())

    def profile(log_shape: float) -> float:
        """The log-likelihood at this shape and its best scale, in `unit`s."""
        k = math.exp(log_shape)
        return (
            r * log_shape
            - r * (float(special.logsumexp(k * logs)) - math.log(r))
            + (k - 1) * sum_log_done
            - r
        )

    low, high = (math.log(bound) for bound in SHAPE_BOUNDS)
    found = optimize.minimize_scalar(
        lambda x: -profile(x), bounds=(low, high), method="bounded", options={"xatol": 1e-10}
    )
    log_shape, best = float(found.x), -float(found.fun)
    shape = math.exp(log_shape)
    log_scale = (float(special.logsumexp(shape * logs)) - math.log(r)) / shape
    scale = unit * math.exp(log_scale)

    def edge(bound: float) -> float:
        def gap(x: float) -> float:
            return profile(x) - (best - CHI2_1_95 / 2)

        return math.exp(optimize.brentq(gap, log_shape, bound, xtol=1e-12) if gap(bound) < 0 else bound)

    shape_ci = (edge(low), edge(high))
    shift = -r * math.log(unit)  # the log-likelihood in seconds: each density scales by 1/unit
    exposure = float(done.sum() + cut.sum())
    mean = exposure / r
    fits = []
    for family, frozen, log_likelihood, spec, params, ci95 in (
        (
            "exponential",
            stats.expon(scale=mean),
            profile(0.0) + shift,
            {"dist": "exponential", "mean": mean},
            1,
            {"mean": _exponential_ci(mean, r)},
        ),
        (
            "weibull",
            stats.weibull_min(shape, scale=scale),
            best + shift,
            {"dist": "weibull", "shape": shape, "mean": scale * math.gamma(1 + 1 / shape)},
            2,
            {"shape": shape_ci},
        ),
    ):
        ks = stats.kstest(done, frozen.cdf)
        fits.append(
            Fit(
                family,
                spec,
                log_likelihood,
                2 * params - 2 * log_likelihood,
                float(ks.statistic),
                float(ks.pvalue),
                ci95,
            )
        )
    aging = not shape_ci[0] <= 1.0 <= shape_ci[1]
    sd = float(done.std(ddof=1))
    return FitReport(
        best=fits[1] if aging else fits[0],
        candidates=fits,
        n=r,
        mean=float(done.mean()),
        cv=sd / float(done.mean()),
    )


def _exponential_ci(mean: float, failures: int) -> tuple[float, float]:
    """The exact 95 % interval of an exponential mean from `failures` failures over a fixed exposure
    (time-censored data): 2T / chi2(0.975; 2r + 2) .. 2T / chi2(0.025; 2r)."""
    exposure = mean * failures
    return (
        float(2 * exposure / stats.chi2.ppf(0.975, 2 * failures + 2)),
        float(2 * exposure / stats.chi2.ppf(0.025, 2 * failures)),
    )

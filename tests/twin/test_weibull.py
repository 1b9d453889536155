"""The Weibull time to failure against its closed forms: moments, residual life, the exponential case.

Every check has a fixed seed and a tolerance of 3.29 standard errors (a 99.9 % interval) computed
from the closed-form moments, so a correct sampler fails none of them by more than chance allows,
and the seeds make the outcome reproducible.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pydantic import TypeAdapter
from scipy import integrate, stats

from twin.distributions import Distribution, Exponential, Weibull

Z999 = 3.29  # two-sided 99.9 %
N = 200_000


def raw_moment(dist: Weibull, r: int) -> float:
    """E[X^r] = scale^r Γ(1 + r/shape)."""
    return dist.scale**r * math.gamma(1 + r / dist.shape)


def mean_residual_life(dist: Weibull, elapsed: float) -> float:
    """E[X - t | X > t] = ∫_t^∞ S(x) dx / S(t), by quadrature of S(x)/S(t) = exp(a - ((x/scale)^k))."""
    a = (elapsed / dist.scale) ** dist.shape

    def ratio(x: float) -> float:
        return math.exp(a - (x / dist.scale) ** dist.shape)

    value, error = integrate.quad(ratio, elapsed, math.inf, epsabs=0, epsrel=1e-11, limit=200)
    assert error < 1e-8 * value
    return value


WEIBULLS = [
    Weibull(dist="weibull", shape=2.5, mean=100),
    Weibull(dist="weibull", shape=0.7, scale=30),
    Weibull(dist="weibull", shape=1.0, scale=50),
    Weibull(dist="weibull", shape=8.0, mean="2h"),
]


def test_mean_form_and_scale_form_are_the_same_distribution() -> None:
    by_mean = TypeAdapter(Distribution).validate_python({"dist": "weibull", "shape": 2.5, "mean": "1h"})
    assert isinstance(by_mean, Weibull)
    assert by_mean.scale == pytest.approx(3600 / math.gamma(1.4), rel=1e-15)
    by_scale = Weibull(dist="weibull", shape=2.5, scale=by_mean.scale)
    assert by_scale.mean == pytest.approx(3600, rel=1e-14)
    assert by_scale.frozen().mean() == pytest.approx(3600, rel=1e-12)  # scipy agrees
    assert by_mean.variance == pytest.approx(by_scale.frozen().var(), rel=1e-12)
    same = np.random.default_rng(4)
    assert np.allclose(by_mean.draw(same, 100), by_scale.draw(np.random.default_rng(4), 100), rtol=1e-14)


@pytest.mark.parametrize("dist", WEIBULLS, ids=lambda d: f"k{d.shape:g}")
def test_sample_moments_match_the_closed_form(dist: Weibull) -> None:
    sample = dist.draw(np.random.default_rng(18), N)
    assert (sample > 0).all()
    m1, m2, m3, m4 = (raw_moment(dist, r) for r in (1, 2, 3, 4))
    variance = m2 - m1 * m1
    assert dist.mean == pytest.approx(m1, rel=1e-12) and dist.variance == pytest.approx(variance, rel=1e-12)
    assert abs(sample.mean() - m1) <= Z999 * math.sqrt(variance / N)
    # the sample variance's standard error: sqrt((mu4 - sigma^4) / n), mu4 the central 4th moment
    mu4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    assert abs(sample.var(ddof=1) - variance) <= Z999 * math.sqrt((mu4 - variance**2) / N)


@pytest.mark.parametrize("dist", WEIBULLS, ids=lambda d: f"k{d.shape:g}")
@pytest.mark.parametrize("age", [0.0, 0.3, 1.0, 2.2])
def test_residual_life_is_the_conditional_distribution(dist: Weibull, age: float) -> None:
    """The residual given an age of `age` scales: its mean is the exact mean residual life, its
    distribution is S(t + r) / S(t) (KS), and each draw is scipy's inverse survival function at the
    same uniform, conditioned on survival to t."""
    elapsed = age * dist.scale
    rng = np.random.default_rng(7)
    n = 40_000
    residuals = np.array([dist.residual(rng, elapsed) for _ in range(n)])
    assert (residuals >= 0).all()
    exact = mean_residual_life(dist, elapsed)
    a = (elapsed / dist.scale) ** dist.shape
    m2 = (
        2
        * integrate.quad(lambda r: r * math.exp(a - ((elapsed + r) / dist.scale) ** dist.shape), 0, math.inf)[
            0
        ]
    )
    sd = math.sqrt(m2 - exact * exact)  # the residual's standard deviation: E[R^2] = 2 ∫ r S(t+r)/S(t) dr
    assert abs(residuals.mean() - exact) <= Z999 * sd / math.sqrt(n)
    frozen = stats.weibull_min(dist.shape, scale=dist.scale)
    survival = frozen.sf(elapsed)
    assert stats.kstest(residuals, lambda r: 1 - frozen.sf(elapsed + r) / survival).pvalue > 0.001
    if elapsed > 0:  # draw for draw: the closed form is scipy's isf at the uniform the draw used
        uniforms = np.random.default_rng(7).random(200)
        expected = frozen.isf((1 - uniforms) * survival) - elapsed
        assert np.allclose(residuals[:200], expected, rtol=1e-9, atol=1e-9 * dist.scale)


def test_wear_out_shortens_the_residual_life_and_early_failures_lengthen_it() -> None:
    wear, early = WEIBULLS[0], WEIBULLS[1]
    ages = [0.0, 0.5, 1.0, 2.0, 4.0]
    wear_mrl = [mean_residual_life(wear, age * wear.scale) for age in ages]
    early_mrl = [mean_residual_life(early, age * early.scale) for age in ages]
    assert wear_mrl[0] == pytest.approx(wear.mean, rel=1e-9)
    assert all(b < a for a, b in itertools.pairwise(wear_mrl))
    assert all(b > a for a, b in itertools.pairwise(early_mrl))


def test_residual_far_in_the_tail_keeps_its_precision() -> None:
    """At 6 scales of age a shape-2.5 machine's survival is e^-88: the closed form still gives the
    residual, whose mean there is scale / (k a^(1-1/k)) to first order (a = 6^2.5)."""
    dist = WEIBULLS[0]
    elapsed = 6 * dist.scale
    rng = np.random.default_rng(3)
    residuals = np.array([dist.residual(rng, elapsed) for _ in range(20_000)])
    exact = mean_residual_life(dist, elapsed)
    assert exact == pytest.approx(dist.scale / (2.5 * 6**1.5), rel=0.05)
    assert abs(residuals.mean() - exact) <= Z999 * residuals.std(ddof=1) / math.sqrt(len(residuals))


def test_shape_one_is_the_exponential_and_memoryless() -> None:
    weibull = Weibull(dist="weibull", shape=1, mean=40)
    exponential = Exponential(dist="exponential", mean=40)
    # numpy's Weibull with shape 1 is its standard exponential: the same draws from the same stream
    a = weibull.draw(np.random.default_rng(9), 10_000)
    b = exponential.draw(np.random.default_rng(9), 10_000)
    assert np.allclose(a, b, rtol=1e-12)
    # and in distribution against an independent exponential sample
    other = exponential.draw(np.random.default_rng(10), 10_000)
    assert stats.ks_2samp(a, other).pvalue > 0.001
    # memoryless: the residual at any age is the exponential itself, mean 40
    for elapsed in (0.0, 10.0, 400.0, 4000.0):
        rng = np.random.default_rng(11)
        residuals = np.array([weibull.residual(rng, elapsed) for _ in range(20_000)])
        assert mean_residual_life(weibull, elapsed) == pytest.approx(40, rel=1e-9)
        assert abs(residuals.mean() - 40) <= Z999 * 40 / math.sqrt(len(residuals))
        assert stats.kstest(residuals, stats.expon(scale=40).cdf).pvalue > 0.001

"""The age-replacement reference (tests/twin/exact/maintenance.py) against hand-derived values and a
direct simulation of its renewal cycles: wear-out has an interior optimum, memoryless machines none."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, optimize

from tests.twin.exact.maintenance import availability, cost_rate, optimal_age, survival, uptime


@pytest.mark.parametrize("shape", [0.7, 1.0, 2.5, 6.0])
@pytest.mark.parametrize("age", [0.1, 1.0, 3.0])
def test_uptime_is_the_integral_of_the_survival(shape: float, age: float) -> None:
    scale = 50.0
    exact = integrate.quad(lambda t: survival(t, shape, scale), 0, age * scale, epsrel=1e-12)[0]
    assert uptime(age * scale, shape, scale) == pytest.approx(exact, rel=1e-10)


def test_memoryless_machines_have_no_interior_optimum() -> None:
    """Shape 1: C(T) = c_f/θ + c_p e^(-T/θ) / (θ (1 - e^(-T/θ))), decreasing in T: never service."""
    theta, c_p, c_f = 100.0, 1.0, 10.0
    ages = theta * np.geomspace(1e-3, 10, 60)
    costs = [cost_rate(t, 1.0, theta, c_p, c_f) for t in ages]
    for t, c in zip(ages, costs, strict=True):
        q = math.exp(-t / theta)
        assert c == pytest.approx(c_f / theta + c_p * q / (theta * (1 - q)), rel=1e-10)
    assert all(b < a for a, b in itertools.pairwise(costs))
    optimum = optimal_age(1.0, theta, c_p, c_f)
    assert not optimum.interior and optimum.cost_rate == pytest.approx(c_f / theta) and optimum.saving == 0


def test_wear_out_has_an_interior_optimum_that_meets_the_first_order_condition() -> None:
    """Zero durations: dC/dT = 0 ⇔ h(T) ∫0^T S - F(T) = c_p / (c_f - c_p); there C* = (c_f - c_p) h(T*)."""
    shape, scale, c_p, c_f = 2.5, 1000.0, 1.0, 10.0
    optimum = optimal_age(shape, scale, c_p, c_f)
    assert optimum.interior and 0 < optimum.age < scale
    t = optimum.age
    hazard = shape / scale * (t / scale) ** (shape - 1)
    assert hazard * uptime(t, shape, scale) - (1 - survival(t, shape, scale)) == pytest.approx(
        c_p / (c_f - c_p), rel=1e-6
    )
    assert optimum.cost_rate == pytest.approx((c_f - c_p) * hazard, rel=1e-6)
    assert optimum.saving > 0.3
    # a little either side costs more
    assert (
        cost_rate(0.9 * t, shape, scale, c_p, c_f)
        > optimum.cost_rate
        < cost_rate(1.1 * t, shape, scale, c_p, c_f)
    )


def test_shape_two_by_hand() -> None:
    """k = 2, λ = 1: ∫0^T S = (√π/2) erf(T), h(T) = 2T; the condition 2T (√π/2) erf(T) - (1 - e^(-T²))
    = c_p / (c_f - c_p) solved with erf alone (no incomplete gamma), for c_p = 1, c_f = 5."""
    target = 1 / (5 - 1)
    by_hand = optimize.brentq(
        lambda t: math.sqrt(math.pi) * t * math.erf(t) - (1 - math.exp(-t * t)) - target, 1e-6, 10, xtol=1e-14
    )
    optimum = optimal_age(2.0, 1.0, 1.0, 5.0)
    assert optimum.age == pytest.approx(by_hand, rel=1e-6)
    assert optimum.cost_rate == pytest.approx(4 * 2 * by_hand, rel=1e-6)


def test_no_optimum_when_a_failure_costs_no_more_than_a_service() -> None:
    assert not optimal_age(3.0, 100.0, 5.0, 5.0).interior
    assert not optimal_age(3.0, 100.0, 6.0, 5.0).interior


def test_cost_rate_matches_a_simulation_of_its_renewal_cycles() -> None:
    """Draw 200 000 cycles min(X, T) plus the service or repair time, with costs: the renewal-reward
    ratio lies within 3.29 standard errors (delta method) of C(T), and the running share of A(T)."""
    shape, scale, c_p, c_f, d_p, d_f = 2.5, 1000.0, 1.0, 10.0, 20.0, 120.0
    age = optimal_age(shape, scale, c_p, c_f, d_p, d_f).age
    x = scale * np.random.default_rng(18).weibull(shape, 200_000)
    failed = x < age
    run = np.minimum(x, age)
    length = run + np.where(failed, d_f, d_p)
    cost = np.where(failed, c_f, c_p)
    for reward, exact in (
        (cost, cost_rate(age, shape, scale, c_p, c_f, d_p, d_f)),
        (run, availability(age, shape, scale, d_p, d_f)),
    ):
        ratio = reward.sum() / length.sum()
        residual = reward - ratio * length  # delta method for a ratio of means
        standard_error = residual.std(ddof=1) / (length.mean() * math.sqrt(len(x)))
        assert abs(ratio - exact) <= 3.29 * standard_error

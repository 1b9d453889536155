"""The age-replacement policy in closed form: service a machine at age T, or when it fails first.

A machine whose time to failure X has survival S renews at min(X, T): by a preventive service
(cost c_p, duration d_p) when it reaches age T, or by a repair after a failure (cost c_f,
duration d_f). By the renewal-reward theorem the long-run cost per unit time is

    C(T) = (c_p S(T) + c_f F(T)) / (∫0^T S(t) dt + d_p S(T) + d_f F(T)),

and the long-run share of time the machine runs (its availability) is ∫0^T S / (the same cycle).
For a Weibull (shape k, scale λ), ∫0^T S(t) dt = λ Γ(1 + 1/k) P(1/k, (T/λ)^k), P the regularised
lower incomplete gamma function. With k > 1 (wear-out) and c_f > c_p, C has an interior minimum;
with k = 1 (memoryless) C falls all the way to T = ∞ (never service): c_f / (mean + d_f).
This is the exact reference for preventive maintenance when it lands in the engine.

    >>> round(cost_rate(math.inf, shape=1, scale=100, preventive=1, failure=5), 6)
    0.05
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize, special


def survival(t: float, shape: float, scale: float) -> float:
    return math.exp(-((t / scale) ** shape))


def uptime(age: float, shape: float, scale: float) -> float:
    """∫0^age S(t) dt, the expected running time of one cycle (the mean when age is infinite)."""
    mean = scale * math.gamma(1 + 1 / shape)
    if math.isinf(age):
        return mean
    return mean * float(special.gammainc(1 / shape, (age / scale) ** shape))


def cycle(age: float, shape: float, scale: float, d_p: float = 0.0, d_f: float = 0.0) -> tuple[float, float]:
    """(S(age), expected cycle length): running time plus the service or repair that ends it."""
    kept = 0.0 if math.isinf(age) else survival(age, shape, scale)
    return kept, uptime(age, shape, scale) + d_p * kept + d_f * (1 - kept)


def cost_rate(
    age: float,
    shape: float,
    scale: float,
    preventive: float,
    failure: float,
    d_p: float = 0.0,
    d_f: float = 0.0,
) -> float:
    """C(T): long-run cost per unit time of servicing at age `age` (math.inf: never)."""
    kept, length = cycle(age, shape, scale, d_p, d_f)
    return (preventive * kept + failure * (1 - kept)) / length


def availability(age: float, shape: float, scale: float, d_p: float = 0.0, d_f: float = 0.0) -> float:
    """The long-run share of time the machine runs under the policy."""
    return uptime(age, shape, scale) / cycle(age, shape, scale, d_p, d_f)[1]


@dataclass(frozen=True)
class Optimum:
    """The best service age (math.inf: never service) and its cost rate; `interior` when finite."""

    age: float
    cost_rate: float
    never_cost_rate: float  # C(∞) = c_f / (mean + d_f)

    @property
    def interior(self) -> bool:
        return math.isfinite(self.age)

    @property
    def saving(self) -> float:
        """The share of the run-to-failure cost rate that servicing at the best age saves."""
        return 1 - self.cost_rate / self.never_cost_rate


def optimal_age(
    shape: float, scale: float, preventive: float, failure: float, d_p: float = 0.0, d_f: float = 0.0
) -> Optimum:
    """The age minimising C, searched on log T over [1e-4, 1e3] scales by bounded Brent; an
    optimum that is not below C(∞) by a relative 1e-9 (the memoryless case) is no optimum."""
    never = cost_rate(math.inf, shape, scale, preventive, failure, d_p, d_f)

    def cost(log_age: float) -> float:
        return cost_rate(scale * math.exp(log_age), shape, scale, preventive, failure, d_p, d_f)

    found = optimize.minimize_scalar(
        cost, bounds=(math.log(1e-4), math.log(1e3)), method="bounded", options={"xatol": 1e-12}
    )
    best = float(found.fun)
    if best >= never * (1 - 1e-9):
        return Optimum(math.inf, never, never)
    return Optimum(scale * math.exp(float(found.x)), best, never)

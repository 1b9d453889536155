"""The selection stage alone (KN): on candidates with known means it picks the best as often as promised.

Observations are synthetic normal draws with a fixed seed per macro-replication: a common
term shared by all candidates in the same replication (common random numbers) plus noise
of each candidate's own. In the slippage configuration every other candidate trails the
best by exactly delta, the least favourable case of the indifference-zone guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from twin.optimisation.selection import kn, kn_constants

MACRO = 400


def _draw_from(means: np.ndarray, sigmas: np.ndarray, common: float, rng: np.random.Generator):
    calls: list[tuple[list[int], int, int]] = []

    def draw(indices: Sequence[int], start: int, stop: int) -> np.ndarray:
        calls.append((list(indices), start, stop))
        shared = common * rng.normal(size=(1, stop - start))
        noise = sigmas[list(indices)][:, None] * rng.normal(size=(len(indices), stop - start))
        return means[list(indices)][:, None] + shared + noise

    return draw, calls


def _lower_bound(alpha: float, macro: int) -> float:
    """The fewest correct selections out of `macro` that 1 - alpha allows: 3 binomial standard errors."""
    return macro * (1 - alpha) - 3 * math.sqrt(macro * alpha * (1 - alpha))


@pytest.mark.parametrize(
    ("means", "sigmas", "common", "delta", "alpha"),
    [
        # slippage: four candidates exactly delta behind the best, equal variances, strong CRN
        ([0.0, -0.5, -0.5, -0.5, -0.5], [0.6] * 5, 0.8, 0.5, 0.05),
        # spread means, unequal variances, best not first
        ([-1.2, -0.4, 0.3, -0.3, -2.0, -0.9], [1.0, 0.5, 0.8, 1.5, 0.3, 0.7], 0.5, 0.6, 0.1),
        # two candidates
        ([0.0, -0.25], [1.0, 1.0], 0.0, 0.25, 0.05),
    ],
)
def test_kn_picks_the_best_at_least_as_often_as_promised(
    means: list[float], sigmas: list[float], common: float, delta: float, alpha: float
) -> None:
    mu, sd = np.asarray(means), np.asarray(sigmas)
    best = int(np.argmax(mu))
    correct = 0
    for macro in range(MACRO):
        draw, _ = _draw_from(mu, sd, common, np.random.default_rng(macro))
        result = kn(draw, len(mu), delta=delta, alpha=alpha, n0=10, max_replications=100_000)
        assert not result.truncated
        correct += result.chosen == best
    assert correct >= _lower_bound(alpha, MACRO), f"{correct}/{MACRO} correct, 1 - alpha = {1 - alpha}"


def test_kn_samples_only_survivors_one_round_at_a_time() -> None:
    mu, sd = np.array([0.0, -3.0, -0.4]), np.array([1.0, 1.0, 1.0])
    draw, calls = _draw_from(mu, sd, 0.0, np.random.default_rng(1))
    result = kn(draw, 3, delta=0.5, alpha=0.05, n0=10, max_replications=10_000)
    assert calls[0] == ([0, 1, 2], 0, 10)
    for (indices, start, stop), (_, _, previous_stop) in zip(calls[1:], calls, strict=False):
        assert stop == start + 1 and start == previous_stop
        assert all(result.eliminated_at[i] is None or result.eliminated_at[i] > start for i in indices)
    assert result.replications[result.chosen] == max(result.replications)
    assert result.eliminated_at[result.chosen] is None
    assert result.replications[1] == 10  # far behind: gone after the first stage


def test_kn_constants_match_the_paper() -> None:
    # eta = ((2 alpha / (k - 1))^(-2 / (n0 - 1)) - 1) / 2, h^2 = 2 eta (n0 - 1)
    eta, h2 = kn_constants(10, 10, 0.05)
    assert eta == pytest.approx(0.5 * ((0.1 / 9) ** (-2 / 9) - 1))
    assert h2 == pytest.approx(2 * eta * 9)


def test_a_cap_on_replications_is_reported_as_truncation() -> None:
    mu, sd = np.array([0.0, -0.01]), np.array([1.0, 1.0])
    draw, _ = _draw_from(mu, sd, 0.0, np.random.default_rng(3))
    result = kn(draw, 2, delta=0.01, alpha=0.05, n0=5, max_replications=20)
    assert result.truncated and max(result.replications) == 20


def test_identical_candidates_end_in_a_tie_broken_by_order() -> None:
    result = kn(
        lambda idx, a, b: np.zeros((len(idx), b - a)), 3, delta=1, alpha=0.05, n0=5, max_replications=50
    )
    assert result.chosen == 0 and not result.truncated and max(result.replications) == 5

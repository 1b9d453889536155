"""Ranking and selection: pick the best of a few designs with a stated probability of being right.

The procedure is KN (Kim & Nelson 2001, *ACM TOMACS* 11(3)), fully sequential with an
indifference zone. Each of k candidates gets n0 replications; the variance of every
pairwise difference S²_il (common random numbers make these small) sets how far a
candidate may trail another before it is eliminated,

    W_il(r) = max(0, δ/(2r) · (h² S²_il / δ² − r)),   h² = 2η(n0 − 1),
    η = ½ [(2α/(k − 1))^(−2/(n0 − 1)) − 1],

then every survivor gets one more replication per round until one is left. When the
best mean exceeds every other by at least δ, the procedure picks it with probability
at least 1 − α (for normal observations; replication averages of a long run are close
to normal). A cap on replications ends it early: the result then says it was truncated
and the guarantee no longer holds.

`kn` is pure: it asks `draw(candidates, start, stop)` for observations (larger is better)
and never simulates itself, so the tests check it on synthetic normal observations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Draw = Callable[[Sequence[int], int, int], np.ndarray]


@dataclass
class KNResult:
    """The chosen candidate, each candidate's observations and the round it left (None: the chosen)."""

    chosen: int
    observations: list[list[float]]
    eliminated_at: list[int | None]
    eta: float
    h2: float
    truncated: bool = False
    rounds: int = 0
    parameters: dict[str, float] = field(default_factory=dict)

    @property
    def replications(self) -> list[int]:
        return [len(values) for values in self.observations]


def kn_constants(k: int, n0: int, alpha: float) -> tuple[float, float]:
    """η and h² of KN for k candidates, n0 first-stage replications and confidence 1 − α."""
    if k < 2:
        return 0.0, 0.0
    eta = 0.5 * ((2 * alpha / (k - 1)) ** (-2 / (n0 - 1)) - 1)
    return eta, 2 * eta * (n0 - 1)


def kn(
    draw: Draw,
    k: int,
    *,
    delta: float,
    alpha: float,
    n0: int,
    max_replications: int,
    among: int | None = None,
) -> KNResult:
    """Run KN on k candidates (larger is better); see the module docstring.

    `among` (>= k) sets η as for that many candidates: when some candidates were set aside on
    other grounds first (a constraint shown broken), each remaining pair keeps the share of α
    it had, so the guarantee holds whichever were set aside.
    """
    first = draw(list(range(k)), 0, n0)
    observations = [list(map(float, row)) for row in np.asarray(first, dtype=float)]
    eta, h2 = kn_constants(max(k, among or k), n0, alpha)
    eliminated: list[int | None] = [None] * k
    if k == 1:
        return KNResult(0, observations, eliminated, eta, h2)
    data = np.asarray(observations)
    diffs = data[:, None, :] - data[None, :, :]
    s2 = diffs.var(axis=2, ddof=1)  # S²_il over the first stage
    alive = list(range(k))
    r = n0
    rounds = 0
    truncated = False
    while True:
        means = {i: float(np.mean(observations[i])) for i in alive}
        survivors = []
        for i in alive:
            keep = True
            for j in alive:
                if j == i:
                    continue
                w = max(0.0, delta / (2 * r) * (h2 * s2[i, j] / delta**2 - r))
                if means[i] < means[j] - w:
                    keep = False
                    break
            if keep:
                survivors.append(i)
        for i in alive:
            if i not in survivors:
                eliminated[i] = r
        alive = survivors
        if len(alive) == 1:
            break
        # past every pair's last stage (W = 0 for all) only ties are left: take the first best
        beyond = all(r >= h2 * s2[i, j] / delta**2 for i in alive for j in alive if i != j)
        if beyond or r >= max_replications:
            truncated = not beyond
            best = max(alive, key=lambda i: (float(np.mean(observations[i])), -i))
            for i in alive:
                if i != best:
                    eliminated[i] = r
            alive = [best]
            break
        more = np.asarray(draw(alive, r, r + 1), dtype=float)
        for row, i in enumerate(alive):
            observations[i].append(float(more[row, 0]))
        r += 1
        rounds += 1
    return KNResult(
        alive[0],
        observations,
        eliminated,
        eta,
        h2,
        truncated=truncated,
        rounds=rounds,
        parameters={"delta": delta, "alpha": alpha, "n0": n0, "max_replications": max_replications},
    )


def guarantee(result: KNResult, k: int, delta: float, alpha: float) -> str:
    """What the selection states, in words."""
    if k == 1:
        return "one candidate: nothing to select"
    if result.truncated:
        return (
            f"truncated at the replication cap: the best mean was taken, the {1 - alpha:.0%} guarantee "
            "does not hold"
        )
    return (
        f"with probability >= {1 - alpha:.0%}, the chosen design is the best of the {k} candidates "
        f"whenever the best beats the others by >= {delta:g} (KN, Kim & Nelson 2001)"
    )

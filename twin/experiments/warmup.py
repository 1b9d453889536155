"""Warm-up detection with MSER-5: where the start-up transient of an empty line ends.

A line starts empty and idle, so the first parts flow through faster than in
steady state. MSER-5 (White, 1997; Franklin & White, 2008) batches an output
series in means of 5 observations and truncates the d batches that minimise the
marginal standard error of what is left,

    MSER(d) = Σ_{j>d} (Z_j - Z̄_d)² / (m - d)²,

searching only the first half of the series (a minimum further on means the run
is too short to tell). On a single run of a line with breakdowns MSER is easily
fooled by a long repair; as recommended by Hoad, Robinson & Davies (2010) it is
applied here to the ensemble average of several pilot runs: the series is the
lead time of the i-th good part to leave the line, averaged over the pilots, and
the warm-up is the latest exit time of the last truncated part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BATCH = 5
PILOT_RUNS = 20


@dataclass(frozen=True)
class MserResult:
    """Observations dropped, the warm-up time that drops them, the series length, and whether d hit m/2."""

    truncated: int
    warmup_s: float
    observations: int
    at_limit: bool


def mser_truncation(series: Sequence[float] | np.ndarray, batch: int = BATCH) -> tuple[int, bool]:
    """Observations to delete from the start of `series` by MSER-`batch`, and whether d hit m/2."""
    values = np.asarray(series, dtype=float)
    m = len(values) // batch
    if m < 4:
        return 0, True
    z = values[: m * batch].reshape(m, batch).mean(axis=1)
    # suffix sums give every MSER(d) in one pass
    tail_sum = np.cumsum(z[::-1])[::-1]
    tail_sq = np.cumsum((z * z)[::-1])[::-1]
    count = m - np.arange(m)
    sse = tail_sq - tail_sum * tail_sum / count
    mser = sse / (count * count)
    limit = m // 2
    d = int(np.argmin(mser[: limit + 1]))
    return d * batch, d >= limit


def mser5_warmup(pilots: Sequence[tuple[Sequence[float], Sequence[float]]]) -> MserResult:
    """The warm-up (simulated seconds) MSER-5 finds in pilot runs started empty, without warm-up.

    `pilots` holds (lead times, exit times) of each pilot run, parts in exit order.
    """
    length = min((len(lead) for lead, _ in pilots), default=0)
    if length == 0:
        return MserResult(truncated=0, warmup_s=0.0, observations=0, at_limit=True)
    lead = np.mean([np.asarray(lead[:length], dtype=float) for lead, _ in pilots], axis=0)
    exits = np.max([np.asarray(exit[:length], dtype=float) for _, exit in pilots], axis=0)
    truncated, at_limit = mser_truncation(lead)
    warmup = float(exits[truncated - 1]) if truncated > 0 else 0.0
    return MserResult(truncated=truncated, warmup_s=warmup, observations=length, at_limit=at_limit)


def pilots_per_scenario(scenarios: int, total: int = PILOT_RUNS) -> int:
    """Pilot runs for each scenario so that about `total` pilots feed the ensemble (at least one each)."""
    return max(1, -(-total // max(scenarios, 1)))

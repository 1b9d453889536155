"""The bottleneck by the active-period method (Roser, Nakano and Tanaka, 2001/2002).

A machine is active while it works, sets up or is being repaired, and inactive while
starved or blocked. At any instant the momentary bottleneck is the machine whose
current active period is the longest. Where the active periods of two successive
bottlenecks overlap, the bottleneck is shifting; elsewhere it is a sole bottleneck.
Shares are fractions of the observed period; an overlap is shifting time for both
machines, so sole and shifting shares together may exceed 1 over all machines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Periods = Sequence[tuple[float, float]]


def bottleneck_shares(machines: Sequence[Periods], start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Sole and shifting bottleneck shares per machine, from each machine's active periods."""
    count = len(machines)
    sole = np.zeros(count)
    shifting = np.zeros(count)
    span = end - start
    if count == 0 or span <= 0:
        return sole, shifting
    starts = [np.array([p[0] for p in periods], dtype=float) for periods in machines]
    ends = [np.array([p[1] for p in periods], dtype=float) for periods in machines]
    cuts = np.unique(np.concatenate([np.array([start, end]), *starts, *ends]))
    cuts = cuts[(cuts >= start) & (cuts <= end)]
    if len(cuts) < 2:
        return sole, shifting
    middles = (cuts[:-1] + cuts[1:]) / 2
    durations = np.zeros((count, len(middles)))
    period_index = np.full((count, len(middles)), -1)
    for m in range(count):
        if len(starts[m]) == 0:
            continue
        idx = np.searchsorted(starts[m], middles, side="right") - 1
        valid = idx >= 0
        covered = np.zeros(len(middles), dtype=bool)
        covered[valid] = ends[m][idx[valid]] > middles[valid]
        durations[m, covered] = ends[m][idx[covered]] - starts[m][idx[covered]]
        period_index[m, covered] = idx[covered]
    leader = np.argmax(durations, axis=0)
    has_leader = durations[leader, np.arange(len(middles))] > 0
    leader_period = period_index[leader, np.arange(len(middles))]

    # runs of the same (machine, active period) as momentary bottleneck
    runs: list[list[float]] = []  # [machine, period, run_start, run_end]
    for k in np.flatnonzero(has_leader):
        m, p = int(leader[k]), int(leader_period[k])
        if runs and runs[-1][0] == m and runs[-1][1] == p and runs[-1][3] == cuts[k]:
            runs[-1][3] = cuts[k + 1]
        else:
            runs.append([m, p, cuts[k], cuts[k + 1]])
    overlaps: list[tuple[float, float]] = [(0.0, 0.0)] * (len(runs) + 1)
    for i in range(1, len(runs)):
        a, b = runs[i - 1], runs[i]
        ma, pa, mb, pb = int(a[0]), int(a[1]), int(b[0]), int(b[1])
        low = max(starts[ma][pa], starts[mb][pb], start)
        high = min(ends[ma][pa], ends[mb][pb], end)
        if high > low and ma != mb:
            overlaps[i] = (low, high)
            shifting[ma] += high - low
            shifting[mb] += high - low
    for i, (m, _p, run_start, run_end) in enumerate(runs):
        inside = sum(
            max(0.0, min(run_end, high) - max(run_start, low)) for low, high in (overlaps[i], overlaps[i + 1])
        )
        sole[int(m)] += max(0.0, run_end - run_start - inside)
    return sole / span, shifting / span

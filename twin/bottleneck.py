"""The bottleneck by the active-period method (Roser, Nakano and Tanaka, 2001/2002).

A machine is active while it works, sets up or is being repaired, and inactive while
starved or blocked. At any instant the momentary bottleneck is the machine whose
current active period is the longest. Where the active periods of two successive
bottlenecks overlap, the bottleneck is shifting; elsewhere it is a sole bottleneck.
A station's share is the time any of its machines was the bottleneck, as a fraction
of the observed period.
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
    lengths = np.diff(cuts)
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
    overlaps = [0.0] * (len(runs) + 1)
    for i in range(1, len(runs)):
        a, b = runs[i - 1], runs[i]
        if a[0] == b[0]:
            continue
        ma, pa, mb, pb = int(a[0]), int(a[1]), int(b[0]), int(b[1])
        low = max(starts[ma][pa], starts[mb][pb], start)
        high = min(ends[ma][pa], ends[mb][pb], end)
        overlaps[i] = max(0.0, high - low)
    for i, (m, _p, run_start, run_end) in enumerate(runs):
        length = run_end - run_start
        shared = min(length, overlaps[i] + overlaps[i + 1])
        shifting[int(m)] += shared
        sole[int(m)] += length - shared
    del lengths
    return sole / span, shifting / span

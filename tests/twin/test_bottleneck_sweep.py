"""The compiled active-period sweep against the plain definition, on random and hand-made periods.

`twin.bottleneck` sweeps the instants where periods start or end in compiled code. The
reference below is the straightforward form (every machine's active period at the middle
of every interval between those instants, then runs of the same momentary bottleneck),
which the sweep must reproduce to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.bottleneck import bottleneck_shares


def reference(machines: Sequence[Sequence[tuple[float, float]]], start: float, end: float) -> tuple:
    count = len(machines)
    sole, shifting = np.zeros(count), np.zeros(count)
    span = end - start
    starts = [np.array([p[0] for p in periods], dtype=float) for periods in machines]
    ends = [np.array([p[1] for p in periods], dtype=float) for periods in machines]
    cuts = np.unique(np.concatenate([np.array([start, end]), *starts, *ends]))
    cuts = cuts[(cuts >= start) & (cuts <= end)]
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
    runs: list[list[float]] = []
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


def nudged(value: float, way: int) -> float:
    """`value`, or the float just below or above it: cuts one float apart round the middle."""
    return value if way == 0 else math.nextafter(value, way * math.inf)


@st.composite
def periods(draw: st.DrawFn) -> list[tuple[float, float]]:
    """Active periods in time order; whole numbers make ties, touching and empty periods likely."""
    whole = draw(st.booleans())
    step = st.integers(0, 3).map(float) if whole else st.floats(0, 3, allow_nan=False)
    ways = st.sampled_from([0, 0, 0, -1, 1])
    t = draw(step)
    out = []
    for _ in range(draw(st.integers(0, 8))):
        begin = max(t, nudged(t + draw(step), draw(ways)))
        t = max(begin, nudged(begin + draw(step), draw(ways)))
        out.append((begin, t))
    return out


@settings(max_examples=500, deadline=None)
@given(
    machines=st.lists(periods(), min_size=1, max_size=5),
    start=st.sampled_from([0.0, 1.0, 2.5]),
    span=st.sampled_from([4.0, 9.0, 30.0]),
)
def test_sweep_equals_the_plain_definition(machines: list, start: float, span: float) -> None:
    expected = reference(machines, start, start + span)
    sole, shifting = bottleneck_shares(machines, start, start + span)
    assert np.array_equal(sole, expected[0]) and np.array_equal(shifting, expected[1])
    arrays = [np.array(p, dtype=float).reshape(-1, 2) for p in machines]
    sole_a, shifting_a = bottleneck_shares(arrays, start, start + span)
    assert np.array_equal(sole_a, sole) and np.array_equal(shifting_a, shifting)

"""The bottleneck by the active-period method (Roser, Nakano and Tanaka, 2001/2002).

A machine is active while it works, sets up or is being repaired, and inactive while
starved or blocked. At any instant the momentary bottleneck is the machine whose
current active period is the longest. Where the active periods of two successive
bottlenecks overlap, the bottleneck is shifting; elsewhere it is a sole bottleneck.
Shares are fractions of the observed period; an overlap is shifting time for both
machines, so sole and shifting shares together may exceed 1 over all machines.

The sweep over the instants where some period starts or ends is compiled with numba: a
simulated year of a ten-station line has millions of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

Periods = Sequence[tuple[float, float]] | np.ndarray  # (start, end) pairs, or a (n, 2) array


def bottleneck_shares(machines: Sequence[Periods], start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Sole and shifting bottleneck shares per machine, from each machine's active periods.

    Each machine's periods are (start, end) pairs in time order, as `Machine.active_periods`
    gives them; a (n, 2) array will do as well.
    """
    count = len(machines)
    sole = np.zeros(count)
    shifting = np.zeros(count)
    span = end - start
    if count == 0 or span <= 0:
        return sole, shifting
    arrays = [np.asarray(periods, dtype=float).reshape(-1, 2) for periods in machines]
    first = np.cumsum([0] + [len(periods) for periods in arrays])
    bounds = np.concatenate(arrays).reshape(-1)  # start, end, start, end ... of each machine in turn
    _compiled_sweep()(bounds, first, float(start), float(end), sole, shifting)
    return sole / span, shifting / span


@functools.cache
def _compiled_sweep() -> Callable[..., None]:
    """`_sweep` compiled by numba (imported only when a bottleneck is first asked for)."""
    from numba import njit

    return njit(cache=True)(_sweep)


def _sweep(bounds, first, start, end, sole, shifting):
    """Add up sole and shifting time per machine; machine m has the periods first[m]:first[m + 1].

    Between two successive instants where some period starts or ends (cuts), a machine is
    active if the last of its bounds up to the earlier cut is a start; its current active
    period is then the longest-lasting candidate for the momentary bottleneck.
    """
    count = first.shape[0] - 1
    upto = first[:-1] * 2  # per machine: its bounds before here are at or before the current cut
    limit = first[1:] * 2
    upcoming = np.full(count, np.inf)  # per machine: its first bound after the current cut
    length = np.zeros(count)  # per machine: length of its current active period, 0 when inactive
    capacity = bounds.shape[0] + 2  # runs of the same momentary bottleneck (only the first `runs` are set)
    run_machine = np.empty(capacity, dtype=np.int64)
    run_period = np.empty(capacity, dtype=np.int64)
    run_start = np.empty(capacity)
    run_end = np.empty(capacity)
    runs = 0
    cut = start
    for m in range(count):
        upcoming[m] = -np.inf
    leader = -1
    longest = 0.0
    while cut < end:
        following = end
        for m in range(count):
            if upcoming[m] <= cut:
                u = upto[m]
                while u < limit[m] and bounds[u] <= cut:
                    u += 1
                upto[m] = u
                upcoming[m] = bounds[u] if u < limit[m] else np.inf
                new = bounds[u] - bounds[u - 1] if u % 2 == 1 else 0.0
                length[m] = new
                if new > longest or (new == longest and new > 0 and m < leader):
                    leader, longest = m, new
                elif m == leader and new < longest:
                    leader, longest = -1, 0.0
                    for k in range(count):
                        if length[k] > longest:
                            leader, longest = k, length[k]
            following = min(following, upcoming[m])
        bottleneck, period = leader, (upto[leader] - 1) // 2
        if (cut + following) / 2 >= following:
            # cuts one float apart, the middle rounds up to the later: the periods in force
            # there are those in force just after it
            bottleneck, longest_there = -1, 0.0
            for m in range(count):
                v = upto[m]
                while v < limit[m] and bounds[v] <= following:
                    v += 1
                if v % 2 == 1 and bounds[v] - bounds[v - 1] > longest_there:
                    bottleneck, period, longest_there = m, (v - 1) // 2, bounds[v] - bounds[v - 1]
        if bottleneck >= 0:
            leader_now = bottleneck
            last = runs - 1
            if (
                runs
                and run_machine[last] == leader_now
                and run_period[last] == period
                and run_end[last] == cut
            ):
                run_end[last] = following
            else:
                run_machine[runs] = leader_now
                run_period[runs] = period
                run_start[runs] = cut
                run_end[runs] = following
                runs += 1
        cut = following
    # shifting: where the active periods of successive bottlenecks overlap, for both of them
    low = np.zeros(runs + 1)
    high = np.zeros(runs + 1)
    for i in range(1, runs):
        a, b = 2 * run_period[i - 1], 2 * run_period[i]
        overlap_low = max(max(bounds[a], bounds[b]), start)
        overlap_high = min(min(bounds[a + 1], bounds[b + 1]), end)
        if overlap_high > overlap_low and run_machine[i - 1] != run_machine[i]:
            low[i] = overlap_low
            high[i] = overlap_high
            shifting[run_machine[i - 1]] += overlap_high - overlap_low
            shifting[run_machine[i]] += overlap_high - overlap_low
    for i in range(runs):
        inside = max(0.0, min(run_end[i], high[i]) - max(run_start[i], low[i]))
        inside += max(0.0, min(run_end[i], high[i + 1]) - max(run_start[i], low[i + 1]))
        sole[run_machine[i]] += max(0.0, run_end[i] - run_start[i] - inside)

"""The recursion of the flow engine, compiled: one run of a tandem line with finite buffers.

Parts are followed one after the other, in release order, through the stations in
series. For the k-th part a station sees (parts scrapped upstream never reach it):

- it asks for the part when it is free, at R (after handing on or scrapping the
  previous one), and gets it at G = max(R, arrival);
- it sets up if the product changed, processes it (an operation-based failure clock
  runs only while it processes), and completes it at C;
- it hands the part on at D = max(C, the instant there is room downstream): with a
  buffer of b >= 1 places in front of the next station, when that station has taken
  the part b places ahead; with b = 0 (hand-over), when it asks for this very part;
  with an unlimited buffer, at once. The last station and scrap need no room.

These are the max-plus recursions of a tandem line with blocking after service. Every
duration is added in the order the SimPy engine adds it, so the instants agree with
it to the last bit, and the machines' time accounts are booked exactly as
`twin.station.Machine` books them: the state shares, counts and active periods come
out the same. A machine that waits no time at all is not booked as waiting (see
docs/PERFORMANCE.md for the one place where the SimPy engine differs).

Samples are drawn beforehand by `twin.flow_samples`; when a stream runs short the
kernel stops and says which one (`need`), and is run again with more samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit

WORKING, BLOCKED, STARVED, DOWN, SETUP = 0, 1, 2, 3, 4
PROCESSED, PARTS_OUT, SCRAPPED, FAILURES = 0, 1, 2, 3
# kinds of streams, as reported in `need`
PRODUCT, ARRIVAL, CYCLE, SETUP_TIME, SCRAP, TTF, TTR = range(7)
# line-level totals
EXITS, SCRAPS, ENTRIES, LEAVES, OPERATIONS = range(5)

# a machine's accounts: in the warm-up, counting, closed at the end
WARMING, COUNTING, CLOSED = range(3)

OK = 0
NEED_SAMPLES = 1


@njit(cache=True, inline="always")
def _active(state: int) -> bool:
    return state == WORKING or state >= DOWN  # working, down or setting up


@njit(cache=True, inline="always")
def _after(position: int, size: int) -> int:
    """The position after `position` in a ring of `size`."""
    position += 1
    return 0 if position == size else position


@njit(cache=True, inline="always")
def _change(j, now, changes, n_changes):
    """Machine j turns active or inactive at `now`; turning back at the same instant is no change."""
    if n_changes[j] > 0 and changes[j, n_changes[j] - 1] == now:
        n_changes[j] -= 1
    else:
        changes[j, n_changes[j]] = now
        n_changes[j] += 1


@njit(cache=True, inline="always")
def _book(j, new_state, now, time_in, since, state, changes, n_changes):
    previous = state[j]
    time_in[j, previous] += now - since[j]
    since[j] = now
    state[j] = new_state
    if _active(new_state) != _active(previous):
        _change(j, now, changes, n_changes)


@njit(cache=True, inline="always")
def _enter(j, new_state, now, end, time_in, since, state, changes, n_changes, phase):
    """Machine j enters `new_state` at `now`, booked as `Machine._enter` books it."""
    if phase[j] == COUNTING and now < end:
        _book(j, new_state, now, time_in, since, state, changes, n_changes)
    else:
        _enter_outside(j, new_state, now, end, time_in, since, state, changes, n_changes, phase)


@njit(cache=True)
def _enter_outside(j, new_state, now, end, time_in, since, state, changes, n_changes, phase):
    """`_enter` in the warm-up, at or after the end, and after closing."""
    if phase[j] == CLOSED:
        return
    if now >= end:
        _close(j, end, time_in, since, state, changes, n_changes, phase)
        return
    if phase[j] == WARMING:
        if now < since[j]:  # `since` holds the warm-up's end until then
            state[j] = new_state
            return
        _restart(j, time_in, since, state, changes, n_changes, phase)
    _book(j, new_state, now, time_in, since, state, changes, n_changes)


@njit(cache=True)
def _restart(j, time_in, since, state, changes, n_changes, phase):
    """Forget everything before the warm-up's end, as `Machine.restart_statistics` does."""
    for s in range(5):
        time_in[j, s] = 0.0
    n_changes[j] = 0
    if _active(state[j]):
        changes[j, 0] = since[j]
        n_changes[j] = 1
    phase[j] = COUNTING


@njit(cache=True)
def _close(j, end, time_in, since, state, changes, n_changes, phase):
    """Book the running state up to the end, as `Machine.close` does."""
    if phase[j] == CLOSED:
        return
    if phase[j] == WARMING:
        _restart(j, time_in, since, state, changes, n_changes, phase)
    time_in[j, state[j]] += end - since[j]
    since[j] = end
    if _active(state[j]):
        _change(j, end, changes, n_changes)
    phase[j] = CLOSED


@njit(cache=True)
def run_line(
    saturated,
    buffers,
    has_setup,
    has_failures,
    scrap_probability,
    products,
    interarrivals,
    cycle,
    cycle_start,
    cycle_count,
    setup,
    setup_start,
    setup_count,
    scrap,
    scrap_start,
    scrap_count,
    ttf,
    ttf_start,
    ttf_count,
    ttr,
    ttr_start,
    ttr_count,
    warmup,
    end,
    time_in,
    counts,
    changes,
    n_changes,
    entry_times,
    leave_times,
    exit_times,
    lead_times,
    totals,
    trace,
    n_trace,
    used,
    need,
):
    """Run the recursion up to `end`; returns OK, or NEED_SAMPLES with `need` = (kind, station, product).

    `used[kind, station, product]` counts the samples taken from each stream.
    """
    stations = buffers.shape[0]
    tracing = trace.shape[1] > 0

    # machine accounts, as in twin.station.Machine; during the warm-up `since` is its end
    state = np.full(stations, STARVED, dtype=np.int64)
    since = np.full(stations, warmup)
    phase = np.full(stations, WARMING, dtype=np.int64)
    for j in range(stations):
        for s in range(5):
            time_in[j, s] = 0.0
        for c in range(4):
            counts[j, c] = 0
        n_changes[j] = 0
        n_trace[j] = 0
    for c in range(5):
        totals[c] = 0

    free = np.zeros(stations)  # R: when the machine asks for its next part
    last_product = np.full(stations, -1, dtype=np.int64)
    seen = np.zeros(stations, dtype=np.int64)  # parts that reached the station so far
    used[:, :, :] = 0
    ttf_left = np.zeros(stations)

    # when each of the last b+1 parts was taken, per station with a finite buffer of b >= 1 in
    # front, in a ring; `slot` is where the next part goes, and the part b places ahead of it
    # is the one after it in the ring
    ring_start = np.zeros(stations, dtype=np.int64)
    ring_size = np.zeros(stations, dtype=np.int64)
    slot = np.zeros(stations, dtype=np.int64)
    total = 0
    for j in range(stations):
        if buffers[j] >= 1:
            ring_start[j] = total
            ring_size[j] = buffers[j] + 1
            total += buffers[j] + 1
    got = np.zeros(max(total, 1))

    for j in range(stations):
        if has_failures[j]:
            if ttf_count[j] < 1:
                need[0], need[1], need[2] = TTF, j, 0
                return NEED_SAMPLES
            ttf_left[j] = ttf[ttf_start[j]]
            used[TTF, j, 0] = 1

    arrival_clock = 0.0
    part = 0
    while True:
        # -- the part enters the line
        if saturated:
            if free[0] >= end:
                break
            entered = free[0]
        else:
            if part >= interarrivals.shape[0]:
                need[0], need[1], need[2] = ARRIVAL, 0, 0
                return NEED_SAMPLES
            arrival_clock = arrival_clock + interarrivals[part]
            used[ARRIVAL, 0, 0] = part + 1
            if arrival_clock >= end:
                break
            first = buffers[0]
            entered = arrival_clock
            if first == 0:
                entered = max(arrival_clock, free[0])
            elif first >= 1 and part >= first:
                entered = max(arrival_clock, got[ring_start[0] + _after(slot[0], ring_size[0])])
            if entered >= end:
                break
        if part >= products.shape[0]:
            need[0], need[1], need[2] = PRODUCT, 0, 0
            return NEED_SAMPLES
        product = products[part]
        used[PRODUCT, 0, 0] = part + 1
        entry_times[part] = entered
        totals[ENTRIES] = part + 1
        arriving = entered

        # -- the part through the stations
        for j in range(stations):
            seen[j] += 1
            start = max(free[j], arriving)
            if arriving > free[j]:
                _enter(j, STARVED, free[j], end, time_in, since, state, changes, n_changes, phase)
            if ring_size[j] > 0:
                got[ring_start[j] + slot[j]] = start
                slot[j] = _after(slot[j], ring_size[j])
            if start >= end:
                _close(j, end, time_in, since, state, changes, n_changes, phase)
                free[j] = np.inf
                break
            t = start
            if has_setup[j] and last_product[j] >= 0 and product != last_product[j]:
                _enter(j, SETUP, t, end, time_in, since, state, changes, n_changes, phase)
                if used[SETUP_TIME, j, 0] >= setup_count[j]:
                    need[0], need[1], need[2] = SETUP_TIME, j, 0
                    return NEED_SAMPLES
                t = t + setup[setup_start[j] + used[SETUP_TIME, j, 0]]
                used[SETUP_TIME, j, 0] += 1
            last_product[j] = product
            _enter(j, WORKING, t, end, time_in, since, state, changes, n_changes, phase)
            if used[CYCLE, j, product] >= cycle_count[j, product]:
                need[0], need[1], need[2] = CYCLE, j, product
                return NEED_SAMPLES
            duration = cycle[cycle_start[j, product] + used[CYCLE, j, product]]
            used[CYCLE, j, product] += 1
            if has_failures[j]:
                remaining = duration
                left = ttf_left[j]
                while remaining > left:
                    if left > 0:
                        t = t + left
                    remaining -= left
                    _enter(j, DOWN, t, end, time_in, since, state, changes, n_changes, phase)
                    if warmup <= t < end:
                        counts[j, FAILURES] += 1
                    if used[TTR, j, 0] >= ttr_count[j]:
                        need[0], need[1], need[2] = TTR, j, 0
                        return NEED_SAMPLES
                    t = t + ttr[ttr_start[j] + used[TTR, j, 0]]
                    used[TTR, j, 0] += 1
                    _enter(j, WORKING, t, end, time_in, since, state, changes, n_changes, phase)
                    if used[TTF, j, 0] >= ttf_count[j]:
                        need[0], need[1], need[2] = TTF, j, 0
                        return NEED_SAMPLES
                    left = ttf[ttf_start[j] + used[TTF, j, 0]]
                    used[TTF, j, 0] += 1
                left -= remaining
                ttf_left[j] = left
                t = t + remaining
            else:
                t = t + duration
            done = t
            totals[OPERATIONS] += 1
            if tracing:
                trace[j, n_trace[j], 0] = start
                trace[j, n_trace[j], 1] = done
                trace[j, n_trace[j], 2] = done
                n_trace[j] += 1
            if done >= end:
                free[j] = np.inf
                break
            counted = done >= warmup
            if counted:
                counts[j, PROCESSED] += 1
            if scrap_probability[j] > 0:
                if used[SCRAP, j, 0] >= scrap_count[j]:
                    need[0], need[1], need[2] = SCRAP, j, 0
                    return NEED_SAMPLES
                draw = scrap[scrap_start[j] + used[SCRAP, j, 0]]
                used[SCRAP, j, 0] += 1
                if draw < scrap_probability[j]:
                    if counted:
                        counts[j, SCRAPPED] += 1
                        totals[SCRAPS] += 1
                    leave_times[totals[LEAVES]] = done
                    totals[LEAVES] += 1
                    free[j] = done
                    break
            if j == stations - 1:
                if counted:
                    exit_times[totals[EXITS]] = done
                    lead_times[totals[EXITS]] = done - entered
                    totals[EXITS] += 1
                    counts[j, PARTS_OUT] += 1
                leave_times[totals[LEAVES]] = done
                totals[LEAVES] += 1
                free[j] = done
                break
            # hand the part on: room downstream
            room = buffers[j + 1]
            leave = done
            if room == 0:
                leave = max(done, free[j + 1])
            elif room >= 1 and seen[j + 1] >= room:
                leave = max(done, got[ring_start[j + 1] + _after(slot[j + 1], ring_size[j + 1])])
            if leave > done:
                _enter(j, BLOCKED, done, end, time_in, since, state, changes, n_changes, phase)
            if warmup <= leave < end:
                counts[j, PARTS_OUT] += 1
            if tracing:
                trace[j, n_trace[j] - 1, 2] = leave
            free[j] = leave
            arriving = leave
        part += 1

    # no further part reaches a station before the end: a free machine waits for one
    for j in range(stations):
        if not (saturated and j == 0) and free[j] < end:
            _enter(j, STARVED, free[j], end, time_in, since, state, changes, n_changes, phase)
        _close(j, end, time_in, since, state, changes, n_changes, phase)
    return OK


@njit(cache=True)
def wip_area(entry_times, leave_times, warmup, end):
    """Time integral of the parts in the line over [warmup, end), summed as `LineModel` sums it."""
    leaves = np.sort(leave_times)
    wip = 0
    area = 0.0
    since = 0.0
    restarted = False
    i = 0
    k = 0
    while i < entry_times.shape[0] or k < leaves.shape[0]:
        if k >= leaves.shape[0] or (i < entry_times.shape[0] and entry_times[i] <= leaves[k]):
            now = entry_times[i]
            step = 1
            i += 1
        else:
            now = leaves[k]
            step = -1
            k += 1
        if now >= end:
            break
        if not restarted and now >= warmup:
            area = 0.0
            since = warmup
            restarted = True
        area += wip * (now - since)
        since = now
        wip += step
    if not restarted:
        area = 0.0
        since = warmup
    area += wip * (end - since)
    return area

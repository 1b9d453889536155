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
it to the last bit. A second pass, every `CHUNK` parts, books each machine's time
accounts from its records (arrival, start, start of work, done, left, breakdowns and
repairs) exactly as `twin.station.Machine` books them, so the state shares, counts and
active periods come out the same; kept apart, both passes run in tight loops. A
machine that waits no time at all is not booked as waiting (see docs/PERFORMANCE.md
for the one place where the SimPy engine differs).

A run from the line's state (`twin.state`) starts with the parts already in the line,
oldest first: the part on the last station's machine, then its buffer front to back,
then the station before, and so on. Each enters the recursion at its station: a part in
a buffer arrives there at 0; a part on a machine was taken at 0 and goes on from its
phase (`init_phase`: working for the residual time; down for the residual repair, then a
fresh cycle; setting up for the residual set-up, then a fresh cycle; blocked, finished
at 0). New parts follow as usual. The breakdown under way at 0 is booked as down time
but not counted as a failure, as in the SimPy engine.

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
CHUNK = 1024  # parts followed through the line before their records are booked

OK = 0
NEED_SAMPLES = 1

QUEUED = -1  # `init_phase` of a part waiting in a buffer at the start (the others: a machine state)


@njit(cache=True, inline="always")
def _active(state: int) -> bool:
    return state == WORKING or state >= DOWN  # working, down or setting up


@njit(cache=True, inline="always")
def _after(position: int, size: int) -> int:
    """The position after `position` in a ring of `size`."""
    position += 1
    return 0 if position == size else position


@njit(cache=True, inline="always")
def _change(now, n, changes):
    """The machine turns active or inactive at `now`; turning back at the same instant is no change."""
    if n > 0 and changes[n - 1] == now:
        return n - 1
    changes[n] = now
    return n + 1


@njit(cache=True, inline="always")
def _book(new_state, now, end, state, since, n, phase, time_in, changes):
    """`Machine._enter` for one machine, whose (state, since, changes made, phase) it returns."""
    if phase == COUNTING and now < end:
        time_in[state] += now - since
        if _active(new_state) != _active(state):
            n = _change(now, n, changes)
        return new_state, now, n, phase
    return _book_outside(new_state, now, end, state, since, n, phase, time_in, changes)


@njit(cache=True)
def _book_outside(new_state, now, end, state, since, n, phase, time_in, changes):
    """`_book` in the warm-up (`since` then holds its end), at or after the end, and once closed."""
    if phase == CLOSED:
        return state, since, n, phase
    if phase == WARMING:
        if now < since:
            return new_state, since, n, phase
        for s in range(5):  # Machine.restart_statistics
            time_in[s] = 0.0
        n = 0
        if _active(state):
            changes[0] = since
            n = 1
    if now >= end:  # Machine.close
        time_in[state] += end - since
        if _active(state):
            n = _change(end, n, changes)
        return state, end, n, CLOSED
    time_in[state] += now - since
    if _active(new_state) != _active(state):
        n = _change(now, n, changes)
    return new_state, now, n, COUNTING


@njit(cache=True)
def _account(
    j, waits, records, count, downs, ups, failures, end, machine, clock, time_in, changes, n_changes
):
    """Book station j's machine through its parts `records[:count]` (second pass).

    A record is (arrival, start, start of work after set-up, done, left); `downs`/`ups`
    are the machine's breakdowns and repairs, `machine` = (state, phase, next breakdown)
    and `clock` = (since, free) carry over from the records before.
    """
    state, phase, breakdown = machine[j, 0], machine[j, 1], machine[j, 2]
    since, free = clock[j, 0], clock[j, 1]
    n = n_changes[j]
    hours = time_in[j]
    turns = changes[j]
    for m in range(count):
        arrival, start, work, done, left = (
            records[j, m, 0],
            records[j, m, 1],
            records[j, m, 2],
            records[j, m, 3],
            records[j, m, 4],
        )
        if waits and arrival > free:
            state, since, n, phase = _book(STARVED, free, end, state, since, n, phase, hours, turns)
        if work > start:
            state, since, n, phase = _book(SETUP, start, end, state, since, n, phase, hours, turns)
        state, since, n, phase = _book(WORKING, work, end, state, since, n, phase, hours, turns)
        while breakdown < failures[j] and downs[j, breakdown] < done:
            state, since, n, phase = _book(
                DOWN, downs[j, breakdown], end, state, since, n, phase, hours, turns
            )
            state, since, n, phase = _book(
                WORKING, ups[j, breakdown], end, state, since, n, phase, hours, turns
            )
            breakdown += 1
        if left > done:
            state, since, n, phase = _book(BLOCKED, done, end, state, since, n, phase, hours, turns)
        free = left
    machine[j, 0], machine[j, 1], machine[j, 2] = state, phase, breakdown
    clock[j, 0], clock[j, 1] = since, free
    n_changes[j] = n


@njit(cache=True)
def _close(j, waits, end, machine, clock, time_in, changes, n_changes):
    """No further part reaches station j before the end: a free machine waits for one; book to the end."""
    state, phase = machine[j, 0], machine[j, 1]
    since, free = clock[j, 0], clock[j, 1]
    n = n_changes[j]
    if waits and free < end:
        state, since, n, phase = _book(STARVED, free, end, state, since, n, phase, time_in[j], changes[j])
    state, since, n, phase = _book(state, end, end, state, since, n, phase, time_in[j], changes[j])
    machine[j, 0], machine[j, 1] = state, phase
    n_changes[j] = n


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
    init_station,
    init_phase,
    init_product,
    init_remaining,
    init_ttf,
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

    `used[kind, station, product]` counts the samples taken from each stream. The parts in
    the line at the start (oldest first) are `init_*`: station, phase (a machine state, or
    QUEUED), product and remaining time; `init_ttf[j]` is station j's failure clock at the
    start (NaN: the first time to failure of its stream).
    """
    stations = buffers.shape[0]
    tracing = trace.shape[1] > 0
    for j in range(stations):
        for c in range(4):
            counts[j, c] = 0
        n_changes[j] = 0
        n_trace[j] = 0
    for c in range(5):
        totals[c] = 0

    # second pass: each machine's records of a chunk of parts, its breakdowns and repairs, and
    # its accounts carried from chunk to chunk (state, phase, next breakdown; since, free)
    records = np.zeros((stations, CHUNK, 5))
    n_records = np.zeros(stations, dtype=np.int64)
    downs = np.zeros((stations, ttf_count.max() + 2))  # + the breakdown under way at the start
    ups = np.zeros_like(downs)
    failures = np.zeros(stations, dtype=np.int64)
    machine = np.zeros((stations, 3), dtype=np.int64)
    machine[:, 0] = STARVED
    machine[:, 1] = WARMING
    clock = np.zeros((stations, 2))
    clock[:, 0] = warmup
    waits = np.ones(stations, dtype=np.bool_)
    waits[0] = not saturated
    cut = np.zeros(stations, dtype=np.bool_)  # the station's last record reaches the end

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

    n_init = init_station.shape[0]
    for j in range(stations):
        if has_failures[j]:
            if not np.isnan(init_ttf[j]):
                ttf_left[j] = init_ttf[j]  # the residual time to failure, given the machine's age
                continue
            if ttf_count[j] < 1:
                need[0], need[1], need[2] = TTF, j, 0
                return NEED_SAMPLES
            ttf_left[j] = ttf[ttf_start[j]]  # (a machine down at the start draws it after the repair)
            used[TTF, j, 0] = 1

    arrival_clock = 0.0
    part = 0  # parts in the line so far: those of the start, then the released ones
    new = 0  # parts released so far
    while True:
        # -- the part enters the line: one of the start, at its station, or a new one
        first_station = 0
        phase = QUEUED
        if part < n_init:
            first_station = init_station[part]
            phase = init_phase[part]
            product = init_product[part]
            entered = 0.0
        else:
            if saturated:
                if free[0] >= end:
                    break
                entered = free[0]
            else:
                if new >= interarrivals.shape[0]:
                    need[0], need[1], need[2] = ARRIVAL, 0, 0
                    return NEED_SAMPLES
                arrival_clock = arrival_clock + interarrivals[new]
                used[ARRIVAL, 0, 0] = new + 1
                if arrival_clock >= end:
                    break
                first = buffers[0]
                entered = arrival_clock
                if first == 0:
                    entered = max(arrival_clock, free[0])
                elif first >= 1 and seen[0] >= first:
                    entered = max(arrival_clock, got[ring_start[0] + _after(slot[0], ring_size[0])])
                if entered >= end:
                    break
            if new >= products.shape[0]:
                need[0], need[1], need[2] = PRODUCT, 0, 0
                return NEED_SAMPLES
            product = products[new]
            new += 1
            used[PRODUCT, 0, 0] = new
        entry_times[part] = entered
        totals[ENTRIES] = part + 1
        arriving = entered

        # -- the part through the stations
        for j in range(first_station, stations):
            seen[j] += 1
            held = j == first_station and phase != QUEUED  # on the machine at the start
            start = 0.0 if held else max(free[j], arriving)
            if ring_size[j] > 0:
                got[ring_start[j] + slot[j]] = start
                slot[j] = _after(slot[j], ring_size[j])
            if start >= end:
                if not cut[j]:
                    _record(records, n_records, j, arriving, start, start, start, start)
                    cut[j] = True
                free[j] = np.inf
                break
            t = start
            work = t
            finished = held and phase == BLOCKED  # finished before the start: only to hand on
            if held:  # `Machine.run`'s first part of a run from a state
                duration = init_remaining[part]
                if phase == SETUP:
                    t = t + duration
                    work = t
                elif phase == DOWN:  # booked as down time, not counted as a failure
                    downs[j, failures[j]] = t
                    t = t + duration
                    ups[j, failures[j]] = t
                    failures[j] += 1
            elif has_setup[j] and last_product[j] >= 0 and product != last_product[j]:
                if used[SETUP_TIME, j, 0] >= setup_count[j]:
                    need[0], need[1], need[2] = SETUP_TIME, j, 0
                    return NEED_SAMPLES
                t = t + setup[setup_start[j] + used[SETUP_TIME, j, 0]]
                used[SETUP_TIME, j, 0] += 1
                work = t
            last_product[j] = product
            if not held or phase in (SETUP, DOWN):  # a fresh cycle time
                if used[CYCLE, j, product] >= cycle_count[j, product]:
                    need[0], need[1], need[2] = CYCLE, j, product
                    return NEED_SAMPLES
                duration = cycle[cycle_start[j, product] + used[CYCLE, j, product]]
                used[CYCLE, j, product] += 1
            if finished:
                pass
            elif has_failures[j]:
                remaining = duration
                left = ttf_left[j]
                while remaining > left:
                    if left > 0:
                        t = t + left
                    remaining -= left
                    downs[j, failures[j]] = t
                    if warmup <= t < end:
                        counts[j, FAILURES] += 1
                    if used[TTR, j, 0] >= ttr_count[j]:
                        need[0], need[1], need[2] = TTR, j, 0
                        return NEED_SAMPLES
                    t = t + ttr[ttr_start[j] + used[TTR, j, 0]]
                    used[TTR, j, 0] += 1
                    ups[j, failures[j]] = t
                    failures[j] += 1
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
            if not finished:
                totals[OPERATIONS] += 1
            if tracing:
                trace[j, n_trace[j], 0] = start
                trace[j, n_trace[j], 1] = done
                trace[j, n_trace[j], 2] = done
                n_trace[j] += 1
            if done >= end:
                _record(records, n_records, j, arriving, start, work, done, done)
                cut[j] = True
                free[j] = np.inf
                break
            counted = done >= warmup
            if counted and not finished:
                counts[j, PROCESSED] += 1
            leave = done
            scrapped = False
            if scrap_probability[j] > 0 and not finished:
                if used[SCRAP, j, 0] >= scrap_count[j]:
                    need[0], need[1], need[2] = SCRAP, j, 0
                    return NEED_SAMPLES
                scrapped = scrap[scrap_start[j] + used[SCRAP, j, 0]] < scrap_probability[j]
                used[SCRAP, j, 0] += 1
            if scrapped:
                if counted:
                    counts[j, SCRAPPED] += 1
                    totals[SCRAPS] += 1
                leave_times[totals[LEAVES]] = done
                totals[LEAVES] += 1
            elif j == stations - 1:
                if counted:
                    exit_times[totals[EXITS]] = done
                    lead_times[totals[EXITS]] = done - entered
                    totals[EXITS] += 1
                    counts[j, PARTS_OUT] += 1
                leave_times[totals[LEAVES]] = done
                totals[LEAVES] += 1
            else:  # hand the part on: room downstream
                room = buffers[j + 1]
                if room == 0:
                    leave = max(done, free[j + 1])
                elif room >= 1 and seen[j + 1] >= room:
                    leave = max(done, got[ring_start[j + 1] + _after(slot[j + 1], ring_size[j + 1])])
                if warmup <= leave < end:
                    counts[j, PARTS_OUT] += 1
                if tracing:
                    trace[j, n_trace[j] - 1, 2] = leave
            _record(records, n_records, j, arriving, start, work, done, leave)
            free[j] = leave
            if scrapped or j == stations - 1:
                break
            arriving = leave
        part += 1
        if part % CHUNK == 0:
            for j in range(stations):
                _account(
                    j,
                    waits[j],
                    records,
                    n_records[j],
                    downs,
                    ups,
                    failures,
                    end,
                    machine,
                    clock,
                    time_in,
                    changes,
                    n_changes,
                )
                n_records[j] = 0

    for j in range(stations):
        _account(
            j,
            waits[j],
            records,
            n_records[j],
            downs,
            ups,
            failures,
            end,
            machine,
            clock,
            time_in,
            changes,
            n_changes,
        )
        _close(j, waits[j], end, machine, clock, time_in, changes, n_changes)
    return OK


@njit(cache=True, inline="always")
def _record(records, n_records, j, arrival, start, work, done, left):
    m = n_records[j]
    records[j, m, 0] = arrival
    records[j, m, 1] = start
    records[j, m, 2] = work
    records[j, m, 3] = done
    records[j, m, 4] = left
    n_records[j] = m + 1


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

"""The compiled event engine's kernel: the SimPy engine's processes and stores, event for event.

A line of stations, each with `capacity` parallel machines, in series or as a network, runs
as the SimPy engine runs it (`twin.engine`, `twin.station`, `twin.buffer`, `twin.release`,
`twin.repair`, `twin.network`), but compiled: the same processes (one per machine, one per
machine with calendar-time breakdowns, the releases' arrivals and their backlogs' loaders, a
transport's carry per part) as state machines, the same stores (`simpy.Store` with its put and
get queues, the zero-place hand-over, the watched buffers that wake an assembly's machines,
a transport's `simpy.Resource` places), and one event list ordered as SimPy orders it: by
time, then priority (process starts and interrupts before the rest), then the order of
scheduling. Every put, get and timeout a SimPy process makes is made here in the same order,
so ties between parallel machines are broken as SimPy breaks them, and every duration is added
in the same floating-point order: fed the same random streams (`twin.event`), the instants are
the SimPy engine's to the last bit.

What each process does is `Machine.run` (load, set up, work with an operation-based
failure clock or `_occupy` under calendar-time breakdowns, scrap, hand on), `Machine.repair`
with the crew's `call` and `release` (`fifo` or `bottleneck` priority),
`Machine.calendar_breakdowns`, preventive maintenance (`serve`, `work_serviced`, `renew`),
switch-off (`starve` with its AnyOf of the part and the switch-off time, `restart_after_off`),
`Release.arrivals`, `Release._load_from_backlog` and the CONWIP release in
`LineModel._part_left`, and a run from a state (`Machine.resume`, `begin_plant`, a breakdown
under way). A network line's machines take and pass on parts as `Network.run` does (an
assembly's parts from every input at once, a rework queue first, a saturated branch head's own,
then by route or flow graph, back for rework or onto a transport), with `Transport.carry`, the
releases of `Network._release` and a run from a network state (`Network._place`). The
comments name the SimPy code each branch mirrors. Not here (the SimPy engine runs them):
operators' stops and setpoints written during a run.

Compiled with numba, cached on disk: the functions run without reference counting (`_nrt=False`:
they allocate nothing) and with numpy's error model. The processes' code is inlined into the
event loop by numba (one call site each). The helpers (stores, the event list) are inlined by
LLVM, with its inlining threshold raised to `INLINE_THRESHOLD` for this process (numba leaves
LLVM's default, which keeps them as calls that copy every tuple of arrays they take). LLVM
judges the call sites deep in the loop's branches cold and inlines nothing there (threshold
45), so the helpers every part passes through there (`_timeout`, `_part_exited`, `_part_left`,
`_release`) are inlined by numba (`inline="always"`): each call copied 0.5 to 3 kB of array
descriptors onto the stack, a quarter of the kernel's time (a perf profile, in
docs/PERFORMANCE.md). Raising LLVM's cold threshold instead inlined everything and ran slower;
inlining every helper in numba made the first compile four times as long. Inlining moves no
floating-point operation: the results are the same to the bit.

The event list is a binary heap whose first event comes out as `heapq.heappop` takes it, without
a branch on the way down, and the indices of the event list, of the event records and of the
machine, station, store or process a function works on are unsigned (`_u`): numba adds a
wrap-around of negative indices to every signed one, which lay on the event list's chain of
dependent loads. Together, 7 to 10 % of a run of ten stations (docs/PERFORMANCE.md).

Samples come as one flat array with a start and a count per stream; when a stream runs
short the kernel stops, says which (`need`), and is run again with more. Other arrays that
can run full (active-period changes, the event list, an unlimited buffer) stop it likewise
with a status that asks for more room.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from numba import njit

INLINE_THRESHOLD = 2000  # LLVM's default at -O3 is 225 (measured in docs/PERFORMANCE.md)
llvm.set_option("", f"--inline-threshold={INLINE_THRESHOLD}")

# machine states (twin.station.STATE_NAMES)
WORKING, BLOCKED, STARVED, DOWN, SETUP, STOPPED, WAITING_REPAIR, PLANNED_STOP, OFF, MAINTENANCE = range(10)
N_STATES = 10
# counters per machine
PROCESSED, PARTS_OUT, SCRAPPED, FAILURES, SERVICES = range(5)
# line totals
EXITS, SCRAPS, ENTRIES, LEAVES, EVENTS, PARTS = range(6)

# statuses
OK, NEED_SAMPLES, MORE_CHANGES, MORE_EVENTS, MORE_ITEMS = range(5)

# event kinds
TIMEOUT, PUT, GET, INIT, GENERIC, INTERRUPT, CONDITION, WAITER, RELEASE = range(9)
URGENT, NORMAL = 0, 1

# failure modes per station
NO_FAILURES, OPERATING, CALENDAR = range(3)
# release modes
SATURATED, INTERARRIVAL, CONWIP = range(3)

# program counters of a machine's process (`Machine.run`)
M_START, M_LOOP, M_GOT, M_HAVE_PART, M_AFTER_SETUP, M_WORK, M_OPF_LOOP, M_OPF_FAIL = range(8)
M_OPF_REPAIRED, M_DONE, M_PUT_DONE, M_OCC, M_OCC_REPAIRED, M_OCC_TIMEOUT, M_OCC_INTERRUPTED = range(8, 15)
M_REP_GO, M_REP_END, M_FETCH, M_AFTER_GET, M_SERVE, M_SERVED, M_WS_LOOP, M_WS_STEP = range(15, 23)
M_WS_RENEW, M_WS_WORK, M_STARVE, M_STARVE_WOKE, M_OFF, M_RESTART = range(23, 29)
M_FROM_STATE, M_BEGIN_SERVED, M_RESUME, M_RESUME_RENEW, M_RESUME_FRESH = range(29, 34)
M_DELIVER, M_FAIL, M_CALL_CREW = 35, 36, 37
M_NET_TAKE, M_WAIT_PART, M_NET_WOKE, M_NET_ROUTE, M_NET_CARRY, M_NET_PASS = range(38, 44)
# of a transport's carry (`twin.network.Transport.carry`)
C_START, C_ARRIVED, C_PUT, C_FROM_START = range(4)
# of a calendar-breakdown process (`Machine.calendar_breakdowns`)
B_START, B_LOOP, B_FAIL, B_REP_GO, B_REP_END, B_REPAIRED = range(6)
NO_START = -1  # a machine's start state when the line starts empty
# of the release's processes
A_START, A_LOOP, A_RELEASE = range(3)
L_START, L_LOOP, L_GOT, L_PUT = range(4)


# -- tuples of arrays the functions below share (numba compiles each function once) ----------
# events: (heap time, heap key, heap event, events [kind, owner, store, item, triggered], free list,
#          ints [heap size, free events, order, status, wip, parts, then head and count of the
#          urgent and normal queues of the current instant, warmed, events], clock [now, wip since],
#          the queues of events at the current instant [priority, i])
# samples: (values, start, count, position, need)
# stores: (capacity, items, [items head, items count, puts waiting, gets waiting], put queue, get queue)
# machines: (ints [state, logical, down, occupied, repaired, last product, part, occupy return],
#            floats [since, ttf left, remaining, occupy start, duration], time_in, counts, changes, n)
# parts: (product, release time, entries, leaves, exit times, lead times, totals, wip area, config)
# crews: (free, bottleneck, waiting [crew, i, (machine, event)], count waiting)
# line: (station of machine, station ints [inbound, outbound, setup, failures, crew, first, count],
#        scrap probability, cycle stream [machine, product], machine streams [setup, scrap, ttf, ttr])
_KIND, _OWNER, _STORE, _ITEM, _TRIGGERED, _CONDITION, _PINNED = range(7)
_EVENT_COLUMNS = 7
_HEAP, _FREE, _ORDER, _STATUS, _WIP, _PARTS, _FIFO_HEAD, _FIFO_LEN = 0, 1, 2, 3, 4, 5, 6, 7
_WARMED, _PROCESSED, _SERIAL = 10, 11, 12
_INTS = 13
_NEVER = np.iinfo(np.int64).max  # the key of the heap's place after its last event
_STATE, _LOGICAL, _DOWN, _OCCUPIED, _REPAIRED, _LAST, _PART, _RETURN = range(8)
_SINCE_SERVICE, _IS_OFF, _REQUEST, _REP_RETURN, _SERVE_RETURN, _REP_GIVEN = range(8, 14)
_INTO, _TRANSPORT_OF = 14, 15
_MACHINE_INTS = 16
_SINCE, _TTF, _REMAINING, _OCC_START, _DURATION, _SERVICE, _STEP, _REPAIR_LEFT, _FETCH_SINCE = range(9)
_MACHINE_FLOATS = 9
# a machine's start from a state (`twin.state.MachineStart`): ints [state, part], floats
# [remaining, ttf_left (NaN: none given), age (NaN: none given)]
_START_STATE, _START_PART = range(2)
_START_REMAINING, _START_TTF, _START_AGE = range(3)
_IN, _OUT, _SETUP, _MODE, _CREW, _FIRST, _COUNT, _SERVICE_PARTS, _SERVICED, _SWITCH = range(10)
_EVERY, _SWITCH_AFTER = range(2)
_SETUP_SID, _SCRAP_SID, _TTF_SID, _TTR_SID, _SERVICE_SID, _RESTART_SID = range(6)
# config: release mode, first store, backlog store, conwip limit, machines, product stream, arrival stream,
# a network line (twin.network), its releases and its backlogs' loaders
_RELEASE, _FIRST_STORE, _BACKLOG, _LIMIT, _MACHINES, _PRODUCT_SID, _ARRIVAL_SID = range(7)
_NET, _RELEASES, _LOADERS = 7, 8, 9
_CONFIG = 10
# a store's meta: items head, items count, puts waiting, gets waiting, watched (it wakes an
# assembly's or a rework station's machines), hand-overs matched but still in SimPy's put queue,
# machines' waiters listed
_WATCHED, _STALE, _N_WAITERS = 4, 5, 6
_META = 7
# a network line (`net`): per station [takes parts as a network station does (assembly, rework
# queue or saturated head), assembly, inputs, rework queue store, saturated head's product
# stream, downstream (-1: out), rework to, transport, buffer capacity]
_N_NET, _N_ASSEMBLY, _N_INPUTS, _N_RETURNS, _N_HEAD_SID = range(5)
_N_DOWN, _N_REWORK_TO, _N_TRANSPORT, _N_BUFFER = range(5, 9)
# per transport [places, travel stream, places taken, requests waiting, its first carry slot]
_T_CAPACITY, _T_SID, _T_USERS, _T_WAITING, _T_FIRST = range(5)
# per carry slot [transport, part, store it goes into, busy]
_C_TRANSPORT, _C_PART, _C_INTO, _C_BUSY = range(4)
# per release [mode, head station, product stream, arrival stream]
_R_MODE, _R_HEAD, _R_PRODUCT_SID, _R_ARRIVAL_SID = range(4)
# per backlog's loader [backlog store, the store it fills, started, the part it carries]
_L_BACKLOG, _L_INTO, _L_STARTED, _L_PART = range(4)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _is_active(code):
    return code in (WORKING, DOWN, SETUP, WAITING_REPAIR, MAINTENANCE)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _draw(samples, sid):
    values, start, count, position, need = samples
    k = position[sid]
    if k >= count[sid]:
        if need[0] < 0:
            need[0] = sid
        return 0.0
    position[sid] = k + 1
    return values[start[sid] + k]


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _new_event(events, kind, owner):
    ev, free, ints = events[3], events[4], events[5]
    if ints[_FREE] == 0:
        ints[_STATUS] = MORE_EVENTS
        return 0
    ints[_FREE] -= 1
    event = free[_u(ints[_FREE])]
    e = _u(event)
    ev[e, _KIND] = kind
    ev[e, _OWNER] = owner
    ev[e, _ITEM] = -1
    ev[e, _TRIGGERED] = 0
    ev[e, _CONDITION] = -1
    ev[e, _PINNED] = 0
    return event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _free_event(events, event):
    free, ints, ev = events[4], events[5], events[3]
    e = _u(event)
    if ev[e, _PINNED] == 1:
        ev[e, _PINNED] = 2  # processed: freed when its process lets go of it (`_unpin`)
        return
    free[_u(ints[_FREE])] = event
    ints[_FREE] += 1


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _unpin(events, event):
    ev = events[3]
    if ev[event, _PINNED] == 2:
        ev[event, _PINNED] = 0
        _free_event(events, event)
    else:
        ev[event, _PINNED] = 0


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _schedule(events, event, priority, delay):
    heap_time, heap_key, heap_event, ev, _, ints, clock, fifo = events
    ev[_u(event), _TRIGGERED] = 1
    ints[_ORDER] += 1
    if delay == 0.0:
        # an event at the current instant: after every one scheduled before it (a queue per priority)
        room = fifo.shape[1]
        n = ints[_FIFO_LEN + 2 * priority]
        if n >= room:
            ints[_STATUS] = MORE_EVENTS
            return
        fifo[priority, _u(_wrap(ints[_FIFO_HEAD + 2 * priority] + n, room))] = event
        ints[_FIFO_LEN + 2 * priority] = n + 1
        return
    if ints[_HEAP] >= heap_time.shape[0]:
        ints[_STATUS] = MORE_EVENTS
        return
    key = ints[_ORDER]
    time = clock[0] + delay
    i = _u(ints[_HEAP])
    ints[_HEAP] += 1
    one = _u(1)
    while i > _u(0):
        parent = (i - one) >> one
        if heap_time[parent] <= time:  # at the same time, scheduled earlier: every key is below `key`
            break
        heap_time[i] = heap_time[parent]
        heap_key[i] = heap_key[parent]
        heap_event[i] = heap_event[parent]
        i = parent
    heap_time[i] = time
    heap_key[i] = key
    heap_event[i] = event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _pop_fifo(events, priority):
    fifo, ints = events[7], events[5]
    head = ints[_FIFO_HEAD + 2 * priority]
    event = fifo[priority, _u(head)]
    ints[_FIFO_HEAD + 2 * priority] = _wrap(head + 1, fifo.shape[1])
    ints[_FIFO_LEN + 2 * priority] -= 1
    return event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _pop_event(events):
    """The heap's first event out, as `heapq.heappop` does it: the earlier child of each node moves
    up to a leaf, then the last event climbs from there to its place. Taking the earlier child
    needs no branch (a branch there is mispredicted half the time, and it was the kernel's
    costliest instruction): the place after the last event holds +inf so that a missing right
    child is never taken. Keys are unique, so any heap gives the events in the same order."""
    heap_time, heap_key, heap_event, ints = events[0], events[1], events[2], events[5]
    event = heap_event[0]
    ints[_HEAP] -= 1
    size = _u(ints[_HEAP])
    time = heap_time[size]
    key = heap_key[size]
    last = heap_event[size]
    heap_time[size] = np.inf
    heap_key[size] = _NEVER
    one = _u(1)
    i = _u(0)
    child = one
    while child < size:
        right = child + one
        later = (heap_time[right] < heap_time[child]) | (
            (heap_time[right] == heap_time[child]) & (heap_key[right] < heap_key[child])
        )
        child += _u(later)
        heap_time[i] = heap_time[child]
        heap_key[i] = heap_key[child]
        heap_event[i] = heap_event[child]
        i = child
        child = i + i + one
    while i > _u(0):
        parent = (i - one) >> one
        if heap_time[parent] < time or (heap_time[parent] == time and heap_key[parent] < key):
            break
        heap_time[i] = heap_time[parent]
        heap_key[i] = heap_key[parent]
        heap_event[i] = heap_event[parent]
        i = parent
    heap_time[i] = time
    heap_key[i] = key
    heap_event[i] = last
    return event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _u(i):
    """An index known not to be negative, as unsigned: numba then leaves out the wrap-around of
    negative indices it adds to every signed one (a shift, an and and an add on the way to each
    load, measured at 7 % of a run of ten stations in the event list alone)."""
    return np.uint64(i)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _wrap(i, room):
    """`i % room` for 0 <= i < 2 * room, without the division `%` compiles to (a ring's index)."""
    return i - room if i >= room else i


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _timeout(events, procs, proc, delay, pc):
    pu = _u(proc)
    event = _new_event(events, TIMEOUT, proc)
    _schedule(events, event, NORMAL, delay)
    procs[pu, 1] = event
    procs[pu, 0] = pc


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _wait_for(events, procs, proc, event, pc):
    eu = _u(event)
    pu = _u(proc)
    events[3][eu, _OWNER] = proc
    procs[pu, 1] = event
    procs[pu, 0] = pc


# -- stores: simpy.Store (FIFO items, put and get queues) and the hand-over (`twin.buffer`) ------
@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _pop_front(queue, lengths, store):
    first = queue[store, 0]
    n = lengths[store]
    for i in range(1, n):
        queue[store, i - 1] = queue[store, i]
    lengths[store] = n - 1
    return first


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _match(events, stores, store):
    stu = _u(store)
    # HandOver._do_put / _do_get: the first put waiting meets the first get waiting
    meta, put_queue, get_queue = stores[2], stores[3], stores[4]
    put = put_queue[stu, 0]
    for i in range(1, meta[stu, 2]):
        put_queue[stu, i - 1] = put_queue[stu, i]
    meta[stu, 2] -= 1
    get = get_queue[stu, 0]
    for i in range(1, meta[stu, 3]):
        get_queue[stu, i - 1] = get_queue[stu, i]
    meta[stu, 3] -= 1
    ev = events[3]
    ev[get, _ITEM] = ev[put, _ITEM]
    _schedule(events, get, NORMAL, 0.0)
    _schedule(events, put, NORMAL, 0.0)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _hand_over(events, stores, store, from_put):
    """The hand-over's `_trigger_put` (`from_put`) or `_trigger_get`: every put and get waiting meet.

    In front of an assembly or a rework station (`WatchedHandOver`) each `_do_put` wakes the
    machines waiting there, for every put still in SimPy's put queue: one met in `_trigger_get`
    stays there until the next `_trigger_put` (`_STALE`)."""
    stu = _u(store)
    meta = stores[2]
    if meta[stu, _WATCHED] != 0 and from_put:
        if meta[stu, _STALE] > 0:  # the first put in the queue is one met before: wake first
            meta[stu, _STALE] = 0
            _wake(events, stores, store)
        elif meta[stu, 2] > 0:
            if meta[stu, 3] > 0:
                _match(events, stores, store)
            _wake(events, stores, store)
    while meta[stu, 2] > 0 and meta[stu, 3] > 0:
        _match(events, stores, store)
        if not from_put:
            meta[stu, _STALE] += 1


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _has_part(stores, store):
    """`twin.network.has_part`: a part waits in the store (in a hand-over: a put waits)."""
    stu = _u(store)
    if stores[0][stu] == 0:
        return stores[2][stu, 2] > 0
    return stores[2][stu, 1] > 0


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _live_waiter(ev, event, serial):
    return ev[event, _KIND] == WAITER and ev[event, _STORE] == serial and ev[event, _TRIGGERED] == 0


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _wake(events, stores, store):
    """`twin.network.wake`: every machine waiting for a part here is woken, in the order they came."""
    stu = _u(store)
    meta, waiters, ev = stores[2], stores[5], events[3]
    for i in range(meta[stu, _N_WAITERS]):
        event = waiters[stu, i, 0]
        if _live_waiter(ev, event, waiters[stu, i, 1]):
            _schedule(events, event, NORMAL, 0.0)
    meta[stu, _N_WAITERS] = 0


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _add_waiter(events, stores, store, event):
    """`buffer.waiters.append(waiter)`; the waiters already triggered go (a wake would pass them by)."""
    stu = _u(store)
    meta, waiters, ev = stores[2], stores[5], events[3]
    kept = 0
    for i in range(meta[stu, _N_WAITERS]):
        if _live_waiter(ev, waiters[stu, i, 0], waiters[stu, i, 1]):
            waiters[stu, kept, 0] = waiters[stu, i, 0]
            waiters[stu, kept, 1] = waiters[stu, i, 1]
            kept += 1
    waiters[stu, kept, 0] = event
    waiters[stu, kept, 1] = ev[event, _STORE]
    meta[stu, _N_WAITERS] = kept + 1


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _new_waiter(events):
    """`env.event()` a machine waits on for a part (`_STORE`: a serial number, as its identity)."""
    event = _new_event(events, WAITER, -1)
    ints = events[5]
    ints[_SERIAL] += 1
    events[3][event, _STORE] = ints[_SERIAL]
    return event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _trigger_put(events, stores, store):
    stu = _u(store)
    # BaseResource._trigger_put with Store._do_put: the first put waiting, if there is room
    capacity, items, meta, put_queue, _, _ = stores
    if capacity[stu] == 0:
        _hand_over(events, stores, store, True)
        return
    if meta[stu, 2] == 0:
        return
    if capacity[stu] < 0 or meta[stu, 1] < capacity[stu]:
        room = items.shape[1]
        if meta[stu, 1] >= room:
            events[5][_STATUS] = MORE_ITEMS
            return
        put = put_queue[stu, 0]
        items[stu, _wrap(meta[stu, 0] + meta[stu, 1], room)] = events[3][put, _ITEM]
        meta[stu, 1] += 1
        for i in range(1, meta[stu, 2]):
            put_queue[stu, i - 1] = put_queue[stu, i]
        meta[stu, 2] -= 1
        _schedule(events, put, NORMAL, 0.0)
    if meta[stu, _WATCHED] != 0:  # WatchedStore._do_put
        _wake(events, stores, store)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _trigger_get(events, stores, store):
    stu = _u(store)
    # BaseResource._trigger_get with Store._do_get: the first get waiting takes the first item
    capacity, items, meta, _, get_queue, _ = stores
    if capacity[stu] == 0:
        _hand_over(events, stores, store, False)
        return
    if meta[stu, 3] == 0 or meta[stu, 1] == 0:
        return
    get = get_queue[stu, 0]
    for i in range(1, meta[stu, 3]):
        get_queue[stu, i - 1] = get_queue[stu, i]
    meta[stu, 3] -= 1
    events[3][get, _ITEM] = items[stu, meta[stu, 0]]
    meta[stu, 0] = _wrap(meta[stu, 0] + 1, items.shape[1])
    meta[stu, 1] -= 1
    _schedule(events, get, NORMAL, 0.0)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _store_put(events, stores, store, part):
    stu = _u(store)
    event = _new_event(events, PUT, -1)
    events[3][event, _STORE] = store
    events[3][event, _ITEM] = part
    meta, put_queue = stores[2], stores[3]
    put_queue[stu, meta[stu, 2]] = event
    meta[stu, 2] += 1
    _trigger_put(events, stores, store)
    return event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _store_get(events, stores, store):
    stu = _u(store)
    event = _new_event(events, GET, -1)
    events[3][event, _STORE] = store
    meta, get_queue = stores[2], stores[4]
    get_queue[stu, meta[stu, 3]] = event
    meta[stu, 3] += 1
    _trigger_get(events, stores, store)
    return event


# -- machines' accounts (`Machine._enter`, `set_state`) ------------------------------------------
@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _enter(events, machines, m, code):
    mi, mf, time_in, _, changes, n_changes = machines
    now = events[6][0]
    mu = _u(m)
    previous = mi[mu, _STATE]
    time_in[mu, _u(previous)] += now - mf[mu, _SINCE]
    mf[mu, _SINCE] = now
    mi[mu, _STATE] = code
    if _is_active(code) != _is_active(previous):
        n = n_changes[mu]
        if n > 0 and changes[mu, _u(n - 1)] == now:
            n_changes[mu] = n - 1
        elif n >= changes.shape[1]:
            events[5][_STATUS] = MORE_CHANGES
        else:
            changes[mu, _u(n)] = now
            n_changes[mu] = n + 1


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _set_state(events, machines, m, code):
    mu = _u(m)
    mi = machines[0]
    mi[mu, _LOGICAL] = code
    if mi[mu, _DOWN] == 0:
        _enter(events, machines, m, code)


# -- parts and the line's counters (`LineModel`) -------------------------------------------------
@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _new_part(events, samples, parts, sid):
    """A new part, its product drawn from the stream `sid`."""
    part_product, part_time = parts[0], parts[1]
    ints = events[5]
    n = ints[_PARTS]
    if n >= part_product.shape[0]:
        need = samples[4]
        if need[0] < 0:
            need[0] = sid
        return 0
    ints[_PARTS] = n + 1
    part_product[n] = np.int64(_draw(samples, sid))
    part_time[n] = events[6][0]
    return n


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _wip_change(events, parts, step):
    ints, clock = events[5], events[6]
    area = parts[7]
    now = clock[0]
    area[0] += ints[_WIP] * (now - clock[1])
    clock[1] = now
    ints[_WIP] += step


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _part_entered(events, parts):
    _wip_change(events, parts, 1)
    entries, totals = parts[2], parts[6]
    n = totals[ENTRIES]
    if n < entries.shape[0]:
        entries[n] = events[6][0]
    totals[ENTRIES] = n + 1


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _release(events, samples, stores, parts):
    # Release.release (and part_entered at once without a backlog)
    config = parts[8]
    part = _new_part(events, samples, parts, config[_PRODUCT_SID])
    if config[_BACKLOG] < 0:
        _part_entered(events, parts)
        _store_put(events, stores, config[_FIRST_STORE], part)
    else:
        _store_put(events, stores, config[_BACKLOG], part)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _part_left(events, samples, stores, parts):
    _wip_change(events, parts, -1)
    leaves, totals, config = parts[3], parts[6], parts[8]
    n = totals[LEAVES]
    if n < leaves.shape[0]:
        leaves[n] = events[6][0]
    totals[LEAVES] = n + 1
    if config[_RELEASE] == CONWIP and events[5][_WIP] < config[_LIMIT]:
        if config[_NET] != 0:
            _net_release(events, samples, stores, parts, 0)
        else:
            _release(events, samples, stores, parts)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _routed_part(events, samples, parts, sid):
    """A new part of a network line, at the start of its product's route (if it has one)."""
    part = _new_part(events, samples, parts, sid)
    route_len = parts[11][6]
    parts[9][part] = 0 if route_len[parts[0][part]] > 0 else -1
    return part


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _net_release(events, samples, stores, parts, r):
    """`Network._release`'s `release_one` for release `r`: a new part into its first station's buffer,
    through a backlog (its loader started with the first part) when that buffer is finite."""
    net, procs, config = parts[11], parts[10], parts[8]
    net_ints, input_store, route, route_len, rel_ints, backlog_of, loader_ints = (
        net[0],
        net[1],
        net[5],
        net[6],
        net[10],
        net[11],
        net[12],
    )
    part = _routed_part(events, samples, parts, rel_ints[r, _R_PRODUCT_SID])
    product = parts[0][part]
    target = route[product, 0] if route_len[product] > 0 else rel_ints[r, _R_HEAD]
    if net_ints[target, _N_BUFFER] < 0:
        _part_entered(events, parts)
        _store_put(events, stores, input_store[target, 0], part)
        return
    k = backlog_of[r, target]
    if loader_ints[k, _L_STARTED] == 0:
        loader_ints[k, _L_STARTED] = 1
        _start(events, procs, 2 * config[_MACHINES] + config[_RELEASES] + k)
    _store_put(events, stores, loader_ints[k, _L_BACKLOG], part)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _grant_place(events, net, transport):
    """`Resource._trigger_put`: the first request waiting gets a free place on the transport."""
    tr_ints, tr_queue = net[7], net[8]
    waiting = tr_ints[transport, _T_WAITING]
    if waiting == 0 or tr_ints[transport, _T_USERS] >= tr_ints[transport, _T_CAPACITY]:
        return
    request = tr_queue[transport, 0]
    for i in range(1, waiting):
        tr_queue[transport, i - 1] = tr_queue[transport, i]
    tr_ints[transport, _T_WAITING] = waiting - 1
    tr_ints[transport, _T_USERS] += 1
    _schedule(events, request, NORMAL, 0.0)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _destination(parts, station, part, reworked):
    """`Network.destination`: the next station of `part`, finished at `station` (-1: out)."""
    net, position, part_product = parts[11], parts[9], parts[0]
    net_ints, route, route_len = net[0], net[5], net[6]
    product = part_product[part]
    length = route_len[product]
    if reworked:
        to = net_ints[station, _N_REWORK_TO]
        if length > 0:
            k = position[part]
            while route[product, k] != to:  # the last visit of `to` on the way here
                k -= 1
            position[part] = k
        return to
    if length == 0:
        return net_ints[station, _N_DOWN]
    k = position[part] + 1
    if k == length:
        return -1
    position[part] = k
    return route[product, k]


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _part_exited(events, samples, stores, parts, part):
    part_time, exit_times, lead_times, totals = parts[1], parts[4], parts[5], parts[6]
    now = events[6][0]
    n = totals[EXITS]
    if n < exit_times.shape[0]:
        exit_times[n] = now
        lead_times[n] = now - part_time[part]
    totals[EXITS] = n + 1
    _part_left(events, samples, stores, parts)


# -- the repair crews (`twin.repair.Crew`) ---------------------------------------------------------
@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _crew_call(events, crews, crew, m, proc):
    # Crew.call: -1 (None) when a technician is free, else the event of one assigned
    free, _, waiting, count = crews
    if free[crew] > 0:
        free[crew] -= 1
        return -1
    granted = _new_event(events, GENERIC, proc)
    n = count[crew]
    waiting[crew, n, 0] = m
    waiting[crew, n, 1] = granted
    count[crew] = n + 1
    return granted


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _station_working(events, machines, line, station):
    mi, mf, time_in = machines[0], machines[1], machines[2]
    station_ints = line[1]
    now = events[6][0]
    total = 0.0
    first = station_ints[station, _FIRST]
    for other in range(first, first + station_ints[station, _COUNT]):
        running = now - mf[other, _SINCE] if mi[other, _STATE] == WORKING else 0.0
        total += time_in[other, WORKING] + running
    return total


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _crew_release(events, crews, machines, line, crew):
    free, bottleneck, waiting, count = crews
    station_of = line[0]
    n = count[crew]
    if n == 0:
        free[crew] += 1
        return
    index = 0
    if bottleneck[crew]:
        best = _station_working(events, machines, line, station_of[waiting[crew, 0, 0]])
        for i in range(1, n):
            worked = _station_working(events, machines, line, station_of[waiting[crew, i, 0]])
            if worked > best:
                best = worked
                index = i
    granted = waiting[crew, index, 1]
    for i in range(index + 1, n):
        waiting[crew, i - 1, 0] = waiting[crew, i, 0]
        waiting[crew, i - 1, 1] = waiting[crew, i, 1]
    count[crew] = n - 1
    _schedule(events, granted, NORMAL, 0.0)


# -- the processes ---------------------------------------------------------------------------------
@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _renew(samples, machines, line, m):
    """`Machine.renew`: a repair or a service, the machine's clocks start again."""
    mu = _u(m)
    mi, mf = machines[0], machines[1]
    sids, station_floats = line[4], line[5]
    station = line[0][mu]
    mf[mu, _TTF] = _draw(samples, sids[mu, _TTF_SID]) if sids[mu, _TTF_SID] >= 0 else np.inf
    if station_floats[station, _EVERY] > 0:
        mf[mu, _SERVICE] = station_floats[station, _EVERY]
    mi[mu, _SINCE_SERVICE] = 0


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_machine(m, event, events, samples, stores, machines, parts, crews, line, procs):
    """`Machine.run` from where the machine's process waits, to its next wait."""
    mu = _u(m)
    ev, ints, clock = events[3], events[5], events[6]
    need = samples[4]
    mi, mf, counts = machines[0], machines[1], machines[3]
    station_of, station_ints, scrap_probability, cycle_sid, sids, station_floats, start_ints, start_floats = (
        line
    )
    part_product = parts[0]
    net = parts[11]
    net_ints = net[0]
    station = station_of[mu]
    su = _u(station)
    mode = station_ints[su, _MODE]
    serviced = station_ints[su, _SERVICED] != 0
    networked = parts[8][_NET] != 0
    # takes its parts as `Network.run` does (an assembly, a rework queue, a saturated branch head)
    net_take = networked and net_ints[su, _N_NET] != 0
    pc = procs[mu, 0]
    while True:
        if ints[_STATUS] != OK or need[0] >= 0:
            return
        if pc == M_FETCH:
            mf[mu, _FETCH_SINCE] = clock[0]
            if net_take:
                pc = M_NET_TAKE
                continue
            inbound = station_ints[su, _IN]
            if inbound < 0:
                part = _new_part(events, samples, parts, parts[8][_PRODUCT_SID])
                _part_entered(events, parts)
                mi[mu, _PART] = part
                pc = M_AFTER_GET
            else:
                request = _store_get(events, stores, inbound)
                if ev[request, _TRIGGERED] == 0:
                    mi[mu, _REQUEST] = request
                    pc = M_WAIT_PART
                else:
                    mi[mu, _PART] = ev[request, _ITEM]
                    pc = M_AFTER_GET
        elif pc == M_GOT:
            mi[mu, _PART] = ev[event, _ITEM]
            if ev[event, _PINNED] != 0:
                _unpin(events, event)
            pc = M_AFTER_GET
        elif pc == M_AFTER_GET:
            off = station_ints[su, _SWITCH] != 0 and mi[mu, _IS_OFF] != 0
            pc = M_RESTART if off else M_HAVE_PART
        elif pc == M_HAVE_PART:
            product = part_product[mi[mu, _PART]]
            if station_ints[su, _SETUP] != 0 and product != mi[mu, _LAST] and mi[mu, _LAST] >= 0:
                _set_state(events, machines, m, SETUP)
                if mode == CALENDAR:
                    mf[mu, _REMAINING] = _draw(samples, sids[mu, _SETUP_SID])
                    mi[mu, _RETURN] = M_AFTER_SETUP
                    pc = M_OCC
                else:
                    _timeout(events, procs, m, _draw(samples, sids[mu, _SETUP_SID]), M_AFTER_SETUP)
                    return
            else:
                pc = M_AFTER_SETUP
        elif pc == M_AFTER_SETUP:
            product = part_product[mi[mu, _PART]]
            mi[mu, _LAST] = product
            _set_state(events, machines, m, WORKING)
            mf[mu, _DURATION] = _draw(samples, cycle_sid[mu, product])
            pc = M_WORK
        elif pc == M_WORK:
            # process the part for `duration`: serviced, with an operating failure clock, under
            # calendar breakdowns, or plainly
            mf[mu, _REMAINING] = mf[mu, _DURATION]
            if serviced:
                if np.isinf(mf[mu, _TTF]) and sids[mu, _TTF_SID] >= 0:
                    _renew(samples, machines, line, m)  # after a repair in progress at the start
                pc = M_WS_LOOP
            elif mode == OPERATING:
                pc = M_OPF_LOOP
            elif mode == CALENDAR:
                mi[mu, _RETURN] = M_DONE
                pc = M_OCC
            else:
                _timeout(events, procs, m, mf[mu, _DURATION], M_DONE)
                return
        elif pc == M_DONE:
            counts[mu, PROCESSED] += 1
            if serviced:
                mi[mu, _SINCE_SERVICE] += 1
            part = mi[mu, _PART]
            p = scrap_probability[su]
            if p > 0 and _draw(samples, sids[mu, _SCRAP_SID]) < p:
                counts[mu, SCRAPPED] += 1
                mi[mu, _PART] = -1
                parts[6][SCRAPS] += 1
                _part_left(events, samples, stores, parts)
                pc = M_LOOP
            else:
                pc = M_NET_ROUTE if networked else M_DELIVER
        elif pc == M_DELIVER:
            part = mi[mu, _PART]
            if station_ints[su, _OUT] < 0:
                mi[mu, _PART] = -1
                _part_exited(events, samples, stores, parts, part)
                counts[mu, PARTS_OUT] += 1
                pc = M_LOOP
            else:
                delivery = _store_put(events, stores, station_ints[su, _OUT], part)
                if ev[delivery, _TRIGGERED] == 0:
                    _set_state(events, machines, m, BLOCKED)
                    _wait_for(events, procs, m, delivery, M_PUT_DONE)
                    return
                pc = M_PUT_DONE
        elif pc == M_PUT_DONE:
            mi[mu, _PART] = -1
            counts[mu, PARTS_OUT] += 1
            pc = M_LOOP
        elif pc == M_LOOP:
            parts_due = station_ints[su, _SERVICE_PARTS]
            if serviced and parts_due > 0 and mi[mu, _SINCE_SERVICE] >= parts_due:
                mi[mu, _SERVE_RETURN] = M_FETCH
                pc = M_SERVE
            else:
                pc = M_FETCH
        elif pc == M_OPF_LOOP:
            # while remaining > ttf_left: ...; ttf_left -= remaining; yield timeout(remaining)
            if mf[mu, _REMAINING] > mf[mu, _TTF]:
                if mf[mu, _TTF] > 0:
                    _timeout(events, procs, m, mf[mu, _TTF], M_OPF_FAIL)
                    return
                pc = M_OPF_FAIL
            else:
                mf[mu, _TTF] -= mf[mu, _REMAINING]
                _timeout(events, procs, m, mf[mu, _REMAINING], M_DONE)
                return
        elif pc == M_OPF_FAIL:
            mf[mu, _REMAINING] -= mf[mu, _TTF]
            mi[mu, _REP_RETURN] = M_OPF_REPAIRED
            pc = M_FAIL
        elif pc == M_FAIL:
            # a breakdown in work: down for a repair drawn now, or `Machine.repair` by the crew
            counts[mu, FAILURES] += 1
            if station_ints[su, _CREW] < 0:
                _set_state(events, machines, m, DOWN)
                _timeout(events, procs, m, _draw(samples, sids[mu, _TTR_SID]), mi[mu, _REP_RETURN])
                return
            pc = M_CALL_CREW
        elif pc == M_CALL_CREW:
            # `Machine.repair`: a technician now, or wait for one (then M_REP_GO, M_REP_END)
            granted = _crew_call(events, crews, station_ints[su, _CREW], m, m)
            if granted >= 0:
                _set_state(events, machines, m, WAITING_REPAIR)
                _wait_for(events, procs, m, granted, M_REP_GO)
                return
            pc = M_REP_GO
        elif pc == M_OPF_REPAIRED:
            _set_state(events, machines, m, WORKING)
            mf[mu, _TTF] = _draw(samples, sids[mu, _TTF_SID])
            pc = M_OPF_LOOP
        elif pc == M_OCC:
            # Machine._occupy: spend `remaining`, paused by calendar-time breakdowns
            if mf[mu, _REMAINING] > 0:
                if mi[mu, _DOWN] != 0:
                    _wait_for(events, procs, m, mi[mu, _REPAIRED], M_OCC_REPAIRED)
                    return
                pc = M_OCC_REPAIRED
            else:
                pc = mi[mu, _RETURN]
        elif pc == M_OCC_REPAIRED:
            mf[mu, _OCC_START] = clock[0]
            mi[mu, _OCCUPIED] = 1
            _timeout(events, procs, m, mf[mu, _REMAINING], M_OCC_TIMEOUT)
            return
        elif pc == M_OCC_TIMEOUT:
            mf[mu, _REMAINING] = 0.0
            mi[mu, _OCCUPIED] = 0
            pc = M_OCC
        elif pc == M_OCC_INTERRUPTED:
            mf[mu, _REMAINING] -= clock[0] - mf[mu, _OCC_START]
            mi[mu, _OCCUPIED] = 0
            pc = M_OCC
        elif pc == M_WS_LOOP:
            # Machine.work_serviced: the age counts to the next failure and to the next service
            step = min(mf[mu, _TTF], mf[mu, _SERVICE])
            if mf[mu, _REMAINING] <= step:
                mf[mu, _TTF] -= mf[mu, _REMAINING]
                mf[mu, _SERVICE] -= mf[mu, _REMAINING]
                _timeout(events, procs, m, mf[mu, _REMAINING], M_DONE)
                return
            mf[mu, _STEP] = step
            if step > 0:
                _timeout(events, procs, m, step, M_WS_STEP)
                return
            pc = M_WS_STEP
        elif pc == M_WS_STEP:
            step = mf[mu, _STEP]
            mf[mu, _REMAINING] -= step
            failed = mf[mu, _TTF] <= mf[mu, _SERVICE]
            mf[mu, _TTF] -= step
            mf[mu, _SERVICE] -= step
            if failed:
                mi[mu, _REP_RETURN] = M_WS_RENEW
                pc = M_FAIL
            else:
                mi[mu, _SERVE_RETURN] = M_WS_WORK
                pc = M_SERVE
        elif pc == M_WS_RENEW:
            _renew(samples, machines, line, m)
            pc = M_WS_WORK
        elif pc == M_WS_WORK:
            _set_state(events, machines, m, WORKING)
            pc = M_WS_LOOP
        elif pc == M_SERVE:
            # Machine.serve: a preventive service for its drawn duration renews the machine
            _set_state(events, machines, m, MAINTENANCE)
            counts[mu, SERVICES] += 1
            _timeout(events, procs, m, _draw(samples, sids[mu, _SERVICE_SID]), M_SERVED)
            return
        elif pc == M_SERVED:
            _renew(samples, machines, line, m)
            pc = mi[mu, _SERVE_RETURN]
        elif pc == M_REP_GO:
            _set_state(events, machines, m, DOWN)
            if mi[mu, _REP_GIVEN] != 0:  # the repair under way at the start
                mi[mu, _REP_GIVEN] = 0
                _timeout(events, procs, m, mf[mu, _REPAIR_LEFT], M_REP_END)
            else:
                _timeout(events, procs, m, _draw(samples, sids[mu, _TTR_SID]), M_REP_END)
            return
        elif pc == M_REP_END:
            _crew_release(events, crews, machines, line, station_ints[su, _CREW])
            pc = mi[mu, _REP_RETURN]
        elif pc == M_STARVE:
            # Machine.starve: starved, and switched off after `switch_off.after` without a part
            request = mi[mu, _REQUEST]
            if mi[mu, _IS_OFF] != 0:
                _wait_for(events, procs, m, request, M_NET_WOKE if net_take else M_GOT)
                return
            _set_state(events, machines, m, STARVED)
            left = station_floats[su, _SWITCH_AFTER] - (clock[0] - mf[mu, _FETCH_SINCE])
            if left > 0:
                condition = _new_event(events, CONDITION, m)
                clock_out = _new_event(events, TIMEOUT, -1)
                _schedule(events, clock_out, NORMAL, left)
                ev[request, _CONDITION] = condition
                ev[clock_out, _CONDITION] = condition
                ev[condition, _ITEM] = request
                ev[condition, _STORE] = clock_out
                _wait_for(events, procs, m, condition, M_STARVE_WOKE)
                return
            pc = M_OFF
        elif pc == M_STARVE_WOKE:
            request = mi[mu, _REQUEST]
            if ev[request, _TRIGGERED] != 0 and net_take:  # a part came: look again
                _unpin(events, request)
                pc = M_NET_TAKE
            elif ev[request, _TRIGGERED] != 0:
                mi[mu, _PART] = ev[request, _ITEM]
                _unpin(events, request)
                pc = M_AFTER_GET
            else:
                pc = M_OFF
        elif pc == M_OFF:
            _set_state(events, machines, m, OFF)
            mi[mu, _IS_OFF] = 1
            _wait_for(events, procs, m, mi[mu, _REQUEST], M_NET_WOKE if net_take else M_GOT)
            return
        elif pc == M_NET_TAKE:
            # `Network.run` takes a part: an assembly one from each input at once; a rework station
            # a part sent back first, then the buffer's; a saturated branch head makes one
            input_store = net[1]
            if net_ints[su, _N_ASSEMBLY] != 0:
                missing = -1
                for slot in range(net_ints[su, _N_INPUTS]):
                    if not _has_part(stores, input_store[su, slot]):
                        missing = input_store[su, slot]
                        break
                if missing >= 0:
                    waiter = _new_waiter(events)
                    _add_waiter(events, stores, missing, waiter)
                    mi[mu, _REQUEST] = waiter
                    pc = M_WAIT_PART
                    continue
                joined = net_ints[su, _N_INPUTS]
                for slot in range(joined):
                    taken = _store_get(events, stores, input_store[su, slot])
                    if slot == 0:
                        mi[mu, _PART] = ev[taken, _ITEM]
                for _ in range(joined - 1):  # LineModel.parts_joined
                    _part_left(events, samples, stores, parts)
                pc = M_AFTER_GET
                continue
            returns = net_ints[su, _N_RETURNS]
            buffer = input_store[su, 0]
            if returns >= 0 and stores[2][returns, 1] > 0:
                mi[mu, _PART] = ev[_store_get(events, stores, returns), _ITEM]
                pc = M_AFTER_GET
            elif _has_part(stores, buffer):
                mi[mu, _PART] = ev[_store_get(events, stores, buffer), _ITEM]
                pc = M_AFTER_GET
            elif net_ints[su, _N_HEAD_SID] >= 0:
                mi[mu, _PART] = _routed_part(events, samples, parts, net_ints[su, _N_HEAD_SID])
                _part_entered(events, parts)
                pc = M_AFTER_GET
            else:
                waiter = _new_waiter(events)
                _add_waiter(events, stores, buffer, waiter)
                _add_waiter(events, stores, returns, waiter)
                mi[mu, _REQUEST] = waiter
                pc = M_WAIT_PART
        elif pc == M_WAIT_PART:
            # starved until the get (a network station's waiter) is done, or `Machine.starve`
            request = mi[mu, _REQUEST]
            if station_ints[su, _SWITCH] != 0:
                ev[request, _PINNED] = 1
                pc = M_STARVE
            else:
                _set_state(events, machines, m, STARVED)
                _wait_for(events, procs, m, request, M_NET_WOKE if net_take else M_GOT)
                return
        elif pc == M_NET_WOKE:
            if ev[event, _PINNED] != 0:
                _unpin(events, event)
            pc = M_NET_TAKE
        elif pc == M_NET_ROUTE:
            # where the finished part goes: on, back for rework, or out (`Network.destination`)
            part = mi[mu, _PART]
            reworked = False
            if net_ints[su, _N_REWORK_TO] >= 0:
                reworked = _draw(samples, net[4][mu]) < net[3][su]
            mi[mu, _INTO] = _destination(parts, station, part, reworked)
            mi[mu, _TRANSPORT_OF] = 1 if reworked else 0
            pc = M_NET_PASS
        elif pc == M_NET_PASS:
            # pass it on: out, into the rework queue, onto the transport or into the buffer
            part = mi[mu, _PART]
            target = mi[mu, _INTO]
            reworked = mi[mu, _TRANSPORT_OF] != 0
            if target < 0:
                mi[mu, _PART] = -1
                _part_exited(events, samples, stores, parts, part)
                counts[mu, PARTS_OUT] += 1
                pc = M_LOOP
                continue
            transport = -1
            if reworked:
                into = net_ints[target, _N_RETURNS]
            else:
                into = net[1][target, net[2][target, station]]
                transport = net_ints[target, _N_TRANSPORT]
            if transport < 0:
                delivery = _store_put(events, stores, into, part)
                if ev[delivery, _TRIGGERED] == 0:
                    _set_state(events, machines, m, BLOCKED)
                    _wait_for(events, procs, m, delivery, M_PUT_DONE)
                    return
                pc = M_PUT_DONE
                continue
            # a place on the transport (simpy.Resource.request): the first request waiting is served
            mi[mu, _INTO] = into
            mi[mu, _TRANSPORT_OF] = transport
            tr_ints, tr_queue = net[7], net[8]
            request = _new_event(events, GENERIC, -1)
            tr_queue[transport, tr_ints[transport, _T_WAITING]] = request
            tr_ints[transport, _T_WAITING] += 1
            _grant_place(events, net, transport)
            if ev[request, _TRIGGERED] == 0:
                _set_state(events, machines, m, BLOCKED)
                _wait_for(events, procs, m, request, M_NET_CARRY)
                return
            pc = M_NET_CARRY
        elif pc == M_NET_CARRY:
            # the part goes onto the transport: its carry is a process of its own
            transport = mi[mu, _TRANSPORT_OF]
            tr_ints, carry_ints = net[7], net[9]
            c = tr_ints[transport, _T_FIRST]
            while carry_ints[c, _C_BUSY] != 0:
                c += 1
            carry_ints[c, _C_BUSY] = 1
            carry_ints[c, _C_PART] = mi[mu, _PART]
            carry_ints[c, _C_INTO] = mi[mu, _INTO]
            mi[mu, _PART] = -1
            config = parts[8]
            proc = 2 * config[_MACHINES] + config[_RELEASES] + config[_LOADERS] + c
            procs[proc, 0] = C_START
            _start(events, procs, proc)
            counts[mu, PARTS_OUT] += 1
            pc = M_LOOP
        elif pc == M_RESTART:
            # Machine.restart_after_off: the part waits for the restart (booked as set-up)
            mi[mu, _IS_OFF] = 0
            _set_state(events, machines, m, SETUP)
            if mode == CALENDAR:
                mf[mu, _REMAINING] = _draw(samples, sids[mu, _RESTART_SID])
                mi[mu, _RETURN] = M_HAVE_PART
                pc = M_OCC
            else:
                _timeout(events, procs, m, _draw(samples, sids[mu, _RESTART_SID]), M_HAVE_PART)
                return
        elif pc == M_START:
            if start_ints[mu, _START_STATE] != NO_START:
                pc = M_FROM_STATE
                continue
            # first_failure_clock (operation-based failures only), then begin_plant's service clocks
            if mode == OPERATING:
                mf[mu, _TTF] = _draw(samples, sids[mu, _TTF_SID])
            if serviced:
                mf[mu, _TTF] = _draw(samples, sids[mu, _TTF_SID]) if mode == OPERATING else np.inf
                every = station_floats[su, _EVERY]
                mf[mu, _SERVICE] = every if every > 0 else np.inf
                mi[mu, _SINCE_SERVICE] = 0
            pc = M_LOOP
        elif pc == M_FROM_STATE:
            # a run from a state: first_failure_clock, begin_plant and `resume` with the part held
            first = start_ints[mu, _START_STATE]
            held = start_ints[mu, _START_PART]
            given_ttf = start_floats[mu, _START_TTF]
            resumed = not (first in (STARVED, OFF) or (first == MAINTENANCE and held < 0))
            if mode == OPERATING:
                if not np.isnan(given_ttf):
                    mf[mu, _TTF] = given_ttf
                elif first == DOWN:
                    mf[mu, _TTF] = 0.0
                else:
                    mf[mu, _TTF] = _draw(samples, sids[mu, _TTF_SID])
            if serviced:  # start_service_clocks: the failure clock once more, and the service clock
                if mode != OPERATING or first == DOWN:
                    mf[mu, _TTF] = np.inf  # (after a repair under way: drawn when it ends)
                elif np.isnan(given_ttf):
                    mf[mu, _TTF] = _draw(samples, sids[mu, _TTF_SID])
                every = station_floats[su, _EVERY]
                if every > 0:
                    age = start_floats[mu, _START_AGE]
                    mf[mu, _SERVICE] = max(0.0, every - (0.0 if np.isnan(age) else age))
                else:
                    mf[mu, _SERVICE] = np.inf
                mi[mu, _SINCE_SERVICE] = 0
            if resumed:
                pc = M_RESUME
            elif first == OFF:  # begin_empty
                _enter(events, machines, m, OFF)
                mi[mu, _IS_OFF] = 1
                pc = M_LOOP
            elif first == MAINTENANCE:
                _set_state(events, machines, m, MAINTENANCE)
                _timeout(events, procs, m, start_floats[mu, _START_REMAINING], M_BEGIN_SERVED)
                return
            else:
                pc = M_LOOP
        elif pc == M_BEGIN_SERVED:
            _renew(samples, machines, line, m)
            pc = M_LOOP
        elif pc == M_RESUME:
            # Machine.resume: finish what the machine was doing at the start with its part
            first = start_ints[mu, _START_STATE]
            part = start_ints[mu, _START_PART]
            mi[mu, _PART] = part
            mi[mu, _LAST] = part_product[part]
            remaining_then = start_floats[mu, _START_REMAINING]
            if first == BLOCKED and networked:  # its part goes on (it is not reworked)
                mi[mu, _INTO] = _destination(parts, station, part, False)
                mi[mu, _TRANSPORT_OF] = 0
                pc = M_NET_PASS
            elif first == BLOCKED:
                pc = M_DELIVER
            elif first == SETUP:
                _set_state(events, machines, m, SETUP)
                if mode == CALENDAR:
                    mf[mu, _REMAINING] = remaining_then
                    mi[mu, _RETURN] = M_RESUME_FRESH
                    pc = M_OCC
                else:
                    _timeout(events, procs, m, remaining_then, M_RESUME_FRESH)
                    return
            elif first == MAINTENANCE:
                _set_state(events, machines, m, MAINTENANCE)
                _timeout(events, procs, m, remaining_then, M_RESUME_RENEW)
                return
            elif first == DOWN:
                if mode == CALENDAR:
                    pc = M_RESUME_FRESH
                elif station_ints[su, _CREW] < 0:
                    _set_state(events, machines, m, DOWN)
                    _timeout(events, procs, m, remaining_then, M_RESUME_FRESH)
                    return
                else:
                    mi[mu, _REP_RETURN] = M_RESUME_FRESH
                    mi[mu, _REP_GIVEN] = 1
                    mf[mu, _REPAIR_LEFT] = remaining_then
                    pc = M_CALL_CREW
            else:
                _set_state(events, machines, m, WORKING)
                mf[mu, _DURATION] = remaining_then
                pc = M_WORK
        elif pc == M_RESUME_RENEW:
            _renew(samples, machines, line, m)
            pc = M_RESUME_FRESH
        elif pc == M_RESUME_FRESH:
            _set_state(events, machines, m, WORKING)
            mf[mu, _DURATION] = _draw(samples, cycle_sid[mu, part_product[mi[mu, _PART]]])
            if start_ints[mu, _START_STATE] == DOWN and mode == OPERATING:
                fresh = _draw(samples, sids[mu, _TTF_SID])
                if not serviced:
                    mf[mu, _TTF] = fresh
            pc = M_WORK


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _interrupt_if_occupied(events, machines, m):
    mu = _u(m)
    if machines[0][mu, _OCCUPIED] != 0:
        interrupt = _new_event(events, INTERRUPT, m)
        _schedule(events, interrupt, URGENT, 0.0)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_breakdowns(m, events, samples, machines, crews, line, procs):
    """`Machine.calendar_breakdowns` from where it waits, to its next wait."""
    mu = _u(m)
    n_machines = line[0].shape[0]
    proc = n_machines + m
    mi, counts = machines[0], machines[3]
    sids = line[4]
    crew = line[1][line[0][mu], _CREW]
    pc = procs[proc, 0]
    while True:
        if events[5][_STATUS] != OK or samples[4][0] >= 0:
            return
        if pc == B_START and line[6][mu, _START_STATE] == DOWN:
            # down at the start, for its repair's residual time (not counted as a failure)
            mi[mu, _REPAIRED] = _new_event(events, GENERIC, -1)
            mi[mu, _DOWN] = 1
            _interrupt_if_occupied(events, machines, m)
            left = line[7][mu, _START_REMAINING]
            if crew < 0:
                _enter(events, machines, m, DOWN)
                _timeout(events, procs, proc, left, B_REPAIRED)
                return
            mi[mu, _REP_GIVEN] = 1
            mf = machines[1]
            mf[mu, _REPAIR_LEFT] = left
            granted = _crew_call(events, crews, crew, m, proc)
            if granted >= 0:
                _enter(events, machines, m, WAITING_REPAIR)
                _wait_for(events, procs, proc, granted, B_REP_GO)
                return
            pc = B_REP_GO
        elif pc in (B_START, B_LOOP):
            _timeout(events, procs, proc, _draw(samples, sids[mu, _TTF_SID]), B_FAIL)
            return
        if pc == B_FAIL:
            mi[mu, _REPAIRED] = _new_event(events, GENERIC, -1)
            mi[mu, _DOWN] = 1
            counts[mu, FAILURES] += 1
            if crew < 0:
                _enter(events, machines, m, DOWN)
                _interrupt_if_occupied(events, machines, m)
                _timeout(events, procs, proc, _draw(samples, sids[mu, _TTR_SID]), B_REPAIRED)
                return
            _interrupt_if_occupied(events, machines, m)
            granted = _crew_call(events, crews, crew, m, proc)
            if granted >= 0:
                _enter(events, machines, m, WAITING_REPAIR)
                _wait_for(events, procs, proc, granted, B_REP_GO)
                return
            pc = B_REP_GO
        elif pc == B_REP_GO:
            _enter(events, machines, m, DOWN)
            if mi[mu, _REP_GIVEN] != 0:
                mi[mu, _REP_GIVEN] = 0
                _timeout(events, procs, proc, machines[1][mu, _REPAIR_LEFT], B_REP_END)
            else:
                _timeout(events, procs, proc, _draw(samples, sids[mu, _TTR_SID]), B_REP_END)
            return
        elif pc == B_REP_END:
            _crew_release(events, crews, machines, line, crew)
            pc = B_REPAIRED
        elif pc == B_REPAIRED:
            mi[mu, _DOWN] = 0
            _enter(events, machines, m, mi[mu, _LOGICAL])
            _schedule(events, mi[mu, _REPAIRED], NORMAL, 0.0)
            pc = B_LOOP


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_arrivals(proc, events, samples, stores, parts, procs):
    """`Release.arrivals`: a release after each interarrival time."""
    if procs[proc, 0] == A_RELEASE:
        _release(events, samples, stores, parts)
    _timeout(events, procs, proc, _draw(samples, parts[8][_ARRIVAL_SID]), A_RELEASE)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_loader(proc, event, events, stores, parts, procs, carried):
    """`Release._load_from_backlog`: the backlog's first order into the first buffer."""
    config = parts[8]
    pc = procs[proc, 0]
    if pc == L_GOT:
        carried[0] = events[3][event, _ITEM]
        delivery = _store_put(events, stores, config[_FIRST_STORE], carried[0])
        _wait_for(events, procs, proc, delivery, L_PUT)
        return
    if pc == L_PUT:
        parts[1][carried[0]] = events[6][0]
        _part_entered(events, parts)
    request = _store_get(events, stores, config[_BACKLOG])
    _wait_for(events, procs, proc, request, L_GOT)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_net_release(r, proc, events, samples, stores, parts, procs):
    """`twin.release.arrivals` of a network's release `r`: a part after each interarrival time."""
    if procs[proc, 0] == A_RELEASE:
        _net_release(events, samples, stores, parts, r)
    _timeout(events, procs, proc, _draw(samples, parts[11][10][r, _R_ARRIVAL_SID]), A_RELEASE)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_net_loader(k, proc, event, events, stores, parts, procs):
    """`Network._release`'s `load_from_backlog`: the backlog's first part into its station's buffer."""
    loader_ints = parts[11][12]
    pc = procs[proc, 0]
    if pc == L_GOT:
        part = events[3][event, _ITEM]
        loader_ints[k, _L_PART] = part
        delivery = _store_put(events, stores, loader_ints[k, _L_INTO], part)
        _wait_for(events, procs, proc, delivery, L_PUT)
        return
    if pc == L_PUT:
        parts[1][loader_ints[k, _L_PART]] = events[6][0]
        _part_entered(events, parts)
    request = _store_get(events, stores, loader_ints[k, _L_BACKLOG])
    _wait_for(events, procs, proc, request, L_GOT)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy", inline="always")
def _run_carry(c, proc, events, samples, stores, parts, procs):
    """`Transport.carry`: the part travels, waits for the buffer to take it, and frees its place."""
    net = parts[11]
    tr_ints, carry_ints = net[7], net[9]
    transport = carry_ints[c, _C_TRANSPORT]
    pc = procs[proc, 0]
    if pc == C_START:
        _timeout(events, procs, proc, _draw(samples, tr_ints[transport, _T_SID]), C_ARRIVED)
    elif pc == C_FROM_START:  # `carry_from_start`: on the way at the start, `remaining` from arriving
        _timeout(events, procs, proc, net[13][c], C_ARRIVED)
    elif pc == C_ARRIVED:
        delivery = _store_put(events, stores, carry_ints[c, _C_INTO], carry_ints[c, _C_PART])
        _wait_for(events, procs, proc, delivery, C_PUT)
    else:  # places.release(place): the place is free now, the next request is served when it is done
        carry_ints[c, _C_BUSY] = 0
        tr_ints[transport, _T_USERS] -= 1
        release = _new_event(events, RELEASE, -1)
        events[3][release, _STORE] = transport
        _schedule(events, release, NORMAL, 0.0)


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _restart_statistics(events, machines, parts):
    """`LineModel.restart_statistics` at the warm-up's end."""
    mi, mf, time_in, counts, changes, n_changes = machines
    now = events[6][0]
    parts[7][0] = 0.0
    events[6][1] = now
    parts[6][EXITS] = 0
    parts[6][SCRAPS] = 0
    for m in range(mi.shape[0]):
        time_in[m, :] = 0.0
        mf[m, _SINCE] = now
        if _is_active(mi[m, _STATE]):
            changes[m, 0] = now
            n_changes[m] = 1
        else:
            n_changes[m] = 0
        counts[m, :] = 0


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _start(events, procs, proc):
    event = _new_event(events, INIT, proc)
    _schedule(events, event, URGENT, 0.0)
    procs[proc, 1] = event


@njit(cache=True, no_cpython_wrapper=True, _nrt=False, error_model="numpy")
def _loop(events, samples, stores, machines, parts, crews, line, procs, carried, warmup, end):
    """The event list run to `end`: SimPy's order (time, priority, order of scheduling)."""
    heap_time, ev, ints, clock = events[0], events[3], events[5], events[6]
    need = samples[4]
    n_machines = line[0].shape[0]
    arrivals_proc = 2 * n_machines
    config = parts[8]
    networked = config[_NET] != 0
    loaders = arrivals_proc + config[_RELEASES]
    carries = loaders + config[_LOADERS]
    processed = 0
    while ints[_STATUS] == OK and need[0] < 0:
        # the current instant: urgent events, those scheduled for it earlier, then those it made
        if ints[_FIFO_LEN + 2 * URGENT] > 0:
            event = _pop_fifo(events, URGENT)
        elif ints[_HEAP] > 0 and heap_time[0] == clock[0]:
            event = _pop_event(events)
        elif ints[_FIFO_LEN + 2 * NORMAL] > 0:
            event = _pop_fifo(events, NORMAL)
        elif ints[_HEAP] > 0:
            time = heap_time[0]
            if ints[_WARMED] == 0 and time >= warmup:
                clock[0] = warmup
                _restart_statistics(events, machines, parts)
                ints[_WARMED] = 1
            if time >= end:
                break
            event = _pop_event(events)
            clock[0] = time
        else:
            break
        processed += 1
        kind = ev[event, _KIND]
        owner = ev[event, _OWNER]
        if kind == PUT:
            _trigger_get(events, stores, ev[event, _STORE])
        elif kind == GET:
            _trigger_put(events, stores, ev[event, _STORE])
        elif kind == RELEASE:
            _grant_place(events, parts[11], ev[event, _STORE])
        elif kind == INTERRUPT:
            # Interruption._interrupt: the machine stops waiting for its timeout and is thrown into
            ev[procs[owner, 1], _OWNER] = -1
            procs[owner, 0] = M_OCC_INTERRUPTED
        elif kind == CONDITION:
            # the AnyOf is done: its checks leave the events it waited for (`_remove_check_callbacks`)
            for column in (_ITEM, _STORE):
                if ev[event, column] >= 0:
                    ev[ev[event, column], _CONDITION] = -1
        condition = ev[event, _CONDITION]
        if condition >= 0:
            # Condition._check: the first of its events triggers it
            if ev[condition, _TRIGGERED] == 0:
                _schedule(events, condition, NORMAL, 0.0)
            for column in (_ITEM, _STORE):
                if ev[condition, column] == event:
                    ev[condition, column] = -1
            ev[event, _CONDITION] = -1
        if owner >= 0:
            if owner < n_machines:
                _run_machine(owner, event, events, samples, stores, machines, parts, crews, line, procs)
            elif owner < 2 * n_machines:
                _run_breakdowns(owner - n_machines, events, samples, machines, crews, line, procs)
            elif not networked:
                if owner == arrivals_proc:
                    _run_arrivals(owner, events, samples, stores, parts, procs)
                else:
                    _run_loader(owner, event, events, stores, parts, procs, carried)
            elif owner < loaders:
                _run_net_release(owner - arrivals_proc, owner, events, samples, stores, parts, procs)
            elif owner < carries:
                _run_net_loader(owner - loaders, owner, event, events, stores, parts, procs)
            else:
                _run_carry(owner - carries, owner, events, samples, stores, parts, procs)
        _free_event(events, event)
    ints[_PROCESSED] = processed


@njit(cache=True)
def run_line(
    station_of,  # int64[M]: each machine's station
    station_first,  # int64[S]: its first machine
    station_machines,  # int64[S]
    inbound,  # int64[S]: the store a station takes from (-1: raw material always there)
    outbound,  # int64[S]: the store it hands on to (-1: the last station)
    has_setup,  # bool[S]
    scrap_probability,  # float64[S]
    failure_mode,  # int64[S]
    crew_of,  # int64[S]: the crew that repairs it (-1: a repairer at once)
    store_capacity,  # int64[ST]: places (-1 unlimited, 0 hand-over)
    release_mode,
    first_store,  # the store the release puts into (-1 saturated)
    backlog_store,  # -1 without a backlog
    conwip_limit,
    crew_free,  # int64[C]: technicians per crew (changed: free ones)
    crew_bottleneck,  # bool[C]: the `bottleneck` priority
    service_every,  # float64[S]: operating time between services (0: none by time)
    service_parts,  # int64[S]: parts between services (0: none by parts)
    switch_off_after,  # float64[S]: starved time before switching off (-1: never)
    values,  # the samples of every stream, one after the other
    stream_start,
    stream_count,
    cycle_sid,  # int64[M, P]
    setup_sid,  # int64[M]
    scrap_sid,
    ttf_sid,
    ttr_sid,
    service_sid,  # int64[M]: the services' durations
    restart_sid,  # int64[M]: the restarts after a switch-off
    start_ints,  # int64[M, 2]: a run from a state: each machine's state (NO_START: empty) and product
    start_floats,  # float64[M, 3]: its residual time, failure clock and age (NaN: not given)
    buffer_station,  # int64[K]: the parts in buffers at the start, front first: their station
    buffer_product,  # int64[K]: and product
    placed,  # int64[K, 3]: in a network, each of those parts' place (0: buffer, 1: rework queue,
    #   2: transport), input and position in its route
    placed_remaining,  # float64[K]: a part on a transport, its time still to travel
    held_position,  # int64[M]: in a network, the position in its route of the part each machine holds
    arrival_sid,
    product_sid,
    warmup,
    end,
    time_in,  # out: float64[M, N_STATES]
    counts,  # out: int64[M, 5]
    changes,  # out: float64[M, K], the instants the machine turns active or inactive
    n_changes,  # out: int64[M]
    entries,  # out: float64[parts], every entry into the line (from 0)
    leaves,  # out: every part leaving it (out or scrapped)
    exit_times,  # out: since the warm-up
    lead_times,
    totals,  # out: int64[6]
    line_floats,  # out: float64[2], the WIP area since the warm-up, the instant the run stopped at
    used,  # out: int64[streams], samples taken of each
    need,  # out: int64[1], the stream that ran short
    items_room,  # places of the ring of an unlimited store
    event_room,  # events pending at once
    networked,  # a network line (twin.network): the arrays below hold it (empty for a chain)
    store_watched,  # bool[ST]: the store wakes the machines waiting for a part (WatchedStore)
    net_ints,  # int64[S, 9]: per station, the columns _N_*
    input_store,  # int64[S, I]: the store of each input
    slot_of,  # int64[S, S]: the input of a station a part from another enters
    rework_probability,  # float64[S]
    rework_sid,  # int64[M]
    route,  # int64[P, L]: each product's route (stations)
    route_len,  # int64[P]: its length (0: no route)
    transports,  # int64[T, 5]: per transport, the columns _T_*
    releases,  # int64[R, 4]: the line's release (first) and the branch heads' own, columns _R_*
    backlog_of,  # int64[R, S]: the loader of a release's backlog in front of a station (-1: none)
    loaders,  # int64[K, 4]: per loader, the columns _L_* (backlog and store filled)
):
    """One run; returns OK, or the status that asks for more samples (`need`) or room."""
    n_machines = station_of.shape[0]
    n_stations = station_first.shape[0]
    n_stores = store_capacity.shape[0]
    n_releases = releases.shape[0] if networked else 1
    n_loaders = loaders.shape[0] if networked else 1
    n_carries = 0
    for t in range(transports.shape[0]):
        transports[t, _T_FIRST] = n_carries
        n_carries += transports[t, _T_CAPACITY]
    n_procs = 2 * n_machines + n_releases + n_loaders + n_carries
    arrivals_proc = 2 * n_machines
    loader_proc = 2 * n_machines + 1

    need[0] = -1
    samples = (values, stream_start, stream_count, np.zeros(stream_start.shape[0], dtype=np.int64), need)
    ints = np.zeros(_INTS, dtype=np.int64)
    ints[_FREE] = event_room
    events = (
        np.zeros(event_room),
        np.zeros(event_room, dtype=np.int64),
        np.zeros(event_room, dtype=np.int64),
        np.zeros((event_room, _EVENT_COLUMNS), dtype=np.int64),
        np.arange(event_room - 1, -1, -1).astype(np.int64),
        ints,
        np.zeros(2),
        np.zeros((2, event_room), dtype=np.int64),
    )
    queue_room = n_procs + 2
    meta = np.zeros((max(n_stores, 1), _META), dtype=np.int64)
    for store in range(store_watched.shape[0]):
        meta[store, _WATCHED] = store_watched[store]
    stores = (
        store_capacity,
        np.zeros((max(n_stores, 1), items_room), dtype=np.int64),
        meta,
        np.zeros((max(n_stores, 1), queue_room), dtype=np.int64),
        np.zeros((max(n_stores, 1), queue_room), dtype=np.int64),
        np.zeros((max(n_stores, 1), n_machines + 1, 2), dtype=np.int64),
    )
    mi = np.zeros((n_machines, _MACHINE_INTS), dtype=np.int64)
    mi[:, _STATE] = STARVED
    mi[:, _LOGICAL] = STARVED
    mi[:, _REPAIRED] = -1
    mi[:, _LAST] = -1
    mi[:, _PART] = -1
    machines = (mi, np.zeros((n_machines, _MACHINE_FLOATS)), time_in, counts, changes, n_changes)
    config = np.array(
        [
            release_mode,
            first_store,
            backlog_store,
            conwip_limit,
            n_machines,
            product_sid,
            arrival_sid,
            1 if networked else 0,
            n_releases,
            n_loaders,
        ],
        dtype=np.int64,
    )
    max_parts = entries.shape[0]
    carry_ints = np.zeros((max(n_carries, 1), 4), dtype=np.int64)
    for t in range(transports.shape[0]):
        for c in range(transports[t, _T_FIRST], transports[t, _T_FIRST] + transports[t, _T_CAPACITY]):
            carry_ints[c, _C_TRANSPORT] = t
    procs = np.zeros((n_procs, 2), dtype=np.int64)
    net = (
        net_ints,
        input_store,
        slot_of,
        rework_probability,
        rework_sid,
        route,
        route_len,
        transports,
        np.zeros((max(transports.shape[0], 1), n_machines + 1), dtype=np.int64),
        carry_ints,
        releases,
        backlog_of,
        loaders,
        np.zeros(max(n_carries, 1)),
    )
    parts = (
        np.zeros(max_parts, dtype=np.int64),
        np.zeros(max_parts),
        entries,
        leaves,
        exit_times,
        lead_times,
        totals,
        line_floats,
        config,
        np.full(max_parts, -1, dtype=np.int64),
        procs,
        net,
    )
    n_crews = crew_free.shape[0]
    crews = (
        crew_free,
        crew_bottleneck,
        np.zeros((max(n_crews, 1), n_machines + 1, 2), dtype=np.int64),
        np.zeros(max(n_crews, 1), dtype=np.int64),
    )
    station_ints = np.zeros((n_stations, 10), dtype=np.int64)
    station_ints[:, _IN] = inbound
    station_ints[:, _OUT] = outbound
    station_ints[:, _SETUP] = has_setup
    station_ints[:, _MODE] = failure_mode
    station_ints[:, _CREW] = crew_of
    station_ints[:, _FIRST] = station_first
    station_ints[:, _COUNT] = station_machines
    station_ints[:, _SERVICE_PARTS] = service_parts
    station_ints[:, _SERVICED] = (service_every > 0) | (service_parts > 0)
    station_ints[:, _SWITCH] = switch_off_after >= 0
    station_floats = np.zeros((n_stations, 2))
    station_floats[:, _EVERY] = service_every
    station_floats[:, _SWITCH_AFTER] = switch_off_after
    sids = np.zeros((n_machines, 6), dtype=np.int64)
    sids[:, _SETUP_SID] = setup_sid
    sids[:, _SCRAP_SID] = scrap_sid
    sids[:, _TTF_SID] = ttf_sid
    sids[:, _TTR_SID] = ttr_sid
    sids[:, _SERVICE_SID] = service_sid
    sids[:, _RESTART_SID] = restart_sid
    held = start_ints.copy()  # the part each machine holds at the start, by its number
    line = (station_of, station_ints, scrap_probability, cycle_sid, sids, station_floats, held, start_floats)
    carried = np.full(1, -1, dtype=np.int64)

    # `LineModel.__init__`: the parts in the line at the start (held, then each buffer's), then the
    # processes in the order SimPy creates them
    part_product = parts[0]
    items, meta = stores[1], stores[2]
    k = 0
    position = parts[9]
    if networked:  # `Network._place`: the parts held, then those in buffers, rework queues, transports
        for m in range(n_machines):
            if start_ints[m, _START_PART] >= 0:
                held[m, _START_PART] = ints[_PARTS]
                part_product[ints[_PARTS]] = start_ints[m, _START_PART]
                position[ints[_PARTS]] = held_position[m]
                ints[_PARTS] += 1
                _part_entered(events, parts)
        for k in range(buffer_station.shape[0]):
            part = ints[_PARTS]
            part_product[part] = buffer_product[k]
            position[part] = placed[k, 2]
            ints[_PARTS] += 1
            _part_entered(events, parts)
            j = buffer_station[k]
            if placed[k, 0] == 2:  # `Transport.carry_from_start`: its place is granted at once
                transport = net_ints[j, _N_TRANSPORT]
                transports[transport, _T_USERS] += 1
                request = _new_event(events, GENERIC, -1)
                _schedule(events, request, NORMAL, 0.0)
                c = transports[transport, _T_FIRST]
                while carry_ints[c, _C_BUSY] != 0:
                    c += 1
                carry_ints[c, _C_BUSY] = 1
                carry_ints[c, _C_PART] = part
                carry_ints[c, _C_INTO] = input_store[j, 0]
                net[13][c] = placed_remaining[k]
                proc = 2 * n_machines + n_releases + n_loaders + c
                procs[proc, 0] = C_FROM_START
                _start(events, procs, proc)
                continue
            store = input_store[j, placed[k, 1]] if placed[k, 0] == 0 else net_ints[j, _N_RETURNS]
            items[store, (meta[store, 0] + meta[store, 1]) % items_room] = part
            meta[store, 1] += 1
        k = buffer_station.shape[0]
    for j in range(n_stations if not networked else 0):
        for m in range(station_first[j], station_first[j] + station_machines[j]):
            if start_ints[m, _START_PART] >= 0:
                held[m, _START_PART] = ints[_PARTS]
                part_product[ints[_PARTS]] = start_ints[m, _START_PART]
                ints[_PARTS] += 1
                _part_entered(events, parts)
        while k < buffer_station.shape[0] and buffer_station[k] == j:
            store = inbound[j]
            items[store, (meta[store, 0] + meta[store, 1]) % items_room] = ints[_PARTS]
            meta[store, 1] += 1
            part_product[ints[_PARTS]] = buffer_product[k]
            ints[_PARTS] += 1
            _part_entered(events, parts)
            k += 1
    if networked:  # `Network.__init__`: the line's release, then each branch head's own
        for r in range(n_releases):
            if releases[r, _R_MODE] == INTERARRIVAL:
                _start(events, procs, arrivals_proc + r)
            elif releases[r, _R_MODE] == CONWIP:
                for _ in range(conwip_limit - ints[_WIP]):
                    _net_release(events, samples, stores, parts, r)
    else:
        if backlog_store >= 0:
            _start(events, procs, loader_proc)
        if release_mode == INTERARRIVAL:
            _start(events, procs, arrivals_proc)
        elif release_mode == CONWIP:
            for _ in range(conwip_limit - ints[_WIP]):  # `_fill_to_limit`: nothing in the backlog yet
                _release(events, samples, stores, parts)
    for m in range(n_machines):
        _start(events, procs, m)
        if failure_mode[station_of[m]] == CALENDAR:
            _start(events, procs, n_machines + m)

    ints[_WARMED] = 1 if warmup <= 0.0 else 0
    _loop(events, samples, stores, machines, parts, crews, line, procs, carried, warmup, end)
    warmed = ints[_WARMED] == 1
    processed = ints[_PROCESSED]
    totals[EVENTS] = processed
    totals[PARTS] = ints[_PARTS]
    used[:] = samples[3]
    line_floats[1] = events[6][0]  # short of samples or room: how far the run got
    if ints[_STATUS] != OK:
        return ints[_STATUS]
    if need[0] >= 0:
        return NEED_SAMPLES
    if not warmed:
        events[6][0] = warmup
        _restart_statistics(events, machines, parts)
    # LineModel.close at the horizon
    events[6][0] = end
    _wip_change(events, parts, 0)
    for m in range(n_machines):
        time_in[m, mi[m, _STATE]] += end - machines[1][m, _SINCE]
        machines[1][m, _SINCE] = end
        if _is_active(mi[m, _STATE]):
            n = n_changes[m]
            if n > 0 and changes[m, n - 1] == end:
                n_changes[m] = n - 1
            elif n >= changes.shape[1]:
                return MORE_CHANGES
            else:
                changes[m, n] = end
                n_changes[m] = n + 1
    return OK

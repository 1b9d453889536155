"""Expected output from a given state of a line with a transport and rework, as a Markov chain.

The line: a saturated exponential machine `feed` (rate mu1) hands its part to a transport of
N places (blocked until a place is free); each part travels an exponential time (rate nu), then
waits in its place until the buffer of B places in front of `test` has room (B >= 1). `test`
(rate mu2) sends each finished part back to itself with probability p, into a rework queue that
it serves before its buffer; the others leave the line.

The state of a run from a `fabbrica-state/1` file also holds parts whose remaining travel is a
given number (`remaining_s`: they arrive at that instant) besides those whose travel is
exponential (`elapsed_s`: memoryless, or put on the transport after the start). So the chain's
state is (feed blocked, travelling, arrived and waiting, buffer level, rework queue, test busy,
fixed-time parts still travelling), and between two fixed arrival instants it is a plain
continuous-time Markov chain; at each such instant one fixed-time part arrives (a jump of the
distribution, settled like an exponential arrival). The expected departures in [0, T] are the
integral of p(t) r over the pieces, each read off the generator augmented by r (Van Loan) with
`scipy.sparse.linalg.expm_multiply`, as in `tests.twin.exact.markov.transient_departures`.

With the rework queue empty at the start, a part sent back is served again at once, so `test`
is a machine of rate mu2 (1 - p) and no rework (a geometric sum of exponentials): with N = 1 the
line is then the tandem `feed`, transport, `test` of tests/twin/exact/markov.py, and its long-run
rate the throughput of tests/twin/exact/network_markov.py's transport tandem. Both are checked
in tests/twin/test_network_state_exact.py, beside the engine.

    >>> line = ReworkTransportLine(1.0, 1.0, places=1, buffer=1, test_rate=2.0, rework=0.5)
    >>> round(expected_departures(line, Start(test_busy=True), horizon=1e-6) / 1e-6, 6)  # mu2 (1 - p)
    1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

# (feed blocked, travelling, arrived, level, returns, busy, fixed-time parts still travelling)
State = tuple[bool, int, int, int, int, bool, int]


@dataclass(frozen=True)
class ReworkTransportLine:
    """feed (mu1) -> transport of `places` (travel rate nu) -> `buffer` places -> test (mu2, rework p)."""

    feed_rate: float
    travel_rate: float
    places: int
    buffer: int
    test_rate: float
    rework: float

    def __post_init__(self) -> None:
        for name in ("feed_rate", "travel_rate", "test_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.places < 1 or self.buffer < 1:
            raise ValueError(f"places and buffer: must be >= 1, got {self.places}, {self.buffer}")
        if not 0.0 <= self.rework < 1.0:
            raise ValueError(f"rework: must be in [0, 1), got {self.rework}")


@dataclass(frozen=True)
class Start:
    """A start state: the feed blocked or working, parts travelling with an exponential time left,
    the fixed times left of the others (0: arrived), the buffer, the rework queue, test busy or idle."""

    feed_blocked: bool = False
    travelling: int = 0
    fixed: Sequence[float] = ()
    level: int = 0
    returns: int = 0
    test_busy: bool = False


def settle(line: ReworkTransportLine, state: State) -> State:
    """The zero-time moves: arrived parts into the buffer, an idle test takes a part (the rework
    queue first), a blocked feed puts its part on a free place."""
    blocked, travelling, arrived, level, returns, busy, fixed = state
    moved = True
    while moved:
        moved = False
        if arrived and level < line.buffer:
            arrived, level, moved = arrived - 1, level + 1, True
        if not busy and (returns or level):
            if returns:
                returns -= 1
            else:
                level -= 1
            busy = moved = True
        if blocked and travelling + arrived + fixed < line.places:
            blocked, travelling, moved = False, travelling + 1, True
    return blocked, travelling, arrived, level, returns, busy, fixed


def moves(line: ReworkTransportLine, state: State) -> list[tuple[float, State, float]]:
    """(rate, next state, departures) of each timed move out of `state`."""
    blocked, travelling, arrived, level, returns, busy, fixed = state
    found = []
    if not blocked:
        found.append((line.feed_rate, settle(line, (True, *state[1:])), 0.0))  # type: ignore[arg-type]
    if travelling:
        arrival = (blocked, travelling - 1, arrived + 1, level, returns, busy, fixed)
        found.append((travelling * line.travel_rate, settle(line, arrival), 0.0))
    if busy:
        done = (blocked, travelling, arrived, level, returns, False, fixed)
        found.append((line.test_rate * (1 - line.rework), settle(line, done), 1.0))
        if line.rework > 0:
            back = (blocked, travelling, arrived, level, returns + 1, False, fixed)
            found.append((line.test_rate * line.rework, settle(line, back), 0.0))
    return found


def fixed_arrival(line: ReworkTransportLine, state: State) -> State:
    """One fixed-time part arrives: it waits on the transport like any arrived part."""
    blocked, travelling, arrived, level, returns, busy, fixed = state
    return settle(line, (blocked, travelling, arrived + 1, level, returns, busy, fixed - 1))


def expected_departures(line: ReworkTransportLine, start: Start, horizon: float) -> float:
    """Expected parts leaving the line in [0, horizon] from `start`."""
    fixed = sorted(start.fixed)
    on_transport = start.travelling + len(fixed)
    if on_transport > line.places or start.level > line.buffer:
        raise ValueError("the start holds more parts than the transport or the buffer")
    arrived_now = sum(1 for value in fixed if value <= 0)
    later = [value for value in fixed if value > 0]
    first = settle(
        line,
        (
            start.feed_blocked,
            start.travelling,
            arrived_now,
            start.level,
            start.returns,
            start.test_busy,
            len(later),
        ),
    )
    # every state with at most `returns` in the rework queue (it never grows past what it started
    # with: a part sent back is taken at once by the idle test)
    most_back = max(start.returns, 1)
    states = [
        (bool(b), k, a, q, r, bool(w), d)
        for b, k, a, q, r, w, d in itertools.product(
            (0, 1),
            range(line.places + 1),
            range(line.places + 1),
            range(line.buffer + 1),
            range(most_back + 1),
            (0, 1),
            range(len(later) + 1),
        )
        if k + a + d <= line.places
    ]
    index = {state: i for i, state in enumerate(states)}
    size = len(states)
    rows, cols, rates = [], [], []
    reward = np.zeros(size)
    for i, state in enumerate(states):
        for rate, target, departs in moves(line, state):
            if target not in index:
                continue  # a state that is not settled, or out of reach: never entered from `first`
            rows += [i, i]
            cols += [index[target], i]
            rates += [rate, -rate]
            reward[i] += rate * departs
    q = scipy.sparse.csr_matrix((rates, (rows, cols)), shape=(size, size))
    augmented = (
        scipy.sparse.bmat(
            [
                [q, scipy.sparse.csr_matrix(reward.reshape(size, 1))],
                [scipy.sparse.csr_matrix((1, size)), scipy.sparse.csr_matrix((1, 1))],
            ],
            format="csr",
        )
        .transpose()
        .tocsr()
    )
    p = np.zeros(size + 1)  # the distribution over the states, and the departures so far
    p[index[first]] = 1.0
    now = 0.0
    for instant in (value for value in later if value < horizon):
        p = scipy.sparse.linalg.expm_multiply(augmented * float(instant - now), p)
        now = instant
        arrived = np.zeros(size + 1)
        arrived[-1] = p[-1]
        for i, state in enumerate(states):
            if p[i] != 0.0 and state[6] > 0:
                arrived[index[fixed_arrival(line, state)]] += p[i]
        p = arrived
    p = scipy.sparse.linalg.expm_multiply(augmented * float(horizon - now), p)
    return float(p[-1])

"""Exact steady states of two small networks of issue 17, as Markov chains: an assembly and a transport.

**Assembly.** K >= 2 saturated single-machine feeders (exponential, rates `feeder_rates`),
feeder i with a buffer of `buffers[i]` places (0 = hand-over: the finished part stays on the
blocked feeder) in front of one exponential assembly machine (rate `assembly_rate`) that joins
one part from each feeder into one and sends it out of the line. Blocking after service.
How the idle assembly machine collects its parts is `loading`, because the three natural
readings of "takes one part from each buffer" give different lines:

- "each": it takes each input's part as soon as that input has one and holds it until it
  has them all (a SimPy AllOf over one get per input);
- "in order": it takes the inputs' parts in the order of `inputs`, waiting for each in turn
  (one get after the other): a later input's part is not taken before the earlier ones';
- "all": it takes nothing until every input has a part, then all of them at once.

A state is (feeders, levels, held, assembling): each feeder working or blocked, each buffer's
level, which inputs' parts the idle assembly machine already holds, whether it works.

**Transport.** A saturated exponential machine s1 (rate mu1) hands its part to a transport of
N slots (s1 blocked until a slot is free); the part travels an exponential time (rate nu, the
N slots in parallel), then waits in its slot until the buffer of b places in front of s2 (rate
mu2) has room, or, if b = 0, until s2 is idle. A state is (s1 blocked, travelling, arrived,
level, s2 working).

As in `tests.twin.exact.markov`, zero-time moves are settled, the states reachable from the
empty line are found by breadth-first search, and pi Q = 0, sum(pi) = 1 is solved sparsely.

Two both-hand-over assemblies with every rate 1, solved by hand (states a b c, W working,
B blocked, S idle; Sa: idle holding a's part):
"all": 7 states; with x = pi(WWS), pi(BWS) = pi(WBS) = 2x, pi(WWW) = 2x, pi(BWW) = pi(WBW) = x,
pi(BBW) = 2x, total 11x, so the throughput is P(c works) = 6/11. "each": 9 states; pi(WWS) = 3/45,
pi(WWSa) = pi(WWSb) = pi(BWSa) = pi(WBSb) = 4/45, pi(WWW) = 6/45, pi(BWW) = pi(WBW) = 5/45,
pi(BBW) = 10/45: throughput 26/45. "in order" (a first): 8 states, throughput 22/39
(tests/twin/test_network_exact_refs.py writes out its balance equations). A transport of one
slot is a machine with hand-over in front: s1, the transport and s2 with rates 1 and b = 0 are
the three-machine hand-over tandem, throughput 22/39 as well.

    >>> steady_assembly(AssemblyLine((1.0, 1.0), 1.0, (0, 0), "all")).throughput
    0.5454...
    >>> steady_transport(TransportTandem(1.0, 1.0, slots=1, buffer=0, second_rate=1.0)).throughput
    0.5641...
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.sparse

from tests.twin.exact.markov import stationary_distribution

S = TypeVar("S", bound=Hashable)

LOADINGS = ("each", "in order", "all")
WORKING, BLOCKED = 0, 1


# -- a chain from a start state and its timed moves --------------------------------------------------
def solve_chain(start: S, moves: Callable[[S], list[tuple[float, S]]]) -> tuple[list[S], np.ndarray]:
    """The states reachable from `start` (breadth-first) and their stationary probabilities."""
    index = {start: 0}
    queue = deque([start])
    rows: list[int] = []
    cols: list[int] = []
    rates: list[float] = []
    while queue:
        state = queue.popleft()
        k = index[state]
        for rate, target in moves(state):
            if target not in index:
                index[target] = len(index)
                queue.append(target)
            rows += [k, k]
            cols += [index[target], k]
            rates += [rate, -rate]
    size = len(index)
    q = scipy.sparse.csr_matrix((rates, (rows, cols)), shape=(size, size))
    return list(index), stationary_distribution(q)


# -- assembly --------------------------------------------------------------------------------------
AssemblyState = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], bool]


@dataclass(frozen=True)
class AssemblyLine:
    """Saturated feeders (rates per unit time) with buffers (0 = hand-over) into one assembly machine."""

    feeder_rates: tuple[float, ...]
    assembly_rate: float
    buffers: tuple[int, ...]
    loading: str = "each"

    def __post_init__(self) -> None:
        if len(self.feeder_rates) < 2 or any(rate <= 0 for rate in self.feeder_rates):
            raise ValueError(f"feeder_rates: need two or more rates > 0, got {self.feeder_rates}")
        if self.assembly_rate <= 0:
            raise ValueError(f"assembly_rate: must be > 0, got {self.assembly_rate}")
        if len(self.buffers) != len(self.feeder_rates) or any(b < 0 for b in self.buffers):
            raise ValueError(f"buffers: need {len(self.feeder_rates)} capacities >= 0, got {self.buffers}")
        if self.loading not in LOADINGS:
            raise ValueError(f"loading: must be one of {', '.join(LOADINGS)}, got {self.loading!r}")


@dataclass(frozen=True)
class AssemblySteadyState:
    """Exact long-run measures of an `AssemblyLine` (per feeder: in the order of `feeder_rates`)."""

    throughput: float
    buffer_means: tuple[float, ...]
    held: tuple[float, ...]  # probability that the idle assembly machine holds feeder i's part
    feeder_blocked: tuple[float, ...]
    feeder_working: tuple[float, ...]
    assembly_working: float
    states: int

    @property
    def assembly_starved(self) -> float:
        return 1.0 - self.assembly_working

    @property
    def wip_mean(self) -> float:
        """Parts in the line: one on each feeder, the buffers, the held parts, the part assembled (as one)."""
        return len(self.buffer_means) + sum(self.buffer_means) + sum(self.held) + self.assembly_working

    @property
    def base_lead_time(self) -> float:
        """Mean time from the first feeder taking raw material to the assembled part's exit (Little)."""
        return (1.0 + self.buffer_means[0] + self.held[0] + self.assembly_working) / self.throughput


def settle_assembly(line: AssemblyLine, state: AssemblyState) -> AssemblyState:
    """Carry out every zero-time move: blocked feeders fill their buffers, the idle machine loads."""
    feeders, levels, held = list(state[0]), list(state[1]), list(state[2])
    assembling = state[3]
    inputs = range(len(feeders))

    def available(i: int) -> bool:
        return levels[i] > 0 or (line.buffers[i] == 0 and feeders[i] == BLOCKED)

    def take(i: int) -> None:
        if levels[i] > 0:
            levels[i] -= 1
        else:
            feeders[i] = WORKING  # the hand-over: the feeder is free and takes raw material
        held[i] = 1

    moved = True
    while moved:
        moved = False
        for i in inputs:
            if feeders[i] == BLOCKED and levels[i] < line.buffers[i]:
                levels[i] += 1
                feeders[i] = WORKING
                moved = True
        if assembling:
            continue
        if line.loading == "each":
            for i in inputs:
                if not held[i] and available(i):
                    take(i)
                    moved = True
        elif line.loading == "in order":
            for i in inputs:
                if held[i]:
                    continue
                if not available(i):
                    break
                take(i)
                moved = True
        elif all(available(i) for i in inputs):
            for i in inputs:
                take(i)
            moved = True
        if all(held):
            held = [0] * len(held)
            assembling = True
    return tuple(feeders), tuple(levels), tuple(held), assembling


def assembly_moves(line: AssemblyLine, state: AssemblyState) -> list[tuple[float, AssemblyState]]:
    """Rates and settled targets of the exponential events possible in `state`."""
    feeders, levels, held, assembling = state
    moves = []
    for i, status in enumerate(feeders):
        if status == WORKING:
            done = (*feeders[:i], BLOCKED, *feeders[i + 1 :])
            moves.append((line.feeder_rates[i], settle_assembly(line, (done, levels, held, assembling))))
    if assembling:
        moves.append((line.assembly_rate, settle_assembly(line, (feeders, levels, held, False))))
    return moves


def steady_assembly(line: AssemblyLine) -> AssemblySteadyState:
    """Exact throughput, buffer levels, held parts and blocked/working shares of `line`."""
    k = len(line.feeder_rates)
    start = settle_assembly(line, ((WORKING,) * k, (0,) * k, (0,) * k, False))
    states, pi = solve_chain(start, lambda state: assembly_moves(line, state))
    feeders = np.array([state[0] for state in states])
    levels = np.array([state[1] for state in states], dtype=float)
    held = np.array([state[2] for state in states], dtype=float)
    working = float(pi @ np.array([state[3] for state in states], dtype=float))
    return AssemblySteadyState(
        throughput=line.assembly_rate * working,
        buffer_means=tuple(float(x) for x in pi @ levels),
        held=tuple(float(x) for x in pi @ held),
        feeder_blocked=tuple(float(x) for x in pi @ (feeders == BLOCKED)),
        feeder_working=tuple(float(x) for x in pi @ (feeders == WORKING)),
        assembly_working=working,
        states=len(states),
    )


# -- transport -------------------------------------------------------------------------------------
TransportState = tuple[bool, int, int, int, bool]  # s1 blocked, travelling, arrived, level, s2 working


@dataclass(frozen=True)
class TransportTandem:
    """s1 (saturated) -> a transport of `slots` parallel exponential travels -> `buffer` places -> s2."""

    first_rate: float
    travel_rate: float
    slots: int
    buffer: int
    second_rate: float

    def __post_init__(self) -> None:
        for name in ("first_rate", "travel_rate", "second_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.slots < 1:
            raise ValueError(f"slots: must be >= 1, got {self.slots}")
        if self.buffer < 0:
            raise ValueError(f"buffer: must be >= 0, got {self.buffer}")


@dataclass(frozen=True)
class TransportSteadyState:
    """Exact long-run measures of a `TransportTandem`."""

    throughput: float
    on_transport: float  # mean parts travelling or waiting in their slot
    travelling: float
    buffer_mean: float
    first_blocked: float
    second_working: float
    states: int

    @property
    def second_starved(self) -> float:
        return 1.0 - self.second_working

    @property
    def wip_mean(self) -> float:
        """Parts in the line: the one on s1 (working or blocked), the transport, the buffer, s2's."""
        return 1.0 + self.on_transport + self.buffer_mean + self.second_working

    @property
    def lead_time_mean(self) -> float:
        return self.wip_mean / self.throughput


def settle_transport(line: TransportTandem, state: TransportState) -> TransportState:
    """Arrived parts go into the buffer or onto an idle s2; a blocked s1 loads a free slot."""
    blocked, travelling, arrived, level, working = state
    moved = True
    while moved:
        moved = False
        if arrived and level < line.buffer:
            arrived, level, moved = arrived - 1, level + 1, True
        if not working and (level or arrived):
            if level:
                level -= 1
            else:
                arrived -= 1
            working = moved = True
        if blocked and travelling + arrived < line.slots:
            blocked, travelling, moved = False, travelling + 1, True
    return blocked, travelling, arrived, level, working


def transport_moves(line: TransportTandem, state: TransportState) -> list[tuple[float, TransportState]]:
    blocked, travelling, arrived, level, working = state
    moves = []
    if not blocked:
        moves.append((line.first_rate, settle_transport(line, (True, travelling, arrived, level, working))))
    if travelling:
        target = (blocked, travelling - 1, arrived + 1, level, working)
        moves.append((travelling * line.travel_rate, settle_transport(line, target)))
    if working:
        moves.append((line.second_rate, settle_transport(line, (blocked, travelling, arrived, level, False))))
    return moves


def steady_transport(line: TransportTandem) -> TransportSteadyState:
    """Exact throughput, parts on the transport, buffer level and s1/s2 shares of `line`."""
    states, pi = solve_chain((False, 0, 0, 0, False), lambda state: transport_moves(line, state))
    values = np.array(states, dtype=float)  # columns: blocked, travelling, arrived, level, working
    blocked, travelling, arrived, level, working = (float(x) for x in pi @ values)
    return TransportSteadyState(
        throughput=line.second_rate * working,
        on_transport=travelling + arrived,
        travelling=travelling,
        buffer_mean=level,
        first_blocked=blocked,
        second_working=working,
        states=len(states),
    )

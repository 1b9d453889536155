"""The exact steady state of a saturated tandem line with blocking after service, as a Markov chain.

The line: K single-machine stations in flow order, raw material always waiting at the
first machine, a finite buffer of `b_i` places in front of station i (i >= 2; `b_i = 0`
is a direct hand-over), exponential processing times (rate `mu_i`) and, optionally,
operation-dependent breakdowns: while processing, machine i fails at rate `p_i`,
keeps its part, is repaired at rate `r_i` and then resumes the part.

A state is the state of every machine (working, blocked holding a finished part,
starved, down holding a part) and the contents of every buffer. Zero-time moves
(a finished part going into a buffer or straight onto an empty machine, a starved
machine taking a part, an unblocked machine passing its part on) are resolved by
`settle`, so the chain only holds states in which time passes. Reachable states are
enumerated by breadth-first search from the empty line, and the stationary
distribution solves pi Q = 0, sum(pi) = 1.

The transient solution starts from a given state instead (`chain_state`, or
`state_from_file` for the plain data of a `fabbrica-state/1` file): the expected
number of parts leaving the last machine in [0, T] is p0 (integral of e^{Qt} over
[0, T]) r, with r the departure rate of each state, read off the exponential of the
generator augmented by r (Van Loan 1978) with `scipy.sparse.linalg.expm_multiply`.

    >>> steady_state(TandemLine(service_rates=(1.0, 1.0), buffers=(0,))).throughput
    0.666...
    >>> one = TandemLine(service_rates=(2.0,), buffers=())
    >>> expected_departures(one, empty_line(one), horizon=3.0)
    6.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

WORKING, BLOCKED, STARVED, DOWN = range(4)
STATE_NAMES = ("working", "blocked", "starved", "down")

Machines = tuple[int, ...]
Levels = tuple[int, ...]
State = tuple[Machines, Levels]


@dataclass(frozen=True)
class TandemLine:
    """A saturated line: rates per station (per unit time) and buffer capacities between stations.

    `buffers[j]` is the capacity in front of station j + 2 (so there are K - 1 of them).
    `failure_rates` and `repair_rates` are empty (a reliable line) or one per station,
    a failure rate of 0 meaning a reliable machine.
    """

    service_rates: tuple[float, ...]
    buffers: tuple[int, ...]
    failure_rates: tuple[float, ...] = ()
    repair_rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        stations = len(self.service_rates)
        if stations < 1:
            raise ValueError("service_rates: need at least one station")
        if any(rate <= 0 for rate in self.service_rates):
            raise ValueError(f"service_rates: must be > 0, got {self.service_rates}")
        if len(self.buffers) != stations - 1 or any(b < 0 for b in self.buffers):
            raise ValueError(f"buffers: need {stations - 1} capacities >= 0, got {self.buffers}")
        for name in ("failure_rates", "repair_rates"):
            rates = getattr(self, name)
            if rates and (len(rates) != stations or any(rate < 0 for rate in rates)):
                raise ValueError(f"{name}: need {stations} rates >= 0 (or none), got {rates}")
        if bool(self.failure_rates) != bool(self.repair_rates):
            raise ValueError("failure_rates and repair_rates: give both or neither")
        if any(p > 0 and r <= 0 for p, r in zip(self.failure_rates, self.repair_rates, strict=True)):
            raise ValueError("repair_rates: a machine that fails needs a repair rate > 0")

    @property
    def stations(self) -> int:
        return len(self.service_rates)

    def failure_rate(self, station: int) -> float:
        return self.failure_rates[station] if self.failure_rates else 0.0

    def repair_rate(self, station: int) -> float:
        return self.repair_rates[station] if self.repair_rates else 0.0

    def reversed(self) -> TandemLine:
        """The same line run backwards (stations and buffers in the opposite order)."""
        return TandemLine(
            service_rates=self.service_rates[::-1],
            buffers=self.buffers[::-1],
            failure_rates=self.failure_rates[::-1],
            repair_rates=self.repair_rates[::-1],
        )


@dataclass(frozen=True)
class MachineShares:
    """Long-run fractions of time one machine spends in each state (they sum to 1)."""

    working: float
    blocked: float
    starved: float
    down: float

    def __getitem__(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass(frozen=True)
class SteadyState:
    """Exact long-run measures of a `TandemLine`."""

    throughput: float
    wip_mean: float
    machines: tuple[MachineShares, ...]
    states: int = field(default=0)

    @property
    def lead_time_mean(self) -> float:
        """Mean time from the first machine taking a part to its exit (Little's law)."""
        return self.wip_mean / self.throughput


# -- zero-time moves -----------------------------------------------------------------------------
def _load(line: TandemLine, machines: list[int], levels: list[int], i: int) -> bool:
    """A starved machine i takes a part: raw material, its buffer, or a blocked neighbour's hand-over."""
    if i == 0:
        machines[0] = WORKING
        return True
    if levels[i - 1] > 0:
        levels[i - 1] -= 1
        machines[i] = WORKING
        return True
    if line.buffers[i - 1] == 0 and machines[i - 1] == BLOCKED:
        machines[i - 1] = STARVED
        machines[i] = WORKING
        return True
    return False


def _unload(line: TandemLine, machines: list[int], levels: list[int], i: int) -> bool:
    """A blocked machine i passes its finished part on if the buffer or the next machine has room."""
    if line.buffers[i] > 0 and levels[i] < line.buffers[i]:
        levels[i] += 1
        machines[i] = STARVED
        return True
    if line.buffers[i] == 0 and machines[i + 1] == STARVED:
        machines[i + 1] = WORKING
        machines[i] = STARVED
        return True
    return False


def settle(line: TandemLine, machines: Machines, levels: Levels) -> State:
    """Carry out every zero-time move until none is left; returns a state in which time passes."""
    m, n = list(machines), list(levels)
    moved = True
    while moved:
        moved = False
        for i in range(line.stations):
            if m[i] == STARVED:
                moved |= _load(line, m, n, i)
            elif m[i] == BLOCKED:
                moved |= _unload(line, m, n, i)
    return tuple(m), tuple(n)


def empty_line(line: TandemLine) -> State:
    """The start state: every machine empty, every buffer empty, then settled."""
    return settle(line, (STARVED,) * line.stations, (0,) * (line.stations - 1))


# -- timed moves ---------------------------------------------------------------------------------
def _with(machines: Machines, i: int, value: int) -> Machines:
    return (*machines[:i], value, *machines[i + 1 :])


def transitions(line: TandemLine, state: State) -> list[tuple[float, State]]:
    """Rates and settled target states of the exponential events possible in `state`."""
    machines, levels = state
    last = line.stations - 1
    moves: list[tuple[float, State]] = []
    for i, status in enumerate(machines):
        if status == WORKING:
            finished = STARVED if i == last else BLOCKED  # the last machine's part leaves the line
            moves.append((line.service_rates[i], settle(line, _with(machines, i, finished), levels)))
            if line.failure_rate(i) > 0:
                moves.append((line.failure_rate(i), (_with(machines, i, DOWN), levels)))
        elif status == DOWN:
            moves.append((line.repair_rate(i), (_with(machines, i, WORKING), levels)))
    return moves


def reachable_states(line: TandemLine, start: State | None = None) -> list[State]:
    """Every state reachable from `start` (settled first; default the empty line), in breadth-first order."""
    start = empty_line(line) if start is None else settle(line, *start)
    index = {start: 0}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        for _, target in transitions(line, state):
            if target not in index:
                index[target] = len(index)
                queue.append(target)
    return list(index)


def generator_matrix(line: TandemLine, states: list[State]) -> scipy.sparse.csr_matrix:
    """The infinitesimal generator Q over `states` (rows sum to 0)."""
    index = {state: k for k, state in enumerate(states)}
    rows: list[int] = []
    cols: list[int] = []
    rates: list[float] = []
    for k, state in enumerate(states):
        for rate, target in transitions(line, state):
            rows += [k, k]
            cols += [index[target], k]
            rates += [rate, -rate]
    size = len(states)
    return scipy.sparse.csr_matrix((rates, (rows, cols)), shape=(size, size))


def stationary_distribution(q: scipy.sparse.csr_matrix) -> np.ndarray:
    """Solve pi Q = 0 with sum(pi) = 1 (one balance equation replaced by the normalisation)."""
    size = q.shape[0]
    a = q.transpose().tolil()
    a[size - 1, :] = np.ones(size)
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    pi = np.atleast_1d(scipy.sparse.linalg.spsolve(a.tocsc(), rhs))
    return pi / pi.sum()


def steady_state(line: TandemLine) -> SteadyState:
    """Exact throughput, mean WIP and per-machine state shares of `line`."""
    states = reachable_states(line)
    pi = stationary_distribution(generator_matrix(line, states))
    status = np.array([machines for machines, _ in states], dtype=int).reshape(len(states), line.stations)
    held = (status != STARVED).sum(axis=1) + np.array([sum(levels) for _, levels in states], dtype=float)
    shares = tuple(
        MachineShares(*(float(pi[status[:, i] == code].sum()) for code in range(4)))
        for i in range(line.stations)
    )
    throughput = line.service_rates[-1] * shares[-1].working
    return SteadyState(throughput=throughput, wip_mean=float(pi @ held), machines=shares, states=len(states))


# -- transient: from a given state ---------------------------------------------------------------
def chain_state(line: TandemLine, machines: Sequence[str], levels: Sequence[int]) -> State:
    """The settled chain state of machine states by name (`STATE_NAMES`) and buffer levels."""
    if len(machines) != line.stations or len(levels) != line.stations - 1:
        raise ValueError(f"need {line.stations} machine states and {line.stations - 1} levels")
    for level, capacity in zip(levels, line.buffers, strict=True):
        if not 0 <= level <= capacity:
            raise ValueError(f"levels: {tuple(levels)} do not fit the buffers {line.buffers}")
    codes = tuple(STATE_NAMES.index(name) for name in machines)
    if codes[-1] == BLOCKED:
        raise ValueError("the last machine is never blocked")
    if any(code == DOWN and line.failure_rate(i) == 0 for i, code in enumerate(codes)):
        raise ValueError(f"machines: a machine that never fails is down in {tuple(machines)}")
    return settle(line, codes, tuple(levels))


def state_from_file(line: TandemLine, data: Mapping[str, Any], names: Sequence[str]) -> State:
    """The chain state of a `fabbrica-state/1` object (its plain JSON data) for stations `names`.

    A station left out is empty with its machine starved, a station without `machines`
    has its machine starved, and the first station's buffer is raw material (not counted).
    A down machine holds its part and the chain resumes it after the repair; for
    exponential times that is the same as processing it for a fresh cycle time.
    Elapsed times do not matter: every time in the chain is exponential.
    """
    if data.get("format") != "fabbrica-state/1":
        raise ValueError(f"format: expected 'fabbrica-state/1', got {data.get('format')!r}")
    stations = data.get("stations", {})
    unknown = set(stations) - set(names)
    if unknown:
        raise ValueError(f"stations: unknown {sorted(unknown)}")
    machines: list[str] = []
    levels: list[int] = []
    for k, name in enumerate(names):
        station = stations.get(name, {})
        given = station.get("machines") or [{"state": "starved"}]
        if len(given) != 1:
            raise ValueError(f"stations.{name}.machines: the chain has one machine per station")
        machines.append(given[0]["state"])
        if k > 0:
            levels.append(int(station.get("buffer", 0)))
    return chain_state(line, machines, levels)


def departure_rates(line: TandemLine, states: Sequence[State]) -> np.ndarray:
    """Per state, the rate at which parts leave the line: mu_K when the last machine works, else 0."""
    last = line.stations - 1
    rate = line.service_rates[last]
    return np.array([rate if machines[last] == WORKING else 0.0 for machines, _ in states])


def transient_departures(
    line: TandemLine, states: Sequence[State], initial: np.ndarray, horizon: float
) -> float:
    """Expected departures in [0, horizon] from the distribution `initial` over `states`.

    With A = [[Q, r], [0, 0]], e^{TA} = [[e^{TQ}, integral_0^T e^{tQ} dt r], [0, 1]], so the
    answer is the last entry of (p0, 0) e^{TA}, computed as e^{T A^T} (p0, 0) without
    forming the exponential.
    """
    q = generator_matrix(line, list(states))
    r = departure_rates(line, states)
    size = len(states)
    augmented = scipy.sparse.bmat(
        [
            [q, scipy.sparse.csr_matrix(r.reshape(size, 1))],
            [scipy.sparse.csr_matrix((1, size)), scipy.sparse.csr_matrix((1, 1))],
        ],
        format="csr",
    )
    start = np.append(np.asarray(initial, dtype=float), 0.0)
    end = scipy.sparse.linalg.expm_multiply(augmented.transpose().tocsr() * float(horizon), start)
    return float(end[-1])


def expected_departures(line: TandemLine, start: State, horizon: float) -> float:
    """Expected parts leaving the last machine in [0, horizon] when the line starts in `start`."""
    states = reachable_states(line, start)
    initial = np.zeros(len(states))
    initial[0] = 1.0  # `reachable_states` lists the settled start first
    return transient_departures(line, states, initial, horizon)

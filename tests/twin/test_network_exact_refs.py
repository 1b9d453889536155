"""The exact references of issue 17 (`tests/twin/exact/network_markov.py`) against results known without them.

The assembly chain is checked against chains written out by hand (both buffers hand-overs, one
per loading), against the two-machine tandem of `tests.twin.exact.markov` when one feeder is
so fast that its part is always there, and against the synchronisation of two exponential
clocks when the assembly takes no time. The transport chain is checked against the
three-machine tandem (one slot is one machine with a hand-over in front), against the tandem
with N more buffer places when travel takes no time, and against M/M/N/N+1 when s2 takes no
time. None of these uses the SimPy engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.twin.exact.markov import TandemLine, steady_state
from tests.twin.exact.network_markov import (
    LOADINGS,
    AssemblyLine,
    TransportTandem,
    steady_assembly,
    steady_transport,
)

EXACT = 1e-9
FAST = 1e6  # a rate so high that its time is negligible: the limits below agree to about 1e-5
LIMIT = 1e-4


def solve_dense(q: np.ndarray) -> np.ndarray:
    """Stationary distribution of a small generator by least squares on [Q^T; 1] pi = [0; 1]."""
    size = q.shape[0]
    a = np.vstack([q.T, np.ones(size)])
    b = np.zeros(size + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


# -- the assembly, both buffers hand-overs, by hand -------------------------------------------------
def hand_written_assembly(loading: str, ma: float, mb: float, mc: float) -> dict[str, float]:
    """States "abc": feeders a, b W(orking) or B(locked); assembly c W(orking), S (idle, empty),
    a or b (idle, holding that feeder's part). Every move below is read off the rules directly:
    a feeder that finishes hands its part over if the assembly takes it now, else is blocked.
    """
    moves = {
        "all": {  # nothing is taken before both parts are there
            "WWS": [(ma, "BWS"), (mb, "WBS")],
            "BWS": [(mb, "WWW")],
            "WBS": [(ma, "WWW")],
            "WWW": [(ma, "BWW"), (mb, "WBW"), (mc, "WWS")],
            "BWW": [(mb, "BBW"), (mc, "BWS")],
            "WBW": [(ma, "BBW"), (mc, "WBS")],
            "BBW": [(mc, "WWW")],
        },
        "each": {  # each part is taken as soon as it is finished
            "WWS": [(ma, "WWa"), (mb, "WWb")],
            "WWa": [(ma, "BWa"), (mb, "WWW")],
            "BWa": [(mb, "BWW")],
            "WWb": [(mb, "WBb"), (ma, "WWW")],
            "WBb": [(ma, "WBW")],
            "WWW": [(ma, "BWW"), (mb, "WBW"), (mc, "WWS")],
            "BWW": [(mb, "BBW"), (mc, "WWa")],
            "WBW": [(ma, "BBW"), (mc, "WWb")],
            "BBW": [(mc, "WWW")],
        },
        "in order": {  # a's part first, then b's: a finished b waits until a's is taken
            "WWS": [(ma, "WWa"), (mb, "WBS")],
            "WBS": [(ma, "WWW")],
            "WWa": [(ma, "BWa"), (mb, "WWW")],
            "BWa": [(mb, "BWW")],
            "WWW": [(ma, "BWW"), (mb, "WBW"), (mc, "WWS")],
            "BWW": [(mb, "BBW"), (mc, "WWa")],
            "WBW": [(ma, "BBW"), (mc, "WBS")],
            "BBW": [(mc, "WWW")],
        },
    }[loading]
    states = list(moves)
    index = {state: k for k, state in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    for source, targets in moves.items():
        for rate, target in targets:
            q[index[source], index[target]] += rate
            q[index[source], index[source]] -= rate
    pi = solve_dense(q)

    def share(test: str, position: int) -> float:
        return float(sum(p for state, p in zip(states, pi, strict=True) if state[position] == test))

    return {
        "states": len(states),
        "throughput": mc * share("W", 2),
        "a.blocked": share("B", 0),
        "b.blocked": share("B", 1),
        "held a": share("a", 2),
        "held b": share("b", 2),
    }


BY_HAND = {"all": 6 / 11, "each": 26 / 45, "in order": 22 / 39}


@pytest.mark.parametrize("loading", LOADINGS)
def test_assembly_of_unit_rates_without_buffers_matches_the_hand_solved_fraction(loading: str) -> None:
    exact = steady_assembly(AssemblyLine((1.0, 1.0), 1.0, (0, 0), loading))
    assert exact.throughput == pytest.approx(BY_HAND[loading], rel=EXACT)
    assert hand_written_assembly(loading, 1.0, 1.0, 1.0)["throughput"] == pytest.approx(BY_HAND[loading])


@pytest.mark.parametrize("loading", LOADINGS)
@pytest.mark.parametrize("rates", [(1.0, 1.0, 1.0), (1.0, 0.7, 1.4), (1.3, 0.9, 0.8)], ids=str)
def test_assembly_without_buffers_matches_the_hand_written_chain(
    loading: str, rates: tuple[float, float, float]
) -> None:
    exact = steady_assembly(AssemblyLine(rates[:2], rates[2], (0, 0), loading))
    hand = hand_written_assembly(loading, *rates)
    assert exact.states == hand["states"]
    assert exact.throughput == pytest.approx(hand["throughput"], rel=EXACT)
    assert exact.feeder_blocked == pytest.approx((hand["a.blocked"], hand["b.blocked"]), rel=EXACT)
    assert exact.held == pytest.approx((hand["held a"], hand["held b"]), rel=EXACT, abs=EXACT)
    assert exact.buffer_means == (0.0, 0.0)


# -- the assembly in its limits ---------------------------------------------------------------------
ASSEMBLIES = [
    ((1.0, 0.8), 1.2, (0, 0)),
    ((1.0, 1.0), 1.0, (2, 2)),
    ((0.9, 1.3), 1.1, (1, 3)),
    ((1.2, 0.8), 0.9, (4, 0)),
]


@pytest.mark.parametrize("loading", LOADINGS)
@pytest.mark.parametrize("slow", [0, 1], ids=["b-fast", "a-fast"])
@pytest.mark.parametrize(("rates", "assembly_rate", "buffers"), ASSEMBLIES, ids=str)
def test_assembly_with_one_instant_feeder_is_the_tandem_of_the_other(
    rates: tuple[float, float], assembly_rate: float, buffers: tuple[int, int], slow: int, loading: str
) -> None:
    """The fast feeder's part is always there: the slow feeder, its buffer and the assembly are a tandem."""
    feeder_rates = tuple(rate if i == slow else FAST for i, rate in enumerate(rates))
    exact = steady_assembly(AssemblyLine(feeder_rates, assembly_rate, buffers, loading))
    tandem = steady_state(TandemLine((rates[slow], assembly_rate), (buffers[slow],)))
    assert exact.throughput == pytest.approx(tandem.throughput, rel=LIMIT)
    assert exact.feeder_blocked[slow] == pytest.approx(tandem.machines[0].blocked, rel=LIMIT, abs=LIMIT)
    assert exact.assembly_starved == pytest.approx(tandem.machines[1].starved, rel=LIMIT, abs=LIMIT)
    # the slow feeder's part, its buffer, its part on the assembly: the tandem's WIP
    on_slow_side = 1 + exact.buffer_means[slow] + exact.held[slow] + exact.assembly_working
    assert on_slow_side == pytest.approx(tandem.wip_mean, rel=LIMIT)
    # the fast feeder's buffer is full (its part on the machine or waiting to be taken)
    fast = 1 - slow
    assert exact.buffer_means[fast] == pytest.approx(buffers[fast], abs=LIMIT)


@pytest.mark.parametrize(("ma", "mb"), [(1.0, 1.0), (1.0, 0.5), (2.0, 0.7)])
def test_instant_assembly_taking_both_at_once_waits_for_the_later_of_two_clocks(ma: float, mb: float) -> None:
    """Hand-overs, loading "all", assembly instant: both feeders start together, and the next pair
    starts when both are done, after E[max] = 1/ma + 1/mb - 1/(ma + mb)."""
    exact = steady_assembly(AssemblyLine((ma, mb), FAST, (0, 0), "all"))
    assert exact.throughput == pytest.approx(1 / (1 / ma + 1 / mb - 1 / (ma + mb)), rel=LIMIT)


@pytest.mark.parametrize(("rates", "buffers"), [((1.0, 0.7), (0, 0)), ((0.8, 1.1), (2, 1))])
def test_instant_assembly_holding_parts_is_taking_both_with_one_more_place(
    rates: tuple[float, float], buffers: tuple[int, int]
) -> None:
    """With the assembly instant, the part held on the idle machine ("each") is one more buffer place."""
    each = steady_assembly(AssemblyLine(rates, FAST, buffers, "each"))
    wider = steady_assembly(AssemblyLine(rates, FAST, (buffers[0] + 1, buffers[1] + 1), "all"))
    assert each.throughput == pytest.approx(wider.throughput, rel=LIMIT)


@pytest.mark.parametrize("loading", LOADINGS)
@pytest.mark.parametrize(("rates", "assembly_rate", "buffers"), ASSEMBLIES, ids=str)
def test_assembly_passes_one_part_of_each_feeder_per_assembled_part(
    rates: tuple[float, float], assembly_rate: float, buffers: tuple[int, int], loading: str
) -> None:
    exact = steady_assembly(AssemblyLine(rates, assembly_rate, buffers, loading))
    for rate, working, blocked in zip(rates, exact.feeder_working, exact.feeder_blocked, strict=True):
        assert rate * working == pytest.approx(exact.throughput, rel=1e-9)
        assert working + blocked == pytest.approx(1.0, rel=EXACT)
    if loading != "in order":  # the two others do not tell the inputs apart
        swapped = steady_assembly(AssemblyLine(rates[::-1], assembly_rate, buffers[::-1], loading))
        assert swapped.throughput == pytest.approx(exact.throughput, rel=1e-9)


# -- the transport ----------------------------------------------------------------------------------
TRANSPORTS = [(1.0, 0.5, 1.0, 0), (1.0, 2.0, 0.9, 2), (1.2, 0.8, 1.0, 1), (0.7, 1.5, 1.3, 3)]


@pytest.mark.parametrize(("mu1", "nu", "mu2", "buffer"), TRANSPORTS, ids=str)
def test_transport_of_one_slot_is_a_machine_with_a_hand_over_in_front(
    mu1: float, nu: float, mu2: float, buffer: int
) -> None:
    exact = steady_transport(TransportTandem(mu1, nu, slots=1, buffer=buffer, second_rate=mu2))
    tandem = steady_state(TandemLine((mu1, nu, mu2), (0, buffer)))
    assert exact.states == tandem.states
    assert exact.throughput == pytest.approx(tandem.throughput, rel=EXACT)
    assert exact.wip_mean == pytest.approx(tandem.wip_mean, rel=EXACT)
    assert exact.first_blocked == pytest.approx(tandem.machines[0].blocked, rel=EXACT)
    assert exact.second_starved == pytest.approx(tandem.machines[2].starved, rel=EXACT)
    assert exact.on_transport == pytest.approx(1 - tandem.machines[1].starved, rel=EXACT)


@pytest.mark.parametrize("slots", [1, 2, 3])
@pytest.mark.parametrize(("mu1", "nu", "mu2", "buffer"), TRANSPORTS, ids=str)
def test_instant_transport_adds_its_slots_to_the_buffer(
    mu1: float, nu: float, mu2: float, buffer: int, slots: int
) -> None:
    exact = steady_transport(TransportTandem(mu1, FAST, slots=slots, buffer=buffer, second_rate=mu2))
    tandem = steady_state(TandemLine((mu1, mu2), (buffer + slots,)))
    assert exact.throughput == pytest.approx(tandem.throughput, rel=LIMIT)
    assert exact.wip_mean == pytest.approx(tandem.wip_mean, rel=LIMIT)
    assert exact.first_blocked == pytest.approx(tandem.machines[0].blocked, rel=LIMIT, abs=LIMIT)
    assert exact.second_starved == pytest.approx(tandem.machines[1].starved, rel=LIMIT, abs=LIMIT)


def mmc_with_room(arrival_rate: float, service_rate: float, servers: int, room: int) -> list[float]:
    """M/M/c/K stationary distribution, K = `room` (birth-death: pi_n ~ prod lambda / (min(k, c) mu))."""
    weights = [1.0]
    for n in range(1, room + 1):
        weights.append(weights[-1] * arrival_rate / (min(n, servers) * service_rate))
    total = sum(weights)
    return [weight / total for weight in weights]


@pytest.mark.parametrize("slots", [1, 2, 3, 5])
@pytest.mark.parametrize(("mu1", "nu"), [(1.0, 0.5), (1.0, 1.0), (2.0, 0.3)])
def test_transport_into_an_instant_second_machine_is_m_m_n_n_plus_1(
    mu1: float, nu: float, slots: int
) -> None:
    """n = parts travelling + 1 if s1 is blocked: births mu1 up to N + 1, deaths min(n, N) nu."""
    exact = steady_transport(TransportTandem(mu1, nu, slots=slots, buffer=0, second_rate=FAST))
    pi = mmc_with_room(mu1, nu, slots, slots + 1)
    busy = sum(p * min(n, slots) for n, p in enumerate(pi))
    assert exact.throughput == pytest.approx(nu * busy, rel=LIMIT)
    assert exact.travelling == pytest.approx(busy, rel=LIMIT)
    assert exact.first_blocked == pytest.approx(pi[-1], rel=LIMIT)


@pytest.mark.parametrize("slots", [1, 2, 3])
@pytest.mark.parametrize(("mu1", "nu", "mu2", "buffer"), TRANSPORTS, ids=str)
def test_transport_passes_the_same_flow_at_every_step(
    mu1: float, nu: float, mu2: float, buffer: int, slots: int
) -> None:
    exact = steady_transport(TransportTandem(mu1, nu, slots=slots, buffer=buffer, second_rate=mu2))
    assert mu1 * (1 - exact.first_blocked) == pytest.approx(exact.throughput, rel=1e-9)
    assert nu * exact.travelling == pytest.approx(exact.throughput, rel=1e-9)
    assert exact.travelling <= exact.on_transport <= slots
    assert exact.buffer_mean <= buffer

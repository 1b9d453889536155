"""The exact solvers in `tests/twin/exact` checked against closed forms known independently of them.

If these fail, the theory tests mean nothing: they check the Markov chain builder and the
queueing formulas before they are used to judge the SimPy engine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from tests.twin.exact.markov import (
    TandemLine,
    chain_state,
    empty_line,
    expected_departures,
    generator_matrix,
    reachable_states,
    state_from_file,
    stationary_distribution,
    steady_state,
    transient_departures,
)
from tests.twin.exact.queueing import erlang_b, erlang_c, jackson_tandem, mm1, mmc

EXACT = 1e-9


# -- closed forms derived here -------------------------------------------------------------------
def two_machine_birth_death(mu1: float, mu2: float, buffer: int) -> dict[str, float]:
    """Two machines, buffer b between them, blocking after service, machine 1 never starved.

    Let n be the parts past machine 1 (in the buffer or on machine 2) plus 1 if machine 1
    holds a finished part (is blocked). Machine 1 works for n <= b + 1 and is blocked at
    n = b + 2; machine 2 is starved at n = 0 and works otherwise. So n is a birth-death
    chain on 0..b+2 with birth rate mu1 and death rate mu2: pi_n proportional to rho^n,
    rho = mu1 / mu2. Parts in the line: 1 + n, except 1 + n - 1 at n = b + 2 (the blocked
    part is on machine 1 and was counted twice).
    """
    top = buffer + 2
    weights = np.array([(mu1 / mu2) ** n for n in range(top + 1)])
    pi = weights / weights.sum()
    wip = np.array([1 + n - (n == top) for n in range(top + 1)], dtype=float)
    return {
        "throughput": mu2 * (1 - pi[0]),
        "blocked": float(pi[top]),
        "starved": float(pi[0]),
        "wip": float(pi @ wip),
    }


def two_machine_throughput_formula(mu1: float, mu2: float, buffer: int) -> float:
    """The same throughput in closed form: mu1 (1 - rho^(b+2)) / (1 - rho^(b+3)), or mu (b+2)/(b+3)."""
    if math.isclose(mu1, mu2):
        return mu1 * (buffer + 2) / (buffer + 3)
    rho = mu1 / mu2
    return mu1 * (1 - rho ** (buffer + 2)) / (1 - rho ** (buffer + 3))


def solve_dense(q: np.ndarray) -> np.ndarray:
    """Stationary distribution of a small generator by least squares on [Q^T; 1] pi = [0; 1]."""
    size = q.shape[0]
    a = np.vstack([q.T, np.ones(size)])
    b = np.zeros(size + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


def three_machines_no_buffers(mu: tuple[float, float, float]) -> float:
    """Three machines, hand-over between them, written out by hand: states (m1, m2, m3).

    W working, B blocked, S starved; the eight states in which time passes.
    """
    m1, m2, m3 = mu
    states = ["WWW", "WWS", "WSW", "WSS", "WBW", "BWW", "BWS", "BBW"]
    moves = {
        "WWW": [(m1, "BWW"), (m2, "WBW"), (m3, "WWS")],
        "WWS": [(m1, "BWS"), (m2, "WSW")],
        "WSW": [(m1, "WWW"), (m3, "WSS")],
        "WSS": [(m1, "WWS")],
        "WBW": [(m1, "BBW"), (m3, "WSW")],
        "BWW": [(m2, "BBW"), (m3, "BWS")],
        "BWS": [(m2, "WWW")],
        "BBW": [(m3, "WWW")],
    }
    index = {s: k for k, s in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    for source, targets in moves.items():
        for rate, target in targets:
            q[index[source], index[target]] += rate
            q[index[source], index[source]] -= rate
    pi = solve_dense(q)
    return m3 * sum(pi[index[s]] for s in states if s[2] == "W")


def mmc_truncated(
    arrival_rate: float, service_rate: float, servers: int, cap: int = 4000
) -> dict[str, float]:
    """M/M/c solved numerically as a birth-death chain cut at `cap` customers (W by Little)."""
    ratios = [arrival_rate / (service_rate * min(n, servers)) for n in range(1, cap + 1)]
    log_weights = np.concatenate([[0.0], np.cumsum(np.log(ratios))])
    pi = np.exp(log_weights - log_weights.max())
    pi /= pi.sum()
    n = np.arange(cap + 1)
    number = float(pi @ n)
    return {
        "number": number,
        "time": number / arrival_rate,
        "wait_probability": float(pi[servers:].sum()),
    }


# -- the Markov chain of saturated lines -----------------------------------------------------------
@pytest.mark.parametrize("mu", [0.5, 1.0, 3.0], ids=lambda mu: f"mu={mu}")
def test_two_equal_machines_without_buffer_give_two_thirds_of_mu(mu: float) -> None:
    exact = steady_state(TandemLine(service_rates=(mu, mu), buffers=(0,)))
    assert exact.throughput == pytest.approx(2 * mu / 3, rel=EXACT)


TWO_MACHINE = [(1.0, 1.25, 0), (1.25, 1.0, 0), (1.0, 0.8, 2), (0.7, 1.3, 3), (1.0, 1.0, 4), (2.0, 0.5, 1)]


@pytest.mark.parametrize(
    ("mu1", "mu2", "buffer"), TWO_MACHINE, ids=[f"mu1={a}-mu2={b}-b={n}" for a, b, n in TWO_MACHINE]
)
def test_two_machine_line_matches_the_birth_death_closed_form(mu1: float, mu2: float, buffer: int) -> None:
    exact = steady_state(TandemLine(service_rates=(mu1, mu2), buffers=(buffer,)))
    closed = two_machine_birth_death(mu1, mu2, buffer)
    assert exact.throughput == pytest.approx(closed["throughput"], rel=EXACT)
    assert exact.throughput == pytest.approx(two_machine_throughput_formula(mu1, mu2, buffer), rel=EXACT)
    assert exact.machines[0].blocked == pytest.approx(closed["blocked"], rel=EXACT)
    assert exact.machines[1].starved == pytest.approx(closed["starved"], rel=EXACT)
    assert exact.wip_mean == pytest.approx(closed["wip"], rel=EXACT)
    assert exact.states == buffer + 3


@pytest.mark.parametrize("mu", [0.2, 1.0, 7.0], ids=lambda mu: f"mu={mu}")
def test_single_reliable_machine_runs_at_its_rate(mu: float) -> None:
    exact = steady_state(TandemLine(service_rates=(mu,), buffers=()))
    assert exact.throughput == pytest.approx(mu, rel=EXACT)
    assert exact.wip_mean == pytest.approx(1.0, rel=EXACT)


@pytest.mark.parametrize(("mu", "p", "r"), [(1.0, 0.05, 0.5), (2.0, 0.3, 0.1)], ids=["rare", "frequent"])
def test_single_unreliable_machine_runs_at_mu_r_over_r_plus_p(mu: float, p: float, r: float) -> None:
    """Failures only while working: each part takes 1/mu plus (p/mu) repairs of 1/r on average."""
    exact = steady_state(TandemLine(service_rates=(mu,), buffers=(), failure_rates=(p,), repair_rates=(r,)))
    assert exact.throughput == pytest.approx(mu * r / (r + p), rel=EXACT)
    assert exact.machines[0].down == pytest.approx(p / (r + p), rel=EXACT)


@pytest.mark.parametrize("mu", [(1.0, 1.0, 1.0), (1.0, 0.8, 1.3)], ids=["equal", "unequal"])
def test_three_machines_without_buffers_match_the_hand_written_chain(mu: tuple[float, float, float]) -> None:
    exact = steady_state(TandemLine(service_rates=mu, buffers=(0, 0)))
    assert exact.states == 8
    assert exact.throughput == pytest.approx(three_machines_no_buffers(mu), rel=EXACT)


def test_three_equal_machines_without_buffers_give_hunts_value() -> None:
    """Hunt (1956): an unbuffered three-stage line reaches 0.564 of the stage rate (22/39)."""
    exact = steady_state(TandemLine(service_rates=(1.0, 1.0, 1.0), buffers=(0, 0)))
    assert exact.throughput == pytest.approx(22 / 39, rel=EXACT)
    assert round(exact.throughput, 3) == 0.564


LINES = {
    "two-reliable": TandemLine(service_rates=(1.0, 1.25), buffers=(1,)),
    "three-reliable": TandemLine(service_rates=(1.0, 1 / 0.9, 1 / 1.1), buffers=(2, 0)),
    "three-unreliable": TandemLine(
        service_rates=(1.0, 1 / 0.9, 1 / 1.1),
        buffers=(0, 3),
        failure_rates=(0.05, 0.0, 0.04),
        repair_rates=(0.5, 0.0, 0.25),
    ),
    "four-unreliable": TandemLine(
        service_rates=(1.3, 0.7, 1.0, 0.9),
        buffers=(3, 1, 2),
        failure_rates=(0.05, 0.1, 0.0, 0.2),
        repair_rates=(0.5, 0.3, 0.0, 0.9),
    ),
}


@pytest.mark.parametrize("line", list(LINES.values()), ids=list(LINES))
def test_every_machine_passes_the_same_flow_and_shares_add_up(line: TandemLine) -> None:
    """Flow conservation mu_i * working_i = throughput; down_i = working_i * p_i / r_i."""
    exact = steady_state(line)
    for i, shares in enumerate(exact.machines):
        assert line.service_rates[i] * shares.working == pytest.approx(exact.throughput, rel=1e-9)
        total = shares.working + shares.blocked + shares.starved + shares.down
        assert total == pytest.approx(1.0, rel=EXACT)
        if line.failure_rates and line.failure_rates[i] > 0:
            ratio = line.failure_rates[i] / line.repair_rates[i]
            assert shares.down == pytest.approx(shares.working * ratio, rel=1e-9)
    assert exact.machines[0].starved == 0.0
    assert exact.machines[-1].blocked == 0.0


@pytest.mark.parametrize("line", list(LINES.values()), ids=list(LINES))
def test_a_line_and_its_reverse_have_the_same_throughput(line: TandemLine) -> None:
    """Reversibility of lines with blocking after service (Yamazaki and Sakasegawa 1975, Muth 1979)."""
    assert steady_state(line.reversed()).throughput == pytest.approx(steady_state(line).throughput, rel=1e-9)


def test_a_large_buffer_lets_the_slower_machine_set_the_pace() -> None:
    exact = steady_state(TandemLine(service_rates=(1.0, 0.8), buffers=(80,)))
    assert exact.throughput == pytest.approx(0.8, rel=1e-7)


# -- the transient solution: expected departures in [0, T] from a given state ----------------------
def departures_by_uniformization(line: TandemLine, start: tuple, horizon: float) -> float:
    """The same expectation by uniformization, a different method on the same chain.

    With lam >= every exit rate and P = I + Q / lam, p(t) = sum_k Poisson(k; lam t) p0 P^k, so
    integral_0^T p(t) r dt = (1 / lam) sum_k P(N(lam T) > k) p0 P^k r. The departure rate r is
    read off the states here (mu_K where the last machine works), not taken from the solver.
    """
    states = reachable_states(line, start)
    q = generator_matrix(line, states).toarray()
    lam = float(-q.diagonal().min())
    step = np.eye(len(states)) + q / lam
    rate = np.array([line.service_rates[-1] * (machines[-1] == 0) for machines, _ in states])
    p = np.zeros(len(states))
    p[0] = 1.0
    total = 0.0
    k = 0
    while (tail := float(scipy.stats.poisson.sf(k, lam * horizon))) > 1e-17 or k < lam * horizon:
        total += tail * float(p @ rate)
        p = p @ step
        k += 1
    return total / lam


def one_unreliable_machine(mu: float, p: float, r: float, horizon: float, down: bool) -> float:
    """One machine failing at rate p while it works, repaired at rate r, from working or down.

    P(working at t) = r/(p+r) + (p/(p+r)) e^{-(p+r)t} from working, r/(p+r) (1 - e^{-(p+r)t})
    from down; the expected departures are mu times its integral over [0, T].
    """
    s = p + r
    settling = (1 - math.exp(-s * horizon)) / s
    working = r / s * horizon + (-r if down else p) / s * settling
    return mu * working


@pytest.mark.parametrize(("mu", "horizon"), [(1.0, 1.0), (0.5, 7.0), (3.0, 40.0)])
def test_one_reliable_machine_makes_mu_t_parts(mu: float, horizon: float) -> None:
    line = TandemLine(service_rates=(mu,), buffers=())
    assert expected_departures(line, empty_line(line), horizon) == pytest.approx(mu * horizon, rel=EXACT)


@pytest.mark.parametrize("down", [False, True], ids=["from-working", "from-down"])
@pytest.mark.parametrize("horizon", [0.5, 5.0, 60.0])
def test_one_unreliable_machine_matches_its_closed_form(down: bool, horizon: float) -> None:
    mu, p, r = 1.5, 0.2, 0.5
    line = TandemLine(service_rates=(mu,), buffers=(), failure_rates=(p,), repair_rates=(r,))
    start = chain_state(line, ["down" if down else "working"], [])
    exact = one_unreliable_machine(mu, p, r, horizon, down)
    assert expected_departures(line, start, horizon) == pytest.approx(exact, rel=EXACT)


TRANSIENT_STARTS = {
    "two-reliable": (["blocked", "working"], [1]),
    "three-reliable": (["working", "starved", "working"], [2, 0]),
    "three-unreliable": (["down", "blocked", "down"], [0, 3]),
    "four-unreliable": (["blocked", "down", "working", "starved"], [3, 0, 2]),
}


@pytest.mark.parametrize("name", list(LINES))
def test_the_transient_solution_agrees_with_uniformization(name: str) -> None:
    line = LINES[name]
    start = chain_state(line, *TRANSIENT_STARTS[name])
    for horizon in (0.3, 4.0, 25.0):
        exact = departures_by_uniformization(line, start, horizon)
        assert expected_departures(line, start, horizon) == pytest.approx(exact, rel=1e-9)


@pytest.mark.parametrize("name", list(LINES))
def test_from_the_steady_state_the_line_makes_throughput_times_t(name: str) -> None:
    """Started in its stationary distribution, the line's departures grow exactly linearly."""
    line = LINES[name]
    states = reachable_states(line)
    pi = stationary_distribution(generator_matrix(line, states))
    throughput = steady_state(line).throughput
    for horizon in (0.5, 10.0):
        assert transient_departures(line, states, pi, horizon) == pytest.approx(
            throughput * horizon, rel=1e-9
        )


@pytest.mark.parametrize("name", list(LINES))
def test_from_any_state_the_slope_tends_to_the_throughput(name: str) -> None:
    """From a given state the line forgets it: departures per unit time between T and 2T tend to the
    throughput, and at the very start they come at the rate of the last machine if it works."""
    line = LINES[name]
    start = chain_state(line, *TRANSIENT_STARTS[name])
    late = 200.0
    slope = (expected_departures(line, start, 2 * late) - expected_departures(line, start, late)) / late
    assert slope == pytest.approx(steady_state(line).throughput, rel=1e-7)
    early = 1e-6
    first_rate = line.service_rates[-1] if start[0][-1] == 0 else 0.0
    assert expected_departures(line, start, early) / early == pytest.approx(first_rate, rel=1e-4, abs=1e-4)


def test_a_state_file_maps_onto_the_chain_state() -> None:
    line = LINES["three-unreliable"]  # buffers (0, 3) in front of the second and third machines
    data = {
        "format": "fabbrica-state/1",
        "stations": {
            "m1": {"buffer": 7, "machines": [{"state": "blocked", "elapsed_s": 3.0}]},
            "m3": {"buffer": 2, "machines": [{"state": "down", "elapsed_s": 40.0}]},
        },
    }
    # the first buffer is raw material; m2, left out, is starved and takes m1's part at once,
    # and m1 starts a new one
    assert state_from_file(line, data, ["m1", "m2", "m3"]) == ((0, 0, 3), (0, 2))
    assert state_from_file(line, {"format": "fabbrica-state/1"}, ["m1", "m2", "m3"]) == empty_line(line)
    with pytest.raises(ValueError, match="levels"):
        state_from_file(
            line, {"format": "fabbrica-state/1", "stations": {"m3": {"buffer": 4}}}, ["m1", "m2", "m3"]
        )
    with pytest.raises(ValueError, match="never fails"):
        state_from_file(
            line,
            {"format": "fabbrica-state/1", "stations": {"m2": {"machines": [{"state": "down"}]}}},
            ["m1", "m2", "m3"],
        )
    with pytest.raises(ValueError, match="unknown"):
        state_from_file(line, {"format": "fabbrica-state/1", "stations": {"m9": {}}}, ["m1", "m2", "m3"])


@pytest.mark.parametrize(
    "arguments",
    [
        {"service_rates": (), "buffers": ()},
        {"service_rates": (1.0, 0.0), "buffers": (1,)},
        {"service_rates": (1.0, 1.0), "buffers": ()},
        {"service_rates": (1.0, 1.0), "buffers": (-1,)},
        {"service_rates": (1.0,), "buffers": (), "failure_rates": (0.1,)},
        {"service_rates": (1.0,), "buffers": (), "failure_rates": (0.1,), "repair_rates": (0.0,)},
    ],
    ids=["no-station", "zero-rate", "missing-buffer", "negative-buffer", "no-repair", "zero-repair"],
)
def test_an_invalid_line_is_refused(arguments: dict) -> None:
    with pytest.raises(ValueError):
        TandemLine(**arguments)


# -- queueing formulas -------------------------------------------------------------------------------
def test_erlang_c_known_values() -> None:
    """M/M/2 at a = 1: P(wait) = 2 rho^2 / (1 + rho) = 1/3; three servers at a = 2: 4/9."""
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=EXACT)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=EXACT)
    assert erlang_c(1, 0.7) == pytest.approx(0.7, rel=EXACT)


def test_erlang_b_tabulated_value() -> None:
    """Erlang B tables: 10 servers, 5 erlangs, blocking 0.0184."""
    assert round(erlang_b(10, 5.0), 4) == 0.0184


@pytest.mark.parametrize(("servers", "load"), [(2, 1.5), (5, 4.0), (10, 8.5), (30, 25.0)])
def test_erlang_c_agrees_with_erlang_b(servers: int, load: float) -> None:
    """C = B / (1 - (a/c)(1 - B)) relates the two Erlang formulas."""
    b = erlang_b(servers, load)
    assert erlang_c(servers, load) == pytest.approx(b / (1 - load / servers * (1 - b)), rel=1e-9)


@pytest.mark.parametrize(("arrival", "service", "servers"), [(0.7, 1.0, 1), (2.1, 1.0, 3), (1.5, 0.4, 5)])
def test_mmc_agrees_with_the_truncated_birth_death_chain(
    arrival: float, service: float, servers: int
) -> None:
    exact = mmc(arrival, service, servers)
    numeric = mmc_truncated(arrival, service, servers)
    assert exact.mean_number_in_system == pytest.approx(numeric["number"], rel=1e-9)
    assert exact.mean_time_in_system == pytest.approx(numeric["time"], rel=1e-9)
    assert exact.wait_probability == pytest.approx(numeric["wait_probability"], rel=1e-9)
    assert exact.mean_number_waiting == pytest.approx(exact.arrival_rate * exact.mean_wait, rel=EXACT)


def test_mm1_is_mmc_with_one_server() -> None:
    one, c = mm1(0.8, 1.0), mmc(0.8, 1.0, 1)
    assert one.mean_time_in_system == pytest.approx(5.0, rel=EXACT)
    assert one.mean_number_in_system == pytest.approx(4.0, rel=EXACT)
    assert c.mean_time_in_system == pytest.approx(one.mean_time_in_system, rel=EXACT)
    assert c.mean_number_in_system == pytest.approx(one.mean_number_in_system, rel=EXACT)


def test_jackson_tandem_adds_up_its_stations() -> None:
    tandem = jackson_tandem(0.5, (1.0, 0.8, 2.0))
    assert tandem.mean_sojourn == pytest.approx(1 / 0.5 + 1 / 0.3 + 1 / 1.5, rel=EXACT)
    assert tandem.mean_number == pytest.approx(0.5 * tandem.mean_sojourn, rel=EXACT)


def test_an_unstable_queue_is_refused() -> None:
    with pytest.raises(ValueError, match="unstable"):
        mmc(3.0, 1.0, 3)

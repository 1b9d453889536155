"""Runs of a network line from a state against the exact transient solution of its Markov chain.

The line (tests/twin/exact/rework_transport.py): a saturated exponential feeder, a transport of
two places with exponential travel into a test station with a buffer of two, which sends 40 % of
its parts back to itself through a rework queue served first. Its state file uses every key a
network state adds: parts in the rework queue (`returns`), parts on the transport with a fixed
time left (`remaining_s`, 0 = arrived and waiting for the buffer) or an elapsed travel time
(`elapsed_s`: for an exponential travel the rest is a fresh draw), and a feeder blocked on a
full transport. From each state, the mean parts out of the forecast's replications
(`twin.forecast.replicate`, what `fabbrica twin forecast` runs) must match the chain's expected
departures within the 99.9 % normal half-width, at a short horizon (a few mean cycle times,
where the state matters most) and a longer one; and the same replications are refused against
the other states' exact answers where those differ by more than half a part.

The chain itself is checked first against references built independently: with the rework queue
empty a part sent back is served again at once, so the test is a machine of rate mu2 (1 - p)
without rework; with one transport place the line is then the saturated tandem of
tests/twin/exact/markov.py (the transport a machine with a hand-over in front), and its long-run
output rate the transport tandem's throughput of tests/twin/exact/network_markov.py. A part whose
fixed time left is drawn from the exponential travel time gives the chain's exponential part.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
import scipy.integrate

from tests.parallel import WORKERS
from tests.twin.exact import markov
from tests.twin.exact.network_markov import TransportTandem, steady_transport
from tests.twin.exact.rework_transport import ReworkTransportLine, Start, expected_departures
from twin.forecast import replicate
from twin.line import Line, line_from_dict
from twin.state import check_state, state_from_dict

Z = 3.29  # two-sided 99.9 % normal quantile
REPLICATIONS = 400
HORIZONS = {"short": 3.0, "long": 15.0}  # the mean cycle times are about 1

CHAIN = ReworkTransportLine(
    feed_rate=1.0, travel_rate=1 / 1.5, places=2, buffer=2, test_rate=1 / 0.6, rework=0.4
)


def engine_line(line: ReworkTransportLine) -> Line:
    return line_from_dict(
        {
            "name": "rework-transport",
            "release": "saturated",
            "stations": [
                {"name": "feed", "cycle_time": {"dist": "exponential", "mean": 1 / line.feed_rate}},
                {
                    "name": "test",
                    "cycle_time": {"dist": "exponential", "mean": 1 / line.test_rate},
                    "buffer": line.buffer,
                    "rework": {"probability": line.rework, "to": "test"},
                    "transport": {
                        "time": {"dist": "exponential", "mean": 1 / line.travel_rate},
                        "capacity": line.places,
                    },
                },
            ],
        }
    )


# name, the `stations` of the state file
STATES: list[tuple[str, dict[str, Any]]] = [
    ("empty", {}),
    (
        "full",
        {
            "feed": {"machines": [{"state": "blocked", "elapsed_s": 2.0}]},
            "test": {
                "buffer": 2,
                "returns": 2,
                "transport": [{"remaining_s": 0.0}, {"remaining_s": 0.8}],
                "machines": [{"state": "working", "elapsed_s": 0.3}],
            },
        },
    ),
    ("rework", {"test": {"returns": 4, "machines": [{"state": "working", "elapsed_s": 1.0}]}}),
    (
        "travelling",
        {
            "test": {
                "transport": [{"elapsed_s": 5.0}, {"remaining_s": 2.5}],
                "machines": [{"state": "starved"}],
            }
        },
    ),
    (
        "arrived",
        {
            "feed": {"machines": [{"state": "blocked"}]},
            "test": {
                "buffer": 2,
                "transport": [{"remaining_s": 0.0}, {"remaining_s": 0.0}],
                "machines": [{"state": "working", "elapsed_s": 3.0}],
            },
        },
    ),
]


def start_of(stations: dict[str, Any]) -> Start:
    """The chain's start for a state file's `stations` (exponential times: elapsed times do not matter)."""
    feed = (stations.get("feed", {}).get("machines") or [{"state": "working"}])[0]
    test = stations.get("test", {})
    transport = test.get("transport", [])
    return Start(
        feed_blocked=feed["state"] == "blocked",
        travelling=sum("elapsed_s" in part for part in transport),
        fixed=[part["remaining_s"] for part in transport if "remaining_s" in part],
        level=test.get("buffer", 0),
        returns=test.get("returns", 0),
        test_busy=(test.get("machines") or [{"state": "starved"}])[0]["state"] == "working",
    )


# -- the chain against independent references --------------------------------------------------------
TANDEM_STARTS = [
    (Start(), ("working", "starved", "starved"), (0, 0)),
    (Start(travelling=1, level=1, test_busy=True), ("working", "working", "working"), (0, 1)),
    (
        Start(feed_blocked=True, fixed=[0.0], level=2, test_busy=True),
        ("blocked", "blocked", "working"),
        (0, 2),
    ),
]


@pytest.mark.parametrize("rework", [0.0, 0.3])
@pytest.mark.parametrize("start, machines, levels", TANDEM_STARTS)
def test_with_one_place_the_chain_is_the_tandem_with_the_test_slowed_by_its_rework(
    rework: float, start: Start, machines: tuple[str, ...], levels: tuple[int, int]
) -> None:
    line = ReworkTransportLine(1.0, 0.7, places=1, buffer=2, test_rate=1.3, rework=rework)
    tandem = markov.TandemLine(service_rates=(1.0, 0.7, 1.3 * (1 - rework)), buffers=(0, 2))
    for horizon in (0.5, 3.0, 20.0):
        want = markov.expected_departures(tandem, markov.chain_state(tandem, machines, levels), horizon)
        assert expected_departures(line, start, horizon) == pytest.approx(want, rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("places, buffer", [(1, 1), (2, 2), (3, 1)])
def test_the_long_run_output_rate_is_the_transport_tandems_throughput(places: int, buffer: int) -> None:
    line = ReworkTransportLine(1.0, 0.5, places, buffer, test_rate=2.0, rework=0.4)
    steady = steady_transport(TransportTandem(1.0, 0.5, places, buffer, 2.0 * 0.6)).throughput
    start = Start(returns=1, test_busy=True, fixed=[0.5])
    slope = (expected_departures(line, start, 400.0) - expected_departures(line, start, 300.0)) / 100.0
    assert slope == pytest.approx(steady, rel=1e-7)


def test_a_fixed_time_left_drawn_from_the_travel_time_is_an_exponential_part() -> None:
    horizon, rate = 4.0, CHAIN.travel_rate
    exponential = expected_departures(CHAIN, Start(travelling=1, test_busy=True), horizon)

    def fixed(left: float) -> float:
        return expected_departures(CHAIN, Start(fixed=[left], test_busy=True), horizon)

    inside, _ = scipy.integrate.quad(lambda left: fixed(left) * rate * math.exp(-rate * left), 0, horizon)
    never = fixed(horizon + 1.0) * math.exp(-rate * horizon)  # arrives after the horizon
    assert inside + never == pytest.approx(exponential, rel=1e-6)
    assert fixed(0.0) > fixed(1.0) > fixed(3.0) > never  # an earlier arrival, more parts out


# -- the engine from network states --------------------------------------------------------------------
@functools.cache
def replications(name: str) -> dict[str, np.ndarray]:
    """Parts out of the forecast's replications from state `name`, by the short and the long horizon."""
    line = engine_line(CHAIN)
    state = state_from_dict({"format": "fabbrica-state/1", "stations": dict(STATES)[name]})
    check_state(line, state)
    _, runs = replicate(
        line,
        state,
        horizon=HORIZONS["long"],
        replications=REPLICATIONS,
        seed=10_000 * (1 + [n for n, _ in STATES].index(name)),
        engine="simpy",
        path=(HORIZONS["short"],),
        workers=WORKERS,
    )
    return {
        "short": np.array([run.path[0] for run in runs], dtype=float),
        "long": np.array([run.parts_out for run in runs], dtype=float),
    }


@functools.cache
def exact(name: str, horizon: str) -> float:
    return expected_departures(CHAIN, start_of(dict(STATES)[name]), HORIZONS[horizon])


def half_width(values: np.ndarray) -> float:
    return Z * float(values.std(ddof=1)) / math.sqrt(len(values))


@pytest.mark.parametrize("name", [name for name, _ in STATES])
def test_parts_out_from_a_network_state_match_the_transient_chain(name: str) -> None:
    got = replications(name)
    for horizon, values in got.items():
        want = exact(name, horizon)
        assert abs(values.mean() - want) <= half_width(values), (
            f"from {name}, {horizon} horizon: engine {values.mean():.4f} ± {half_width(values):.3f}"
            f" (99.9 %, n={REPLICATIONS}) but exact {want:.4f}"
        )


def test_the_check_tells_the_start_states_apart() -> None:
    """Held against the exact answer from another state, the replications fail where the answers
    differ by more than half a part at the short horizon."""
    names = [name for name, _ in STATES]
    told = 0
    for name in names:
        values = replications(name)["short"]
        for other in names:
            if other != name and abs(exact(other, "short") - exact(name, "short")) > 0.5:
                assert abs(values.mean() - exact(other, "short")) > half_width(values), (name, other)
                told += 1
    assert told >= 10

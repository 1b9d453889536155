"""Runs from a given state against the exact transient solution of the Markov chain.

A saturated line of single exponential machines with finite buffers (and operating
failures) is a continuous-time Markov chain (`tests/twin/exact/markov.py`). Started in
the state a `fabbrica-state/1` file describes, the expected number of parts leaving the
line in [0, T] is p0 (integral of e^{Qt} over [0, T]) r, which the chain gives exactly,
without the engine. The forecast's replications (`twin.forecast.replicate`, the path the
`fabbrica twin forecast` command takes) must match it: |mean - exact| <= 3.29 s / sqrt(n),
the 99.9 % normal half-width, at a short horizon (a few mean cycle times, where the start
state matters most) and a long one (tens of them). Each case has its own seeds.

The check must be able to fail: the same replications are held against the exact answer
from the other states of the same line, and most of those are refused.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tests.parallel import WORKERS
from tests.twin.exact.markov import TandemLine, expected_departures, state_from_file
from twin.forecast import replicate
from twin.line import Line, line_from_dict
from twin.state import state_from_dict

Z = 3.29  # two-sided 99.9 % normal quantile
REPLICATIONS = 500
SHORT, LONG = 4.0, 25.0  # horizons, in mean cycle times (every mean is about 1)
HORIZONS = {"short": SHORT, "long": LONG}
ENGINES = ("simpy", "flow")


@dataclass(frozen=True)
class ExactLine:
    """A saturated line of exponential machines m1..mK and the states it is started from."""

    id: str
    means: tuple[float, ...]  # mean processing times
    buffers: tuple[int, ...]  # capacities in front of m2..mK
    failures: tuple[tuple[float, float] | None, ...]  # (mtbf, mttr) per machine, or None
    states: tuple[tuple[str, dict[str, Any]], ...]  # name, `stations` of a fabbrica-state/1 object

    @property
    def names(self) -> list[str]:
        return [f"m{i + 1}" for i in range(len(self.means))]

    def line(self) -> Line:
        stations: list[dict[str, Any]] = []
        for i, name in enumerate(self.names):
            station: dict[str, Any] = {
                "name": name,
                "cycle_time": {"dist": "exponential", "mean": self.means[i]},
            }
            if i > 0:
                station["buffer"] = self.buffers[i - 1]
            if self.failures[i] is not None:
                mtbf, mttr = self.failures[i]  # type: ignore[misc]
                station["failures"] = {"mtbf": mtbf, "mttr": mttr, "basis": "operating"}
            stations.append(station)
        return line_from_dict({"name": self.id, "release": "saturated", "stations": stations})

    def chain(self) -> TandemLine:
        fails = [f is not None for f in self.failures]
        return TandemLine(
            service_rates=tuple(1.0 / mean for mean in self.means),
            buffers=self.buffers,
            failure_rates=tuple(1.0 / f[0] if f else 0.0 for f in self.failures) if any(fails) else (),
            repair_rates=tuple(1.0 / f[1] if f else 0.0 for f in self.failures) if any(fails) else (),
        )

    def state(self, name: str) -> dict[str, Any]:
        return {"format": "fabbrica-state/1", "stations": dict(self.states)[name]}


def machine(state: str, elapsed: float = 0.0) -> dict[str, Any]:
    return {"machines": [{"state": state, "elapsed_s": elapsed}]}


def station(buffer: int, state: str, elapsed: float = 0.0) -> dict[str, Any]:
    return {"buffer": buffer, **machine(state, elapsed)}


LINES = [
    ExactLine(
        id="two-b0",
        means=(1.0, 0.8),
        buffers=(0,),
        failures=(None, None),
        states=(
            ("empty", {}),
            ("both-working", {"m1": machine("working", 0.4), "m2": machine("working", 2.0)}),
            ("first-blocked", {"m1": machine("blocked", 1.0), "m2": machine("working", 0.1)}),
        ),
    ),
    ExactLine(
        id="two-b2-failing",
        means=(0.8, 1.0),
        buffers=(2,),
        failures=((10.0, 3.0), (12.0, 4.0)),
        states=(
            ("empty", {}),
            ("full", {"m1": machine("blocked"), "m2": station(2, "working", 0.5)}),
            ("full-last-down", {"m1": machine("blocked", 3.0), "m2": station(2, "down", 1.0)}),
            ("first-down", {"m1": machine("down", 2.0), "m2": station(0, "starved", 1.0)}),
            # not settled: m1 holds a finished part although the buffer has room, m2 is idle
            # although a part waits; both engines and the chain settle it at time 0
            ("unsettled", {"m1": machine("blocked"), "m2": station(1, "starved")}),
        ),
    ),
    ExactLine(
        id="three-b1-b0",
        means=(1.0, 0.9, 1.1),
        buffers=(1, 0),
        failures=(None, None, None),
        states=(
            ("empty", {}),
            (
                "blocked-chain",
                {"m1": machine("blocked"), "m2": station(1, "blocked"), "m3": machine("working")},
            ),
            (
                "last-starved",
                {"m1": machine("working"), "m2": station(0, "working"), "m3": machine("starved")},
            ),
        ),
    ),
    ExactLine(
        id="three-b2-b1-failing",
        means=(0.9, 1.0, 0.95),
        buffers=(2, 1),
        failures=(None, (12.0, 3.0), (20.0, 4.0)),
        states=(
            ("empty", {}),
            (
                "full-working",
                {"m1": machine("working"), "m2": station(2, "working"), "m3": station(1, "working")},
            ),
            (
                "blocked-last-down",
                {"m1": machine("blocked"), "m2": station(2, "blocked"), "m3": station(1, "down", 5.0)},
            ),
            (
                "middle-down",
                {"m1": machine("working"), "m2": station(1, "down", 0.5), "m3": station(0, "starved")},
            ),
        ),
    ),
]

CASES = [(line, name) for line in LINES for name, _ in line.states]


@dataclass(frozen=True)
class Sample:
    """Parts out of the replications by the short and the long horizon."""

    counts: dict[str, np.ndarray]

    def mean(self, horizon: str) -> float:
        return float(self.counts[horizon].mean())

    def tolerance(self, horizon: str) -> float:
        values = self.counts[horizon]
        return Z * float(values.std(ddof=1)) / math.sqrt(len(values))


@functools.cache
def sample(case_index: int, engine: str) -> Sample:
    """The forecast's replications of one case (seeds of their own; the same for both engines)."""
    line, name = CASES[case_index]
    state = state_from_dict(line.state(name))
    _, runs = replicate(
        line.line(),
        state,
        horizon=LONG,
        replications=REPLICATIONS,
        seed=100_000 * (case_index + 1),
        engine=engine,
        path=(SHORT,),
        workers=WORKERS,  # the cores are free while the suite runs this check (tests.parallel)
    )
    return Sample(
        {
            "short": np.array([run.path[0] for run in runs], dtype=float),
            "long": np.array([run.parts_out for run in runs], dtype=float),
        }
    )


def exact(line: ExactLine, name: str, horizon: str) -> float:
    """The chain's expected departures in [0, horizon] from the state `name` of `line`."""
    return _exact(LINES.index(line), name, horizon)


@functools.cache
def _exact(line_index: int, name: str, horizon: str) -> float:
    line = LINES[line_index]
    chain = line.chain()
    start = state_from_file(chain, line.state(name), line.names)
    return expected_departures(chain, start, HORIZONS[horizon])


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case_index", range(len(CASES)), ids=[f"{line.id}:{name}" for line, name in CASES])
def test_parts_out_from_a_state_match_the_transient_chain(case_index: int, engine: str) -> None:
    line, name = CASES[case_index]
    got = sample(case_index, engine)
    for horizon in HORIZONS:
        want = exact(line, name, horizon)
        assert abs(got.mean(horizon) - want) <= got.tolerance(horizon), (
            f"{line.id} from {name}, {horizon} horizon ({HORIZONS[horizon]:g}): "
            f"engine {got.mean(horizon):.4f} ± {got.tolerance(horizon):.3f} (99.9 %, n={REPLICATIONS}) "
            f"but exact {want:.4f}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("line", LINES, ids=[line.id for line in LINES])
def test_the_check_tells_the_start_states_apart(line: ExactLine, engine: str) -> None:
    """Held against the exact answer from another state of the same line, the replications fail.

    At the short horizon every pair of states whose exact answers differ by more than a
    part is told apart; and from every state, at least one other state is refused.
    """
    names = [name for name, _ in line.states]
    for name in names:
        got = sample(CASES.index((line, name)), engine)
        refused = []
        for other in names:
            if other == name:
                continue
            want = exact(line, other, "short")
            wrong = abs(got.mean("short") - want) > got.tolerance("short")
            if abs(want - exact(line, name, "short")) > 1.0:
                assert wrong, f"{line.id}: replications from {name} pass for {other}"
            refused += [other] if wrong else []
        assert refused, f"{line.id}: replications from {name} pass against every other state"

"""The SimPy engine against exact theory: Markov chains of saturated lines and queueing formulas.

Every check runs R independent replications (own seeds per case, statistics restarted
after a warm-up), takes the sample mean of a measure over the replications and its 99.9 %
Student-t confidence half-width, and asserts |mean - exact| <= half-width. No tolerance
is chosen by hand: a tighter or looser check comes only from more or less simulated time.
See docs/validation-against-theory.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.stats

from tests.parallel import replications
from tests.twin.exact.markov import TandemLine, steady_state
from tests.twin.exact.queueing import jackson_tandem, mmc
from twin.engine import simulate
from twin.line import Line, line_from_dict

LEVEL = 0.999
WARMUP = 1000.0
STATES = ("working", "blocked", "starved", "down")

Run = dict[str, float]  # the measures of one replication, flat


# -- confidence intervals ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A sample mean over independent replications and its Student-t confidence half-width."""

    mean: float
    half_width: float
    replications: int

    def covers(self, exact: float) -> bool:
        return abs(self.mean - exact) <= self.half_width


def confidence_interval(samples: Sequence[float], level: float = LEVEL) -> Interval:
    """The `level` two-sided Student-t interval of the mean of independent `samples`."""
    values = np.asarray(samples, dtype=float)
    n = len(values)
    quantile = float(scipy.stats.t.ppf(0.5 + level / 2, n - 1))
    return Interval(float(values.mean()), quantile * float(values.std(ddof=1)) / math.sqrt(n), n)


def assert_covers(runs: list[Run], measure: str, exact: float) -> None:
    """The replications' confidence interval of `measure` must contain the exact value."""
    interval = confidence_interval([run[measure] for run in runs])
    assert interval.covers(exact), (
        f"{measure}: engine {interval.mean:.6g} ± {interval.half_width:.3g} "
        f"({LEVEL:.1%}, R={interval.replications}) but exact {exact:.6g}"
    )


def run_measures(kpis: dict[str, Any]) -> Run:
    """Throughput (parts/s), WIP, lead time, Little's gap and every station's state shares of one run."""
    period = kpis["horizon_s"] - kpis["warmup_s"]
    throughput = kpis["parts_out"] / period
    lead_time = kpis["lead_time_mean_s"]
    run = {
        "throughput": throughput,
        "wip": kpis["wip_mean"],
        "lead_time": lead_time,
        "little_gap": kpis["wip_mean"] - throughput * lead_time,
    }
    for name, shares in kpis["stations"].items():
        run.update({f"{name}.{state}": shares[state] for state in STATES})
    return run


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """R independent replications of one line: seeds `1000 * seed_block + 1 ..`, one horizon each.

    Every case has its own block of seeds, so that no two cases share random numbers
    (the streams are keyed by station name, and the stations of all cases are m1, m2, ...).
    """

    id: str
    seed_block: int
    replications: int = 20
    horizon: float = 20_000.0
    slow: bool = False

    @property
    def seeds(self) -> range:
        first = 1000 * self.seed_block + 1
        return range(first, first + self.replications)

    def line(self) -> Line:  # pragma: no cover - every case overrides
        raise NotImplementedError


def one_run(line: Line, seed: int, horizon: float) -> Run:
    """One replication's measures (a worker process runs it: `tests.parallel`)."""
    return run_measures(simulate(line, seed=seed, horizon=horizon, warmup=WARMUP).kpis)


@functools.cache
def replicate(case: Experiment) -> list[Run]:
    """The case's independent runs, each observed from WARMUP to its horizon (computed once)."""
    line = case.line()
    return replications(one_run, [(line, seed, case.horizon) for seed in case.seeds])


def params(cases: Sequence[Any], ids: Sequence[str]) -> list[Any]:
    """pytest parameters with readable ids; cases flagged `slow` carry the slow mark."""
    return [
        pytest.param(*case, id=name, marks=[pytest.mark.slow] if case[0].slow else [])
        for case, name in zip(cases, ids, strict=True)
    ]


def exponential(mean: float) -> dict[str, Any]:
    return {"dist": "exponential", "mean": mean}


# -- saturated lines against the Markov chain -------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SaturatedCase(Experiment):
    """A saturated line of single exponential machines m1..mK, with optional operating failures."""

    means: tuple[float, ...]  # mean processing times, s
    buffers: tuple[int, ...]  # capacity in front of m2..mK
    failures: tuple[tuple[float, float] | None, ...] = ()  # (mtbf, mttr) per machine, s

    @property
    def names(self) -> list[str]:
        return [f"m{i + 1}" for i in range(len(self.means))]

    def failure(self, i: int) -> tuple[float, float] | None:
        return self.failures[i] if self.failures else None

    def line(self) -> Line:
        stations: list[dict[str, Any]] = []
        for i, name in enumerate(self.names):
            station: dict[str, Any] = {"name": name, "cycle_time": exponential(self.means[i])}
            if i > 0:
                station["buffer"] = self.buffers[i - 1]
            if (failure := self.failure(i)) is not None:
                station["failures"] = {"mtbf": failure[0], "mttr": failure[1], "basis": "operating"}
            stations.append(station)
        return line_from_dict({"name": self.id, "release": "saturated", "stations": stations})

    def chain(self) -> TandemLine:
        """The same line as a Markov chain: rates are 1 / mean."""
        failing = [self.failure(i) for i in range(len(self.means))]
        return TandemLine(
            service_rates=tuple(1.0 / mean for mean in self.means),
            buffers=self.buffers,
            failure_rates=tuple(1.0 / f[0] if f else 0.0 for f in failing) if self.failures else (),
            repair_rates=tuple(1.0 / f[1] if f else 0.0 for f in failing) if self.failures else (),
        )

    def exact(self) -> dict[str, float]:
        """Throughput (parts/s), WIP, lead time (s) and every machine's state shares from the chain."""
        steady = steady_state(self.chain())
        values = {"throughput": steady.throughput, "wip": steady.wip_mean, "lead_time": steady.lead_time_mean}
        for name, shares in zip(self.names, steady.machines, strict=True):
            values.update({f"{name}.{state}": shares[state] for state in STATES})
        return values

    def checked_shares(self) -> list[str]:
        """Blocking of the first machine, starving of the last, down time of every failing machine;
        in three-machine lines also the middle machine's blocked and starved shares."""
        first, last = self.names[0], self.names[-1]
        shares = [f"{first}.blocked", f"{last}.starved"]
        if len(self.names) == 3:
            shares += [f"{self.names[1]}.blocked", f"{self.names[1]}.starved"]
        shares += [f"{name}.down" for i, name in enumerate(self.names) if self.failure(i)]
        return shares


SATURATED = [
    SaturatedCase(id="two-b0-faster-second", seed_block=1, means=(1.0, 0.8), buffers=(0,)),
    SaturatedCase(id="two-b2-slower-second", seed_block=2, means=(0.8, 1.0), buffers=(2,)),
    SaturatedCase(id="three-b1-b0", seed_block=3, means=(1.0, 0.9, 1.1), buffers=(1, 0)),
    SaturatedCase(id="three-b0-b3", seed_block=4, means=(1.1, 1.0, 0.8), buffers=(0, 3)),
    SaturatedCase(
        id="two-b1-both-failing",
        seed_block=5,
        means=(1.0, 0.9),
        buffers=(1,),
        failures=((20.0, 2.0), (25.0, 3.0)),
    ),
    SaturatedCase(
        id="two-b0-first-failing", seed_block=6, means=(0.9, 1.0), buffers=(0,), failures=((15.0, 2.5), None)
    ),
    SaturatedCase(
        id="three-b2-b0-failing",
        seed_block=7,
        means=(0.9, 1.0, 0.95),
        buffers=(2, 0),
        failures=(None, (15.0, 2.0), (30.0, 4.0)),
    ),
]

FLOW = [(case, measure) for case in SATURATED for measure in ("throughput", "wip", "lead_time")]
SHARES = [(case, share) for case in SATURATED for share in case.checked_shares()]


@pytest.mark.parametrize(("case", "measure"), params(FLOW, [f"{c.id}:{m}" for c, m in FLOW]))
def test_saturated_line_flow_matches_the_markov_chain(case: SaturatedCase, measure: str) -> None:
    assert_covers(replicate(case), measure, case.exact()[measure])


@pytest.mark.parametrize(("case", "share"), params(SHARES, [f"{c.id}:{s}" for c, s in SHARES]))
def test_saturated_line_state_shares_match_the_markov_chain(case: SaturatedCase, share: str) -> None:
    assert_covers(replicate(case), share, case.exact()[share])


# -- Poisson arrivals against queueing formulas -------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class QueueCase(Experiment):
    """Poisson arrivals into stations s1..sK in series with unlimited buffers, `servers` machines each."""

    arrival_rate: float  # parts/s
    service_rates: tuple[float, ...]  # per machine, parts/s, one per station
    servers: int = 1

    @property
    def names(self) -> list[str]:
        return [f"s{i + 1}" for i in range(len(self.service_rates))]

    def line(self) -> Line:
        stations = [
            {"name": name, "cycle_time": exponential(1.0 / mu), "capacity": self.servers}
            for name, mu in zip(self.names, self.service_rates, strict=True)
        ]
        release = {"interarrival": exponential(1.0 / self.arrival_rate)}
        return line_from_dict({"name": self.id, "release": release, "stations": stations})

    def exact(self) -> dict[str, float]:
        """One station: M/M/c (Erlang C); several single-machine stations: Jackson tandem."""
        if len(self.service_rates) == 1:
            queue = mmc(self.arrival_rate, self.service_rates[0], self.servers)
            values = {"lead_time": queue.mean_time_in_system, "wip": queue.mean_number_in_system}
            utilizations = [queue.utilization]
        else:
            assert self.servers == 1, "the Jackson tandem here has single-machine stations"
            tandem = jackson_tandem(self.arrival_rate, self.service_rates)
            values = {"lead_time": tandem.mean_sojourn, "wip": tandem.mean_number}
            utilizations = [station.utilization for station in tandem.stations]
        values["throughput"] = self.arrival_rate
        for name, rho in zip(self.names, utilizations, strict=True):
            values[f"{name}.starved"] = 1.0 - rho
        return values


QUEUES = [
    QueueCase(id="mm1-rho0.7", seed_block=11, arrival_rate=0.7, service_rates=(1.0,), horizon=40_000.0),
    QueueCase(id="mm3-rho0.7", seed_block=12, arrival_rate=2.1, service_rates=(1.0,), servers=3, slow=True),
    QueueCase(
        id="jackson-3xmm1",
        seed_block=13,
        arrival_rate=0.6,
        service_rates=(1.0, 1.25, 0.9),
        horizon=30_000.0,
        slow=True,
    ),
]

QUEUE_MEASURES = [(case, measure) for case in QUEUES for measure in ("lead_time", "wip", "throughput")] + [
    (case, f"{name}.starved") for case in QUEUES for name in case.names
]


@pytest.mark.parametrize(
    ("case", "measure"), params(QUEUE_MEASURES, [f"{c.id}:{m}" for c, m in QUEUE_MEASURES])
)
def test_poisson_arrivals_match_queueing_theory(case: QueueCase, measure: str) -> None:
    assert_covers(replicate(case), measure, case.exact()[measure])


# -- Little's law on every case -----------------------------------------------------------------------
ALL_CASES: list[tuple[Experiment]] = [(case,) for case in [*SATURATED, *QUEUES]]


@pytest.mark.parametrize("case", params(ALL_CASES, [case.id for (case,) in ALL_CASES]))
def test_littles_law_holds_on_every_case(case: Experiment) -> None:
    """wip_mean - throughput x mean lead time is 0 up to the parts in the line at the window's ends."""
    assert_covers(replicate(case), "little_gap", 0.0)

"""The flow engine against the SimPy engine: the same streams give the same instants and the same KPIs.

Random lines (hypothesis) with 1-6 stations, buffers from hand-over to unlimited,
exponential, lognormal, constant and uniform cycle times (and a few others, Weibull among them),
operation-based failures, set-ups between two products, scrap, saturated and
interarrival release, with and without warm-up. Each line runs once in each engine
with the same seed; every part's completion and hand-on instant at every station, the
exit and lead times, and every KPI must agree to 1e-9 relative.

When two machines act at the same instant (equal constant times), a zero-second wait
neither splits an active period in the SimPy engine nor appears in the flow engine: the
active periods, and so the bottleneck, agree there too.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from typer.testing import CliRunner

from fabbrica.cli import app
from tests.conftest import DEMONSTRATOR
from twin import flow as flow_module
from twin.distributions import BLOCK, Distribution
from twin.engine import simulate
from twin.flow import _Kernel as Kernel
from twin.flow import replicate, simulate_flow
from twin.flow_samples import VALUE_BY_VALUE, Draws, RunSamples
from twin.line import LineError, line_from_dict
from twin.run import choose_engine, run_line
from twin.station import BLOCKED, Machine

REL = 1e-9


# -- random lines -----------------------------------------------------------------------------------
def distributions(mean: float) -> st.SearchStrategy[Any]:
    """A duration of about `mean` seconds, mostly of the kinds the issue names."""
    return st.one_of(
        st.just({"dist": "exponential", "mean": mean}),
        st.sampled_from([0.0, 0.3, 1.0]).map(lambda cv: {"dist": "lognormal", "mean": mean, "cv": cv}),
        st.sampled_from([mean, float(round(mean)), round(mean * 0.77, 3)]),
        st.just({"dist": "uniform", "low": mean * 0.5, "high": mean * 1.5}),
        st.sampled_from(
            [
                {"dist": "normal", "mean": mean, "sd": mean * 0.8},
                {"dist": "gamma", "mean": mean, "cv": 0.7},
                {"dist": "triangular", "low": mean / 2, "mode": mean, "high": mean * 2},
                {"dist": "empirical", "samples": [round(mean / 2), round(mean), round(mean * 2)]},
                {"dist": "weibull", "shape": 2.5, "mean": mean},
                {"dist": "weibull", "shape": 0.7, "scale": mean},
            ]
        ),
    )


@st.composite
def stations(draw: st.DrawFn, index: int, two_products: bool) -> dict[str, Any]:
    mean = draw(st.sampled_from([4.0, 8.0, 10.0, 13.0]))
    station: dict[str, Any] = {"name": f"s{index}"}
    if two_products and draw(st.booleans()):
        station["cycle_time"] = {"A": draw(distributions(mean)), "B": draw(distributions(mean * 1.3))}
    else:
        station["cycle_time"] = draw(distributions(mean))
    buffer = draw(st.sampled_from([None, 0, 0, 1, 2, 4]))
    if buffer is not None:
        station["buffer"] = buffer
    if draw(st.booleans()):
        station["failures"] = draw(
            st.one_of(
                st.just({"mtbf": 150.0, "mttr": 25.0}),
                st.builds(
                    lambda ttf, ttr: {"ttf": ttf, "ttr": ttr}, distributions(120.0), distributions(15.0)
                ),
            )
        )
    if draw(st.integers(0, 2)) == 0:
        station["setup"] = draw(distributions(3.0))
    if draw(st.integers(0, 2)) == 0:
        station["scrap"] = draw(st.sampled_from([0.03, 0.25]))
    return station


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Any]:
    two_products = draw(st.booleans())
    count = draw(st.integers(1, 6))
    horizon = draw(st.sampled_from([1000.0, 4000.0, 10000.0]))
    return {
        "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}]
        if two_products
        else [{"name": "P"}],
        "release": draw(
            st.one_of(
                st.just("saturated"),
                st.sampled_from([7.0, 11.0, 16.0]).flatmap(
                    lambda mean: distributions(mean).map(lambda dist: {"interarrival": dist})
                ),
            )
        ),
        "stations": [draw(stations(index, two_products)) for index in range(count)],
        "horizon": horizon,
        "warmup": draw(st.sampled_from([0.0, 0.0, 100.5, horizon * 0.3])),
    }


# -- what the SimPy engine did, part by part ----------------------------------------------------------
class Recorder:
    """Every completion and hand-on instant of every station, from the SimPy engine's observer calls."""

    def __init__(self, stations: int) -> None:
        self.done: list[list[float]] = [[] for _ in range(stations)]
        self.leave: list[list[float]] = [[] for _ in range(stations)]
        self.finished_at: dict[int, float] = {}

    def machine_state(self, machine: Machine, state: int, now: float) -> None:
        index = machine.station_index
        if index in self.finished_at:
            if state == BLOCKED and now == self.finished_at[index]:
                return  # blocked: the part leaves when the machine next changes state
            del self.finished_at[index]
            self.leave[index].append(now)

    def part_finished(
        self, machine: Machine, part: list, cycle_time: float, scrapped: bool, now: float
    ) -> None:
        index = machine.station_index
        self.done[index].append(now)
        if scrapped or index == len(self.done) - 1:
            self.leave[index].append(now)
        else:
            self.finished_at[index] = now


def pairs(periods: Any) -> list[tuple[float, float]]:
    return [(float(start), float(end)) for start, end in periods]


def zero_waits(periods: Any) -> bool:
    return any(periods[i][1] == periods[i + 1][0] for i in range(len(periods) - 1))


def assert_close(flow: Any, simpy: Any, where: str) -> None:
    if isinstance(simpy, float) and isinstance(flow, float):
        assert math.isclose(flow, simpy, rel_tol=REL, abs_tol=1e-12), f"{where}: {flow} != {simpy}"
    else:
        assert flow == simpy, f"{where}: {flow} != {simpy}"


def assert_same_run(data: dict[str, Any], seed: int) -> None:
    line = line_from_dict(data)
    recorder = Recorder(len(line.stations))
    simpy = simulate(line, seed=seed, observer=recorder)
    flow = simulate_flow(line, seed=seed, trace=True)
    assert flow.trace is not None
    for index, station in enumerate(line.stations):
        trace = flow.trace[station.name]
        np.testing.assert_allclose(trace.done[trace.done < line.horizon], recorder.done[index], rtol=REL)
        np.testing.assert_allclose(trace.leave[trace.leave < line.horizon], recorder.leave[index], rtol=REL)
    np.testing.assert_allclose(flow.exit_times, simpy.exit_times, rtol=REL)
    np.testing.assert_allclose(flow.lead_times, simpy.lead_times, rtol=REL)

    assert not any(zero_waits(machines[0]) for machines in simpy.active_periods.values())
    expected = simpy.kpis
    for key, value in expected.items():
        if key in ("wall_s", "engine", "events"):
            continue
        if key == "stations":
            for name, values in value.items():
                for field, number in values.items():
                    assert_close(flow.kpis["stations"][name][field], number, f"{name}.{field}")
        else:
            assert_close(flow.kpis[key], value, key)
    for name, machines in simpy.active_periods.items():
        assert pairs(flow.active_periods[name][0]) == pairs(machines[0]), name
    assert flow.kpis["engine"] == "flow" and simpy.kpis["engine"] == "simpy"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=lines(), seed=st.integers(0, 2**16))
def test_flow_and_simpy_agree_on_random_lines(data: dict[str, Any], seed: int) -> None:
    assert_same_run(data, seed)


@pytest.mark.parametrize(
    "data",
    [
        # saturated tandem with a hand-over and a finite buffer, failures, set-ups and scrap
        {
            "products": [{"name": "A", "mix": 0.7}, {"name": "B", "mix": 0.3}],
            "horizon": 30000,
            "warmup": 3000,
            "stations": [
                {"name": "mill", "cycle_time": {"A": {"dist": "lognormal", "mean": 55, "cv": 0.2}, "B": 70}},
                {
                    "name": "lathe",
                    "cycle_time": {"dist": "gamma", "mean": 50, "cv": 0.3},
                    "buffer": 0,
                    "failures": {"mtbf": "2h", "mttr": "10min"},
                    "setup": 30,
                    "scrap": 0.05,
                },
                {
                    "name": "test",
                    "cycle_time": {"dist": "uniform", "low": 35, "high": 60},
                    "buffer": 3,
                    "failures": {"ttf": {"dist": "normal", "mean": 3000, "sd": 1000}, "ttr": 200},
                },
            ],
        },
        # random arrivals into a finite first buffer (the release keeps a backlog)
        {
            "release": {"interarrival": {"dist": "exponential", "mean": 9}},
            "horizon": 20000,
            "stations": [
                {"name": "a", "cycle_time": {"dist": "exponential", "mean": 8}, "buffer": 1},
                {"name": "b", "cycle_time": {"dist": "exponential", "mean": 8.5}, "buffer": 0, "scrap": 0.1},
            ],
        },
        # balanced constant times: every hand-over is a same-instant tie
        {
            "horizon": 1000,
            "stations": [{"name": n, "cycle_time": 10, "buffer": 0} for n in "abc"],
        },
        # failures that age (Weibull shape 2.5) and early ones (shape 0.6), Weibull cycle times
        {
            "horizon": 40000,
            "stations": [
                {
                    "name": "press",
                    "cycle_time": {"dist": "weibull", "shape": 3, "mean": 40},
                    "failures": {"ttf": {"dist": "weibull", "shape": 2.5, "mean": "30min"}, "mttr": 120},
                },
                {
                    "name": "weld",
                    "cycle_time": 38,
                    "buffer": 2,
                    "failures": {"ttf": {"dist": "weibull", "shape": 0.6, "scale": "20min"}, "ttr": 90},
                },
            ],
        },
    ],
    ids=["saturated", "backlog", "ties", "weibull"],
)
def test_flow_and_simpy_agree_on_chosen_lines(data: dict[str, Any]) -> None:
    assert_same_run(data, seed=7)


def test_zero_second_waits_do_not_split_active_periods() -> None:
    """Two equal constant machines with a hand-over: neither ever waits, whichever one the SimPy
    event queue serves first at each shared instant."""
    stations = [{"name": "a", "cycle_time": 10}, {"name": "b", "cycle_time": 10, "buffer": 0}]
    line = line_from_dict({"horizon": 100, "stations": stations})
    simpy, flow = simulate(line), simulate_flow(line)
    assert simpy.active_periods["a"][0] == [(0, 100.0)]
    assert flow.active_periods["a"][0].tolist() == [[0.0, 100.0]]
    assert flow.active_periods["b"][0].tolist() == [[10.0, 100.0]]
    assert [list(p) for p in simpy.active_periods["b"][0]] == [[10.0, 100.0]]
    assert flow.kpis["stations"]["a"]["working"] == simpy.kpis["stations"]["a"]["working"] == 1.0


# -- samples and replications ---------------------------------------------------------------------------
@pytest.mark.parametrize("dist", [cls.__name__.lower() for cls in VALUE_BY_VALUE])
def test_value_by_value_distributions_ignore_the_block_size(dist: str) -> None:
    spec = {"dist": dist, "mean": 5, "cv": 0.5, "low": 1, "mode": 2, "high": 9, "shape": 1.7}
    keys = {
        "exponential": ["mean"],
        "lognormal": ["mean", "cv"],
        "gamma": ["mean", "cv"],
        "uniform": ["low", "high"],
        "triangular": ["low", "mode", "high"],
        "weibull": ["shape", "mean"],
    }[dist]
    model = TypeAdapter(Distribution).validate_python({"dist": dist, **{k: spec[k] for k in keys}})
    assert_drawn_as_blocks(model, 5)


def assert_drawn_as_blocks(model: Any, blocks: int) -> np.ndarray:
    """`Draws.of(model)` gives `blocks` blocks' values, as the SimPy engine draws them, and leaves
    the generator where the blocks leave it; returns the values."""
    by_block = np.random.default_rng(3)
    whole = np.random.default_rng(3)
    expected = np.concatenate([model.draw(by_block, BLOCK) for _ in range(blocks)])
    draws = Draws.of(model, whole)
    draws.ensure(blocks * BLOCK)
    assert np.array_equal(draws.values, expected)
    assert by_block.bit_generator.state == whole.bit_generator.state
    return expected


@pytest.mark.parametrize("sd", [10.0, 60.0], ids=["nothing-redrawn", "negatives-redrawn"])
def test_a_truncated_normal_is_drawn_as_its_blocks_draw_it(sd: float) -> None:
    """One call of normals when none is negative, else the blocks with their redraws (sd 60 around
    a mean of 50 gives about 20 % negatives): the values and the generator's state are the blocks'."""
    model = TypeAdapter(Distribution).validate_python({"dist": "normal", "mean": 50, "sd": sd})
    assert (assert_drawn_as_blocks(model, 40) >= 0).all()


def test_streams_run_short_and_are_drawn_again() -> None:
    line = line_from_dict(
        {
            "release": {"interarrival": {"dist": "exponential", "mean": 12}},
            "products": [{"name": "A"}, {"name": "B"}],
            "horizon": 20000,
            "stations": [
                {
                    "name": "a",
                    "cycle_time": {"dist": "normal", "mean": 10, "sd": 8},
                    "setup": 2,
                    "scrap": 0.1,
                    "failures": {"mtbf": 300, "mttr": 40},
                },
                {"name": "b", "cycle_time": {"dist": "empirical", "samples": [3, 9, 14]}, "buffer": 2},
            ],
        }
    )
    samples = RunSamples(line, 5)  # nothing drawn ahead: every stream runs short at least once
    kernel = Kernel(line, samples, 0.0, line.horizon, False)
    short = kernel.result(kernel.record(5, line.horizon, 0.0, 0.0))
    full = simulate_flow(line, seed=5)
    assert short.exit_times == full.exit_times == simulate(line, seed=5).exit_times
    assert short.kpis["stations"] == full.kpis["stations"]


def test_long_runs_are_sized_on_a_pilot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow_module, "PILOT_FROM", 500)  # every run here counts as long
    data = {
        "products": [{"name": "A", "mix": 0.5}, {"name": "B", "mix": 0.5}],
        "horizon": 40000,
        "warmup": 2000,
        "stations": [
            {
                "name": "a",
                "cycle_time": {"dist": "exponential", "mean": 9},
                "setup": 2,
                "failures": {"mtbf": 400, "mttr": 30},
            },
            {"name": "b", "cycle_time": {"dist": "normal", "mean": 8, "sd": 3}, "buffer": 2, "scrap": 0.05},
        ],
    }
    assert_same_run(data, seed=11)


def test_a_line_stuck_at_zero_durations_is_an_error() -> None:
    # a station making parts in no time would need endless samples: the line file refuses it
    stations = [{"name": "a", "cycle_time": 0}, {"name": "b", "cycle_time": 5}]
    with pytest.raises(LineError, match=r"stations\[0\]\.cycle_time: mean must be > 0"):
        simulate_flow(line_from_dict({"horizon": 100, "stations": stations}))


def test_replications_are_single_runs() -> None:
    line = line_from_dict(
        {
            "horizon": 5000,
            "warmup": 500,
            "stations": [
                {"name": "a", "cycle_time": {"dist": "exponential", "mean": 10}},
                {
                    "name": "b",
                    "cycle_time": {"dist": "exponential", "mean": 11},
                    "buffer": 1,
                    "failures": {"mtbf": 500, "mttr": 50},
                },
            ],
        }
    )
    records = replicate(line, range(4))
    for seed, record in enumerate(records):
        alone = simulate_flow(line, seed=seed).kpis
        assert record["seed"] == seed
        assert {k: v for k, v in record.items() if k != "wall_s"} == {
            k: v for k, v in alone.items() if k != "wall_s"
        }


# -- choosing the engine ----------------------------------------------------------------------------------
FLOW_LINE = {
    "stations": [
        {"name": "a", "cycle_time": 10},
        {"name": "b", "cycle_time": {"dist": "exponential", "mean": 9}},
    ]
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"release": {"conwip": 3}}, "release"),
        ({"stations": [{"name": "a", "cycle_time": 10, "capacity": 2}]}, "stations[0].capacity"),
        (
            {
                "stations": [
                    {"name": "a", "cycle_time": 10},
                    {"name": "b", "cycle_time": 5, "failures": {"mtbf": 99, "mttr": 9, "basis": "calendar"}},
                ]
            },
            "stations[1].failures.basis",
        ),
    ],
)
def test_auto_falls_back_and_flow_says_why_not(change: dict[str, Any], field: str) -> None:
    line = line_from_dict({**FLOW_LINE, **change})
    assert choose_engine(line) == "event"
    with pytest.raises(LineError) as error:
        choose_engine(line, "flow", source="line.yaml")
    message = str(error.value)
    assert message.startswith(f"line.yaml: engine: flow cannot run this line: {field}: ")
    assert "\n" not in message


def test_auto_prefers_flow_unless_someone_observes() -> None:
    line = line_from_dict(FLOW_LINE)
    assert choose_engine(line) == "flow"
    assert choose_engine(line, "simpy") == "simpy"
    assert choose_engine(line_from_dict({**FLOW_LINE, "engine": "simpy"})) == "simpy"
    assert choose_engine(line, observed=True) == "simpy"
    with pytest.raises(LineError, match="observer"):
        choose_engine(line, "flow", observed=True)
    assert run_line(line).kpis["engine"] == "flow"
    assert run_line(line, engine="simpy").kpis["engine"] == "simpy"


def fabbrica(*args: str) -> Any:
    """`fabbrica ARGS` in this process (exit code, stdout and stderr apart)."""
    return CliRunner().invoke(app, list(args))


def test_cli_engine_option(write_line: Any) -> None:
    path = str(write_line({**FLOW_LINE, "horizon": "2h", "warmup": "10min"}))
    records = {}
    for engine in ("auto", "flow", "simpy"):
        done = fabbrica("twin", "run", path, "--json", "--engine", engine, "--seed", "4")
        assert done.exit_code == 0, done.stderr
        records[engine] = json.loads(done.stdout)
    assert records["auto"]["engine"] == records["flow"]["engine"] == "flow"
    assert records["simpy"]["engine"] == "simpy"
    for record in records.values():
        record.pop("wall_s"), record.pop("engine"), record.pop("events")
    assert records["flow"] == records["simpy"] == records["auto"]


def test_cli_engine_errors_are_one_line() -> None:
    done = fabbrica("twin", "run", str(DEMONSTRATOR), "--json", "--engine", "flow")
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: {DEMONSTRATOR}: engine: flow cannot run this line: "
        "stations[2].failures.basis: calendar-time failures need the event engine"
    ]
    done = fabbrica("twin", "run", str(DEMONSTRATOR), "--json", "--engine", "fast")
    assert done.exit_code == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "engine: must be 'auto', 'simpy', 'event' or 'flow', got 'fast'" in done.stderr
    auto = fabbrica("twin", "run", str(DEMONSTRATOR), "--json", "--horizon", "2h", "--warmup", "0")
    assert json.loads(auto.stdout)["engine"] == "event"


def test_line_files_may_ask_for_the_flow_engine(write_line: Any) -> None:
    path = str(write_line({**FLOW_LINE, "engine": "flow", "horizon": "1h"}))
    done = subprocess.run(
        [sys.executable, "-m", "fabbrica", "twin", "run", path, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["engine"] == "flow"

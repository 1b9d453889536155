"""The flow engine from the line's state against the SimPy engine: the same run, to the last bit.

A run from a state (`twin.state`) starts with parts on the machines and in the buffers,
machines working, down, setting up or blocked for residual times. The flow engine takes
those parts into its recursion where they are (`twin.flow_kernel`); for the same line,
state and seed it must give the SimPy engine's record exactly: every KPI, every exit and
lead time, every active period, and every completion and hand-on instant at every station.

The lines are those of tests/twin/test_flow_engine.py (1-6 stations, buffers from hand-over
to unlimited, failures, set-ups, two products, scrap, saturated and interarrival release,
with and without warm-up); the states are drawn over them, and the edge cases (every
machine blocked or down, full buffers, chains of hand-overs) are spelled out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.twin.test_flow_engine import Recorder, lines, pairs
from twin import flow as flow_module
from twin.engine import simulate
from twin.flow import replicate, runs, simulate_flow
from twin.flow_samples import RunSamples, streams
from twin.forecast import forecast
from twin.line import Line, line_from_dict
from twin.run import run_line
from twin.state import FORMAT, HOLDS_A_PART, LineState, state_from_dict
from twin.streams import stream

SKIP = ("wall_s", "engine", "events")  # which engine ran, how long, and what it counted as an event


# -- random states over the lines ------------------------------------------------------------------
@st.composite
def states(draw: st.DrawFn, data: dict[str, Any]) -> dict[str, Any]:
    """A state `data`'s line can hold: per station (or left out) its buffer and its machine."""
    two_products = len(data["products"]) == 2
    last = len(data["stations"]) - 1
    stations: dict[str, Any] = {}
    for index, station in enumerate(data["stations"]):
        if draw(st.integers(0, 4)) == 0:
            continue  # left out: empty
        choices = ["working", "starved"]
        if index < last:
            choices.append("blocked")
        if "failures" in station:
            choices.append("down")
        if "setup" in station:
            choices.append("setup")
        machine: dict[str, Any] = {"state": draw(st.sampled_from(choices))}
        elapsed = draw(st.sampled_from([0.0, 0.0, 0.7, 4.0, 9.5, 40.0, 300.0]))
        if elapsed:
            machine["elapsed_s"] = elapsed
        if two_products and machine["state"] in HOLDS_A_PART and draw(st.booleans()):
            machine["product"] = draw(st.sampled_from(["A", "B"]))
        if "failures" in station and draw(st.integers(0, 2)) == 0:
            machine["age_s"] = draw(st.sampled_from([0.0, 50.0, 500.0]))
        capacity = station.get("buffer")
        most = 4 if capacity is None else min(capacity, 4)
        stations[station["name"]] = {"buffer": draw(st.integers(0, most)), "machines": [machine]}
    return {"format": FORMAT, "stations": stations}


@st.composite
def lines_and_states(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    data = draw(lines())
    return data, draw(states(data))


# -- one line, one state, one seed in both engines ------------------------------------------------------
def blocked_at_start(line: Line, state: LineState) -> set[int]:
    names = [station.name for station in line.stations]
    return {
        names.index(name)
        for name, station in state.stations.items()
        if station.machines and station.machines[0].state == "blocked"
    }


def assert_same_run_from(data: dict[str, Any], state_data: dict[str, Any], seed: int) -> None:
    """Both engines from the state: the same record (bit for bit), instants and active periods."""
    line = line_from_dict(data)
    state = state_from_dict(state_data)
    recorder = Recorder(len(line.stations))
    for index in blocked_at_start(line, state):  # finished before the start, handed on when there is room
        recorder.done[index].append(0.0)
        recorder.finished_at[index] = 0.0
    simpy = simulate(line, seed=seed, observer=recorder, state=state)
    flow = simulate_flow(line, seed=seed, trace=True, state=state)
    assert flow.kpis["engine"] == "flow" and simpy.kpis["engine"] == "simpy"
    assert {k: v for k, v in flow.kpis.items() if k not in SKIP} == {
        k: v for k, v in simpy.kpis.items() if k not in SKIP
    }
    assert flow.exit_times == simpy.exit_times
    assert flow.lead_times == simpy.lead_times
    for name, machines in simpy.active_periods.items():
        assert pairs(flow.active_periods[name][0]) == pairs(machines[0]), name
    assert flow.trace is not None
    for index, station in enumerate(line.stations):
        trace = flow.trace[station.name]
        assert trace.done[trace.done < line.horizon].tolist() == recorder.done[index], station.name
        assert trace.leave[trace.leave < line.horizon].tolist() == recorder.leave[index], station.name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=lines_and_states(), seed=st.integers(0, 2**16))
def test_flow_and_simpy_agree_from_random_states(
    case: tuple[dict[str, Any], dict[str, Any]], seed: int
) -> None:
    assert_same_run_from(*case, seed)


# -- the edge cases --------------------------------------------------------------------------------------
def machine(state: str, elapsed: float = 0.0, **more: Any) -> list[dict[str, Any]]:
    return [{"state": state, "elapsed_s": elapsed, **more}]


TWO_PRODUCTS = [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}]
FAILURES = {"mtbf": 400.0, "mttr": 45.0}
SERIAL = {
    "products": TWO_PRODUCTS,
    "horizon": 3000.0,
    "stations": [
        {"name": "a", "cycle_time": {"dist": "lognormal", "mean": 10, "cv": 0.4}, "failures": FAILURES},
        {
            "name": "b",
            "cycle_time": {"A": 9.0, "B": {"dist": "uniform", "low": 6, "high": 14}},
            "buffer": 2,
            "failures": {"ttf": {"dist": "normal", "mean": 300, "sd": 90}, "ttr": 30},
            "setup": {"dist": "triangular", "low": 2, "mode": 3, "high": 6},
        },
        {"name": "c", "cycle_time": {"dist": "gamma", "mean": 11, "cv": 0.5}, "buffer": 0, "scrap": 0.1},
        {
            "name": "d",
            "cycle_time": {"dist": "exponential", "mean": 12},
            "buffer": 1,
            "failures": FAILURES,
            "setup": 4,
            "scrap": 0.05,
        },
    ],
}
ARRIVALS = {**SERIAL, "release": {"interarrival": {"dist": "exponential", "mean": 11}}}
ARRIVALS["stations"] = [{**SERIAL["stations"][0], "buffer": 3}, *SERIAL["stations"][1:]]
HAND_OVERS = {
    "horizon": 2000.0,
    "stations": [
        {"name": n, "cycle_time": {"dist": "exponential", "mean": 10}, "buffer": 0, "failures": FAILURES}
        for n in "pqrs"
    ],
}
BALANCED = {"horizon": 500.0, "stations": [{"name": n, "cycle_time": 10, "buffer": 0} for n in "xyz"]}

EDGE_CASES = {
    "all blocked, buffers full": (
        SERIAL,
        {
            "a": {"machines": machine("blocked", 5.0, product="A")},
            "b": {"buffer": 2, "machines": machine("blocked", product="B")},
            "c": {"machines": machine("blocked", 2.0)},
            "d": {"buffer": 1, "machines": machine("working", 3.0, age_s=390.0)},
        },
    ),
    "all down": (
        SERIAL,
        {
            "a": {"machines": machine("down", 10.0)},
            "b": {"buffer": 1, "machines": machine("down", 29.0, product="A")},
            "d": {"buffer": 1, "machines": machine("down", 200.0)},
        },
    ),
    "all setting up": (
        SERIAL,
        {"b": {"buffer": 2, "machines": machine("setup", 1.0)}, "d": {"machines": machine("setup", 5.0)}},
    ),
    "full buffers in front of starved machines": (
        SERIAL,
        {
            "b": {"buffer": 2, "machines": machine("starved")},
            "d": {"buffer": 1, "machines": machine("starved")},
        },
    ),
    "constant times used up": (  # a residual of 0: the set-up, the cycle and the repair end at 0
        SERIAL,
        {
            "b": {"machines": machine("setup", 50.0, product="A")},
            "d": {"machines": machine("down", 5.0, age_s=10_000.0)},
        },
    ),
    "arrivals into a full first buffer": (
        ARRIVALS,
        {
            "a": {"buffer": 3, "machines": machine("blocked")},
            "b": {"buffer": 2, "machines": machine("working", 4.0)},
            "c": {"machines": machine("blocked")},
        },
    ),
    "arrivals into an empty line, one machine working": (ARRIVALS, {"c": {"machines": machine("working")}}),
    "hand-overs all blocked": (
        HAND_OVERS,
        {
            "p": {"machines": machine("blocked")},
            "q": {"machines": machine("blocked")},
            "r": {"machines": machine("blocked")},
            "s": {"machines": machine("down", 30.0)},
        },
    ),
    "hand-overs all down": (HAND_OVERS, {n: {"machines": machine("down", 20.0)} for n in "pqrs"}),
    "balanced constant times, ties at every hand-over": (
        BALANCED,
        {"x": {"machines": machine("blocked")}, "y": {"machines": machine("working", 3.0)}},
    ),
}


@pytest.mark.parametrize(("data", "stations"), list(EDGE_CASES.values()), ids=list(EDGE_CASES))
@pytest.mark.parametrize("warmup", [0.0, 250.0])
def test_flow_and_simpy_agree_on_edge_cases(
    data: dict[str, Any], stations: dict[str, Any], warmup: float
) -> None:
    for seed in range(3):
        assert_same_run_from({**data, "warmup": warmup}, {"format": FORMAT, "stations": stations}, seed)


def test_the_breakdown_under_way_is_not_a_failure_of_the_run() -> None:
    data = {
        "horizon": 100.0,
        "stations": [{"name": "a", "cycle_time": 10, "failures": {"mtbf": 1e9, "mttr": 60}}],
    }
    state = {"format": FORMAT, "stations": {"a": {"machines": machine("down")}}}
    assert_same_run_from(data, state, seed=0)
    record = simulate_flow(line_from_dict(data), seed=0, state=state_from_dict(state)).kpis
    assert record["stations"]["a"]["failures"] == 0
    assert record["stations"]["a"]["down"] > 0.3


def test_long_runs_from_a_state_are_sized_on_a_pilot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        flow_module, "PILOT_FROM", 100
    )  # every run here counts as long: the pilot starts there too
    stations = {
        "a": {"machines": machine("down", 3.0)},
        "b": {"buffer": 2, "machines": machine("setup", 1.0, product="B")},
        "c": {"machines": machine("blocked")},
    }
    assert_same_run_from({**SERIAL, "horizon": 20000.0}, {"format": FORMAT, "stations": stations}, seed=4)


# -- replications and the engine choice ---------------------------------------------------------------------
STATE = state_from_dict(
    {
        "format": FORMAT,
        "stations": {
            "a": {"machines": machine("blocked")},
            "b": {"buffer": 2, "machines": machine("down", 12.0)},
            "d": {"buffer": 1, "machines": machine("working", 4.0)},
        },
    }
)


def test_replications_from_a_state_are_single_runs() -> None:
    line = line_from_dict(SERIAL)
    results = list(runs(line, range(4), state=STATE))
    records = replicate(line, range(4), state=STATE)
    for seed, (result, record) in enumerate(zip(results, records, strict=True)):
        simpy = simulate(line, seed=seed, state=STATE)
        assert result.exit_times == simpy.exit_times
        for key in ("parts_out", "throughput_per_hour", "wip_mean", "stations"):
            assert result.kpis[key] == record[key] == simpy.kpis[key], key


def test_run_line_from_a_state_picks_the_flow_engine() -> None:
    line = line_from_dict(SERIAL)
    flow = run_line(line, state=STATE, seed=5)
    assert flow.kpis["engine"] == "flow"
    simpy = run_line(line, state=STATE, seed=5, engine="simpy")
    assert {k: v for k, v in flow.kpis.items() if k not in SKIP} == {
        k: v for k, v in simpy.kpis.items() if k not in SKIP
    }


def test_the_forecast_is_the_same_in_both_engines() -> None:
    line = line_from_dict(SERIAL)
    common: dict[str, Any] = {"horizon": 2500.0, "replications": 12, "seed": 3, "target": 95, "path": [600.0]}
    flow = forecast(line, STATE, engine="flow", **common)
    simpy = forecast(line, STATE, engine="simpy", **common)
    assert flow.pop("engine") == "flow" and simpy.pop("engine") == "simpy"
    assert flow == simpy
    assert forecast(line, STATE, **common)["engine"] == "flow"  # auto


def test_the_flow_forecast_in_processes_is_the_same() -> None:
    line = line_from_dict(SERIAL)
    common: dict[str, Any] = {"horizon": 2000.0, "replications": 9, "seed": 8, "target": 80}
    assert forecast(line, STATE, workers=2, **common) == forecast(line, STATE, **common)


def test_a_state_with_many_parts_draws_enough_samples() -> None:
    """Unlimited buffers full of parts: the run needs more samples than the means allow for."""
    data = {
        "horizon": 400.0,
        "stations": [
            {"name": "a", "cycle_time": {"dist": "exponential", "mean": 50}},
            {"name": "b", "cycle_time": {"dist": "normal", "mean": 2, "sd": 1}},
            {"name": "c", "cycle_time": {"dist": "empirical", "samples": [1, 2, 3]}, "scrap": 0.2},
        ],
    }
    stations = {"b": {"buffer": 300}, "c": {"buffer": 150, "machines": machine("working")}}
    assert_same_run_from(data, {"format": FORMAT, "stations": stations}, seed=2)
    result = simulate_flow(
        line_from_dict(data), seed=2, state=state_from_dict({"format": FORMAT, "stations": stations})
    )
    assert np.all(np.diff(result.exit_times) >= 0)


# -- the streams, seeded many at a time ----------------------------------------------------------------
KEYS = st.tuples(
    st.sampled_from(["a", "lathe", "", "prüfstand", "__release__"]),
    st.sampled_from(["cycle", "ttf", "ttr", "setup", "scrap", "arrival", "product", "initial"]),
    st.integers(0, 3),
    st.sampled_from(["", "A", "B", "buffer"]),
)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.one_of(st.integers(0, 2**16), st.integers(0, 2**64), st.integers(2**128, 2**200)),
    keys=st.lists(KEYS, min_size=1, max_size=4),
)
def test_streams_are_the_generators_of_twin_streams(seed: int, keys: list[tuple[str, str, int, str]]) -> None:
    """`twin.flow_samples.streams` computes numpy's SeedSequence words itself: the same generators."""
    fast = streams(seed, keys)
    for key, rng in zip(keys, fast, strict=True):
        assert rng.bit_generator.state == stream(seed, *key).bit_generator.state, key


def test_reseeded_samples_are_those_of_a_new_run() -> None:
    line = line_from_dict(ARRIVALS)
    reused = RunSamples(line, 1)
    reused.draw_for(2000.0)
    reused.reseed(9)
    reused.draw_for(2000.0)
    fresh = RunSamples(line, 9)
    fresh.draw_for(2000.0)
    for mine, theirs in zip(reused._draws, fresh._draws, strict=True):
        assert np.array_equal(mine.values, theirs.values)

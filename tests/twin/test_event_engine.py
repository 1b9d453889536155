"""The compiled event engine against the SimPy engine: the same instants and KPIs, to 1e-9 relative.

The event engine runs the SimPy engine's processes and stores event for event, fed the same
random streams (`twin.event`), so every case here is checked exactly, not in distribution:
on lines drawn by hypothesis with every feature it runs (parallel machines, hand-overs and
finite and unlimited buffers, saturated, interarrival and CONWIP release with and without a
backlog, operation- and calendar-time failures, repair crews with fifo and bottleneck
priority and skills, preventive maintenance by time and by parts, switch-off, set-ups,
products, scrap, shift calendars), with constant durations
among them so that ties between machines happen. The exact theory (Erlang C, a closed
CONWIP network) checks the engine itself with replications; `engine: auto` picks it.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from tests.twin.exact.queueing import mmc
from twin.engine import LineModel, simulate
from twin.event import event_obstacle, replicate, simulate_event
from twin.line import Line, LineError, line_from_dict, load_line
from twin.run import choose_engine, run_line
from twin.state import FORMAT, state_from_dict

DEMONSTRATOR = "simulations/lines/demonstrator.yaml"
SKIPPED = ("wall_s", "engine", "events", "engine_fallback")


def assert_same_run(line: Line, seed: int, horizon: float | None = None, warmup: float | None = None) -> None:
    """The event engine's run equals the SimPy engine's: every exit and lead time, every KPI."""
    simpy_run = simulate(line, seed=seed, horizon=horizon, warmup=warmup)
    event_run = simulate_event(line, seed=seed, horizon=horizon, warmup=warmup)
    assert event_run.kpis["engine"] == "event"
    np.testing.assert_allclose(event_run.exit_times, simpy_run.exit_times, rtol=1e-9, atol=0)
    np.testing.assert_allclose(event_run.lead_times, simpy_run.lead_times, rtol=1e-9, atol=1e-9)
    assert_same_record(simpy_run.kpis, event_run.kpis)
    for name, machines in simpy_run.active_periods.items():
        for expected, got in zip(machines, event_run.active_periods[name], strict=True):
            np.testing.assert_allclose(
                np.asarray(got).reshape(-1, 2), np.asarray(expected).reshape(-1, 2), rtol=1e-9
            )


def assert_same_record(expected: dict[str, Any], got: dict[str, Any], where: str = "") -> None:
    assert set(got) == set(expected), where
    for key, value in expected.items():
        if key in SKIPPED:
            continue
        here = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            assert_same_record(value, got[key], here)
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), here
        else:
            assert got[key] == value, here


# -- lines drawn by hypothesis ------------------------------------------------------------------
def durations(mean_low: float, mean_high: float) -> st.SearchStrategy[Any]:
    mean = st.floats(mean_low, mean_high)
    cv = st.floats(0.1, 1.0)
    return st.one_of(
        mean.map(lambda m: {"dist": "exponential", "mean": m}),
        st.tuples(mean, cv).map(lambda a: {"dist": "lognormal", "mean": a[0], "cv": a[1]}),
        st.tuples(mean, cv).map(lambda a: {"dist": "gamma", "mean": a[0], "cv": a[1]}),
        mean.map(lambda m: {"dist": "uniform", "low": 0.5 * m, "high": 1.5 * m}),
        mean.map(lambda m: {"dist": "triangular", "low": 0.5 * m, "mode": m, "high": 2.0 * m}),
        st.tuples(mean, st.floats(0.5, 3.0)).map(lambda a: {"dist": "weibull", "shape": a[1], "scale": a[0]}),
        mean.map(lambda m: {"dist": "normal", "mean": m, "sd": 0.2 * m}),
        st.integers(int(mean_low), int(mean_high)).map(float),  # constant: ties between machines
    )


def machine_station(
    draw: st.DrawFn,
    name: str,
    products: list[str],
    crew: str | None,
    *,
    machines: int = 3,
    buffers: tuple[int | None, ...] = (None, 0, 1, 2, 4),
    scrap_high: float = 0.2,
) -> dict[str, Any]:
    """A station with every machine feature the event engine runs: 1 to `machines` machines, a
    buffer among `buffers`, per-product cycle times, failures (operating or calendar, with the
    crew's skill), maintenance by time or parts, switch-off, set-up, scrap."""
    capacity = draw(st.integers(1, machines))
    cycle: Any = draw(durations(20, 60))
    if len(products) > 1 and draw(st.booleans()):
        cycle = {product: draw(durations(20, 60)) for product in products}
    station: dict[str, Any] = {"name": name, "capacity": capacity, "cycle_time": cycle}
    station["buffer"] = draw(st.sampled_from(buffers))
    if draw(st.booleans()):
        basis = draw(st.sampled_from(["operating", "calendar"]))
        failures: dict[str, Any] = {"ttf": draw(durations(300, 1500)), "ttr": draw(durations(20, 120))}
        failures["basis"] = basis
        if crew == "skills":
            failures["skill"] = draw(st.sampled_from(["electric", "mechanic"]))
        station["failures"] = failures
    if draw(st.integers(0, 3)) == 0 and station.get("failures", {}).get("basis") != "calendar":
        trigger = draw(st.sampled_from(["every", "parts"]))
        amount = draw(st.floats(200, 2000)) if trigger == "every" else draw(st.integers(1, 30))
        station["maintenance"] = {trigger: amount, "duration": draw(durations(10, 120))}
    if draw(st.integers(0, 3)) == 0:
        station["switch_off"] = {
            "after": draw(st.sampled_from([0.0, 5.0, 60.0])),
            "restart": draw(durations(5, 60)),
        }
    if draw(st.booleans()):
        station["setup"] = draw(durations(5, 40))
    if draw(st.booleans()):
        station["scrap"] = draw(st.floats(0.01, scrap_high))
    return station


@st.composite
def event_lines(draw: st.DrawFn) -> dict[str, Any]:
    products = draw(st.sampled_from([["A"], ["A", "B"]]))
    n_stations = draw(st.integers(1, 4))
    crew = draw(st.sampled_from([None, "fifo", "bottleneck", "skills"]))
    stations = [machine_station(draw, f"s{index}", products, crew) for index in range(n_stations)]
    data: dict[str, Any] = {
        "name": "drawn",
        "horizon": draw(st.sampled_from([3600.0, 4 * 3600.0])),
        "warmup": draw(st.sampled_from([0.0, 600.0])),
        "products": [{"name": name, "mix": draw(st.floats(0.2, 1.0))} for name in products],
        "stations": stations,
    }
    release = draw(st.sampled_from(["saturated", "interarrival", "conwip"]))
    if release == "interarrival":
        data["release"] = {"interarrival": draw(durations(30, 90))}
    elif release == "conwip":
        data["release"] = {"conwip": draw(st.integers(1, 12))}
    if crew in ("fifo", "bottleneck"):
        data["repair"] = {"technicians": draw(st.integers(1, 2)), "priority": crew}
    elif crew == "skills":
        data["repair"] = {"technicians": 2, "skills": {"electric": 1, "mechanic": 1}}
    if draw(st.booleans()):
        data["calendar"] = {
            "timezone": "Europe/Rome",
            "start": "2026-03-02T06:00",
            "shifts": [
                {"name": "early", "days": "mon-sun", "start": "06:00", "end": "07:00"},
                {"name": "late", "days": "mon-sun", "start": "07:30", "end": "08:30"},
            ],
        }
        data["horizon"] = 2 * 86400.0
    return data


@fuzz(60)  # FUZZ_EXAMPLES=2000 explores (docs/testing: pinned examples)
@given(event_lines(), st.integers(0, 2**32 - 1))
def test_the_event_engine_runs_every_drawn_line_as_the_simpy_engine_does(
    data: dict[str, Any], seed: int
) -> None:
    line = line_from_dict(data)
    assert event_obstacle(line) is None
    assert_same_run(line, seed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_demonstrator_line_gives_the_simpy_engines_answers(seed: int) -> None:
    assert_same_run(load_line(DEMONSTRATOR), seed)


def test_a_long_run_with_a_crew_and_conwip_gives_the_simpy_engines_answers() -> None:
    line = load_line(
        DEMONSTRATOR, {"release": {"conwip": 9}, "repair": {"technicians": 1, "priority": "bottleneck"}}
    )
    assert_same_run(line, 7, horizon=200 * 3600.0, warmup=3600.0)


def test_replications_draw_ahead_without_changing_a_run() -> None:
    line = load_line(DEMONSTRATOR)
    records = replicate(line, [5, 6, 5], horizon=20 * 3600.0)
    assert records[0]["parts_out"] == records[2]["parts_out"]
    assert records[0]["wip_mean"] == records[2]["wip_mean"]
    alone = simulate_event(line, seed=6, horizon=20 * 3600.0).kpis
    assert_same_record(alone, records[1])


def test_auto_takes_the_event_engine_where_the_flow_engine_cannot_run() -> None:
    line = load_line(DEMONSTRATOR)
    assert choose_engine(line) == "event"
    record = run_line(line, horizon=3600.0, warmup=0.0).kpis
    assert record["engine"] == "event" and record["engine_fallback"].startswith("stations[")
    with pytest.raises(LineError, match=r"^engine: event cannot report to an observer"):
        choose_engine(line, "event", observed=True)
    assert choose_engine(line, observed=True) == "simpy"


# -- the event engine against exact theory -----------------------------------------------------------
def interval(samples: list[float], level: float = 0.999) -> tuple[float, float]:
    values = np.asarray(samples)
    half = scipy.stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(half)


def assert_covers(samples: list[float], exact: float, what: str) -> None:
    mean, half = interval(samples)
    assert abs(mean - exact) <= half, f"{what}: engine {mean:.6g} ± {half:.3g}, exact {exact:.6g}"


def test_erlang_c_three_parallel_machines() -> None:
    arrival, service, servers = 2.1, 1.0, 3
    line = line_from_dict(
        {
            "release": {"interarrival": {"dist": "exponential", "mean": 1 / arrival}},
            "stations": [
                {
                    "name": "cell",
                    "capacity": servers,
                    "cycle_time": {"dist": "exponential", "mean": 1 / service},
                }
            ],
        }
    )
    records = replicate(line, range(30), horizon=40_000.0, warmup=2_000.0)
    exact = mmc(arrival, service, servers)
    assert_covers([r["lead_time_mean_s"] for r in records], exact.mean_time_in_system, "lead time")
    assert_covers([r["wip_mean"] for r in records], exact.mean_number_in_system, "wip")
    assert_covers([r["throughput_per_hour"] / 3600.0 for r in records], arrival, "throughput")
    assert_covers([r["stations"]["cell"]["working"] for r in records], exact.utilization, "utilization")


def closed_tandem(
    rates: tuple[float, ...], servers: tuple[int, ...], parts: int
) -> tuple[float, list[float]]:
    """A CONWIP loop of exponential multi-machine stations with unlimited buffers, solved as a CTMC:
    the throughput and each station's starved share (the mean share of its machines idle)."""
    states = [
        counts for counts in itertools.product(range(parts + 1), repeat=len(rates)) if sum(counts) == parts
    ]
    index = {state: i for i, state in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    for state, i in index.items():
        for k, (mu, c) in enumerate(zip(rates, servers, strict=True)):
            if state[k] == 0:
                continue
            after = list(state)
            after[k] -= 1
            after[(k + 1) % len(rates)] += 1
            q[i, index[tuple(after)]] += mu * min(state[k], c)
    np.fill_diagonal(q, -q.sum(axis=1))
    a = np.vstack([q.T, np.ones(len(states))])
    b = np.zeros(len(states) + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    last = len(rates) - 1
    throughput = sum(p * rates[last] * min(s[last], servers[last]) for p, s in zip(pi, states, strict=True))
    starved = [
        sum(p * (c - min(s[k], c)) / c for p, s in zip(pi, states, strict=True))
        for k, c in enumerate(servers)
    ]
    return float(throughput), starved


def test_a_conwip_loop_of_parallel_machines_matches_its_markov_chain() -> None:
    rates, servers, parts = (1 / 50, 1 / 90, 1 / 40), (1, 2, 1), 5
    line = line_from_dict(
        {
            "release": {"conwip": parts},
            "stations": [
                {"name": f"s{k}", "capacity": c, "cycle_time": {"dist": "exponential", "mean": 1 / mu}}
                for k, (mu, c) in enumerate(zip(rates, servers, strict=True))
            ],
        }
    )
    records = replicate(line, range(30), horizon=300_000.0, warmup=5_000.0)
    throughput, starved = closed_tandem(rates, servers, parts)
    assert_covers([r["throughput_per_hour"] / 3600.0 for r in records], throughput, "throughput")
    assert_covers([r["lead_time_mean_s"] for r in records], parts / throughput, "lead time (Little)")
    for k, share in enumerate(starved):
        assert_covers([r["stations"][f"s{k}"]["starved"] for r in records], share, f"s{k} starved")
    assert all(r["wip_mean"] == pytest.approx(parts) for r in records)


# -- runs from a state (the live twin's forecasts) ----------------------------------------------------
@st.composite
def lines_and_states(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A drawn line and a state it can hold: per station (or left out) its buffer and machines."""
    data = draw(event_lines())
    data.pop("calendar", None)
    data["horizon"] = 3600.0
    products = [product["name"] for product in data["products"]]
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
        if "setup" in station or "switch_off" in station:
            choices.append("setup")
        if "switch_off" in station:
            choices.append("off")
        if "maintenance" in station:
            choices.append("maintenance")
        machines = []
        for _ in range(station["capacity"]):
            machine: dict[str, Any] = {"state": draw(st.sampled_from(choices))}
            elapsed = draw(st.sampled_from([0.0, 0.7, 9.5, 40.0, 300.0]))
            if elapsed:
                machine["elapsed_s"] = elapsed
            if (machine["state"] == "maintenance" and draw(st.booleans())) or (
                machine["state"] in ("working", "blocked", "down", "setup") and draw(st.booleans())
            ):
                machine["product"] = draw(st.sampled_from(products))
            if machine["state"] == "setup" and "switch_off" in station:
                # a restart after a switch-off (the only set-up of a station without `setup`)
                machine["restart"] = "setup" not in station or draw(st.booleans())
            if "failures" in station and draw(st.integers(0, 2)) == 0:
                machine["age_s"] = draw(st.sampled_from([0.0, 50.0, 500.0]))
            machines.append(machine)
        capacity = station.get("buffer")
        most = 4 if capacity is None else min(capacity, 4)
        if index == 0 and data.get("release", "saturated") == "saturated":
            most = 0
        stations[station["name"]] = {"buffer": draw(st.integers(0, most)), "machines": machines}
    return data, {"format": FORMAT, "stations": stations}


@fuzz(30)
@given(lines_and_states(), st.integers(0, 2**32 - 1))
def test_the_event_engine_runs_from_drawn_states_as_the_simpy_engine_does(
    case: tuple[dict[str, Any], dict[str, Any]], seed: int
) -> None:
    data, state_data = case
    state = state_from_dict(state_data)
    if "conwip" in data.get("release", {}):  # at least the parts the state holds
        data["release"]["conwip"] = max(data["release"]["conwip"], state.parts_in_line())
    line = line_from_dict(data)
    simpy_run = simulate(line, seed=seed, state=state)
    event_run = simulate_event(line, seed=seed, state=state)
    np.testing.assert_allclose(event_run.exit_times, simpy_run.exit_times, rtol=1e-9, atol=0)
    np.testing.assert_allclose(event_run.lead_times, simpy_run.lead_times, rtol=1e-9, atol=1e-9)
    assert_same_record(simpy_run.kpis, event_run.kpis)


def test_a_snapshot_of_the_demonstrator_runs_on_as_on_the_simpy_engine() -> None:
    line = load_line(DEMONSTRATOR)
    model = LineModel(line, 4)
    model.env.run(until=5000.0)
    state = model.snapshot()
    for seed in (1, 2):
        simpy_run = simulate(line, seed=seed, state=state, horizon=4 * 3600.0, warmup=0.0)
        event_run = run_line(line, seed=seed, state=state, horizon=4 * 3600.0, warmup=0.0)
        assert event_run.kpis["engine"] == "event"
        np.testing.assert_allclose(event_run.exit_times, simpy_run.exit_times, rtol=1e-9, atol=0)
        assert_same_record(simpy_run.kpis, event_run.kpis)

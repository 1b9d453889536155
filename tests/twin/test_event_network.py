"""The compiled event engine on lines as networks against the SimPy engine: the same instants and KPIs.

As tests/twin/test_event_engine.py does for chains, every case here compares the event engine's
run with the SimPy engine's (`twin/network.py`) exactly, to 1e-9 relative: on network lines drawn
by hypothesis from a few templates that are valid by construction (docs/networks.md: a chain
with rework loops, a chain with product routes that skip stations and come back, an assembly of
a main branch and a feeder branch with its own release and pinned product, the assembly with
routes), with transports and the machine features of the chains (parallel machines, buffers,
operating and calendar failures, repair crews, maintenance, switch-off, set-ups, scrap,
products, per-product cycle times, saturated, interarrival and CONWIP release, shift calendars);
on the feature lines of tests/twin/test_network_theory.py and the shipped assembly line; and
from snapshots of running network lines (the live twin's forecasts). `engine: auto` takes the
event engine for a network line, and the event engine alone matches exact theory (the M/M/1
with feedback of a rework loop, the transport of N places as N parallel servers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from tests.twin.test_event_engine import assert_covers, assert_same_record, assert_same_run, durations
from tests.twin.test_event_engine import machine_station as drawn_station
from tests.twin.test_network_theory import (
    FEATURE_LINES,
    REWORK,
    TRANSPORTS,
    WARMUP,
    NetworkCase,
    run_measures,
)
from twin import event_kernel
from twin.engine import LineModel, simulate
from twin.event import event_obstacle, replicate, simulate_event
from twin.flow import flow_obstacle
from twin.line import Line, line_from_dict, load_line
from twin.run import choose_engine, run_line
from twin.state import LineState

ASSEMBLY = Path(__file__).resolve().parents[2] / "simulations" / "lines" / "assembly.yaml"
FEATURE_HORIZON = 2000.0  # s: the feature lines' cycle times are about 1 s


def feature_line(name: str) -> Line:
    return line_from_dict({"name": name, **FEATURE_LINES[name]})


# -- lines drawn by hypothesis ------------------------------------------------------------------------
def machine_station(draw: st.DrawFn, name: str, products: list[str], crew: str | None) -> dict[str, Any]:
    """A station with the machine features of `event_lines`: 1-2 machines, a buffer of None/0/1/2,
    failures (operating or calendar), maintenance, switch-off, set-up, scrap, per-product times."""
    return drawn_station(draw, name, products, crew, machines=2, buffers=(None, 0, 1, 2), scrap_high=0.1)


def route_through(
    draw: st.DrawFn, stations: list[str], *, from_first: bool, reentrant: bool = True
) -> list[str]:
    """A route along `stations` (in flow order) that skips some; it starts at the first one when
    `from_first`, and may go back to an earlier station at its end (re-entrant)."""
    route = [name for name in stations if draw(st.booleans())]
    if from_first and (not route or route[0] != stations[0]):
        route.insert(0, stations[0])
    if not route:
        route = [draw(st.sampled_from(stations))]
    if reentrant and len(route) >= 2 and draw(st.integers(0, 3)) == 0:
        route.append(draw(st.sampled_from(route[:-1])))
    return route


def rework_targets(station: str, upstream: list[str], routes: dict[str, list[str]] | None) -> list[str]:
    """The stations `station` may send a part back to: itself or one of `upstream` (graph-upstream,
    no assembly on the way), and for every route that visits it, one visited on the route before."""
    targets = []
    for to in [*upstream, station]:
        fits = True
        for route in (routes or {}).values():
            for k, visited in enumerate(route):
                if visited == station and to not in route[: k + 1]:
                    fits = False
        if fits:
            targets.append(to)
    return targets


def add_rework(
    draw: st.DrawFn,
    stations: dict[str, dict[str, Any]],
    segment: list[str],
    routes: dict[str, list[str]] | None,
    surely: bool = False,
) -> None:
    """Maybe (`surely`: always) a rework loop at one station of `segment` (a run of stations that
    feed each other in order)."""
    if not segment or not (surely or draw(st.booleans())):
        return
    k = draw(st.integers(0, len(segment) - 1))
    at = segment[k]
    to = draw(st.sampled_from(rework_targets(at, segment[:k], routes)))
    stations[at]["rework"] = {"probability": draw(st.floats(0.05, 0.3)), "to": to}


def add_transports(draw: st.DrawFn, stations: dict[str, dict[str, Any]], into: list[str]) -> None:
    """Maybe transports of 1-3 places into some of `into` (no assembly among them)."""
    for name in into:
        if draw(st.integers(0, 2)) == 0:
            stations[name]["transport"] = {
                "time": draw(durations(5, 60)),
                "capacity": draw(st.integers(1, 3)),
            }


def unlimited_where_reentered(stations: dict[str, dict[str, Any]], routes: dict[str, list[str]]) -> None:
    """A station a route comes back to gets an unlimited buffer: with a finite one, it and the
    station that sends the part back could wait for each other's room for ever (a real deadlock,
    in both engines alike)."""
    for route in routes.values():
        for k, name in enumerate(route):
            if name in route[:k]:
                stations[name]["buffer"] = None


TEMPLATES = ("rework", "routes", "assembly", "routed-assembly")


@st.composite
def network_lines(draw: st.DrawFn, templates: tuple[str, ...] = TEMPLATES) -> dict[str, Any]:
    """A valid network line from one of `templates`, with the machine features of `event_lines`.

    - rework: a chain of 2-4 stations with a rework loop (to the station itself or upstream);
    - routes: a chain of 3-4 stations, 2-3 products with routes that skip stations (a route may
      come back to an earlier station at its end), maybe a rework loop;
    - assembly: a main branch of 1-2 stations and a feeder branch of 1-2 whose head has its own
      release (saturated or interarrival) and maybe a pinned product, the assembly of the two,
      then 0-2 stations; rework in either branch or behind the assembly (not back into it);
    - routed-assembly: the same with routes for the line's products (the branch's product pinned).

    Each may have transports into stations other than the assembly, and the line's release is
    saturated, interarrival or CONWIP (with an assembly only when every place a branch's parts can
    wait in is finite, and the limit above them: the branch's parts count in the line's WIP, and
    could otherwise fill it and stop the line's release for ever).
    """
    template = draw(st.sampled_from(templates))
    crew = draw(st.sampled_from([None, "fifo", "bottleneck", "skills"]))
    release = draw(st.sampled_from(["saturated", "interarrival", "conwip"]))
    routed = template in ("routes", "routed-assembly")
    if template == "rework":
        products = draw(st.sampled_from([["A"], ["A", "B"], ["A", "B", "C"]]))
    elif template == "routes":
        products = draw(st.sampled_from([["A", "B"], ["A", "B", "C"]]))
    else:
        products = draw(st.sampled_from([["A"], ["A", "B"]]))
    pinned: str | None = None
    if template == "routed-assembly" or (template == "assembly" and draw(st.booleans())):
        pinned = "K"  # the feeder branch's component
    every = [*products, pinned] if pinned else products
    data: dict[str, Any] = {
        "name": f"drawn-{template}",
        "horizon": draw(st.sampled_from([3600.0, 2 * 3600.0, 4 * 3600.0])),
        "warmup": draw(st.sampled_from([0.0, 600.0])),
        "products": [{"name": name, "mix": draw(st.floats(0.2, 1.0))} for name in every],
    }

    def make(name: str) -> dict[str, Any]:
        return machine_station(draw, name, every, crew)

    routes: dict[str, list[str]] | None = None
    branch: list[str] = []
    if template in ("rework", "routes"):
        count = draw(st.integers(2, 4) if template == "rework" else st.integers(3, 4))
        names = [f"s{k}" for k in range(count)]
        stations = {name: make(name) for name in names}
        if routed:
            routes = {
                product: route_through(draw, names, from_first=release == "saturated") for product in products
            }
            if len(products) == 3 and draw(st.booleans()):
                del routes["C"]  # C follows the flow graph
            unlimited_where_reentered(stations, routes)
        add_rework(draw, stations, names, routes, surely=template == "rework")
        if template == "rework" and draw(st.booleans()):  # a second loop, further down
            add_rework(draw, stations, names[1:], routes)
        add_transports(draw, stations, names[1:])
    else:
        main = [f"m{k}" for k in range(draw(st.integers(1, 2)))]
        branch = [f"b{k}" for k in range(draw(st.integers(1, 2)))]
        after = [f"t{k}" for k in range(draw(st.integers(0, 2)))]
        names = [*main, *branch, "join", *after]
        stations = {name: make(name) for name in names}
        head = stations[branch[0]]
        if draw(st.booleans()):
            head["release"] = "saturated"
        else:
            head["release"] = {"interarrival": draw(durations(30, 90))}
        if pinned:
            head["product"] = pinned
        stations["join"]["inputs"] = [main[-1], branch[-1]]
        if routed:
            routes = {}
            for product in products:
                into = route_through(draw, main, from_first=release == "saturated", reentrant=False)
                out = [name for name in after if draw(st.booleans())]
                routes[product] = [*into, "join", *out]
            if draw(st.booleans()):
                routes["K"] = [*branch, "join"]  # the component's route ends at the assembly
        add_rework(draw, stations, main, routes)
        add_rework(draw, stations, after, routes)
        if release != "conwip":  # (a branch's rework queue is one more place its parts wait in)
            add_rework(draw, stations, branch, routes)
        add_transports(draw, stations, [*main[1:], *branch[1:], *after])
    data["stations"] = list(stations.values())
    if routes is not None:
        data["routes"] = routes

    if release == "conwip":
        # every place a branch's part can wait in: its stations' machines, buffers and transports
        # (a transport's places hold parts that left a machine) and the assembly's buffer for it
        places = [stations[name] for name in branch]
        if branch and any(station["buffer"] is None for station in [*places, stations["join"]]):
            release = "interarrival"  # (the routes drawn may start past the first station)
        else:
            room = sum(
                station["capacity"] + station["buffer"] + station.get("transport", {}).get("capacity", 0)
                for station in places
            )
            room += stations["join"]["buffer"] if branch else 0
            data["release"] = {"conwip": room + draw(st.integers(1, 10))}
    if release == "interarrival":
        data["release"] = {"interarrival": draw(durations(30, 90))}
    if crew in ("fifo", "bottleneck"):
        data["repair"] = {"technicians": draw(st.integers(1, 2)), "priority": crew}
    elif crew == "skills":
        data["repair"] = {"technicians": 2, "skills": {"electric": 1, "mechanic": 1}}
    if draw(st.integers(0, 3)) == 0:
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


# 10 examples of each template (40 in all): one draw over all four drew a single plain routed chain
@pytest.mark.parametrize("template", TEMPLATES)
@fuzz(10)  # FUZZ_EXAMPLES=2000 explores (tests/fuzzing.py: pinned examples)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_the_event_engine_runs_every_drawn_network_as_the_simpy_engine_does(
    template: str, data: st.DataObject, seed: int
) -> None:
    line = line_from_dict(data.draw(network_lines((template,)), label="line"))
    assert event_obstacle(line) is None
    assert_same_run(line, seed)


# -- the feature lines of the theory checks and the shipped assembly line ------------------------------
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", list(FEATURE_LINES))
def test_the_feature_lines_give_the_simpy_engines_answers(name: str, seed: int) -> None:
    assert_same_run(feature_line(name), seed, horizon=FEATURE_HORIZON, warmup=100.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_assembly_line_gives_the_simpy_engines_answers(seed: int) -> None:
    assert_same_run(load_line(ASSEMBLY), seed)


# -- runs from a snapshot of a running network (the live twin's forecasts) --------------------------
def assert_same_run_from(line: Line, seed: int, state: LineState, horizon: float) -> None:
    """From `state`, the event engine's run equals the SimPy engine's: every exit and lead time, every KPI."""
    simpy_run = simulate(line, seed=seed, state=state, horizon=horizon, warmup=0.0)
    event_run = simulate_event(line, seed=seed, state=state, horizon=horizon, warmup=0.0)
    assert event_run.kpis["engine"] == "event"
    np.testing.assert_allclose(event_run.exit_times, simpy_run.exit_times, rtol=1e-9, atol=0)
    np.testing.assert_allclose(event_run.lead_times, simpy_run.lead_times, rtol=1e-9, atol=1e-9)
    assert_same_record(simpy_run.kpis, event_run.kpis)
    for name, machines in simpy_run.active_periods.items():
        for expected, got in zip(machines, event_run.active_periods[name], strict=True):
            np.testing.assert_allclose(
                np.asarray(got).reshape(-1, 2), np.asarray(expected).reshape(-1, 2), rtol=1e-9
            )


def snapshot(line: Line, seed: int, at: float) -> LineState:
    model = LineModel(line, seed)
    model.env.run(until=at)
    return model.snapshot()


SNAPSHOTS = [
    *[(name, at) for name in FEATURE_LINES for at in (37.7, 600.0)],
    *[("assembly.yaml", at) for at in (1800.0, 5000.0, 12_345.6)],
]


@pytest.mark.parametrize(("which", "at"), SNAPSHOTS, ids=[f"{which}@{at:g}s" for which, at in SNAPSHOTS])
def test_a_snapshot_of_a_network_runs_on_as_on_the_simpy_engine(which: str, at: float) -> None:
    if which == "assembly.yaml":
        line, horizon = load_line(ASSEMBLY), 4 * 3600.0
    else:
        line, horizon = feature_line(which), FEATURE_HORIZON / 2
    state = snapshot(line, 11, at)
    assert state.parts_in_line() > 0
    for seed in (1, 2):
        assert_same_run_from(line, seed, state, horizon)


@fuzz(20)
@given(network_lines(), st.sampled_from([1.0, 95.5, 700.0, 2500.0]), st.integers(0, 2**32 - 1))
def test_a_snapshot_of_a_drawn_network_runs_on_as_on_the_simpy_engine(
    data: dict[str, Any], at: float, seed: int
) -> None:
    data.pop("calendar", None)
    data["horizon"], data["warmup"] = 3600.0, 0.0
    line = line_from_dict(data)
    assert_same_run_from(line, seed, snapshot(line, seed + 1, at), 3600.0)


# -- engine: auto ------------------------------------------------------------------------------------
def test_auto_takes_the_event_engine_for_the_assembly_line() -> None:
    line = load_line(ASSEMBLY)
    assert choose_engine(line) == "event"
    record = run_line(line, horizon=3600.0, warmup=0.0).kpis
    assert record["engine"] == "event"
    assert record["engine_fallback"] is not None
    assert record["engine_fallback"] == flow_obstacle(line)


# -- drawing ahead -------------------------------------------------------------------------------------
def test_a_network_short_of_samples_is_run_again_once_with_every_stream_drawn_ahead(monkeypatch) -> None:
    """The means misjudge the pace of a network's streams (the branches, rework); a run that stops
    short of one stream draws every stream ahead at the pace the run used them, rather than one
    stream at a time (a week of the assembly line once took 16 runs of the kernel)."""
    kernel_run = event_kernel.run_line
    statuses: list[int] = []

    def counted(*arguments: Any) -> int:
        statuses.append(int(kernel_run(*arguments)))
        return statuses[-1]

    monkeypatch.setattr(event_kernel, "run_line", counted)
    line = load_line(ASSEMBLY)
    record = simulate_event(line, seed=1, horizon=7 * 86400.0, warmup=0.0).kpis
    assert statuses[-1] == 0 and len(statuses) <= 2, statuses
    monkeypatch.undo()
    assert_same_record(simulate(line, seed=1, horizon=7 * 86400.0, warmup=0.0).kpis, record)


# -- the event engine alone against exact theory -------------------------------------------------------
def event_runs(case: NetworkCase, replications: int, horizon: float) -> list[dict[str, float]]:
    """The case's measures over `replications` event-engine runs (its seed block, from WARMUP)."""
    first = case.seeds[0]
    records = replicate(case.line(), range(first, first + replications), horizon=horizon, warmup=WARMUP)
    return [run_measures(record, {}) for record in records]


def test_rework_to_itself_on_the_event_engine_is_an_mm1_with_the_visits_rate() -> None:
    case = REWORK[1]  # p = 0.3, rho = 0.7
    runs = event_runs(case, 30, 40_000.0)
    for measure, exact in case.exact().items():
        assert_covers([run[measure] for run in runs], exact, f"{case.id} {measure}")


def test_a_transport_of_two_places_on_the_event_engine_is_two_parallel_servers() -> None:
    case = TRANSPORTS[1]  # N = 2
    assert case.slots == 2
    runs = event_runs(case, 30, 40_000.0)
    exact = case.exact()
    # the buffer's level (and so the parts on the transport) needs an observer: the rest from the KPIs
    for measure in ("throughput", "wip", "lead_time", "s1.blocked", "s2.starved"):
        assert_covers([run[measure] for run in runs], exact[measure], f"{case.id} {measure}")

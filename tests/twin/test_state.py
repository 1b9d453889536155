"""The line's state (`twin.state`): refusals, the snapshot round trip, residual lives, common random numbers.

- A state the line cannot hold is refused with one line naming the source and the field.
- A snapshot of a running model is a state file that starts a run where the model was:
  exactly so for a line of constant times, whose continuation is then the same run.
- A machine that has been working (down, setting up) for `elapsed` finishes after a
  residual time drawn from its distribution conditioned on having lasted `elapsed`:
  checked by Kolmogorov-Smirnov tests against the conditional CDF written here from
  scipy's distributions (each with a check that the unconditioned draws are refused).
- The same state and seed give the same run; a state that differs at one machine leaves
  every other machine's draws as they were.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats

from tests.conftest import DEMONSTRATOR
from twin.distributions import (
    Constant,
    Empirical,
    Exponential,
    Gamma,
    Lognormal,
    Normal,
    Triangular,
    Uniform,
    _Dist,
)
from twin.engine import LineModel, simulate
from twin.forecast import forecast
from twin.line import line_from_dict, load_line
from twin.run import run_line
from twin.state import (
    LineState,
    StateError,
    check_state,
    read_state,
    start_plan,
    state_from_dict,
)
from twin.station import DOWN, SETUP, STATE_NAMES, WORKING

LINE_DATA: dict[str, Any] = {
    "name": "small",
    "release": "saturated",
    "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}],
    "stations": [
        {"name": "saw", "cycle_time": {"dist": "lognormal", "mean": 30, "cv": 0.3}, "setup": 20},
        {
            "name": "drill",
            "cycle_time": {
                "A": {"dist": "gamma", "mean": 40, "cv": 0.4},
                "B": {"dist": "uniform", "low": 30, "high": 60},
            },
            "buffer": 3,
            "failures": {"mtbf": 600, "mttr": 60},
        },
        {
            "name": "pack",
            "cycle_time": {"dist": "triangular", "low": 20, "mode": 30, "high": 50},
            "capacity": 2,
            "buffer": 2,
        },
    ],
}
LINE = line_from_dict(LINE_DATA)


def state(stations: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"format": "fabbrica-state/1", "stations": stations or {}, **fields}


def working(elapsed: float = 0.0, **fields: Any) -> dict[str, Any]:
    return {"state": "working", "elapsed_s": elapsed, **fields}


# -- refusals --------------------------------------------------------------------------------------
REFUSED: list[tuple[Any, str]] = [
    (state({"drill": {"buffer": 4}}), "stations.drill.buffer: 4 parts, but the buffer holds 3"),
    (state({"pack": {"buffer": 3}}), "stations.pack.buffer: 3 parts, but the buffer holds 2"),
    (state({"mill": {}}), "stations.mill: unknown station (stations: saw, drill, pack)"),
    (
        state({"drill": {"machines": [{"state": "sleeping"}]}}),
        "stations.drill.machines[0].state: must be 'working', 'blocked', 'starved', 'down', 'setup', 'off' "
        "or 'maintenance', got 'sleeping'",
    ),
    (
        state({"pack": {"machines": [working()]}}),
        "stations.pack.machines: 1 machine(s) given, but the station has 2",
    ),
    (
        state({"saw": {"machines": [working(), working()]}}),
        "stations.saw.machines: 2 machine(s) given, but the station has 1",
    ),
    (
        state({"saw": {"machines": [working(product="C")]}}),
        "stations.saw.machines[0].product: unknown product 'C' (products: A, B)",
    ),
    (
        state({"pack": {"machines": [{"state": "blocked"}, {"state": "starved"}]}}),
        "stations.pack.machines[0].state: the last station is never blocked",
    ),
    (
        state({"drill": {"machines": [{"state": "setup"}]}}),
        "stations.drill.machines[0].state: the station has no set-up",
    ),
    (
        state({"saw": {"machines": [{"state": "down"}]}}),
        "stations.saw.machines[0].state: the station has no failures",
    ),
    (
        state({"pack": {"machines": [working(age_s=5.0), {"state": "starved"}]}}),
        "stations.pack.machines[0].age_s: the station has no failures",
    ),
    (state({"saw": {"machines": [working(-1.0)]}}), "stations.saw.machines[0].elapsed_s: must be >= 0"),
    (state({"drill": {"buffer": -1}}), "stations.drill.buffer: must be >= 0"),
    (state({"drill": {"colour": "red"}}), "stations.drill.colour: unknown key"),
    (state({"drill": {"produced": 1.5}}), "stations.drill.produced:"),
    (state(released=-3), "released: must be >= 0"),
    (
        {"format": "fabbrica-state/2"},
        "format: unknown format 'fabbrica-state/2' (expected 'fabbrica-state/1')",
    ),
    ({"stations": {}}, "format: required field missing"),
    ([{"format": "fabbrica-state/1"}], "must be a JSON object with format 'fabbrica-state/1'"),
]


@pytest.mark.parametrize(("data", "message"), REFUSED, ids=[message.split(":")[0] for _, message in REFUSED])
def test_a_state_the_line_cannot_hold_is_refused_in_one_line_naming_the_field(
    data: Any, message: str
) -> None:
    with pytest.raises(StateError) as refused:
        check_state(LINE, state_from_dict(data, "shift.json"), "shift.json")
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith(f"shift.json: {message}"), text


def test_a_conwip_line_refuses_more_parts_than_its_limit() -> None:
    line = line_from_dict({**LINE_DATA, "release": {"conwip": 4}})
    at_limit = state({"drill": {"buffer": 3, "machines": [working()]}})
    check_state(line, state_from_dict(at_limit))
    over = copy.deepcopy(at_limit)
    over["stations"]["saw"] = {"machines": [working()]}
    with pytest.raises(
        StateError, match=r"^<state>: stations: 5 parts in the line, but release.conwip allows 4$"
    ):
        check_state(line, state_from_dict(over))


def test_the_first_buffer_of_a_saturated_line_is_raw_material_and_not_counted() -> None:
    check_state(LINE, state_from_dict(state({"saw": {"buffer": 1000}})))
    assert start_plan(LINE, state_from_dict(state({"saw": {"buffer": 1000}})), seed=1).parts == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"{not json",
            "not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)",
        ),
        (b'{"format": "fabbrica-state/1", "stations": {"drill": {"buffer": 9}}}', None),
        (b"\xff\xfe{}", "not a UTF-8 text file"),
        (b"[]", "must be a JSON object"),
    ],
    ids=["bad-json", "too-full", "not-utf8", "not-an-object"],
)
def test_read_state_refuses_bad_files_in_one_line(
    tmp_path: Path, content: bytes, message: str | None
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    if message is None:  # valid JSON and a valid state, which the line cannot hold
        check = read_state(path)
        with pytest.raises(StateError, match=r"stations\.drill\.buffer: 9 parts"):
            check_state(LINE, check, str(path))
        return
    with pytest.raises(StateError) as refused:
        read_state(path)
    assert str(refused.value) == f"{path}: {message}" or str(refused.value).startswith(f"{path}: {message}")
    assert "\n" not in str(refused.value)


def test_read_state_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"missing\.json: cannot read: No such file or directory$"):
        read_state(tmp_path / "missing.json")


# -- the snapshot round trip -----------------------------------------------------------------------
def without_times(snapshot: LineState) -> dict[str, Any]:
    """A state's data without elapsed times and counts (what a restart at the same instant keeps)."""
    data = snapshot.to_json()
    for station in data["stations"].values():
        station.pop("produced", None)
        for machine in station.get("machines", []):
            machine.pop("elapsed_s", None)
    return data


@pytest.mark.parametrize("seed", [3, 8, 21])
def test_a_snapshot_is_a_state_file_that_restarts_the_line_where_it_was(tmp_path: Path, seed: int) -> None:
    """Demonstrator (two products, set-ups, scrap, operating and calendar failures, two parallel machines):
    snapshot -> file -> read -> check -> a model started from it holds the same parts in the same states."""
    line = load_line(DEMONSTRATOR)
    model = LineModel(line, seed)
    for instant in (900.0, 2345.6, 5000.0):
        model.env.run(until=instant)
        snapshot = model.snapshot()
        path = tmp_path / f"state-{instant}.json"
        path.write_text(json.dumps(snapshot.to_json()))
        again = read_state(path)
        assert again == snapshot
        check_state(line, again, str(path))
        assert again.parts_in_line() == model.wip
        assert again.produced(line) == model.machines[-1][0].parts_out
        restarted = LineModel(line, seed + 1, start=start_plan(line, again, seed + 1))
        assert restarted.wip == model.wip
        restarted.env.run(until=1e-9)  # the zero-time moves at the start: none, the snapshot is settled
        assert without_times(restarted.snapshot()) == without_times(snapshot)
        run = simulate(line, seed=seed, horizon=3600.0, warmup=0.0, state=again)
        assert run.kpis["parts_out"] > 0


DETERMINISTIC: dict[str, Any] = {
    "name": "clockwork",
    "stations": [
        {"name": "cut", "cycle_time": 7.0},
        {"name": "bend", "cycle_time": 9.5, "buffer": 1},
        {"name": "weld", "cycle_time": 17.0, "capacity": 2, "buffer": 0},
        {"name": "paint", "cycle_time": 8.25, "buffer": 2},
    ],
}


@pytest.mark.parametrize("release", ["saturated", {"conwip": 5}], ids=["saturated", "conwip"])
@pytest.mark.parametrize("instant", [10.0, 63.3, 400.05])
def test_with_constant_times_the_run_from_a_snapshot_is_the_same_run(release: Any, instant: float) -> None:
    """Constant times leave nothing to chance: from the snapshot, the line makes its parts at the
    same instants as the run that was snapshotted (elapsed times give the residual cycles)."""
    line = line_from_dict({**DETERMINISTIC, "release": release})
    end = 600.0
    whole = simulate(line, seed=1, horizon=end, warmup=0.0)
    model = LineModel(line, 1)
    model.env.run(until=instant)
    snapshot = model.snapshot()
    continued = simulate(line, seed=2, horizon=end - instant, warmup=0.0, state=snapshot)
    later = [t for t in whole.exit_times if t > instant]
    assert len(later) > 10
    assert np.allclose(np.asarray(continued.exit_times) + instant, later, rtol=0, atol=1e-9)


def test_a_machine_down_by_the_calendar_while_idle_is_snapshotted_idle() -> None:
    """A state file's `down` machine holds a part in work: a calendar breakdown of an empty or
    blocked machine must not become one (it would add a part, or process a finished one again)."""
    line = line_from_dict(
        {
            "stations": [
                {"name": "slow-in", "cycle_time": {"dist": "exponential", "mean": 10}},
                {
                    "name": "quick",
                    "cycle_time": 2,
                    "buffer": 1,
                    "failures": {"mtbf": 100, "mttr": 30, "basis": "calendar"},
                },
                {"name": "slow-out", "cycle_time": {"dist": "exponential", "mean": 10}, "buffer": 0},
            ]
        }
    )
    model = LineModel(line, 5)
    seen: dict[str, int] = {}
    instant = 0.0
    while instant < 20_000:
        instant += 3.7
        model.env.run(until=instant)
        machine = model.machines[1][0]
        if machine.state != DOWN:
            continue
        snapshot = model.snapshot()
        given = snapshot.stations["quick"].machines[0]  # type: ignore[index]
        held = "down" if machine.logical_state in (WORKING, SETUP) else STATE_NAMES[machine.logical_state]
        assert given.state == held
        assert snapshot.parts_in_line() == model.wip
        assert LineModel(line, 1, start=start_plan(line, snapshot, 1)).wip == model.wip
        seen[given.state] = seen.get(given.state, 0) + 1
    assert seen.keys() == {"starved", "blocked", "down"}, seen


def test_a_machine_broken_down_in_its_work_is_snapshotted_down() -> None:
    """Operation-based breakdowns keep no `logical_state`: the snapshot must still say `down`,
    with the time since the breakdown, and the part it holds."""
    line = line_from_dict(
        {
            "stations": [
                {"name": "feed", "cycle_time": {"dist": "exponential", "mean": 10}},
                {
                    "name": "press",
                    "cycle_time": {"dist": "exponential", "mean": 8},
                    "buffer": 3,
                    "failures": {"mtbf": 60, "mttr": 30},
                },
            ]
        }
    )
    model = LineModel(line, 4)
    downs = 0
    instant = 0.0
    while instant < 5_000:
        instant += 2.9
        model.env.run(until=instant)
        machine = model.machines[1][0]
        given = model.snapshot().stations["press"].machines[0]  # type: ignore[index]
        if machine.state == DOWN:
            downs += 1
            assert given.state == "down" and given.product == "default"
            assert given.elapsed_s == pytest.approx(instant - machine.state_since)
        else:
            assert given.state != "down"
    assert downs > 20


# -- residual lives --------------------------------------------------------------------------------
DRAWS = 600
PASS = 1e-3  # a KS test at a fixed seed passes with p above this; the wrong draws are refused below it


def normal(mean: float, sd: float) -> Any:
    return scipy.stats.truncnorm(-mean / sd, math.inf, loc=mean, scale=sd)


def lognormal(mean: float, cv: float) -> Any:
    """Mean and cv -> scipy's lognorm: sigma^2 = ln(1 + cv^2), median = mean / sqrt(1 + cv^2)."""
    return scipy.stats.lognorm(math.sqrt(math.log(1 + cv * cv)), scale=mean / math.sqrt(1 + cv * cv))


def gamma(mean: float, cv: float) -> Any:
    return scipy.stats.gamma(1 / (cv * cv), scale=mean * cv * cv)


# (distribution, elapsed, the same distribution written with scipy here)
CONTINUOUS: dict[str, tuple[_Dist, float, Any]] = {
    "normal": (Normal(dist="normal", mean=100, sd=15), 110.0, normal(100, 15)),
    "normal-truncated": (Normal(dist="normal", mean=10, sd=15), 12.0, normal(10, 15)),
    "normal-far-tail": (Normal(dist="normal", mean=100, sd=15), 190.0, normal(100, 15)),
    "lognormal": (Lognormal(dist="lognormal", mean=55, cv=0.5), 60.0, lognormal(55, 0.5)),
    "lognormal-far-tail": (Lognormal(dist="lognormal", mean=55, cv=0.5), 400.0, lognormal(55, 0.5)),
    "gamma": (Gamma(dist="gamma", mean=50, cv=0.3), 50.0, gamma(50, 0.3)),
    "gamma-far-tail": (Gamma(dist="gamma", mean=50, cv=0.3), 160.0, gamma(50, 0.3)),
    "uniform": (Uniform(dist="uniform", low=10, high=50), 30.0, scipy.stats.uniform(10, 40)),
    "triangular": (
        Triangular(dist="triangular", low=10, mode=20, high=45),
        25.0,
        scipy.stats.triang((20 - 10) / 35, loc=10, scale=35),
    ),
}


def conditional_cdf(reference: Any, elapsed: float) -> Any:
    """P(X - e <= x | X > e) = 1 - S(e + x) / S(e), on log survival functions (precise in the tail)."""
    log_survival = float(reference.logsf(elapsed))
    return lambda x: -np.expm1(reference.logsf(elapsed + np.asarray(x)) - log_survival)


def residuals(dist: _Dist, elapsed: float, seed: int = 8, n: int = DRAWS) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([dist.residual(rng, elapsed) for _ in range(n)])


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_residual_draws_follow_the_distribution_conditioned_on_the_elapsed_time(name: str) -> None:
    dist, elapsed, reference = CONTINUOUS[name]
    cdf = conditional_cdf(reference, elapsed)
    draws = residuals(dist, elapsed)
    assert (draws >= 0).all() and np.isfinite(draws).all()
    assert scipy.stats.kstest(draws, cdf).pvalue > PASS
    # the test would see draws that ignore the elapsed time, or merely subtract it
    plain = dist.draw(np.random.default_rng(8), DRAWS)
    assert scipy.stats.kstest(plain, cdf).pvalue < PASS
    assert scipy.stats.kstest(np.maximum(plain - elapsed, 0.0), cdf).pvalue < PASS


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_without_elapsed_time_the_residual_is_a_plain_draw(name: str) -> None:
    dist, _, reference = CONTINUOUS[name]
    draws = residuals(dist, 0.0)
    assert scipy.stats.kstest(draws, reference.cdf).pvalue > PASS
    assert draws[0] == dist.draw(np.random.default_rng(8), 1)[0]


@pytest.mark.parametrize(
    ("dist", "elapsed"),
    [
        (Uniform(dist="uniform", low=10, high=50), 50.0),
        (Uniform(dist="uniform", low=10, high=50), 75.0),
        (Triangular(dist="triangular", low=10, mode=20, high=45), 45.0),
        (Uniform(dist="uniform", low=30, high=30), 31.0),
        (Lognormal(dist="lognormal", mean=30, cv=0), 31.0),
    ],
    ids=["uniform-at-high", "uniform-past-high", "triangular-at-high", "point-uniform", "point-lognormal"],
)
def test_a_duration_past_its_longest_value_ends_now(dist: _Dist, elapsed: float) -> None:
    assert dist.residual(np.random.default_rng(1), elapsed) == 0.0


def test_the_exponential_residual_is_memoryless() -> None:
    """Whatever the elapsed time, the same draw: a fresh exponential time (KS against Exp(mean))."""
    dist = Exponential(dist="exponential", mean=30)
    for elapsed in (5.0, 30.0, 500.0):
        draws = residuals(dist, elapsed)
        assert np.array_equal(draws, residuals(dist, 0.0))
        assert scipy.stats.kstest(draws, scipy.stats.expon(scale=30).cdf).pvalue > PASS
    assert scipy.stats.kstest(draws, scipy.stats.expon(scale=40).cdf).pvalue < PASS  # the test can fail


@pytest.mark.parametrize(("elapsed", "left"), [(0.0, 42.0), (10.5, 31.5), (42.0, 0.0), (60.0, 0.0)])
def test_a_constant_duration_has_its_value_minus_the_elapsed_time_left(elapsed: float, left: float) -> None:
    assert Constant(dist="constant", value=42).residual(np.random.default_rng(1), elapsed) == left


def test_an_empirical_residual_picks_only_longer_recorded_durations() -> None:
    """Samples 5, 10, 20, 20, 40 after 10 s: 20 or 40 (longer than 10, not equal), 20 twice as often."""
    dist = Empirical(dist="empirical", samples=[5, 10, 20, 20, 40])
    draws = residuals(dist, 10.0, n=3000)
    assert set(draws.tolist()) == {10.0, 30.0}
    ten = int((draws == 10.0).sum())
    assert scipy.stats.binomtest(ten, len(draws), 2 / 3).pvalue > PASS
    assert scipy.stats.binomtest(ten, len(draws), 1 / 2).pvalue < PASS  # picking among distinct values
    assert set(residuals(dist, 0.0, n=500).tolist()) == {5.0, 10.0, 20.0, 40.0}
    assert set(residuals(dist, 39.0, n=50).tolist()) == {1.0}
    assert dist.residual(np.random.default_rng(1), 40.0) == 0.0  # none is longer: ends now


# -- common random numbers -------------------------------------------------------------------------
BUSY = state(
    {
        "saw": {"machines": [working(12.0)]},
        "drill": {"buffer": 2, "machines": [{"state": "down", "elapsed_s": 30.0}]},
        "pack": {"buffer": 1, "machines": [working(5.0, product="B"), {"state": "starved"}]},
    }
)


@pytest.mark.parametrize("engine", ["simpy", "flow"])
def test_the_same_state_and_seed_give_the_same_run_and_forecast(engine: str) -> None:
    """For flow, the line's packing station has one machine (the flow engine's lines)."""
    line = LINE
    busy_data = BUSY
    if engine == "flow":
        stations = [dict(station) for station in LINE_DATA["stations"]]
        stations[2]["capacity"] = 1
        line = line_from_dict({**LINE_DATA, "stations": stations})
        busy_data = copy.deepcopy(BUSY)
        busy_data["stations"]["pack"]["machines"].pop()
    busy = state_from_dict(busy_data)
    first = run_line(line, engine=engine, seed=11, horizon=3600.0, warmup=0.0, state=busy)
    again = run_line(line, engine=engine, seed=11, horizon=3600.0, warmup=0.0, state=busy)
    assert list(first.exit_times) == list(again.exit_times) and len(first.exit_times) > 20
    assert first.kpis["engine"] == engine
    assert {**first.kpis, "wall_s": 0} == {**again.kpis, "wall_s": 0}
    other = run_line(line, engine=engine, seed=12, horizon=3600.0, warmup=0.0, state=busy)
    assert list(other.exit_times) != list(first.exit_times)
    once = forecast(line, busy, horizon=1800.0, replications=6, seed=40, engine=engine)
    assert forecast(line, busy, horizon=1800.0, replications=6, seed=40, engine=engine) == once


CHANGES = {
    "saw-elapsed": ("saw", lambda s: s["saw"]["machines"][0].update(elapsed_s=25.0)),
    "saw-down-to-setup": ("saw", lambda s: s["saw"]["machines"][0].update(state="setup")),
    "drill-repaired": ("drill", lambda s: s["drill"]["machines"][0].update(state="working", elapsed_s=3.0)),
    "drill-buffer": ("drill", lambda s: s["drill"].update(buffer=3)),
    "pack-second-busy": ("pack", lambda s: s["pack"]["machines"][1].update(state="working", elapsed_s=2.0)),
    "pack-product": ("pack", lambda s: s["pack"]["machines"][0].update(product="A")),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_state_that_differs_at_one_station_leaves_the_others_draws_alone(change: str) -> None:
    """Residual times and products (drawn, not given) of every other station are the same."""
    changed_station, edit = CHANGES[change]
    other = copy.deepcopy(BUSY)
    edit(other["stations"])
    names = [station.name for station in LINE.stations]
    for seed in (1, 2, 3):
        before = start_plan(LINE, state_from_dict(BUSY), seed)
        after = start_plan(LINE, state_from_dict(other), seed)
        assert before != after
        for index, name in enumerate(names):
            if name != changed_station:
                assert after.machines[index] == before.machines[index], name
                assert after.buffers[index] == before.buffers[index], name


def test_within_a_station_one_machine_leaves_the_other_machines_draws_alone() -> None:
    other = copy.deepcopy(BUSY)
    other["stations"]["pack"]["machines"][1] = working(9.0)
    before = start_plan(LINE, state_from_dict(BUSY), 5)
    after = start_plan(LINE, state_from_dict(other), 5)
    assert after.machines[2][0] == before.machines[2][0]
    assert after.machines[2][1] != before.machines[2][1]

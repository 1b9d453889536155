"""Calibration recovers the parameters of a simulated line from its recorded history.

Tolerances come from the sample sizes: 3.29 standard errors (99.9 %) of each estimate.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from twin.calibration.estimate import Limits, calibrate_line
from twin.calibration.records import Recorder
from twin.engine import LineModel
from twin.line import line_from_dict

TRUE_LINE: dict[str, Any] = {
    "name": "pilot",
    "products": [{"name": "A", "mix": 0.6}, {"name": "B", "mix": 0.4}],
    "stations": [
        {
            "name": "mill",
            "cycle_time": {
                "A": {"dist": "lognormal", "mean": 50, "cv": 0.3},
                "B": {"dist": "gamma", "mean": 65, "cv": 0.4},
            },
            "failures": {"mtbf": "40min", "mttr": "4min"},
            "setup": {"dist": "exponential", "mean": 30},
            "scrap": 0.05,
        },
        {
            "name": "wash",
            "cycle_time": {"dist": "normal", "mean": 45, "sd": 5},
            "buffer": 3,
            "failures": {"mtbf": "1h", "mttr": "5min", "basis": "calendar"},
        },
        {"name": "test", "cycle_time": {"dist": "exponential", "mean": 40}, "buffer": 2, "scrap": 0.02},
    ],
}

PRIOR: dict[str, Any] = {
    **TRUE_LINE,
    "stations": [
        {
            **TRUE_LINE["stations"][0],
            "cycle_time": {"A": 80, "B": 80},
            "failures": {"mtbf": "3h", "mttr": "20min"},
            "setup": 100,
            "scrap": 0.2,
        },
        {
            **TRUE_LINE["stations"][1],
            "cycle_time": 30,
            "failures": {"mtbf": "5h", "mttr": "1min", "basis": "calendar"},
        },
        {**TRUE_LINE["stations"][2], "cycle_time": 10, "scrap": 0.0},
    ],
}


def record(line_data: dict[str, Any], hours: float, seed: int = 5) -> tuple[dict, float]:
    line = line_from_dict(line_data)
    recorder = Recorder([s.name for s in line.stations])
    model = LineModel(line, seed, observer=recorder)
    model.env.run(until=hours * 3600)
    return recorder.records, hours * 3600


def within(estimate: float, truth: float, standard_error: float) -> bool:
    return abs(estimate - truth) <= 3.29 * standard_error


@pytest.fixture(scope="module")
def calibrated() -> tuple[dict[str, Any], list]:
    records, window = record(TRUE_LINE, 60)
    return calibrate_line(PRIOR, records, window)


def test_cycle_times_are_recovered(calibrated: tuple[dict[str, Any], list]) -> None:
    line, results = calibrated
    mill = results[0]
    for product, true_mean, true_cv in (("A", 50, 0.3), ("B", 65, 0.4)):
        fit = mill.cycle_fits[product]
        assert within(fit.best.spec["mean"], true_mean, true_mean * true_cv / math.sqrt(fit.n))
    wash_fit = results[1].cycle_fits["*"]
    assert wash_fit.best.family == "normal"
    assert within(wash_fit.best.spec["mean"], 45, 5 / math.sqrt(wash_fit.n))
    line_from_dict(line)  # the calibrated line is a valid line


def test_breakdowns_are_recovered(calibrated: tuple[dict[str, Any], list]) -> None:
    _, results = calibrated
    for result, mtbf, mttr in ((results[0], 2400, 240), (results[1], 3600, 300)):
        n = result.failures_observed
        assert n >= 30
        assert within(result.mtbf_s, mtbf, mtbf / math.sqrt(n))
        repair_mean = result.repair_fit.best.spec["mean"]
        assert within(repair_mean, mttr, mttr / math.sqrt(result.repair_fit.n))


def test_setup_and_scrap_are_recovered(calibrated: tuple[dict[str, Any], list]) -> None:
    line, results = calibrated
    mill = results[0]
    assert within(mill.setup_fit.best.spec["mean"], 30, 30 / math.sqrt(mill.setup_fit.n))
    for result, rate in ((results[0], 0.05), (results[2], 0.02)):
        assert within(result.scrap_rate, rate, math.sqrt(rate * (1 - rate) / result.parts))
    assert line["stations"][0]["scrap"] == pytest.approx(results[0].scrap_rate)


def test_too_little_data_keeps_the_prior_and_warns() -> None:
    records, window = record(TRUE_LINE, 0.5)
    line, results = calibrate_line(PRIOR, records, window, Limits(cycle_samples=100))
    assert line["stations"][1]["cycle_time"] == 30
    assert line["stations"][1]["failures"] == PRIOR["stations"][1]["failures"]
    assert any("cycle times" in warning for warning in results[1].warnings)
    assert any("breakdowns" in warning for warning in results[1].warnings)


def test_validation_accepts_the_calibrated_twin_and_flags_a_slow_one(
    calibrated: tuple[dict[str, Any], list],
) -> None:
    from twin.calibration.validate import validate

    observed, window = record(TRUE_LINE, 24, seed=77)
    calibrated_line, _ = calibrated
    calibrated_line = {**calibrated_line, "warmup": "1h"}
    good = validate(line_from_dict(calibrated_line), observed, window, replications=8)
    assert good["verdict"] == "valid", good
    assert good["throughput"]["rel_error"] < 0.05
    slow = {**calibrated_line, "stations": [dict(s) for s in calibrated_line["stations"]]}
    slow["stations"][1]["cycle_time"] = {**slow["stations"][1]["cycle_time"]}
    slow["stations"][1]["cycle_time"]["mean"] *= 1.2  # the wash 20 % slower
    bad = validate(line_from_dict(slow), observed, window, replications=8)
    assert bad["verdict"] == "invalid"
    assert set(bad) >= {"throughput", "stations", "verdict", "tolerance"}
    assert set(bad["stations"]["wash"]) >= {"observed", "twin"}


PARALLEL_LINE: dict[str, Any] = {
    "name": "cell",
    "stations": [
        {"name": "feed", "cycle_time": {"dist": "gamma", "mean": 30, "cv": 0.3}},
        {
            "name": "assembly",
            "capacity": 2,
            "buffer": 4,
            "cycle_time": {"dist": "gamma", "mean": 50, "cv": 0.3},
            "failures": {"mtbf": "20min", "mttr": "3min"},
        },
        {"name": "pack", "cycle_time": {"dist": "gamma", "mean": 20, "cv": 0.2}, "buffer": 4},
    ],
}


def record_machines(line_data: dict[str, Any], hours: float, seed: int) -> tuple[dict, float]:
    line = line_from_dict(line_data)
    recorder = Recorder([s.name for s in line.stations], capacities=[s.capacity for s in line.stations])
    model = LineModel(line, seed, observer=recorder)
    model.env.run(until=hours * 3600)
    return recorder.records, hours * 3600


def test_parallel_machines_are_calibrated_from_each_machines_states() -> None:
    records, window = record_machines(PARALLEL_LINE, 40, seed=11)
    prior = {**PARALLEL_LINE, "stations": [dict(s) for s in PARALLEL_LINE["stations"]]}
    prior["stations"][1] = {**prior["stations"][1], "failures": {"mtbf": "2h", "mttr": "30s"}}
    _, results = calibrate_line(prior, records, window)
    assembly = results[1]
    n = assembly.failures_observed
    assert n >= 100  # two machines' breakdowns, each counted
    assert within(assembly.mtbf_s, 1200, 1200 / math.sqrt(n))
    assert within(assembly.repair_fit.best.spec["mean"], 180, 180 / math.sqrt(assembly.repair_fit.n))
    assert not any("aggregate" in warning for warning in assembly.warnings)
    # the station's shares are its machines' average, comparable with the twin's KPIs
    from twin.engine import simulate

    shares = records["assembly"].state_shares(window)
    assert math.isclose(sum(shares.values()), 1.0, rel_tol=1e-9)
    twin = simulate(line_from_dict(PARALLEL_LINE), seed=11, horizon=window).kpis["stations"]["assembly"]
    assert shares["working"] == pytest.approx(twin["working"], rel=1e-9)


def test_only_the_aggregate_state_of_parallel_machines_is_biased_and_says_so() -> None:
    records, window = record_machines(PARALLEL_LINE, 40, seed=11)
    aggregate = records["assembly"]
    # what a PLC showing only the station's most significant state would have recorded
    from simulations.hardware.states import station_state
    from twin.station import STATE_NAMES

    code = {name: index for index, name in enumerate(STATE_NAMES)}
    events = sorted(
        (t, k, code[state])
        for k, machine in enumerate(aggregate.machines)
        for t, state in zip(machine.state_times, machine.states, strict=True)
    )
    current = [0] * len(aggregate.machines)
    times, states = [], []
    for t, k, state in events:
        current[k] = state
        times.append(t)
        states.append(STATE_NAMES[station_state(current)])
    aggregate.state_times, aggregate.states, aggregate.machines = times, states, []
    _, results = calibrate_line(PARALLEL_LINE, records, window)
    assembly = results[1]
    assert any("aggregate" in warning for warning in assembly.warnings)
    # the aggregate shows `down` only while no machine works: a breakdown is hidden while the other
    # machine works, so the repairs seen are the tails of the real ones, far too short
    repair = assembly.repair_fit
    assert not within(repair.best.spec["mean"], 180, 180 / math.sqrt(repair.n))
    assert repair.best.spec["mean"] < 180


ARRIVALS_LINE: dict[str, Any] = {
    "name": "orders",
    "release": {"interarrival": {"dist": "gamma", "mean": 60, "cv": 0.5}},
    "stations": [
        {"name": "cut", "cycle_time": {"dist": "exponential", "mean": 40}, "buffer": 5},
        {"name": "pack", "cycle_time": {"dist": "exponential", "mean": 30}, "buffer": 3},
    ],
}


def test_the_release_of_an_interarrival_line_is_calibrated_from_its_counted_orders() -> None:
    records, window = record(ARRIVALS_LINE, 40)
    prior = {**ARRIVALS_LINE, "release": {"interarrival": {"dist": "exponential", "mean": 200}}}
    line, results = calibrate_line(prior, records, window)
    fit = results[0].release_fit
    assert fit is not None and fit.n > 2000
    assert within(fit.mean, 60, 60 * 0.5 / math.sqrt(fit.n))
    assert fit.best.family == "gamma"  # the family the orders came from, chosen by AIC
    assert line["release"]["interarrival"]["dist"] == "gamma"
    assert line_from_dict(line).release.interarrival.mean == pytest.approx(fit.mean, rel=0.02)


def test_too_few_counted_orders_keep_the_prior_release() -> None:
    records, window = record(ARRIVALS_LINE, 0.3)
    prior = {**ARRIVALS_LINE, "release": {"interarrival": 200}}
    line, results = calibrate_line(prior, records, window)
    assert line["release"] == {"interarrival": 200}
    assert any("release" in warning for warning in results[0].warnings)

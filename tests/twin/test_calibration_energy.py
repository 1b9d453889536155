"""Calibration recovers each station's power per state from its energy readings (issue 18).

The meter's readings are made from a SimPy run's recorded states with known kW per power group, so
the truth is known: noise-free readings must give it back to rounding; with noise, each power must
lie within its interval, and over many noise draws the 95 % intervals must hold it about 95 % of the
time (the least-squares interval is exact for independent normal errors).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from twin.calibration.energy import GROUP_OF, GROUPS, GroupClock, fit_power
from twin.calibration.estimate import Limits, calibrate_line
from twin.calibration.records import Recorder, StationRecord
from twin.engine import LineModel
from twin.line import line_from_dict

TRUE_POWER = {
    "saw": {"working": 7.5, "idle": 1.3, "down": 0.4, "setup": 2.4},
    "mill": {"working": 11.0, "idle": 2.2, "down": 0.6, "setup": 3.1, "off": 0.15},
}
LINE: dict[str, Any] = {
    "name": "cell",
    "products": [{"name": "A", "mix": 0.5}, {"name": "B", "mix": 0.5}],
    "stations": [
        {
            "name": "saw",
            "cycle_time": {"dist": "gamma", "mean": 42, "cv": 0.4},
            "failures": {"mtbf": "40min", "mttr": "3min"},
            "setup": {"dist": "exponential", "mean": 25},
            "power": TRUE_POWER["saw"],
        },
        {
            "name": "mill",
            "cycle_time": {"dist": "gamma", "mean": 30, "cv": 0.5},
            "buffer": 2,
            "failures": {"mtbf": "1h", "mttr": "5min"},
            "switch_off": {"after": 90, "restart": 30},
            "power": TRUE_POWER["mill"],
        },
    ],
}
PRIOR: dict[str, Any] = {
    **LINE,
    "stations": [{k: v for k, v in s.items() if k != "power"} for s in LINE["stations"]],
}
HOURS = 24.0
EVERY = 240.0  # a meter reading every 4 minutes of line time


def record(line_data: dict[str, Any], hours: float, seed: int = 7) -> dict[str, StationRecord]:
    line = line_from_dict(line_data)
    recorder = Recorder([s.name for s in line.stations], capacities=[s.capacity for s in line.stations])
    model = LineModel(line, seed, observer=recorder)
    model.env.run(until=hours * 3600)
    return recorder.records


def meter(record: StationRecord, power: dict[str, float], times: np.ndarray, window: float) -> np.ndarray:
    """A noise-free meter: the kWh the station used from its first state to each reading."""
    kw = np.array([power.get(group, 0.0) for group in GROUPS])
    return GroupClock(record.state_histories(), window).hours(times) @ kw


@pytest.fixture(scope="module")
def records() -> dict[str, StationRecord]:
    return record(LINE, HOURS)


def with_meter(
    records: dict[str, StationRecord], noise: float = 0.0, seed: int = 1
) -> dict[str, StationRecord]:
    """The records with each station's meter read every EVERY seconds (reading noise: none, or normal
    per increment with sd `noise` kWh)."""
    window = HOURS * 3600
    rng = np.random.default_rng(seed)
    out = {}
    for name, rec in records.items():
        times = np.arange(0.0, window + 1e-9, EVERY)
        readings = meter(rec, TRUE_POWER[name], times, window)
        readings = readings + np.concatenate([[0.0], np.cumsum(rng.normal(0.0, noise, len(times) - 1))])
        copy = StationRecord(**{**rec.__dict__})
        copy.energy_times, copy.energy_kwh = times.tolist(), (readings + 1234.5).tolist()
        out[name] = copy
    return out


def test_the_power_groups_are_the_line_models() -> None:
    """Idle is starved and blocked; down is under repair, waiting, maintenance and stopped; off is
    switched off and planned stops (twin.line.Power.by_state, asked, not repeated)."""
    assert GROUPS == ("working", "idle", "down", "setup", "off")
    assert {state for state, group in GROUP_OF.items() if group == "idle"} == {"starved", "blocked"}
    assert {state for state, group in GROUP_OF.items() if group == "down"} == {
        "down",
        "stopped",
        "waiting_repair",
        "maintenance",
    }
    assert {state for state, group in GROUP_OF.items() if group == "off"} == {"off", "planned_stop"}


def test_the_group_clock_adds_up_the_states() -> None:
    history = StationRecord(
        "m", state_times=[0, 10, 25, 30, 50], states=["starved", "working", "off", "setup", "working"]
    )
    hours = GroupClock([history], 60.0).hours(np.array([0.0, 5.0, 27.0, 60.0])) * 3600
    expected = [[0, 0, 0, 0, 0], [0, 5, 0, 0, 0], [15, 10, 0, 0, 2], [25, 10, 0, 20, 5]]
    np.testing.assert_allclose(hours, expected, atol=1e-12)


def test_noise_free_readings_give_the_true_power(records: dict[str, StationRecord]) -> None:
    metered = with_meter(records)
    for name, rec in metered.items():
        estimate = fit_power(rec, HOURS * 3600)
        assert estimate is not None and estimate.basis == "energy"
        assert set(estimate.kw) == set(TRUE_POWER[name])  # the saw never went off: no `off` estimated
        for group, kw in TRUE_POWER[name].items():
            assert estimate.kw[group] == pytest.approx(kw, rel=1e-9)
            assert estimate.se[group] < 1e-9
    line, results = calibrate_line(PRIOR, metered, HOURS * 3600)
    for station, result in zip(line["stations"], results, strict=True):
        assert station["power"] == pytest.approx(TRUE_POWER[station["name"]], rel=1e-9)
        assert result.summary()["power"]["basis"] == "energy"
    line_from_dict(line)


def test_noisy_readings_give_the_power_within_its_interval(records: dict[str, StationRecord]) -> None:
    """Each increment off by 0.05 kWh (sd; a 4-minute increment of the saw at work is 0.5 kWh): every
    estimate within 3.29 standard errors (99.9 %), and over 400 draws each 95 % interval holds the
    truth 92-98 % of the time (binomial sd 1.1 %)."""
    window = HOURS * 3600
    estimate = fit_power(with_meter(records, noise=0.05)["mill"], window)
    assert estimate is not None
    for group, kw in TRUE_POWER["mill"].items():
        assert abs(estimate.kw[group] - kw) <= 3.29 * estimate.se[group]
    held = {name: dict.fromkeys(power, 0) for name, power in TRUE_POWER.items()}
    draws = 400
    for seed in range(draws):
        for name, rec in with_meter(records, noise=0.05, seed=100 + seed).items():
            fitted = fit_power(rec, window)
            assert fitted is not None
            for group, kw in TRUE_POWER[name].items():
                low, high = fitted.ci95(group)
                held[name][group] += low <= kw <= high
    for name, counts in held.items():
        for group, count in counts.items():
            assert 0.92 <= count / draws <= 0.98, (name, group, count)


def test_power_samples_give_the_power_within_its_interval(records: dict[str, StationRecord]) -> None:
    """Without a meter, the PLC's `Power` samples (every 60 s, noise 0.12 kW as the hardware's) are
    regressed on the machines in each group at each sample: the group means, each within 3.29
    standard errors (99.9 %), their standard errors those of a mean, and over 400 noise draws the
    95 % intervals hold the truth 92-98 % of the time."""
    window = HOURS * 3600
    rec = StationRecord(**{**records["mill"].__dict__})
    times = np.arange(30.0, window, 60.0)
    counts = GroupClock(rec.state_histories(), window).counts(times)
    kw = np.array([TRUE_POWER["mill"].get(group, 0.0) for group in GROUPS])
    rec.power_times = times.tolist()
    held = dict.fromkeys(TRUE_POWER["mill"], 0)
    draws = 400
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        rec.power_kw = (counts @ kw + rng.normal(0, 0.12, len(times))).tolist()
        estimate = fit_power(rec, window)
        assert estimate is not None and estimate.basis == "Power" and estimate.n == len(times)
        for group, true in TRUE_POWER["mill"].items():
            low, high = estimate.ci95(group)
            held[group] += low <= true <= high
            if seed == 0:
                assert abs(estimate.kw[group] - true) <= 3.29 * estimate.se[group]
                samples = (counts[:, GROUPS.index(group)] > 0).sum()
                assert estimate.se[group] == pytest.approx(0.12 / np.sqrt(samples), rel=0.1)
    for group, count in held.items():
        assert 0.92 <= count / draws <= 0.98, (group, count)


def test_parallel_machines_sum_their_power() -> None:
    """A station of two machines: the meter reads both, and each machine's states weigh in."""
    data = {
        "name": "pair",
        "stations": [
            {"name": "feed", "cycle_time": 20},
            {
                "name": "oven",
                "capacity": 2,
                "cycle_time": {"dist": "exponential", "mean": 45},
                "failures": {"mtbf": "30min", "mttr": "4min"},
                "power": {"working": 20.0, "idle": 4.0, "down": 1.0},
            },
        ],
    }
    recs = record(data, 10)
    oven = recs["oven"]
    assert len(oven.machines) == 2
    window = 10 * 3600.0
    times = np.arange(0.0, window + 1, 300.0)
    oven.energy_times = times.tolist()
    oven.energy_kwh = sum(
        meter(m, data["stations"][1]["power"], times, window) for m in oven.machines
    ).tolist()
    estimate = fit_power(oven, window, capacity=2)
    assert estimate is not None
    assert estimate.kw == pytest.approx({"working": 20.0, "idle": 4.0, "down": 1.0}, rel=1e-9)


def test_uncertain_and_missing_groups_keep_the_prior(records: dict[str, StationRecord]) -> None:
    """Too few readings keep the prior power; a group never seen keeps the prior's value; a meter that
    went back (a PLC restart) loses that increment only."""
    window = HOURS * 3600
    metered = with_meter(records)
    saw = metered["saw"]
    saw.energy_kwh = [
        value - (1000.0 if t > window / 2 else 0.0)
        for t, value in zip(saw.energy_times, saw.energy_kwh, strict=True)
    ]
    prior = {
        **PRIOR,
        "stations": [{**PRIOR["stations"][0], "power": {"working": 1.0, "off": 0.05}}, PRIOR["stations"][1]],
    }
    line, results = calibrate_line(prior, metered, window)
    assert line["stations"][0]["power"] == pytest.approx({**TRUE_POWER["saw"], "off": 0.05}, rel=1e-9)
    assert any("went back 1 times" in warning for warning in results[0].warnings)
    short = {name: StationRecord(**{**rec.__dict__}) for name, rec in metered.items()}
    for rec in short.values():
        rec.energy_times, rec.energy_kwh = rec.energy_times[:5], rec.energy_kwh[:5]
    line, results = calibrate_line(prior, short, window, Limits(energy_readings=10))
    assert line["stations"][0]["power"] == {"working": 1.0, "off": 0.05}
    assert "power" not in line["stations"][1]
    assert any("only 4 energy readings" in warning for warning in results[1].warnings)

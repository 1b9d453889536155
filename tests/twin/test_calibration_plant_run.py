"""Calibration and validation of a plant's counts on an engine run (issue 18).

A line with a repair crew, preventive maintenance by operating time and by parts, a switch-off
and power per state is run on the SimPy engine for 200 h and recorded with its meters. Calibrated
from a prior that knows the crew but none of the rest, the policies come back exactly (they are
constant in their own measure), the drawn durations within 3.29 standard errors of their means,
the set-ups without the restarts, the kW to rounding; the calibrated twin is valid on the new shares
and on energy per good part.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

from twin.calibration.energy import GROUPS, GroupClock
from twin.calibration.estimate import calibrate_line
from twin.calibration.records import Recorder, StationRecord
from twin.calibration.validate import validate
from twin.engine import LineModel
from twin.line import line_from_dict

LINE: dict[str, Any] = {
    "name": "plant",
    "seed": 4,
    "warmup": "1h",
    "repair": {"technicians": 1},
    "products": [{"name": "A", "mix": 0.5}, {"name": "B", "mix": 0.5}],
    "stations": [
        {
            "name": "press",
            "cycle_time": {"dist": "gamma", "mean": 40, "cv": 0.3},
            "failures": {"ttf": {"dist": "weibull", "shape": 2.5, "mean": "3h"}, "mttr": "5min"},
            "maintenance": {"every": "1h", "duration": {"dist": "lognormal", "mean": 600, "cv": 0.2}},
            "power": {"working": 12.0, "idle": 2.0, "down": 0.5},
        },
        {
            "name": "trim",
            "cycle_time": {"dist": "gamma", "mean": 30, "cv": 0.5},
            "buffer": 2,
            "setup": {"dist": "exponential", "mean": 20},
            "maintenance": {"parts": 150, "duration": 300},
            "switch_off": {"after": 60, "restart": {"dist": "uniform", "low": 20, "high": 40}},
            "failures": {"mtbf": "2h", "mttr": "5min"},
            "power": {"working": 5.0, "idle": 1.2, "down": 0.3, "setup": 2.0, "off": 0.1},
        },
    ],
}
HOURS = 200.0
LEARNED = ("maintenance", "switch_off", "power")


def within(estimate: float, truth: float, sd: float, n: int) -> bool:
    return abs(estimate - truth) <= 3.29 * sd / math.sqrt(n)


@pytest.fixture(scope="module")
def recorded() -> tuple[dict[str, StationRecord], float]:
    line = line_from_dict(LINE)
    recorder = Recorder([s.name for s in line.stations])
    LineModel(line, 3, observer=recorder).env.run(until=HOURS * 3600)
    window = HOURS * 3600
    times = np.arange(0.0, window + 1e-9, 300.0)
    for station in line.stations:
        record = recorder.records[station.name]
        kw = np.array([getattr(station.power, group) for group in GROUPS])
        record.energy_times = times.tolist()
        record.energy_kwh = (GroupClock([record], window).hours(times) @ kw).tolist()
    return recorder.records, window


@pytest.fixture(scope="module")
def calibrated(recorded: tuple[dict[str, StationRecord], float]) -> tuple[dict[str, Any], list]:
    records, window = recorded
    prior = copy.deepcopy(LINE)
    for station in prior["stations"]:
        for key in LEARNED:
            station.pop(key, None)
    return calibrate_line(prior, records, window)


def test_the_policies_come_back(calibrated: tuple[dict[str, Any], list]) -> None:
    line, results = calibrated
    press, trim = line["stations"]
    assert press["maintenance"]["every"] == pytest.approx(3600.0, rel=1e-9)
    fit = results[0].maintenance.duration_fit
    assert fit.best.family == "lognormal" and within(fit.mean, 600, 120, fit.n)
    assert trim["maintenance"] == {"parts": 150, "duration": {"dist": "constant", "value": 300.0}}
    assert trim["switch_off"]["after"] == pytest.approx(60.0, rel=1e-9)
    restart = results[1].restart_fit
    assert within(restart.mean, 30.0, 20 / math.sqrt(12), restart.n) and restart.n >= 30
    setup = results[1].setup_fit
    assert within(setup.mean, 20.0, 20.0, setup.n)  # the restarts (30 s) did not pollute it
    for station in line["stations"]:
        truth = next(s for s in LINE["stations"] if s["name"] == station["name"])["power"]
        assert station["power"] == pytest.approx(truth, rel=1e-9)
    assert line["repair"] == {"technicians": 1}
    line_from_dict(line)


def test_the_calibrated_twin_is_valid_on_the_plants_counts(
    calibrated: tuple[dict[str, Any], list], recorded: tuple[dict[str, StationRecord], float]
) -> None:
    line, _ = calibrated
    records, window = recorded
    result = validate(line_from_dict(line), records, window, replications=8)
    checks = result["checks"]
    for name in (
        "press.maintenance",
        "trim.maintenance",
        "trim.off",
        "press.energy_per_good_part",
        "energy_per_good_part",
    ):
        assert name in checks
    assert result["verdict"] == "valid", {k: v for k, v in checks.items() if not v["ok"]}

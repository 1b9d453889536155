"""Validation compares energy per good part and the new state shares (issue 18).

A line with a repair crew and known power is recorded with its meters; calibrated from a prior that
knows the crew but not the power, the twin is valid, with energy per good part at every station and
for the line within the tolerance; a twin whose machines draw 30 % more at work is flagged on energy
per part, and one with a second technician on the wait for repair.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from twin.calibration.energy import GROUPS, GroupClock, observed_energy
from twin.calibration.estimate import calibrate_line
from twin.calibration.records import Recorder, StationRecord
from twin.calibration.validate import validate
from twin.engine import LineModel
from twin.line import line_from_dict

POWER = {
    "cut": {"working": 6.0, "idle": 1.0, "down": 0.3},
    "weld": {"working": 9.0, "idle": 1.5, "down": 0.5},
    "pack": {"working": 3.0, "idle": 0.5, "down": 0.2},
}
LINE: dict[str, Any] = {
    "name": "crewed",
    "seed": 2,
    "warmup": "1h",
    "repair": {"technicians": 1},
    "stations": [
        {
            "name": "cut",
            "cycle_time": {"dist": "gamma", "mean": 40, "cv": 0.3},
            "failures": {"mtbf": "30min", "mttr": "6min"},
            "power": POWER["cut"],
        },
        {
            "name": "weld",
            "cycle_time": {"dist": "gamma", "mean": 45, "cv": 0.3},
            "buffer": 4,
            "failures": {"mtbf": "40min", "mttr": "6min"},
            "power": POWER["weld"],
        },
        {
            "name": "pack",
            "cycle_time": {"dist": "gamma", "mean": 35, "cv": 0.3},
            "buffer": 4,
            "failures": {"mtbf": "30min", "mttr": "6min"},
            "power": POWER["pack"],
        },
    ],
}
HOURS = 40.0


def metered(
    line_data: dict[str, Any], hours: float, seed: int, every: float = 120.0
) -> dict[str, StationRecord]:
    """A recorded run with each station's meter read every `every` seconds (noise-free)."""
    line = line_from_dict(line_data)
    recorder = Recorder([s.name for s in line.stations])
    model = LineModel(line, seed, observer=recorder)
    window = hours * 3600
    model.env.run(until=window)
    times = np.arange(0.0, window + 1e-9, every)
    for station in line.stations:
        record = recorder.records[station.name]
        kw = np.array([getattr(station.power, group) for group in GROUPS])
        record.energy_times = times.tolist()
        record.energy_kwh = (GroupClock([record], window).hours(times) @ kw).tolist()
    return recorder.records


@pytest.fixture(scope="module")
def calibrated() -> tuple[dict[str, Any], dict[str, StationRecord]]:
    records = metered(LINE, HOURS, seed=9)
    prior = copy.deepcopy(LINE)
    for station in prior["stations"]:
        del station["power"]
    line, _ = calibrate_line(prior, records, HOURS * 3600)
    return line, records


def test_observed_energy_is_the_meters_growth() -> None:
    record = StationRecord("m", energy_times=[10.0, 20.0, 30.0, 40.0], energy_kwh=[100.0, 101.0, 2.0, 3.0])
    # a restart between 20 and 30: the two other increments cover 20 s with 2 kWh: 5 kWh over 50 s
    assert observed_energy(record, 50.0) == (pytest.approx(5.0), "energy")
    samples = StationRecord("m", power_times=[5.0, 15.0, 25.0, 60.0], power_kw=[4.0, 6.0, 5.0, 100.0])
    assert observed_energy(samples, 50.0) == (pytest.approx(5.0 * 50 / 3600), "Power")  # the last is later
    assert observed_energy(StationRecord("m"), 10.0) is None


def test_the_calibrated_twin_is_valid_on_energy_and_waiting(
    calibrated: tuple[dict[str, Any], dict[str, StationRecord]],
) -> None:
    data, records = calibrated
    for station in data["stations"]:
        assert station["power"] == pytest.approx(POWER[station["name"]], rel=1e-9)
    assert data["repair"] == {"technicians": 1}
    result = validate(line_from_dict(data), records, HOURS * 3600, replications=10)
    checks = result["checks"]
    assert result["verdict"] == "valid", {k: v for k, v in checks.items() if not v["ok"]}
    for name in POWER:
        assert f"{name}.energy_per_good_part" in checks
        assert f"{name}.waiting_repair" in checks
        assert result["stations"][name]["energy"]["basis"] == "energy"
    assert "energy_per_good_part" in checks
    assert result["energy"]["rel_error"] < 0.05
    # the line's energy per good part is the stations' energy over the parts that left
    observed = sum(result["stations"][name]["energy"]["observed_kwh"] for name in POWER)
    exits = sum(1 for scrapped in records["pack"].scrapped if not scrapped)
    assert result["energy"]["observed_per_good_part_kwh"] == pytest.approx(observed / exits)


def test_a_hungrier_twin_and_a_larger_crew_are_flagged(
    calibrated: tuple[dict[str, Any], dict[str, StationRecord]],
) -> None:
    data, records = calibrated
    hungry = copy.deepcopy(data)
    hungry["stations"][1]["power"]["working"] *= 1.3
    result = validate(line_from_dict(hungry), records, HOURS * 3600, replications=10)
    assert result["verdict"] == "invalid"
    assert not result["checks"]["weld.energy_per_good_part"]["ok"]
    assert not result["checks"]["energy_per_good_part"]["ok"]
    assert result["checks"]["cut.energy_per_good_part"]["ok"]
    crew = copy.deepcopy(data)
    crew["repair"] = {"technicians": 3}
    result = validate(line_from_dict(crew), records, HOURS * 3600, replications=10)
    waiting = [
        name
        for name, check in result["checks"].items()
        if name.endswith(".waiting_repair") and not check["ok"]
    ]
    assert result["verdict"] == "invalid" and waiting

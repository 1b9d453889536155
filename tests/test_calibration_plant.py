"""The plant's counts from the historian to the calibrated file (issue 18).

`load_records` reads each station's energy meter (the `sensor` measurement, `sensor=energy`) and its
`Power` samples (the `machine` measurement) onto the line's time base; `write_calibration` writes
`power:`, `maintenance:` and `switch_off:` and names them in the file's header.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from twin.calibration.records import StationRecord
from twin.line import load_line
from twinloop.calibration import write_calibration
from twinloop.history import load_records

LINE = {"name": "L1", "stations": [{"name": "press", "cycle_time": 30}]}


def test_the_meter_and_the_power_signal_are_read_on_the_lines_time(tmp_path: Path) -> None:
    origin = pd.Timestamp("2026-03-02T06:00:00Z")
    at = lambda seconds: origin + pd.Timedelta(seconds=seconds)  # noqa: E731
    machine = pd.DataFrame(
        [
            {"time": at(0), "line": "L1", "station": "press", "State": 0},
            {"time": at(5), "line": "L1", "station": "press", "Power": 7.5},
            {"time": at(6), "line": "L1", "station": "press", "State": 2},
            {"time": at(7), "line": "L1", "station": "press", "Power": 1.2},
        ]
    )
    sensor = pd.DataFrame(
        [
            {"time": at(t), "line": "L1", "station": "press", "sensor": name, "unit": "kWh", "value": value}
            for t, name, value in ((2, "energy", 10.0), (4, "vibration", 3.3), (8, "energy", 10.5))
        ]
        + [
            {
                "time": at(9),
                "line": "L2",
                "station": "press",
                "sensor": "energy",
                "unit": "kWh",
                "value": 99.0,
            }
        ]
    )
    frames = {"machine": machine, "sensor": sensor}
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump(LINE))
    line = load_line(path)
    records, window, speed, _, _ = load_records(
        lambda measurement, lo, hi: frames.get(measurement, pd.DataFrame()),
        line,
        origin.to_pydatetime(),
        at(10).to_pydatetime(),
        60.0,
    )
    press = records["press"]
    assert window == 600.0 and speed == 60.0
    assert press.energy_times == [120.0, 480.0] and press.energy_kwh == [10.0, 10.5]
    assert press.power_times == [300.0, 420.0] and press.power_kw == [7.5, 1.2]
    # a source without sensors, or a machine measurement without Power, leaves them empty
    records, *_ = load_records(
        lambda measurement, lo, hi: (
            machine.drop(columns="Power") if measurement == "machine" else pd.DataFrame()
        ),
        line,
        origin.to_pydatetime(),
        at(10).to_pydatetime(),
        1.0,
    )
    assert records["press"].energy_kwh == [] and records["press"].power_kw == []


def test_the_calibrated_file_holds_power_maintenance_and_switch_off(tmp_path: Path) -> None:
    """A press that works 100 s at 8 kW, starves 60 s at 1 kW, is off 200 s at 0.1 kW and restarts
    for 20 s at 3 kW, serviced (0.5 kW) for 50 s after every 5th cycle."""
    steps, t, readings, kwh = [], 0.0, [], 0.0
    for cycle in range(40):
        for state, seconds, kw in (
            ("working", 100, 8.0),
            ("starved", 60, 1.0),
            ("off", 200, 0.1),
            ("setup", 20, 3.0),
        ):
            steps.append((state, t))
            readings.append((t, kwh))
            t, kwh = t + seconds, kwh + kw * seconds / 3600
        if cycle % 5 == 4:
            steps.append(("working", t))
            readings.append((t, kwh))
            t, kwh = t + 100, kwh + 8.0 * 100 / 3600
            steps.append(("maintenance", t))
            readings.append((t, kwh))
            t, kwh = t + 50, kwh + 0.5 * 50 / 3600
    steps.append(("working", t))
    readings.append((t, kwh))
    window = t + 10
    record = StationRecord(
        "press",
        state_times=[s for _, s in steps],
        states=[state for state, _ in steps],
        energy_times=[s for s, _ in readings],
        energy_kwh=[value for _, value in readings],
    )
    out = tmp_path / "calibrated.yaml"
    start = datetime(2026, 3, 2, 6, tzinfo=UTC)
    _, report = write_calibration(LINE, {"press": record}, window, out, "test", start, start, 1.0)
    station = load_line(out).stations[0]
    assert station.power is not None
    assert station.power.model_dump() == pytest.approx(
        {"working": 8.0, "idle": 1.0, "down": 0.5, "setup": 3.0, "off": 0.1}
    )
    assert station.maintenance is not None and station.maintenance.every == pytest.approx(600.0)
    assert station.switch_off is not None and station.switch_off.after == pytest.approx(60.0)
    header = out.read_text()
    assert "#   power kW (95 %): working 8" in header
    assert "#   maintenance: 8 services, every 0.167 h of work, constant mean 50s" in header
    assert "#   switch-off: 40 offs after 60s idle; restart constant mean 20.0s" in header
    assert '"switch_off"' in report.read_text()

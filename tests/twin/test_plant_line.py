"""The shipped plant (simulations/lines/plant.yaml, issue 18) is what its header says, and runs.

`fabbrica twin run --json` on it prints a record whose calendar, energy and state shares add up:
the week from Monday 06:00 holds 5 × 14.5 planned hours, the first of them the warm-up.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_fabbrica
from twin.distributions import Weibull
from twin.event import event_obstacle
from twin.flow import flow_obstacle
from twin.line import load_line

PLANT = ROOT / "simulations" / "lines" / "plant.yaml"
SHARES = ("working", "blocked", "starved", "off", "down", "waiting_repair", "setup", "maintenance")
GROUP = {"blocked": "idle", "starved": "idle", "waiting_repair": "down", "maintenance": "down"}


def test_the_plant_has_shifts_a_crew_wear_out_service_power_and_switch_off() -> None:
    line = load_line(PLANT)
    assert line.calendar is not None and line.calendar.timezone == "Europe/Rome"
    assert [shift.days for shift in line.calendar.shifts] == [[0, 1, 2, 3, 4]] * 2
    assert len(line.calendar.breaks) == 4
    assert line.repair is not None and line.repair.technicians == 1
    lathe = line.station("lathe")
    assert lathe.failures is not None and isinstance(lathe.failures.ttf, Weibull)
    assert lathe.failures.ttf.shape > 1  # wears out: preventive maintenance can pay
    assert lathe.maintenance is not None and lathe.maintenance.every == 90 * 60
    assert all(station.power is not None for station in line.stations)
    assert [station.name for station in line.stations if station.switch_off is not None] == ["wash"]
    assert flow_obstacle(line) is not None  # the crew, the service and the switch-off: not flow
    assert event_obstacle(line) is None  # but the compiled event engine


@pytest.fixture(scope="module")
def record() -> dict:
    done = run_fabbrica("twin", "run", str(PLANT), "--json", timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_plant_runs_a_week_on_its_calendar(record: dict) -> None:
    line = load_line(PLANT)
    period = 7 * 24 * 3600.0 - 3600.0  # a week after the warm-up's hour
    planned = 5 * 14.5 * 3600.0 - 3600.0
    assert record["engine"] == "event"  # maintenance, switch-off, a crew: the compiled event engine
    assert record["planned_share"] == pytest.approx(planned / period, rel=1e-12)
    assert record["throughput_per_planned_hour"] == pytest.approx(record["parts_out"] / planned * 3600.0)
    assert record["energy_kwh"] == pytest.approx(sum(s["energy_kwh"] for s in record["stations"].values()))
    assert record["energy_per_good_part_kwh"] == pytest.approx(record["energy_kwh"] / record["parts_out"])
    assert record["energy_per_planned_hour_kwh"] == pytest.approx(record["energy_kwh"] / planned * 3600.0)
    for station in line.stations:
        values = record["stations"][station.name]
        assert values["planned_stop"] == pytest.approx(1.0 - record["planned_share"])
        assert sum(values[key] for key in SHARES) + values["planned_stop"] == pytest.approx(1.0)
        power = station.power
        assert power is not None
        kw = sum(getattr(power, GROUP.get(key, key)) * values[key] for key in SHARES)
        kw += power.off * values["planned_stop"]
        assert values["energy_kwh"] == pytest.approx(kw * station.capacity * period / 3600.0)
    stations = record["stations"]
    assert stations["lathe"]["services"] > 0 and stations["lathe"]["maintenance"] > 0
    assert stations["wash"]["off"] > 0  # the washer switched off, and restarted (a set-up)
    assert stations["wash"]["setup"] > 0
    assert all(stations[name]["waiting_repair"] > 0 for name in ("mill", "wash", "assembly", "test"))
    assert record["bottleneck"] == "mill"

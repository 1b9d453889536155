"""The shift calendar: planned time by hand, across DST, and a line on it against the line without one.

Outside planned time the whole line stands still with its parts in place, so a run on the
calendar is the run over the planned time with the stops put back in: per planned hour it is
the same run. Both engines must give exactly the record of the line without a calendar over
the planned period, scaled by the planned share, and nothing may happen during a stop.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twin.calendar import ShiftCalendar
from twin.engine import LineModel
from twin.line import LineError, line_from_dict
from twin.run import run_line
from twin.state import LineState, MachineState, StationState

H = 3600.0
DAY = 24 * H

TWO_SHIFTS = {
    "start": "2026-12-07T00:00",  # a Monday
    "shifts": [
        {"name": "early", "days": "mon-fri", "start": "06:00", "end": "14:00"},
        {"name": "late", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "14:00", "end": "22:00"},
    ],
    "breaks": [{"start": "10:00", "end": "10:30"}, {"start": "18:00", "end": "18:30", "days": "mon-fri"}],
    "holidays": ["2026-12-08"],
}


def calendar(data: dict[str, Any]) -> ShiftCalendar:
    return ShiftCalendar.model_validate(data)


# -- planned time by hand ------------------------------------------------------------------------------
def test_a_week_of_two_shifts_with_breaks_and_a_holiday() -> None:
    clock = calendar(TWO_SHIFTS).clock()
    # Monday: 06:00-22:00 less two half-hour breaks = 15 h; Tuesday is a holiday
    assert clock.planned(DAY) == 15 * H
    assert clock.planned(2 * DAY) == 15 * H
    assert clock.planned(7 * DAY) == 4 * 15 * H  # four working days, nothing at the weekend
    assert list(clock.periods(0, DAY)) == [(6 * H, 10 * H), (10.5 * H, 18 * H), (18.5 * H, 22 * H)]
    assert clock.stops(0, DAY) == [(0.0, 6 * H), (4 * H, 0.5 * H), (11.5 * H, 0.5 * H), (15 * H, 2 * H)]
    # the map and its inverse: an event as a period ends happens before the stop
    assert clock.line_time(4 * H) == 10 * H and clock.line_time(4 * H + 1) == 10.5 * H + 1
    assert clock.line_time(15 * H + 1) == 2 * DAY + 6 * H + 1  # over the holiday to Wednesday
    assert clock.next_change(7 * H) == (10 * H, False) and clock.next_change(10 * H) == (10.5 * H, True)
    assert clock.is_planned(6 * H) and not clock.is_planned(10 * H) and not clock.is_planned(DAY + 8 * H)


@pytest.mark.parametrize("planned", np.linspace(0.0, 200 * H, 37)[1:])
def test_line_time_inverts_planned_time(planned: float) -> None:
    clock = calendar(TWO_SHIFTS).clock()
    instant = clock.line_time(planned)
    assert clock.planned(instant) == pytest.approx(planned, abs=1e-6)
    assert clock.planned(instant - 1.0) < planned  # the earliest such instant
    assert clock.line_times(np.array([planned]))[0] == instant


def test_a_night_shift_belongs_to_the_day_it_starts_and_follows_daylight_saving() -> None:
    night = {
        "timezone": "Europe/Rome",
        "start": "2026-03-27T00:00",  # Friday; clocks go forward in the night of Sunday 29 March
        "shifts": [{"days": "fri-sun", "start": "22:00", "end": "06:00"}],
    }
    clock = calendar(night).clock()
    lengths = [b - a for a, b in clock.periods(0, 4 * DAY)]
    assert lengths == [8 * H, 7 * H, 8 * H]  # Fri-Sat, Sat-Sun (one hour lost), Sun-Mon
    autumn = calendar({**night, "start": "2026-10-23T00:00"}).clock()  # back on 25 October
    assert [b - a for a, b in autumn.periods(0, 4 * DAY)] == [8 * H, 9 * H, 8 * H]
    # the origin of a run from a state is the state's instant
    assert calendar(night).clock(datetime(2026, 3, 27, 21, 0, tzinfo=UTC)).planned(H) == H


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {"shifts": [{"days": "mon-fry", "start": "06:00", "end": "14:00"}]},
            "calendar.shifts[0].days",
            "weekday",
        ),
        ({"shifts": [{"start": "6 am", "end": "14:00"}]}, "calendar.shifts[0].start", "HH:MM"),
        ({"timezone": "Mars/Olympus"}, "calendar.timezone", "unknown time zone"),
        ({"shifts": []}, "calendar.shifts", "at least 1"),
        ({"holidays": ["2026-13-01"]}, "calendar.holidays[0]", ""),
        (
            {"shifts": [{"days": "sat", "start": "06:00", "end": "14:00"}]},
            "calendar",
            "no planned production time",
        ),
    ],
)
def test_a_bad_calendar_is_one_line_naming_the_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    data = line_data({**TWO_SHIFTS, **change}, horizon=2 * DAY)
    with pytest.raises(LineError) as error:
        line_from_dict(data, "line.yaml")
    text = str(error.value)
    assert text.startswith(f"line.yaml: {field}: ") and message in text and "\n" not in text


def test_the_command_says_what_is_wrong_with_a_calendar_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "line.yaml"
    path.write_text(
        "stations: [{name: a, cycle_time: 10}]\n"
        "calendar: {shifts: [{days: [mon, funday], start: '06:00', end: '14:00'}]}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "fabbrica", "twin", "run", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {path}: calendar.shifts[0].days: unknown weekday 'funday' "
        "(use mon, tue, wed, thu, fri, sat, sun)"
    ]


# -- a line on the calendar ------------------------------------------------------------------------------
def line_data(calendar_data: dict[str, Any] | None, horizon: float, warmup: float = 0.0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "calendar",
        "horizon": horizon,
        "warmup": warmup,
        "release": {"interarrival": {"dist": "exponential", "mean": 70.0}},
        "stations": [
            {
                "name": "cut",
                "cycle_time": {"dist": "exponential", "mean": 50.0},
                "buffer": 4,
                "failures": {"mtbf": 4000.0, "mttr": 400.0},
                "power": {"working": 6.0, "idle": 1.5, "down": 0.4, "off": 0.2},
            },
            {
                "name": "weld",
                "cycle_time": {"dist": "lognormal", "mean": 45.0, "cv": 0.5},
                "buffer": 3,
                "power": {"working": 9.0, "idle": 2.0, "off": 0.5},
            },
        ],
    }
    if calendar_data is not None:
        data["calendar"] = calendar_data
    return data


STATES = ("working", "blocked", "starved", "down", "setup")


@pytest.mark.parametrize("engine", ["simpy", "flow"])
def test_per_planned_hour_the_line_on_the_calendar_is_the_line_without_one(engine: str) -> None:
    horizon, warmup = 3 * 7 * DAY, DAY + 7 * H  # three weeks; the warm-up ends inside Tuesday's early shift
    on = line_from_dict(line_data(TWO_SHIFTS, horizon, warmup))
    clock = on.calendar.clock()  # type: ignore[union-attr]
    planned, planned_warmup = clock.planned(horizon), clock.planned(warmup)
    off = line_from_dict(line_data(None, planned, planned_warmup))
    for seed in (1, 2):
        with_calendar = run_line(on, engine=engine, seed=seed).kpis
        without = run_line(off, engine=engine, seed=seed).kpis
        share = (planned - planned_warmup) / (horizon - warmup)
        assert with_calendar["planned_share"] == pytest.approx(share, rel=1e-12)
        assert with_calendar["parts_out"] == without["parts_out"]
        assert with_calendar["throughput_per_planned_hour"] == pytest.approx(
            without["throughput_per_hour"], rel=1e-12
        )
        assert with_calendar["throughput_per_hour"] == pytest.approx(
            share * without["throughput_per_hour"], rel=1e-12
        )
        for name in ("cut", "weld"):
            on_station, off_station = with_calendar["stations"][name], without["stations"][name]
            for state in STATES:
                assert on_station[state] / share == pytest.approx(off_station[state], rel=1e-9, abs=1e-15)
            assert on_station["planned_stop"] == pytest.approx(1 - share, rel=1e-12)
            for kpi in ("availability", "performance", "quality", "oee", "failures", "parts_out"):
                assert on_station[kpi] == pytest.approx(off_station[kpi], rel=1e-12), kpi
            # the off power during the stops comes on top of the energy of the planned time
            stops = (horizon - warmup) - (planned - planned_warmup)
            power_off = on.station(name).power.off  # type: ignore[union-attr]
            assert on_station["energy_kwh"] == pytest.approx(
                off_station["energy_kwh"] + power_off * stops / H, rel=1e-12
            )
        # a part that waits over a stop waits on the calendar: lead times only grow
        assert with_calendar["lead_time_mean_s"] >= without["lead_time_mean_s"]
        assert with_calendar["horizon_s"] == horizon and with_calendar["warmup_s"] == warmup


def test_nothing_happens_during_a_planned_stop() -> None:
    line = line_from_dict(line_data(TWO_SHIFTS, 2 * 7 * DAY))
    clock = line.calendar.clock()  # type: ignore[union-attr]
    for engine in ("simpy", "flow"):
        result = run_line(line, engine=engine, seed=5)
        exits = np.asarray(result.exit_times)
        assert len(exits) > 1000
        # every exit falls in a planned period (its end included: a part finishing as the shift ends)
        assert all(clock.is_planned(t) or clock.is_planned(t - 1e-6) for t in exits)
        for machines in result.active_periods.values():
            for periods in machines:
                for start, end in periods:
                    assert clock.planned(end) - clock.planned(start) == pytest.approx(end - start, abs=1e-6)


def test_the_line_stands_with_its_parts_in_place_over_a_stop() -> None:
    """WIP on the calendar: the parts in the line at each stop stay there for all of it, so the
    calendar's WIP area is the planned one plus, per stop, its parts times its length. The parts in
    the line are followed here, independently, on the plain line over the planned time."""
    line = line_from_dict(line_data(TWO_SHIFTS, 7 * DAY))
    clock = line.calendar.clock()  # type: ignore[union-attr]
    plain = line_from_dict(line_data(None, clock.planned(7 * DAY)))
    model = LineModel(plain, 3)
    changes: list[tuple[float, int]] = []
    for name in ("part_entered", "_part_left"):
        original = getattr(model, name)

        def logged(*args: Any, _original: Any = original) -> None:
            _original(*args)
            changes.append((model.env.now, model.wip))

        setattr(model, name, logged)
    model.env.run(until=plain.horizon)
    times = np.array([t for t, _ in changes])
    levels = np.array([w for _, w in changes])
    area = 0.0
    for (t0, w), t1 in zip(changes, [*times[1:], plain.horizon], strict=True):
        area += w * (t1 - t0)
    for instant, seconds in clock.stops(0.0, 7 * DAY):
        after = np.searchsorted(times, instant, side="right")  # everything at the instant has happened
        area += (levels[after - 1] if after else 0) * seconds
    for engine in ("simpy", "flow"):
        record = run_line(line, engine=engine, seed=3).kpis
        assert record["wip_mean"] == pytest.approx(area / (7 * DAY), rel=1e-9), engine


def test_a_run_from_a_state_starts_the_calendar_at_the_state_s_instant() -> None:
    line = line_from_dict(line_data(TWO_SHIFTS, 12 * H))
    state = LineState(
        format="fabbrica-state/1",
        time=datetime(2026, 12, 7, 20, 0, tzinfo=UTC),  # Monday 20:00: two hours of the late shift left
        stations={"cut": StationState(buffer=2, machines=[MachineState(state="working", product="default")])},
    )
    record = run_line(line, engine="simpy", seed=1, state=state).kpis
    assert record["planned_share"] == pytest.approx(2 / 12)  # 20:00-22:00; Tuesday is a holiday
    assert math.isfinite(record["throughput_per_planned_hour"])

"""Calibration of preventive maintenance and switch-off from the recorded states (issue 18).

Hand-made histories with the intervals worked out by hand check the estimators; a line whose policy
is known (a service every so much operating time, or every so many parts; a switch-off after an
idle time) is recorded and calibrated, and the policy comes back exactly, the durations within
3.29 standard errors of their means, and the set-ups without the restarts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from twin.calibration.energy import switch_off_events
from twin.calibration.estimate import Limits, calibrate_line, times_to_failure
from twin.calibration.maintenance import estimate_maintenance, service_intervals
from twin.calibration.records import StationRecord
from twin.line import line_from_dict


def history(*steps: tuple[str, float]) -> StationRecord:
    """A one-machine record from (state, start) steps."""
    return StationRecord("m", state_times=[t for _, t in steps], states=[s for s, _ in steps])


# every 180 s of operating time, serviced for 20-30 s; a repair at 400 renews the age too
SERVICED = [
    ("working", 0, 100),  # age unknown at the window's start
    ("maintenance", 100, 130),  # a duration, but no interval
    ("working", 130, 230),
    ("blocked", 230, 250),  # the operating clock stops
    ("working", 250, 330),
    ("maintenance", 330, 350),  # 180 s of work since 130
    ("working", 350, 400),
    ("down", 400, 420),  # a failure: renewed at 420
    ("working", 420, 600),
    ("maintenance", 600, 625),  # 180 s since 420
    ("working", 625, 700),
]
PART_TIMES = [50, 200, 300, 380, 450, 500, 590, 650]


def test_service_intervals_count_from_the_last_renewal() -> None:
    found = service_intervals(SERVICED, 700.0, PART_TIMES)
    assert found.services == 3
    assert found.operating == [180.0, 180.0]
    assert found.parts == [2, 3]  # parts finished in (130, 330] and (420, 600]
    assert found.durations == [30.0, 20.0, 25.0]
    # a service cut by the window's end: counted, no duration; the age after it unknown
    cut = service_intervals([*SERVICED[:-2], ("maintenance", 600, 700)], 700.0)
    assert cut.durations == [30.0, 20.0] and cut.operating == [180.0, 180.0] and cut.parts == []


def test_a_service_renews_the_failure_clock_and_censors_it() -> None:
    """The operating clock to the failure at 400 starts at the service's end (350): 50 s; the services
    cut the clocks started at 130 and 420 short (censored 180 s each), and the window's end one of 75."""
    complete, censored = times_to_failure(SERVICED, "operating", 700.0)
    assert complete == [50.0]
    assert censored == [180.0, 180.0, 75.0]
    # a crew: the failure starts the wait for a technician; the calendar clock stops while waiting
    waited = [("working", 0, 10), ("down", 10, 20), ("working", 20, 60), ("waiting_repair", 60, 80)]
    waited += [("down", 80, 90), ("starved", 90, 100), ("planned_stop", 100, 150), ("working", 150, 170)]
    assert times_to_failure(waited, "operating", 170.0) == ([40.0], [20.0])
    assert times_to_failure(waited, "calendar", 170.0) == ([40.0], [30.0])


def test_the_trigger_is_the_measure_that_does_not_vary() -> None:
    """Services every 300 s of work with parts of varying length: `every`; services every 5 parts:
    `parts`; a prior that names its trigger keeps it."""
    rng = np.random.default_rng(1)
    steps: list[tuple[str, float]] = []
    parts: list[float] = []
    t = 0.0
    for _ in range(8):  # by operating time: 300 s of work, parts of 40-80 s cut by the service
        steps += [("working", t)]
        parts += list(t + np.cumsum(rng.uniform(40, 80, 3)))
        t += 300.0
        steps += [("maintenance", t)]
        t += 20.0
    record = history(*steps, ("working", t))
    record.part_times = sorted(parts)
    by_time = estimate_maintenance(record, t + 10, None, 5)
    assert (by_time.trigger, by_time.value) == ("every", 300.0)
    assert by_time.duration_fit is not None and by_time.duration_fit.best.spec == {
        "dist": "constant",
        "value": 20.0,
    }
    steps, parts, t = [], [], 0.0
    for _ in range(8):  # by parts: 5 parts of 40-80 s, then the service
        steps += [("working", t)]
        ends = t + np.cumsum(rng.uniform(40, 80, 5))
        parts += list(ends)
        t = float(ends[-1])
        steps += [("maintenance", t)]
        t += 20.0
    record = history(*steps, ("working", t))
    record.part_times = parts
    by_parts = estimate_maintenance(record, t + 10, None, 5)
    assert (by_parts.trigger, by_parts.value) == ("parts", 5.0)
    assert estimate_maintenance(record, t + 10, "every", 5).trigger == "every"
    assert estimate_maintenance(record, t + 10, None, 8).trigger is None  # 7 intervals < 8


def test_switch_off_events_split_restarts_from_changeovers() -> None:
    intervals = [
        ("working", 0, 50),
        ("starved", 50, 170),
        ("off", 170, 400),
        ("setup", 400, 430),  # a restart
        ("working", 430, 500),
        ("setup", 500, 520),  # a changeover
        ("working", 520, 560),
        ("starved", 560, 680),
        ("off", 680, 700),
        ("setup", 700, 725),
        ("working", 725, 760),
        ("off", 760, 790),  # off with no idle time before it (after: 0)
        ("setup", 790, 800),  # cut by the window's end
    ]
    events = switch_off_events(intervals, 800.0)
    assert events.offs == 3
    assert events.idle_before_off == [120.0, 120.0, 0.0]
    assert events.restarts == [(400.0, 430.0), (700.0, 725.0)]


def cycle_record(hours: float, after: float, restart: float, changeover: float) -> StationRecord:
    """A machine that alternates A and B parts, and after every third part waits long enough to
    switch off: its set-ups are 'changeover' after a part of the other product, 'restart' after an
    off (and restart + changeover merged when the product changes there)."""
    steps: list[tuple[str, float]] = []
    record = StationRecord("trim")
    t, k, last = 0.0, 0, "A"
    while t < hours * 3600:
        product = "AB"[(k // 2) % 2]
        if product != last:
            steps.append(("setup", t))
            t += changeover
        steps.append(("working", t))
        t += 40.0
        record.part_times.append(t)
        record.products.append(product)
        record.cycle_times.append(40.0)
        record.scrapped.append(False)
        last, k = product, k + 1
        if k % 3 == 0:
            steps += [("starved", t), ("off", t + after)]
            t += after + 200.0
            steps.append(("setup", t))
            t += restart
            if "AB"[(k // 2) % 2] != last:
                t += changeover  # the changeover follows in the same set-up
    record.state_times = [s for _, s in steps]
    record.states = [s for s, _ in steps]
    return record


def test_restarts_do_not_pollute_the_setups() -> None:
    record = cycle_record(hours=10, after=90.0, restart=35.0, changeover=12.0)
    prior = {
        "name": "cell",
        "products": [{"name": "A"}, {"name": "B"}],
        "stations": [{"name": "trim", "cycle_time": 40}],
    }
    line, results = calibrate_line(prior, {"trim": record}, 10 * 3600.0)
    trim = line["stations"][0]
    assert trim["setup"] == {"dist": "constant", "value": 12.0}
    assert trim["switch_off"] == {"after": 90.0, "restart": {"dist": "constant", "value": 35.0}}
    summary = results[0].summary()["switch_off"]
    assert summary["with_changeover"] > 0 and summary["restarts"] > 30
    line_from_dict(line)


def test_too_few_services_or_restarts_keep_the_prior() -> None:
    record = cycle_record(hours=0.3, after=90.0, restart=35.0, changeover=12.0)
    prior: dict[str, Any] = {
        "name": "cell",
        "products": [{"name": "A"}, {"name": "B"}],
        "stations": [{"name": "trim", "cycle_time": 40, "switch_off": {"after": 60, "restart": 20}}],
    }
    line, results = calibrate_line(prior, {"trim": record}, 0.3 * 3600, Limits(restarts=50))
    assert line["stations"][0]["switch_off"] == {"after": 60, "restart": 20}
    assert any("keeping the prior switch_off" in warning for warning in results[0].warnings)
    services = history(*[(state, start) for state, start, _ in SERVICED])
    prior = {
        "name": "cell",
        "stations": [{"name": "m", "cycle_time": 40, "maintenance": {"parts": 9, "duration": 5}}],
    }
    line, results = calibrate_line(prior, {"m": services}, 700.0)
    assert line["stations"][0]["maintenance"] == {"parts": 9, "duration": 5}
    assert any("3 services, 2 after a renewal seen (< 5)" in warning for warning in results[0].warnings)


@pytest.mark.parametrize("crew", [None, {"technicians": 1}])
def test_the_crew_is_a_given(crew: dict[str, Any] | None) -> None:
    """`repair:` is the line file's, never estimated: it goes through as given."""
    prior: dict[str, Any] = {"name": "cell", "stations": [{"name": "m", "cycle_time": 40}]}
    if crew is not None:
        prior["repair"] = crew
    line, _ = calibrate_line(prior, {"m": history(("working", 0.0))}, 100.0)
    assert line.get("repair") == crew

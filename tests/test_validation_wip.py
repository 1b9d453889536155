"""The line's observed WIP in validation: from the PLCs' OccupancySeconds counters when every
station sent them, from the sampled Occupancy values (with a warning) when not."""

from __future__ import annotations

import logging

import pytest

from simulations.hardware.config import HardwareConfig
from simulations.hardware.records import plc_records
from simulations.hardware.runtime import LineRuntime
from tests.hardware.conftest import FAST_LINE
from twin.calibration.records import StationRecord, counted_wip
from twin.calibration.validate import observed_line_wip, validate
from twin.line import line_from_dict

HOURS = 6.0


def _counter(name: str, times: list[float], values: list[float]) -> StationRecord:
    return StationRecord(name, occupancy_seconds_times=times, occupancy_seconds=values)


def test_counted_wip_by_hand() -> None:
    # `a` sent at every refresh; `b` did not grow between 0 and 600, so it was not sent at 600
    a = _counter("a", [0.0, 600.0, 1200.0], [0.0, 1200.0, 3000.0])
    b = _counter("b", [0.0, 1200.0], [0.0, 600.0])
    assert counted_wip([a, b], 1300.0) == pytest.approx((3000 + 600) / 1200)
    # a PLC restart: the counter starts again from 0 and its new value is all growth
    a.occupancy_seconds = [0.0, 1200.0, 500.0]
    assert counted_wip([a, b], 1300.0) == pytest.approx((1200 + 500 + 600) / 1200)
    # the span starts when every station has sent a value: b's first came at 600
    b = _counter("b", [600.0, 1200.0], [100.0, 700.0])
    a.occupancy_seconds = [0.0, 1200.0, 3000.0]
    assert counted_wip([a, b], 1300.0) == pytest.approx((1800 + 600) / 600)
    # values outside the window are left out; a station without its counter: no counted WIP
    assert counted_wip([a, b], 700.0) is None
    assert counted_wip([a, StationRecord("c")], 1300.0) is None


@pytest.fixture(scope="module")
def recorded() -> tuple[LineRuntime, float, float]:
    """The pilot line served at the demo's speed (its PLCs refresh every 600 simulated s), and
    the engine's own time-average of its WIP over the window."""
    config = HardwareConfig.model_validate({"speed": 1200, "mqtt": {"enabled": False}})
    runtime = LineRuntime(line_from_dict(FAST_LINE), config, seed=8)
    window = HOURS * 3600
    model, env = runtime.model, runtime.env
    exact: list[float] = []

    def at_the_end():  # type: ignore[no-untyped-def]
        yield env.timeout(window)
        exact.append((model.wip_area + model.wip * (window - model.wip_since)) / window)

    env.process(at_the_end())
    while env.peek() <= window:  # everything due at the window's end too: its refresh is published
        env.step()
    return runtime, window, exact[0]


def test_validation_takes_the_wip_from_the_counters(
    recorded: tuple[LineRuntime, float, float], caplog: pytest.LogCaptureFixture
) -> None:
    runtime, window, exact = recorded
    records = plc_records(runtime, counters=True)
    refreshed = [t for t, _ in runtime.stations[0].values["TimeWorking"].entries]
    assert refreshed[1] - refreshed[0] == 600.0  # the demo's refresh interval
    with caplog.at_level(logging.WARNING):
        result = validate(line_from_dict(FAST_LINE), records, window, replications=3, seed=1)
    assert result["wip"]["basis"] == "OccupancySeconds"
    # the counters' growth over the window (6 h: refreshes at its start and its end) is the
    # engine's own integral of its WIP
    assert result["wip"]["observed"] == pytest.approx(exact, rel=1e-12)
    assert "sampled" not in caplog.text
    # the sampled occupancies give another figure: the counters are what was used
    sampled, basis = observed_line_wip(list(plc_records(runtime, counters=False).values()), window)
    assert basis == "Occupancy" and sampled is not None
    assert abs(sampled - result["wip"]["observed"]) > 1e-3 * exact


def test_without_counters_the_sampled_wip_is_used_with_a_warning(
    recorded: tuple[LineRuntime, float, float], caplog: pytest.LogCaptureFixture
) -> None:
    runtime, window, _ = recorded
    records = plc_records(runtime, counters=True)
    last = records[runtime.stations[-1].name]
    last.occupancy_seconds_times, last.occupancy_seconds = [], []  # one PLC without the counter
    with caplog.at_level(logging.WARNING, logger="twin.calibration.validate"):
        wip, basis = observed_line_wip(list(records.values()), window)
    assert basis == "Occupancy"
    assert wip == observed_line_wip(list(plc_records(runtime, counters=False).values()), window)[0]
    assert "sampled Occupancy" in caplog.text

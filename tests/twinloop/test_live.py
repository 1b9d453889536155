"""`fabbrica twin live` against a line recorded in InfluxDB: forecasts, fans, shift scores, faults.

The ticks are replayed at instants inside the recording (`--at`, or a clock of the test's
own), with shifts of two wall seconds (20 line minutes at speed 600). The faults are real:
an InfluxDB sink stopped and started again, a source nobody listens on, a forecast far too
long for its deadline, a tick that comes while the previous one still runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_fabbrica
from twinloop.live import LiveTwin
from twinloop.live_config import read_live_config

from ..connectors.conftest import influxd_service, influxql
from .conftest import SPEED, Recording, free_port

LOGGER = "twinloop.live"


def _rows(url: str, database: str, measurement: str, where: str = "") -> list[dict[str, Any]]:
    clause = f" WHERE {where}" if where else ""
    rows = []
    for item in influxql(url, database, f'SELECT * FROM "{measurement}"{clause} GROUP BY *'):
        for values in item["values"]:
            rows.append({**dict(zip(item["columns"], values, strict=True)), **(item.get("tags") or {})})
    return rows


def _ns(instant: datetime) -> int:
    return int(instant.timestamp() * 1000) * 1_000_000


def _twin(recording: Recording, folder: Path, **changes: Any) -> LiveTwin:
    return LiveTwin(read_live_config(recording.config(folder, **changes)))


def _ticks(twin: LiveTwin, *instants: datetime) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return [await twin.tick(at) for at in instants]
        finally:
            await twin.close()

    return asyncio.run(run())


@pytest.fixture
def caplog_live(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, LOGGER)
    yield caplog


def _lines(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [
        record.getMessage() for record in caplog.records if record.name == LOGGER and record.levelno >= level
    ]


def test_ticks_forecast_the_shift_and_a_restart_scores_it(
    recording: Recording, tmp_path: Path, caplog_live: pytest.LogCaptureFixture
) -> None:
    a, b = recording.shifts
    first, second = a.start + timedelta(seconds=0.5), a.start + timedelta(seconds=1.25)
    written = _ticks(_twin(recording, tmp_path, sink="ticks"), first, second)
    assert [tick.status for tick in written] == ["written", "written"], [tick.message for tick in written]
    base = recording.produced(a.start)
    forecasts = _rows(recording.url, "ticks", "forecast")
    assert [row["time"] for row in forecasts] == [_ns(first), _ns(second)]
    for row, at in zip(forecasts, (first, second), strict=True):
        assert row["line"] == "pilot" and row["shift"] == "A"
        assert row["produced"] == recording.produced(at) - base  # parts made in the shift so far
        assert row["produced"] <= row["p10"] <= row["p50"] <= row["p90"]
        assert row["horizon_s"] == pytest.approx((a.end - at).total_seconds() * SPEED)
        assert row["remaining_s"] == pytest.approx((a.end - at).total_seconds())
        assert row["target"] == a.target and 0 <= row["target_probability"] <= 1
        assert row["bottleneck"] in ("cut", "weld", "pack") and row["replications"] == 20
        # the ETA's (linear) median is an instant within the shift when more than half of the
        # replications reach the target; with exactly half it lies between a reached and an unreached
        # one, and the field is left out
        reached = round(row["target_probability"] * row["replications"])
        assert (row.get("eta_p50") is not None) == (reached > math.ceil(0.5 * (row["replications"] - 1))), row
        if row.get("eta_p50") is not None:
            assert _ns(at) <= row["eta_p50"] * 1_000_000 <= _ns(a.end)
    # the fan: on the shift's 0.5 s grid after each tick, up to the shift end, from the last tick
    fan = _rows(recording.url, "ticks", "forecast_path")
    grid = [_ns(a.start + timedelta(seconds=s)) for s in (1.0, 1.5, 2.0)]
    assert [row["time"] for row in fan] == grid
    assert fan[-1]["p50"] == forecasts[-1]["p50"]  # the end of the fan is the forecast of the shift
    assert all(row["p10"] <= row["p50"] <= row["p90"] for row in fan)
    kept = yaml.safe_load((tmp_path / "live-state.json").read_text())
    assert kept["format"] == "fabbrica-live/1" and [len(s["forecasts"]) for s in kept["shifts"]] == [2]

    # a new service (a restart) on the same state file scores shift A at its first tick in B
    (third,) = _ticks(_twin(recording, tmp_path, sink="ticks"), b.start + timedelta(seconds=0.5))
    assert third.status == "written" and third.scored == [f"A@{a.start:%Y-%m-%dT%H:%M:%S}Z"]
    actual = recording.produced(a.end) - base
    scores = _rows(recording.url, "ticks", "forecast_score")
    assert [row["time"] for row in scores] == [_ns(first), _ns(second)]
    for row, forecast in zip(scores, forecasts, strict=True):
        assert (row["line"], row["shift"], row["date"]) == ("pilot", "A", f"{a.start:%Y-%m-%d}")
        assert row["actual"] == actual
        assert row["error"] == pytest.approx(actual - forecast["p50"])
        assert row["inside"] == int(forecast["p10"] <= actual <= forecast["p90"])
        assert row["lead_s"] == pytest.approx(
            (a.end - datetime.fromtimestamp(row["time"] / 1e9, UTC)).total_seconds()
        )
    kept = yaml.safe_load((tmp_path / "live-state.json").read_text())
    assert [s["name"] for s in kept["shifts"]] == ["B"]  # A is scored and forgotten
    assert not _lines(caplog_live)  # nothing went wrong, nothing was logged as a warning


def test_once_from_the_command_line(recording: Recording, tmp_path: Path) -> None:
    a, _ = recording.shifts
    at = a.start + timedelta(seconds=1)
    config = recording.config(tmp_path, sink="once")
    done = run_fabbrica(
        "twin", "live", str(config), "--once", "--at", f"{at:%Y-%m-%dT%H:%M:%S}Z", timeout=120
    )
    assert done.returncode == 0, done.stderr
    (line,) = [text for text in done.stderr.splitlines() if "twinloop.live" in text]
    assert "INFO twinloop.live: forecast A to " in line and "P10/P50/P90" in line, line
    (row,) = _rows(recording.url, "once", "forecast")
    assert row["time"] == _ns(at) and row["shift"] == "A"
    assert len(_rows(recording.url, "once", "forecast_path")) == 2  # a.start + 1.5 s and the end
    # now, the line has stopped: a shift that runs now finds it away, one line, exit code 1
    now = datetime.now(UTC)
    around = {
        "name": "now",
        "start": f"{now - timedelta(hours=1):%H:%M}",
        "end": f"{now + timedelta(hours=1):%H:%M}",
    }
    (tmp_path / "now").mkdir()
    config = recording.config(tmp_path / "now", sink="once", shifts=[around])
    done = run_fabbrica("twin", "live", str(config), "--once", timeout=120)
    assert done.returncode == 1, done.stderr
    (line,) = [text for text in done.stderr.splitlines() if "twinloop.live" in text]
    assert "skipped: the line is away: no `machine` point of pilot since" in line, line


def test_the_sink_away_skips_a_tick_and_the_next_one_writes(
    recording: Recording, tmp_path: Path, caplog_live: pytest.LogCaptureFixture
) -> None:
    sink = influxd_service(tmp_path / "sink")
    sink.start()
    try:
        url = sink.url  # type: ignore[attr-defined]
        twin = _twin(
            recording, tmp_path, sink={"type": "influxdb1", "url": url, "database": "away", "timeout": "10s"}
        )
        a, _ = recording.shifts
        instants = [a.start + timedelta(seconds=s) for s in (0.25, 0.75, 1.25)]

        async def run() -> list[Any]:
            try:
                ticks = [await twin.tick(instants[0])]
                sink.stop()
                ticks.append(await twin.tick(instants[1]))
                sink.start()
                ticks.append(await twin.tick(instants[2]))
                return ticks
            finally:
                await twin.close()

        ticks = asyncio.run(run())
        assert [tick.status for tick in ticks] == ["written", "skipped", "written"], [
            t.message for t in ticks
        ]
        (warning,) = _lines(caplog_live)
        assert warning.startswith(f"tick {instants[1]:%Y-%m-%dT%H:%M:%S}Z skipped: sink: "), warning
        assert [row["time"] for row in _rows(url, "away", "forecast")] == [_ns(instants[0]), _ns(instants[2])]
        kept = yaml.safe_load((tmp_path / "live-state.json").read_text())
        assert [made["time"] for made in kept["shifts"][0]["forecasts"]] == [
            f"{instants[0]:%Y-%m-%dT%H:%M:%S.%f}Z",
            f"{instants[2]:%Y-%m-%dT%H:%M:%S.%f}Z",
        ]  # the skipped tick's forecast is not kept for the scores
    finally:
        sink.stop()


def test_a_source_nobody_answers_skips_the_tick_in_one_line(
    recording: Recording, tmp_path: Path, caplog_live: pytest.LogCaptureFixture
) -> None:
    twin = _twin(recording, tmp_path, source=f"http://127.0.0.1:{free_port()}/plant")
    (tick,) = _ticks(twin, recording.shifts[0].start + timedelta(seconds=0.5))
    assert tick.status == "skipped"
    (warning,) = _lines(caplog_live)
    assert "skipped: source: " in warning and "cannot read 'machine'" in warning, warning


def test_a_slow_forecast_is_abandoned_and_the_loop_keeps_its_rhythm(
    recording: Recording, tmp_path: Path, caplog_live: pytest.LogCaptureFixture
) -> None:
    """Far too many replications for the deadline: each forecast is killed at its deadline, a
    tick that comes while one still runs is skipped, and the ticks start every `every`."""
    a, _ = recording.shifts
    began = time.monotonic()
    twin = _twin(recording, tmp_path, replications=1_000_000, every="1s", deadline="1.5s")
    twin.clock = lambda: a.start + timedelta(seconds=0.1 + time.monotonic() - began)
    asyncio.run(twin.run(ticks=4))
    statuses = [tick.status for tick in twin.ticks]
    starts = sorted(tick.at for tick in twin.ticks)
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(starts)]
    warnings = _lines(caplog_live)
    assert statuses.count("skipped") >= 1 and "busy" in statuses, statuses
    assert any(
        "the forecast was still running after 1.5 s (deadline): abandoned" in line for line in warnings
    )
    assert any("the previous tick is still running" in line for line in warnings)
    assert len(warnings) == len(twin.ticks)  # one line per tick, each skipped for one reason
    assert all(0.45 <= gap <= 1.45 for gap in gaps), gaps  # on the wall clock's seconds, none waited for
    assert twin.worker.process is None  # no forecast process left behind


def test_the_loop_forecasts_every_second_and_scores_the_shift_it_leaves(
    recording: Recording, tmp_path: Path, caplog_live: pytest.LogCaptureFixture
) -> None:
    """`run` with every = 1 s on a clock that replays the recording from shift A on: a forecast
    per tick (a tick that finds the previous one running is skipped), A scored once B runs."""
    a, _ = recording.shifts
    began = time.monotonic()
    twin = _twin(recording, tmp_path, sink="loop", every="1s", deadline="5s")
    twin.clock = lambda: a.start + timedelta(seconds=0.3 + time.monotonic() - began)
    asyncio.run(twin.run(ticks=4))
    statuses = [tick.status for tick in twin.ticks]
    assert set(statuses) <= {"written", "busy"} and statuses.count("written") >= 2, statuses
    written = [tick for tick in twin.ticks if tick.status == "written"]
    assert [row["time"] for row in _rows(recording.url, "loop", "forecast")] == [_ns(t.at) for t in written]
    in_b = [tick for tick in written if tick.shift == "B" and tick.at >= a.end + timedelta(seconds=0.3)]
    scored_a = [row for row in _rows(recording.url, "loop", "forecast_score") if row["shift"] == "A"]
    forecasts_in_a = [tick for tick in written if tick.shift == "A"]
    if in_b and forecasts_in_a:
        assert len(scored_a) == len(forecasts_in_a)
    assert len(_lines(caplog_live)) == statuses.count("busy")  # a warning for each skipped tick only
